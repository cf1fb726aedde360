//! The method and the settings that shape a refined label.

use crate::core::cam::{CamToLabel, Keys};
use crate::core::sepl::{Combine, MergeParams, Preset};
use crate::refine::amg::AmgConfig;
use crate::refine::cpm::CpmSettings;
use crate::refine::crf::CrfSettings;
use crate::refine::pamr::PamrSettings;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a CAM (or pseudo-label) becomes the refined label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// SEPL (arXiv 2305.05803): segment everything, then merge the masks into the
    /// pseudo-label (`--preset`, `--t1`, `--t2`, `--combine`).
    #[default]
    Sepl,
    /// S2C's CAM-prompted SAM: each class's CAM peaks prompt SAM; per pixel the class with the
    /// best `mask logit × mean CAM` (`--peak-threshold`, `--peak-distance`, `--prompt`,
    /// `--mask`, `--cpm-margin`).
    Cpm,
    /// PAMR (Araslanov & Roth 2020): the CAM refined with image-colour affinities, then the
    /// CAM → label step; no SAM, no weights needed (`--pamr-iterations`, `--pamr-dilations`).
    Pamr,
    /// The dense CRF of PSA / IRN / EPS (Krähenbühl's densecrf): background (1 − max CAM)^α,
    /// Gaussian + bilateral kernels, mean field; no SAM, no weights needed (`--crf-*`).
    Crf,
    /// CPM's labels as the pseudo-label that SEPL merges the everything-mode masks into.
    #[serde(rename = "cpm+sepl")]
    #[cfg_attr(not(target_arch = "wasm32"), value(name = "cpm+sepl"))]
    CpmSepl,
    /// EPS++'s saliency pseudo-label (`--saliency DIR`): CAM foreground refined with PAMR,
    /// pixels where it and the saliency map disagree ignored (255); no SAM, no weights needed.
    Saliency,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Sepl,
        Method::Cpm,
        Method::Pamr,
        Method::Crf,
        Method::CpmSepl,
        Method::Saliency,
    ];

    /// The method's name in flags, the page and `report.json`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Sepl => "sepl",
            Method::Cpm => "cpm",
            Method::Pamr => "pamr",
            Method::Crf => "crf",
            Method::CpmSepl => "cpm+sepl",
            Method::Saliency => "saliency",
        }
    }

    /// Runs MobileSAM (needs weights).
    pub fn uses_sam(self) -> bool {
        !matches!(self, Method::Pamr | Method::Crf | Method::Saliency)
    }

    /// Merges SAM masks into a pseudo-label (given masks, or segment-everything).
    pub fn uses_masks(self) -> bool {
        matches!(self, Method::Sepl | Method::CpmSepl)
    }

    /// Runs CPM.
    pub fn uses_cpm(self) -> bool {
        matches!(self, Method::Cpm | Method::CpmSepl)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown method '{s}': expected sepl, cpm, pamr, crf, cpm+sepl or saliency")
            })
    }
}

/// The SEPL merge rule and its thresholds (the dataset's class count is [`Settings`]').
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeplSettings {
    pub preset: Preset,
    pub t1: f64,
    pub t2: f64,
    pub combine: Combine,
}

impl Default for SeplSettings {
    fn default() -> Self {
        let d = MergeParams::default();
        SeplSettings {
            preset: d.preset,
            t1: d.t1,
            t2: d.t2,
            combine: d.combine,
        }
    }
}

/// Everything that shapes a refined label: the method and each step's settings. Missing
/// fields take their defaults (`#[serde(default)]`), unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub method: Method,
    /// Classes including background (21 for PASCAL VOC).
    pub num_classes: usize,
    /// How `.npz` / np.save'd dict keys number the classes.
    pub keys: Keys,
    /// CAM → pseudo-label (background threshold, ignore margin).
    pub cam: CamToLabel,
    /// The SEPL merge (methods `sepl` and `cpm+sepl`).
    pub sepl: SeplSettings,
    /// Segment-everything (where SEPL runs it rather than reading mask files).
    pub generator: AmgConfig,
    pub cpm: CpmSettings,
    pub pamr: PamrSettings,
    pub crf: CrfSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            method: Method::default(),
            num_classes: MergeParams::default().num_classes,
            keys: Keys::default(),
            cam: CamToLabel::default(),
            sepl: SeplSettings::default(),
            generator: AmgConfig::default(),
            cpm: CpmSettings::default(),
            pamr: PamrSettings::default(),
            crf: CrfSettings::default(),
        }
    }
}

impl Settings {
    /// The merge parameters of the SEPL step.
    pub fn merge_params(&self) -> MergeParams {
        MergeParams {
            preset: self.sepl.preset,
            t1: self.sepl.t1,
            t2: self.sepl.t2,
            combine: self.sepl.combine,
            num_classes: self.num_classes,
        }
    }

