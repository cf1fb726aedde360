//! Bindings of the refiners beside SEPL for the page's method selector: PAMR and the dense CRF
//! (no model) and S2C's CAM-prompted SAM (`cpm`, on the loaded model). Conversions only; the
//! logic is in `pamr::pamr_label`, `crf::crf_label` and `cpm::cpm_cam`, the same calls
//! `camsam refine --mode` makes, with their default settings (PAMR: 10 iterations, dilations
//! 1, 2, 4, 8, 12, 24; CRF: `CrfSettings::default()`; CPM: peaks above 0.5 at least 20 px
//! apart, one multi-point prompt per class, SAM's mask 2).
//! The model's `RefCell` borrow is its busy lock, held across awaits as in `model`.
#![allow(clippy::await_holding_refcell_ref)]

use super::model::Sam;
use super::{js_err, settings, Cams, Label};
use crate::cam::CamToLabel;
use crate::cpm::{cpm_cam, CpmSettings};
use crate::pamr::{pamr_label, PamrSettings};
use crate::sam::preprocess;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// PAMR on one image (PNG/JPEG bytes, `image_name` in errors) and its CAM, then the CAM →
/// label step with the page's background threshold.
#[wasm_bindgen(js_name = pamrLabel)]
pub fn pamr_label_js(
    image: Vec<u8>,
    image_name: &str,
    cams: &Cams,
    settings_js: JsValue,
) -> Result<Label, JsValue> {
    let s = settings(settings_js)?;
    let rgb = preprocess::decode_rgb(&image, image_name).map_err(js_err)?;
    let to_label = CamToLabel {
        bg_threshold: s.bg_threshold,
        ..Default::default()
    };
    pamr_label(
        &rgb,
        &cams.inner,
        None,
        &PamrSettings::default(),
        &to_label,
        &cams.name,
    )
    .map(|l| Label { inner: l.label })
    .map_err(js_err)
}

/// The dense CRF (PSA / IRN / EPS recipe, default settings) on one image (PNG/JPEG bytes,
/// `image_name` in errors) and its CAM.
#[wasm_bindgen(js_name = crfLabel)]
pub fn crf_label_js(image: Vec<u8>, image_name: &str, cams: &Cams) -> Result<Label, JsValue> {
    let rgb = preprocess::decode_rgb(&image, image_name).map_err(js_err)?;
    crate::crf::crf_label(
        &rgb,
        &cams.inner,
        None,
        &crate::crf::CrfSettings::default(),
        &cams.name,
    )
    .map(|inner| Label { inner })
    .map_err(js_err)
}

#[wasm_bindgen]
impl Sam {
    /// CPM on one image (PNG/JPEG bytes) and its CAM: resolves to the label. `embedding`
    /// (optional) is the image's cached embedding; without it the encoder runs.
    pub fn cpm(
        &self,
        image: Vec<u8>,
        image_name: String,
        cams: &Cams,
        embedding: Option<Vec<f32>>,
    ) -> js_sys::Promise {
        let engine = self.engine();
        let cam = cams.inner.clone();
        let cam_name = cams.name.clone();
        future_to_promise(async move {
            let rgb = preprocess::decode_rgb(&image, &image_name).map_err(js_err)?;
            let mut p = engine.try_borrow_mut().map_err(|_| super::model::busy())?;
            match embedding {
                Some(e) => {
                    let size = (rgb.height() as usize, rgb.width() as usize);
                    p.set_embedding(&e, size).await.map_err(js_err)?;
                }
                None => {
                    use crate::predictor::ImagePredictor;
                    p.set_image(&rgb).await.map_err(js_err)?;
                }
            }
            let out = cpm_cam(&mut *p, &cam, None, &CpmSettings::default(), &cam_name)
                .await
                .map_err(js_err)?;
            Ok(Label { inner: out.label }.into())
        })
    }
}
