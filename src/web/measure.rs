//! Bindings of the CAM → pseudo-label step and the metrics: heatmap PNGs / `.npy` / `.npz`
//! CAMs, dataset confusion matrices, per-image mIoU. Conversions only; the logic is in `cam`,
//! `npy` and `metrics`.

use super::{js_err, js_error, Label};
use crate::core::cam::{Cam, CamOptions};
use crate::core::metrics::Confusion as CoreConfusion;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// Collects one image's heatmap PNGs `<name>_<class id>.png` before decoding them together.
#[wasm_bindgen]
pub struct HeatmapFiles {
    maps: Vec<(u8, Vec<u8>, String)>,
}

#[wasm_bindgen]
impl HeatmapFiles {
    #[wasm_bindgen(constructor)]
    pub fn new() -> HeatmapFiles {
        HeatmapFiles { maps: Vec::new() }
    }

    /// Add the heatmap of class `class` (0–255 gray for 0–1), named `file_name` in errors.
    pub fn add(&mut self, class: u8, bytes: Vec<u8>, file_name: &str) {
        self.maps.push((class, bytes, file_name.to_string()));
    }

    /// Decode into a CAM.
    pub fn decode(self, num_classes: usize) -> Result<Cams, JsValue> {
        let name = self.maps.first().map_or_else(String::new, |m| m.2.clone());
        let opts = CamOptions {
            num_classes,
            ..Default::default()
        };
        Cam::from_heatmaps(&self.maps, &opts)
            .map(|inner| Cams { inner, name })
            .map_err(js_err)
    }
}

impl Default for HeatmapFiles {
    fn default() -> Self {
        Self::new()
    }
}

/// One image's CAM (heatmap PNGs, a `.npy` or a `.npz`).
#[wasm_bindgen]
#[derive(Clone)]
pub struct Cams {
    pub(crate) inner: Cam,
    pub(crate) name: String,
}

#[wasm_bindgen]
impl Cams {
    /// From a `.npy` `(C, H, W)`, a `.npy` holding a pickled CAM dict (IRN, AMN, LPCAM, PSA,
    /// CLIP-ES) or a `.npz` with `keys` + `high_res`/`cam`.
    #[wasm_bindgen(js_name = fromArray)]
    pub fn from_array(bytes: Vec<u8>, name: &str, num_classes: usize) -> Result<Cams, JsValue> {
        let opts = CamOptions {
            num_classes,
            ..Default::default()
        };
        let inner = if name.to_ascii_lowercase().ends_with(".npz") {
            Cam::from_npz(&bytes, name, &opts)
        } else {
            Cam::from_npy_bytes(&bytes, name, &opts)
        };
        inner
            .map(|inner| Cams {
                inner,
                name: name.to_string(),
            })
            .map_err(js_err)
    }

    /// The foreground class ids, one per channel.
    pub fn classes(&self) -> Vec<u8> {
        self.inner.classes.clone()
    }

    /// Channel of class `class`, max-normalised to 0..=1 for display.
    pub fn normalised(&self, class: u8) -> Result<Vec<f32>, JsValue> {
        let i = self
            .inner
            .classes
            .iter()
            .position(|&c| c == class)
            .ok_or_else(|| {
                js_error(
                    "bad-input",
                    &format!("{}: no CAM channel for class {class}", self.name),
                )
            })?;
        let ch = self.inner.channel(i);
        let max = ch
            .iter()
            .cloned()
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max);
        Ok(ch
            .iter()
            .map(|&v| {
                if max > 0.0 && v.is_finite() {
                    (v / max).max(0.0)
                } else {
                    0.0
                }
            })
            .collect())
    }
}

/// A dataset-level confusion matrix.
#[wasm_bindgen]
pub struct Confusion {
    inner: CoreConfusion,
}

#[wasm_bindgen]
impl Confusion {
    #[wasm_bindgen(constructor)]
    pub fn new(num_classes: usize) -> Result<Confusion, JsValue> {
        CoreConfusion::new(num_classes)
            .map(|inner| Confusion { inner })
            .map_err(js_err)
    }

    /// Add one image's prediction against its ground truth (`name` in errors).
    pub fn add(&mut self, pred: &Label, gt: &Label, name: &str) -> Result<(), JsValue> {
        self.inner
            .add(
                &gt.inner,
                &pred.inner,
                &format!("{name} (ground truth)"),
                name,
            )
            .map_err(js_err)
    }

    /// `{miou, per_class_iou, precision, recall, pixel_accuracy, …}` (fractions, null = absent).
    pub fn summary(&self) -> Result<JsValue, JsValue> {
        self.inner
            .summary()
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| js_error("bad-input", &e.to_string()))
    }
}

/// One image's mIoU (over the classes in its GT or prediction); `undefined` when none.
#[wasm_bindgen(js_name = imageMiou)]
pub fn image_miou(pred: &Label, gt: &Label, num_classes: usize) -> Result<Option<f64>, JsValue> {
    let mut c = CoreConfusion::new(num_classes).map_err(js_err)?;
    c.add(&gt.inner, &pred.inner, "ground truth", "prediction")
        .map_err(js_err)?;
    Ok(c.miou())
}
