//! `report.json`: what produced a set of refined labels, with the same fields from every
//! command and the page.

use super::settings::{Method, Settings};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One image of a report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageEntry {
    pub name: String,
    pub width: Option<usize>,
    pub height: Option<usize>,
    /// The method that made this image's label.
    pub method: Option<Method>,
    /// The SAM backend that ran on it (`none` when no model ran).
    pub backend: Option<String>,
    /// SAM masks merged (given or generated).
    pub sam_masks: Option<usize>,
    /// The user's edits replayed on it (the page).
    pub edits: usize,
    pub seconds: Option<f64>,
    pub miou_before: Option<f64>,
    pub miou_after: Option<f64>,
    /// What a front end adds (the merge's per-class counts and stage times).
    #[serde(flatten)]
    pub detail: Map<String, Value>,
}

/// A name that failed, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

/// The report of one run (a CLI command or the page's results).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    /// `refine`, `merge`, `cam2label` or `page`.
    pub command: String,
    pub method: Method,
    /// The SAM backend of the run, where a model ran.
    pub backend: Option<String>,
    /// [`Settings::used`]: the settings that produced the labels, unused sections `null`.
    pub settings: Value,
    /// Where the inputs came from (paths, list, shard; the page: nothing, its files stay
    /// in the browser).
    pub inputs: Map<String, Value>,
    pub classes: Vec<String>,
    pub images: Vec<ImageEntry>,
    pub skipped: Vec<String>,
    pub failed: Vec<Failure>,
    /// Dataset metrics before/after, where ground truth was given.
    pub metrics: Option<Value>,
    /// Problems met along the way (files left out, fallbacks).
    pub issues: Vec<String>,
    pub seconds: Option<f64>,
    pub threads: Option<usize>,
}

impl Report {
    /// An empty report of `command` for labels made with `settings`; see [`Settings::used`]
    /// for `from_cams`, `everything` and `saliency`.
    pub fn new(
        command: &str,
        settings: &Settings,
        from_cams: bool,
        everything: bool,
        saliency: bool,
    ) -> Report {
        Report {
            tool: "camsam",
            version: env!("CARGO_PKG_VERSION"),
            command: command.to_string(),
            method: settings.method,
            backend: None,
            settings: settings.used(from_cams, everything, saliency),
            inputs: Map::new(),
            classes: (0..settings.num_classes)
                .map(|k| match crate::core::label::VOC_CLASSES.get(k) {
                    Some(name) if settings.num_classes <= 21 => name.to_string(),
                    _ => format!("class {k}"),
                })
                .collect(),
            images: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
            metrics: None,
            issues: Vec::new(),
            seconds: None,
            threads: None,
        }
    }

    /// Records a failed name.
    pub fn fail(&mut self, name: &str, error: &Error) {
        self.failed.push(Failure {
            name: name.to_string(),
            error: error.to_string(),
        });
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::encode("report.json", e))
    }
}
