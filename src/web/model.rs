//! Bindings of the SAM model for the page: weights from bytes, the backend in use, an image
//! (or its cached embedding), segment-everything with progress and cancellation, and single
//! prompts for the point/box tool. The model and generator are `sam` and `amg`.
//!
//! Backend choice is `backend::open`'s, as in the CLI (`auto`: WebGPU, else the CPU model,
//! saying why in [`Sam::fallback`]; `webgpu` fails instead; `cpu` never touches the GPU), with
//! the browser's rule written there. A lost device (the browser resets the GPU,
//! the driver crashes) is recorded by wgpu's device-lost callback and shown in [`Sam::lost`];
//! the worker then reloads the model with `cpu` and restarts the job.
//!
//! Methods return promises: the model's methods are `async` (the WebGPU backend reads results
//! back with `map_async`), and a borrowed `self` cannot outlive a call, so the engine sits in
//! an `Rc<RefCell<…>>`; a second call while one runs is refused ("SAM is busy"). That borrow
//! is held across the model's awaits on purpose: it is the busy lock (single-threaded wasm;
//! `try_borrow` never waits), hence the `await_holding_refcell_ref` allowance.
#![allow(clippy::await_holding_refcell_ref)]

use super::{js_err, js_error, Masks};
use crate::core::masks::{MaskSet, SamMask};
use crate::gpu::GpuOptions;
use crate::refine::amg::{AmgConfig, AutomaticMaskGenerator};
use crate::sam::backend::{self, AnySam, Backend};
use crate::sam::predictor::{ImagePredictor, LowResMasks, MaskPredictor, Prompt};
use crate::sam::{preprocess, weights::Weights, Predictor, SamBackend};
use crate::{Error, Result};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// The model the page runs: MobileSAM on the backend [`backend::open`] chose.
pub(crate) type Engine = Predictor<AnySam>;

/// The engine for one image whose embedding may be cached: `set_image` of that image (the
/// whole image, as the generator and CPM call it) is skipped once the embedding is set.
pub(super) struct Embedded<'a> {
    engine: &'a mut Engine,
    whole: Option<(usize, usize)>,
}

impl<'a> Embedded<'a> {
    /// `image`'s cached `embedding` set on `engine`; without one the encoder runs as usual.
    pub(super) async fn new(
        engine: &'a mut Engine,
        image: &image::RgbImage,
        embedding: Option<&[f32]>,
    ) -> Result<Embedded<'a>> {
        let whole = match embedding {
            Some(e) => {
                let size = (image.height() as usize, image.width() as usize);
                engine.set_embedding(e, size).await?;
                Some(size)
            }
            None => None,
        };
        Ok(Embedded { engine, whole })
    }

    /// No cached embedding.
    pub(super) fn new_unset(engine: &'a mut Engine) -> Embedded<'a> {
        Embedded {
            engine,
            whole: None,
        }
    }
}

impl MaskPredictor for Embedded<'_> {
    fn original_size(&self) -> (usize, usize) {
        self.engine.original_size()
    }

    fn input_size(&self) -> (usize, usize) {
        self.engine.input_size()
    }

    async fn predict_low_res(
        &mut self,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        self.engine.predict_low_res(prompts, multimask).await
    }
}

impl ImagePredictor for Embedded<'_> {
    async fn set_image(&mut self, image: &image::RgbImage) -> Result<()> {
        let size = (image.height() as usize, image.width() as usize);
        if self.whole == Some(size) {
            self.whole = None;
            return Ok(());
        }
        self.engine.set_image(image).await
    }
}

type Shared = Rc<RefCell<Engine>>;

/// Why a device stopped, set by wgpu's device-lost callback.
type LostSlot = Arc<Mutex<Option<String>>>;

/// MobileSAM, loaded from a checkpoint's bytes.
#[wasm_bindgen]
pub struct Sam {
    engine: Shared,
    backend: String,
    source: String,
    adapter: String,
    fallback: String,
    lost: LostSlot,
    device: Option<wgpu::Device>,
}

pub(super) fn busy() -> JsValue {
    js_error("busy", "SAM is busy with another request")
}

