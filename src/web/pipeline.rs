//! Binding of the refine pipeline (`crate::refine`) for the worker: the settings and their
//! defaults, one image's inputs, [`refine_image`] (once per image, on the model where the method
//! needs it), the edited label, and `report.json`. The same library calls as `camsam refine`.
//! The model's `RefCell` borrow is its busy lock, held across awaits as in `model`.
#![allow(clippy::await_holding_refcell_ref)]

use super::model::{busy, job_report, Embedded, Sam};
use super::{js_err, js_error, Cams, Label, Masks};
use crate::core::label::LabelMap;
use crate::core::masks::{BitMask, MaskSet, SamMask};
use crate::refine::{self, Edit, ImageEntry, Report, Settings};
use crate::sam::preprocess;
use crate::Result;
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

fn to_js<T: serde::Serialize>(value: &T, what: &str) -> std::result::Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error("encode", &format!("{what}: {e}")))
}

/// The settings from the page (a partial [`Settings`] object: missing fields take the
/// defaults; `undefined` is all defaults), checked.
pub fn settings(value: JsValue) -> std::result::Result<Settings, JsValue> {
    let s: Settings = if value.is_undefined() || value.is_null() {
        Settings::default()
    } else {
        serde_wasm_bindgen::from_value(value)
            .map_err(|e| js_error("bad-input", &format!("settings: {e}")))?
    };
    s.validate().map_err(super::js_err)?;
    Ok(s)
}

/// The default settings (the one place they are written is the library): the page's controls
/// start from these.
#[wasm_bindgen(js_name = defaultSettings)]
pub fn default_settings() -> std::result::Result<JsValue, JsValue> {
    to_js(&Settings::default(), "settings")
}

/// One image's inputs.
#[wasm_bindgen]
#[derive(Clone)]
pub struct RefineInputs {
    name: String,
    image: Option<(Vec<u8>, String)>,
    cam: Option<Cams>,
    pseudo: Option<LabelMap>,
}

#[wasm_bindgen]
impl RefineInputs {
    /// The inputs of image `name`.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str) -> RefineInputs {
        RefineInputs {
            name: name.to_string(),
            image: None,
            cam: None,
            pseudo: None,
        }
    }

    /// The image file (PNG/JPEG bytes); decoded when the pipeline needs it.
    #[wasm_bindgen(js_name = setImage)]
    pub fn set_image(&mut self, bytes: Vec<u8>, path: &str) {
        self.image = Some((bytes, path.to_string()));
    }

    /// The image's CAM (copied).
    #[wasm_bindgen(js_name = setCams)]
    pub fn set_cams(&mut self, cams: &Cams) {
        self.cam = Some(cams.clone());
    }

    /// A pseudo-label file (used when there is no CAM).
    #[wasm_bindgen(js_name = setPseudo)]
    pub fn set_pseudo(&mut self, label: &Label) {
        self.pseudo = Some(label.inner.clone());
    }

    /// The width of the labels (the CAM's or the pseudo-label's).
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.size().0
    }

    /// The height of the labels.
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.size().1
    }
}

impl RefineInputs {
    /// The label size: the CAM's or the pseudo-label's (0 × 0 without either).
    fn size(&self) -> (usize, usize) {
        match (&self.cam, &self.pseudo) {
            (Some(c), _) => (c.inner.width, c.inner.height),
            (None, Some(p)) => (p.width, p.height),
            _ => (0, 0),
        }
    }

    fn decode_image(&self) -> Result<Option<image::RgbImage>> {
        self.image
            .as_ref()
            .map(|(bytes, path)| preprocess::decode_rgb(bytes, path))
            .transpose()
    }

    fn label_name(&self) -> &str {
        match (&self.cam, &self.image) {
            (Some(c), _) => &c.name,
            (None, Some((_, path))) => path,
            _ => &self.name,
        }
    }

    fn with<'a>(&'a self, image: Option<&'a image::RgbImage>) -> refine::Inputs<'a> {
        refine::Inputs {
            name: self.label_name(),
            image,
            cam: self.cam.as_ref().map(|c| &c.inner),
            pseudo: self.pseudo.as_ref(),
            // the page has no saliency input (EPS++ runs in the CLI)
            saliency: None,
            present: None,
        }
    }
}

