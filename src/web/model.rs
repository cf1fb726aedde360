//! Bindings of the SAM model for the page: weights from bytes, the backend in use, an image
//! (or its cached embedding), segment-everything with progress and cancellation, and single
//! prompts for the point/box tool. The model and generator are `sam` and `amg`.
//!
//! Methods return promises: the model's methods are `async` (the WebGPU backend reads results
//! back with `map_async`), and a borrowed `self` cannot outlive a call, so the predictor sits
//! in an `Rc<RefCell<…>>`; a second call while one runs is refused ("SAM is busy").

use super::{js_err, Masks};
use crate::amg::{AmgConfig, AutomaticMaskGenerator};
use crate::masks::{MaskSet, SamMask};
use crate::predictor::{MaskPredictor, Prompt};
use crate::sam::{cpu::CpuSam, preprocess, weights::Weights, Predictor, SamBackend};
use crate::{Error, Result};
use serde::Deserialize;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

type Shared = Rc<RefCell<Predictor<CpuSam>>>;

/// MobileSAM, loaded from a checkpoint's bytes.
#[wasm_bindgen]
pub struct Sam {
    predictor: Shared,
    backend: String,
    source: String,
}

/// Segment-everything options from the page (SAM's `SamAutomaticMaskGenerator` names).
#[derive(Deserialize)]
#[serde(default)]
struct EverythingOptions {
    points_per_side: usize,
    points_per_batch: usize,
    pred_iou_thresh: f64,
    stability_score_thresh: f64,
    box_nms_thresh: f64,
    crop_n_layers: usize,
    min_mask_region_area: usize,
}

impl Default for EverythingOptions {
    fn default() -> Self {
        let d = AmgConfig::default();
        EverythingOptions {
            points_per_side: d.points_per_side.unwrap_or(32),
            points_per_batch: d.points_per_batch,
            pred_iou_thresh: d.pred_iou_thresh,
            stability_score_thresh: d.stability_score_thresh,
            box_nms_thresh: d.box_nms_thresh,
            crop_n_layers: d.crop_n_layers,
            min_mask_region_area: d.min_mask_region_area,
        }
    }
}

fn busy() -> JsValue {
    JsError::new("SAM is busy with another request").into()
}

fn to_js(e: Error) -> JsValue {
    js_err(e).into()
}

#[wasm_bindgen]
impl Sam {
    /// Load a MobileSAM checkpoint (`mobile_sam.pt` or `.safetensors` bytes). `backend` is
    /// `auto`, `webgpu` or `cpu`; this build runs the model on the CPU, so `auto` gives `cpu`
    /// and `webgpu` is an error saying so.
    pub fn load(bytes: Vec<u8>, name: &str, backend: &str) -> std::result::Result<Sam, JsError> {
        if backend == "webgpu" {
            return Err(JsError::new(
                "backend webgpu: this build has no WebGPU model yet; use auto or cpu",
            ));
        }
        if !matches!(backend, "auto" | "cpu") {
            return Err(JsError::new(&format!(
                "backend '{backend}': expected auto, webgpu or cpu"
            )));
        }
        let weights = Weights::from_bytes(&bytes, name).map_err(js_err)?;
        let cpu = CpuSam::new(&weights).map_err(js_err)?;
        let backend = cpu.name();
        Ok(Sam {
            predictor: Rc::new(RefCell::new(Predictor::new(cpu))),
            backend,
            source: name.to_string(),
        })
    }

    /// The backend in use, e.g. `cpu (1 threads)`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The checkpoint's file name.
    #[wasm_bindgen(getter)]
    pub fn source(&self) -> String {
        self.source.clone()
    }