/// A job's per-batch report from the page's callbacks: `progress(done, total)` after each
/// batch, then `cancelled()`, which stops the job with [`Error::Cancelled`] when it returns
/// true. An exception in either callback stops the job with an error saying so.
pub(super) fn job_report(
    progress: Option<js_sys::Function>,
    cancelled: Option<js_sys::Function>,
) -> impl FnMut(usize, usize) -> Result<()> {
    let thrown = |what: &str, e: JsValue| {
        Error::input(
            format!("the page's {what} callback"),
            format!("threw {}", js_sys::Error::from(e).message()),
        )
    };
    move |done, total| {
        if let Some(f) = &progress {
            f.call2(&JsValue::NULL, &done.into(), &total.into())
                .map_err(|e| thrown("progress", e))?;
        }
        match cancelled.as_ref().map(|f| f.call0(&JsValue::NULL)) {
            Some(Ok(v)) if v.is_truthy() => Err(Error::Cancelled),
            Some(Err(e)) => Err(thrown("cancel", e)),
            _ => Ok(()),
        }
    }
}

#[wasm_bindgen]
impl Sam {
    /// Load a MobileSAM checkpoint (`mobile_sam.pt` or `.safetensors` bytes) on `backend`:
    /// `auto` (WebGPU, else the CPU), `webgpu` (WebGPU or an error saying why) or `cpu`.
    /// Resolves to the model.
    pub async fn load(
        bytes: Vec<u8>,
        name: String,
        backend: String,
    ) -> std::result::Result<Sam, JsValue> {
        let choice: Backend = backend
            .parse()
            .map_err(|e: String| js_error("bad-input", &e))?;
        let weights = Weights::from_bytes(&bytes, &name).map_err(js_err)?;
        drop(bytes);
        let lost = LostSlot::default();
        let (model, fallback) = backend::open(&weights, choice, GpuOptions::default())
            .await
            .map_err(|e| match (choice, e) {
                (Backend::Webgpu, e @ Error::Gpu(_)) => {
                    js_error("gpu", &format!("{name}: backend webgpu: {e}"))
                }
                (_, e) => js_err(e),
            })?;
        let (adapter, device) = match &model {
            AnySam::Webgpu(gpu) => {
                let device = gpu.context().device.clone();
                let sink = lost.clone();
                device.set_device_lost_callback(move |reason, message| {
                    if let Ok(mut slot) = sink.lock() {
                        slot.get_or_insert_with(|| format!("{reason:?}: {message}"));
                    }
                });
                (gpu.context().adapter_name(), Some(device))
            }
            AnySam::Cpu(_) => (String::new(), None),
        };
        let engine = Predictor::new(model);
        Ok(Sam {
            backend: engine.backend().name(),
            engine: Rc::new(RefCell::new(engine)),
            source: name,
            adapter,
            fallback: fallback.unwrap_or_default(),
            lost,
            device,
        })
    }

    /// The backend in use, e.g. `cpu (1 threads)` or `webgpu (SwiftShader Device … (Vulkan))`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The backend's name again (after the helpers change).
    pub(super) fn refresh_backend_name(&mut self) {
        if let Ok(engine) = self.engine.try_borrow() {
            self.backend = engine.backend().name();
        }
    }