/// One refined image: its pseudo-label, the method's label before edits, CPM's label and the
/// SAM masks where the method has them.
#[wasm_bindgen]
pub struct Refined {
    pseudo: LabelMap,
    base: LabelMap,
    cpm: Option<LabelMap>,
    masks: Option<MaskSet>,
}

fn mask_refs(masks: &Option<MaskSet>) -> Vec<&BitMask> {
    masks.as_ref().map(|m| m.bit_masks()).unwrap_or_default()
}

fn edits(value: JsValue) -> std::result::Result<Vec<Edit>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| {
        js_error(
            "bad-input",
            &format!("edits: {e}; expected [{{op: 'reject'|'assign'|'brush', …}}]"),
        )
    })
}

#[wasm_bindgen]
impl Refined {
    /// A stored result back: its labels (ids) and masks.
    pub fn restore(
        pseudo: &Label,
        base: &Label,
        cpm: Option<Label>,
        masks: Option<Masks>,
    ) -> Refined {
        Refined {
            pseudo: pseudo.inner.clone(),
            base: base.inner.clone(),
            cpm: cpm.map(|l| l.inner),
            masks: masks.map(|m| m.inner),
        }
    }

    /// The pseudo-label (CAM → label with the settings, or the pseudo-label file).
    pub fn pseudo(&self) -> Label {
        Label {
            inner: self.pseudo.clone(),
        }
    }

    /// The method's label before the user's edits.
    pub fn base(&self) -> Label {
        Label {
            inner: self.base.clone(),
        }
    }

    /// CPM's label (methods cpm and cpm+sepl).
    pub fn cpm(&self) -> Option<Label> {
        self.cpm.clone().map(|inner| Label { inner })
    }

    /// The SAM masks (given or generated), or `undefined` for a method without them.
    pub fn masks(&self) -> Option<Masks> {
        self.masks.clone().map(Masks::from)
    }

    /// Adds a mask (one byte per pixel, inside when ≥ 128), e.g. from the prompt tool; it is
    /// visited last by the merge. Returns its position.
    #[wasm_bindgen(js_name = pushMask)]
    pub fn push_mask(&mut self, values: Vec<u8>) -> std::result::Result<usize, JsValue> {
        let (w, h) = (self.base.width, self.base.height);
        let set = self.masks.as_mut().ok_or_else(|| {
            js_error(
                "bad-input",
                "this method has no SAM masks; the point/box tool adds masks to SEPL results",
            )
        })?;
        let mut masks = Masks::from(std::mem::take(set));
        let i = masks.push(values, w, h);
        *set = masks.inner;
        i
    }

    /// The labels again from the inputs with new settings (the sliders): the pseudo-label and
    /// the method's label; the model's output (masks, CPM's label) is kept.
    pub fn update(
        &mut self,
        inputs: &RefineInputs,
        settings_js: JsValue,
    ) -> std::result::Result<(), JsValue> {
        let s = settings(settings_js)?;
        let image = inputs.decode_image().map_err(js_err)?;
        let d = refine::derive(
            &inputs.with(image.as_ref()),
            &s,
            &mask_refs(&self.masks),
            self.cpm.as_ref(),
        )
        .map_err(js_err)?;
        self.pseudo = d.pseudo;
        self.base = d.label;
        Ok(())
    }

    /// The label the user sees: the merge without the rejected masks (methods that merge),
    /// then the painting edits, in order.
    pub fn edited(
        &self,
        settings_js: JsValue,
        edits_js: JsValue,
    ) -> std::result::Result<Label, JsValue> {
        let s = settings(settings_js)?;
        let edits = edits(edits_js)?;
        refine::edited(
            &s,
            &self.pseudo,
            self.cpm.as_ref(),
            &self.base,
            &mask_refs(&self.masks),
            &edits,
        )
        .map(|inner| Label { inner })
        .map_err(js_err)
    }

    /// The smallest mask under pixel `(x, y)` (nested parts win), or `undefined`.
    #[wasm_bindgen(js_name = maskAt)]
    pub fn mask_at(&self, x: usize, y: usize) -> Option<usize> {
        refine::hit_test(&mask_refs(&self.masks), x, y)
    }
}

/// One image through the pipeline without a model (`pamr`, `crf`, `saliency`, and SEPL with
/// mask files): see [`Sam::refine`].
#[wasm_bindgen(js_name = refineImage)]
pub fn refine_image(
    inputs: &RefineInputs,
    settings_js: JsValue,
    masks: Option<Masks>,
) -> js_sys::Promise {
    run(
        None,
        inputs.clone(),
        settings(settings_js),
        masks,
        None,
        None,
        None,
    )
}