    /// Checks every value a front end can set, naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(2..=256).contains(&self.num_classes) {
            return Err(Error::input(
                "num_classes",
                format!(
                    "{}; expected 2 to 256 (background included)",
                    self.num_classes
                ),
            ));
        }
        self.cam.validate()?;
        for (what, v) in [("t1", self.sepl.t1), ("t2", self.sepl.t2)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::input(
                    what,
                    format!("{v}; expected an overlap ratio from 0 to 1"),
                ));
            }
        }
        let peaks = &self.cpm.peaks;
        if !peaks.threshold.is_finite() {
            return Err(Error::input(
                "--peak-threshold",
                format!("{}; expected a finite number", peaks.threshold),
            ));
        }
        if !(peaks.min_distance.is_finite() && peaks.min_distance >= 0.0) {
            return Err(Error::input(
                "--peak-distance",
                format!("{}; expected a distance ≥ 0 in pixels", peaks.min_distance),
            ));
        }
        if let Some(m) = self.cpm.ignore_margin {
            if !(m.is_finite() && m >= 0.0) {
                return Err(Error::input(
                    "--cpm-margin",
                    format!("{m}; expected a score difference ≥ 0"),
                ));
            }
        }
        if self.pamr.dilations.is_empty() || self.pamr.dilations.contains(&0) {
            return Err(Error::input(
                "--pamr-dilations",
                format!(
                    "{:?}; expected positive integers such as 1,2,4,8,12,24",
                    self.pamr.dilations
                ),
            ));
        }
        self.crf.validate()
    }

    /// The settings that produced a label by this method, as `report.json` records them: the
    /// sections the method did not use are `null`. `from_cams`: the labels came from CAMs (not
    /// pseudo-label files), so the CAM → label step ran; `everything`: SAM's masks were
    /// generated (not read from mask files); `saliency`: EPS++'s saliency step replaced the
    /// threshold rule.
    pub fn used(&self, from_cams: bool, everything: bool, saliency: bool) -> serde_json::Value {
        use serde_json::{json, Value};
        let m = self.method;
        let on = |used: bool, v: Value| if used { v } else { Value::Null };
        let threshold_rule = from_cams && !saliency && matches!(m, Method::Sepl | Method::Pamr);
        json!({
            "method": m.name(),
            "num_classes": self.num_classes,
            "keys": on(from_cams, shortest(&self.keys)),
            "cam": on(threshold_rule, shortest(&self.cam)),
            "sepl": on(m.uses_masks(), shortest(&self.sepl)),
            "generator": on(m.uses_masks() && everything, shortest(&self.generator)),
            "cpm": on(m.uses_cpm(), shortest(&self.cpm)),
            "pamr": on(
                m == Method::Pamr || (saliency && matches!(m, Method::Sepl | Method::Saliency)),
                shortest(&self.pamr),
            ),
            "crf": on(m == Method::Crf, shortest(&self.crf)),
        })
    }
}

/// `v` as JSON with each `f32` written as its shortest decimal (`0.6`, not the `f64` widening
/// `0.6000000238418579` that `serde_json::to_value` gives): through the text form.
fn shortest<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_string(v)
        .and_then(|text| serde_json::from_str(&text))
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_takes_the_defaults_and_unknown_fields_are_refused() {
        let s: Settings =
            serde_json::from_str(r#"{"method": "cpm+sepl", "sepl": {"t1": 0.4}}"#).unwrap();
        assert_eq!(s.method, Method::CpmSepl);
        assert_eq!(s.sepl.t1, 0.4);
        assert_eq!(s.sepl.t2, SeplSettings::default().t2);
        assert_eq!(s.cam, CamToLabel::default());
        let e = serde_json::from_str::<Settings>(r#"{"sepl": {"t3": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("t3"), "{e}");
    }

    #[test]
    fn method_names_round_trip_through_text_and_json() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
        assert!("sam".parse::<Method>().unwrap_err().contains("cpm+sepl"));
    }

    #[test]
    fn the_report_keeps_only_the_sections_a_method_used() {
        let s = Settings {
            method: Method::Pamr,
            ..Settings::default()
        };
        let u = s.used(true, false, false);
        assert!(u["pamr"].is_object() && u["cam"].is_object());
        assert!(u["sepl"].is_null() && u["cpm"].is_null() && u["crf"].is_null());
        assert_eq!(u["cam"]["bg_threshold"], 0.25);
        let s = Settings {
            cam: CamToLabel {
                bg_threshold: 0.6,
                ..CamToLabel::default()
            },
            ..s
        };
        assert_eq!(s.used(true, false, false)["cam"]["bg_threshold"], 0.6);
        let png = Settings::default().used(false, false, false);
        assert!(png["cam"].is_null() && png["generator"].is_null() && png["sepl"].is_object());
    }
}