    /// `webgpu` or `cpu`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        if self.device.is_some() {
            "webgpu"
        } else {
            "cpu"
        }
        .into()
    }

    /// The WebGPU adapter's name and backend (empty on the CPU).
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// Why `auto` fell back to the CPU (empty when it did not).
    #[wasm_bindgen(getter)]
    pub fn fallback(&self) -> String {
        self.fallback.clone()
    }

    /// Why the WebGPU device was lost, once it has been (`undefined` while it works).
    #[wasm_bindgen(getter)]
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Destroys the WebGPU device now (no-op on the CPU): frees its memory at once, and is
    /// how the tests lose the device in the middle of a job.
    #[wasm_bindgen(js_name = destroyDevice)]
    pub fn destroy_device(&self) {
        if let Some(d) = &self.device {
            d.destroy();
        }
    }

    /// The shared engine, for bindings in sibling modules.
    pub(super) fn engine(&self) -> Shared {
        self.engine.clone()
    }

    /// The checkpoint's file name.
    #[wasm_bindgen(getter)]
    pub fn source(&self) -> String {
        self.source.clone()
    }

    /// Encode an image (PNG/JPEG bytes). Resolves to nothing.
    #[wasm_bindgen(js_name = setImage)]
    pub fn set_image(&self, bytes: Vec<u8>, name: String) -> js_sys::Promise {
        let predictor = self.engine.clone();
        future_to_promise(async move {
            let image = preprocess::decode_rgb(&bytes, &name).map_err(js_err)?;
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            p.set_image(&image).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The current image embedding (`256 × 64 × 64` f32), for the page's IndexedDB cache.
    pub fn embedding(&self) -> js_sys::Promise {
        let predictor = self.engine.clone();
        future_to_promise(async move {
            let p = predictor.try_borrow().map_err(|_| busy())?;
            let e = p.embedding().await.map_err(js_err)?;
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
        let predictor = self.engine.clone();
        future_to_promise(async move {
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            p.set_embedding(&embedding, (height, width))
                .await
                .map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Segment everything in an image (PNG/JPEG bytes): resolves to the masks, ordered as
    /// SAM's generator outputs them. `progress(done, total)` is called after every batch of
    /// prompts; when `cancelled()` returns true the promise rejects with "cancelled".
    /// `embedding` (optional, `256 × 64 × 64` f32) is this image's embedding from the page's
    /// cache: the encoder then runs only for crops.
    pub fn everything(
        &self,
        bytes: Vec<u8>,
        name: String,
        options: JsValue,
        progress: js_sys::Function,
        cancelled: js_sys::Function,
        embedding: Option<Vec<f32>>,
    ) -> js_sys::Promise {
        let predictor = self.engine.clone();
        future_to_promise(async move {
            // The generator's settings (`AmgConfig`, official names; missing ones default).
            let config: AmgConfig = if options.is_undefined() || options.is_null() {
                AmgConfig::default()
            } else {
                serde_wasm_bindgen::from_value(options).map_err(|e| {
                    js_error("bad-input", &format!("segment-everything options: {e}"))
                })?
            };
            let generator = AutomaticMaskGenerator::new(config).map_err(js_err)?;
            let image = preprocess::decode_rgb(&bytes, &name).map_err(js_err)?;
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            let mut report = job_report(Some(progress), Some(cancelled));
            let mut embedded = Embedded::new(&mut p, &image, embedding.as_deref())
                .await
                .map_err(js_err)?;
            let records = generator
                .generate_with_progress(&mut embedded, &image, &mut report)
                .await
                .map_err(js_err)?;
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
                .map_err(js_err)?;
            Ok(Masks::from(MaskSet {
                masks,
                warnings: Vec::new(),
            })
            .into())
        })
    }

    /// Decodes the benchmarks' batch of `n` point prompts (`predictor::bench_prompts`, the
    /// batch `camsam bench sam` times) on the current image, 3 masks each, and drops the
    /// result: the bench view times it.
    #[wasm_bindgen(js_name = benchDecode)]
    pub fn bench_decode(&self, n: usize) -> js_sys::Promise {
        let predictor = self.engine.clone();
        future_to_promise(async move {
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            let prompts = crate::sam::predictor::bench_prompts(p.input_size(), n);
            p.predict_low_res(&prompts, true).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
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
        let predictor = self.engine.clone();
        future_to_promise(async move {
            let mut p = predictor.try_borrow_mut().map_err(|_| busy())?;
            if points.len() != 2 * labels.len() {
                return Err(js_error(
                    "bad-input",
                    "prompt: expected one label per (x, y) point",
                ));
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
                    Some(_) => {
                        return Err(js_error("bad-input", "prompt: a box is [x0, y0, x1, y1]"))
                    }
                    None => None,
                },
                mask_input: None,
            };
            let out = p.predict_low_res(&[prompt], true).await.map_err(js_err)?;
            let m = out
                .first()
                .ok_or_else(|| js_error("bad-input", "prompt: SAM returned no mask"))?;
            let best = (0..m.count)
                .max_by(|&a, &b| m.iou[a].total_cmp(&m.iou[b]))
                .unwrap_or(0);
            let plane = crate::sam::predictor::LOW_RES * crate::sam::predictor::LOW_RES;
            let logits = crate::sam::postprocess::postprocess_masks(
                &m.logits[best * plane..(best + 1) * plane],
                1,
                p.input_size(),
                p.original_size(),
            )
            .map_err(js_err)?;
            let bytes: Vec<u8> = crate::sam::postprocess::threshold(&logits)
                .into_iter()
                .map(|b| if b { 255 } else { 0 })
                .collect();
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }
}