    /// Encode an image (PNG/JPEG bytes). Resolves to nothing.
    #[wasm_bindgen(js_name = setImage)]
    pub fn set_image(&self, bytes: Vec<u8>, name: String) -> js_sys::Promise {
        let predictor = self.predictor.clone();
        future_to_promise(async move {
            let image = preprocess::decode_rgb(&bytes, &name).map_err(to_js)?;
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            p.set_image(&image).await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The current image embedding (`256 × 64 × 64` f32), for the page's IndexedDB cache.
    pub fn embedding(&self) -> js_sys::Promise {
        let predictor = self.predictor.clone();
        future_to_promise(async move {
            let p = predictor.try_borrow().map_err(|_| busy())?;
            let e = p.embedding().await.map_err(to_js)?;
            Ok(js_sys::Float32Array::from(e.as_slice()).into())
        })
    }

    /// Use a cached embedding for an image of `height × width`.
    #[wasm_bindgen(js_name = setEmbedding)]
    pub fn set_embedding(
        &self,
        embedding: Vec<f32>,
        height: usize,
        width: usize,
    ) -> js_sys::Promise {
        let predictor = self.predictor.clone();
        future_to_promise(async move {
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            p.set_embedding(&embedding, (height, width))
                .await
                .map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Segment everything in an image (PNG/JPEG bytes): resolves to the masks, ordered as
    /// SAM's generator outputs them. `progress(done, total)` is called after every batch of
    /// prompts; when `cancelled()` returns true the promise rejects with "cancelled".
    pub fn everything(
        &self,
        bytes: Vec<u8>,
        name: String,
        options: JsValue,
        progress: js_sys::Function,
        cancelled: js_sys::Function,
    ) -> js_sys::Promise {
        let predictor = self.predictor.clone();
        future_to_promise(async move {
            let o: EverythingOptions = if options.is_undefined() || options.is_null() {
                EverythingOptions::default()
            } else {
                serde_wasm_bindgen::from_value(options)
                    .map_err(|e| JsError::new(&format!("segment-everything options: {e}")))?
            };
            let config = AmgConfig {
                points_per_side: Some(o.points_per_side),
                points_per_batch: o.points_per_batch,
                pred_iou_thresh: o.pred_iou_thresh,
                stability_score_thresh: o.stability_score_thresh,
                box_nms_thresh: o.box_nms_thresh,
                crop_n_layers: o.crop_n_layers,
                min_mask_region_area: o.min_mask_region_area,
                ..AmgConfig::default()
            };
            let generator = AutomaticMaskGenerator::new(config).map_err(to_js)?;
            let image = preprocess::decode_rgb(&bytes, &name).map_err(to_js)?;
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            let mut report = |done: usize, total: usize| -> Result<()> {
                let _ = progress.call2(&JsValue::NULL, &done.into(), &total.into());
                match cancelled.call0(&JsValue::NULL) {
                    Ok(v) if v.is_truthy() => Err(Error::Cancelled),
                    _ => Ok(()),
                }
            };
            let records = generator
                .generate_with_progress(&mut *p, &image, &mut report)
                .await
                .map_err(to_js)?;
            let masks = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let bits = r.segmentation.clone();
                    Ok(SamMask {
                        index: i as u64,
                        file: format!("{name}#{i}"),
                        bits,
                        meta: None,
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map_err(to_js)?;
            Ok(Masks::from(MaskSet {
                masks,
                warnings: Vec::new(),
            })
            .into())
        })
    }

    /// One prompt on the current image, in original-image pixels: `points` `[x0, y0, x1, y1,
    /// …]` with `labels` (1 foreground, 0 background) and/or a box `[x0, y0, x1, y1]`.
    /// Resolves to the best-scoring of SAM's three masks, one byte per pixel (255 inside).
    pub fn prompt(
        &self,
        points: Vec<f64>,
        labels: Vec<i32>,
        bbox: Option<Vec<f64>>,
    ) -> js_sys::Promise {
        let predictor = self.predictor.clone();
        future_to_promise(async move {
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            if points.len() != 2 * labels.len() {
                return Err(JsError::new("prompt: expected one label per (x, y) point").into());
            }
            let prompt = Prompt {
                points: points
                    .chunks_exact(2)
                    .map(|c| p.transform_point(c[0], c[1]))
                    .collect(),
                labels,
                bbox: match bbox {
                    Some(b) if b.len() == 4 => {
                        let (x0, y0) = p.transform_point(b[0], b[1]);
                        let (x1, y1) = p.transform_point(b[2], b[3]);
                        Some([x0, y0, x1, y1])
                    }
                    Some(_) => return Err(JsError::new("prompt: a box is [x0, y0, x1, y1]").into()),
                    None => None,
                },
                mask_input: None,
            };
            let out = p.predict_low_res(&[prompt], true).await.map_err(to_js)?;
            let m = out
                .first()
                .ok_or_else(|| JsError::new("prompt: SAM returned no mask"))?;
            let best = (0..m.count)
                .max_by(|&a, &b| m.iou[a].total_cmp(&m.iou[b]))
                .unwrap_or(0);
            let plane = crate::predictor::LOW_RES * crate::predictor::LOW_RES;
            let logits = crate::postprocess::postprocess_masks(
                &m.logits[best * plane..(best + 1) * plane],
                1,
                p.input_size(),
                p.original_size(),
            )
            .map_err(to_js)?;
            let bytes: Vec<u8> = crate::postprocess::threshold(&logits)
                .into_iter()
                .map(|b| if b { 255 } else { 0 })
                .collect();
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }
}