#[wasm_bindgen]
impl Sam {
    /// One image through the pipeline (`refine::refine_image`, as `camsam refine` runs it):
    /// `masks` are mask files read for it (else SEPL runs segment-everything on this model).
    /// `progress(done, total)` after each batch of prompts; `cancelled()` true stops with kind
    /// `cancelled`. `embedding`: the image's cached embedding (the encoder is skipped).
    /// Resolves to a [`Refined`].
    pub fn refine(
        &self,
        inputs: &RefineInputs,
        settings_js: JsValue,
        masks: Option<Masks>,
        progress: js_sys::Function,
        cancelled: js_sys::Function,
        embedding: Option<Vec<f32>>,
    ) -> js_sys::Promise {
        run(
            Some(self.engine()),
            inputs.clone(),
            settings(settings_js),
            masks,
            Some(progress),
            Some(cancelled),
            embedding,
        )
    }
}

fn run(
    engine: Option<std::rc::Rc<std::cell::RefCell<super::model::Engine>>>,
    inputs: RefineInputs,
    s: std::result::Result<Settings, JsValue>,
    masks: Option<Masks>,
    progress: Option<js_sys::Function>,
    cancelled: Option<js_sys::Function>,
    embedding: Option<Vec<f32>>,
) -> js_sys::Promise {
    future_to_promise(async move {
        let s = s?;
        let image = inputs.decode_image().map_err(js_err)?;
        let given: Option<Vec<BitMask>> = masks
            .as_ref()
            .map(|m| m.inner.masks.iter().map(|m| m.bits.clone()).collect());
        let mut report = job_report(progress, cancelled);
        let refs = inputs.with(image.as_ref());
        let mut borrow = match &engine {
            Some(e) => Some(e.try_borrow_mut().map_err(|_| busy())?),
            None => None,
        };
        let mut embedded = match (borrow.as_deref_mut(), &image) {
            (Some(engine), Some(img)) => Some(
                Embedded::new(engine, img, embedding.as_deref())
                    .await
                    .map_err(js_err)?,
            ),
            (Some(engine), None) => Some(Embedded::new_unset(engine)),
            _ => None,
        };
        let (derived, out) =
            refine::refine_image(&refs, &s, given.as_deref(), embedded.as_mut(), &mut report)
                .await
                .map_err(js_err)?;
        let masks = match (masks, s.method.uses_masks()) {
            (Some(m), true) => Some(m.inner),
            (None, true) => Some(MaskSet {
                masks: out
                    .records
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| SamMask {
                        index: i as u64,
                        file: format!("{}#{i}", inputs.name),
                        bits: r.segmentation,
                        meta: None,
                    })
                    .collect(),
                warnings: Vec::new(),
            }),
            _ => None,
        };
        Ok(Refined {
            pseudo: derived.pseudo,
            base: derived.label,
            cpm: out.cpm,
            masks,
        }
        .into())
    })
}

/// What the page knows of its results, for `report.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageRun {
    settings: serde_json::Value,
    backend: Option<String>,
    classes: Vec<String>,
    images: Vec<ImageEntry>,
    metrics: Option<serde_json::Value>,
    issues: Vec<String>,
    /// Some image came from CAMs (the CAM → label step ran).
    from_cams: bool,
    /// Segment-everything made some image's masks (rather than mask files).
    everything: bool,
}

/// `report.json` of the page's results, written by the library's one report
/// (`refine::Report`), with the fields `camsam refine` writes.
#[wasm_bindgen(js_name = reportJson)]
pub fn report_json(run: JsValue) -> std::result::Result<Vec<u8>, JsValue> {
    let run: PageRun = serde_wasm_bindgen::from_value(run)
        .map_err(|e| js_error("bad-input", &format!("report: {e}")))?;
    let s: Settings = serde_json::from_value(run.settings)
        .map_err(|e| js_error("bad-input", &format!("report settings: {e}")))?;
    let mut report = Report::new("page", &s, run.from_cams, run.everything, false);
    report.backend = run.backend;
    if !run.classes.is_empty() {
        report.classes = run.classes;
    }
    report.images = run.images;
    report.metrics = run.metrics;
    report.issues = run.issues;
    report.to_json().map_err(js_err)
}
