//! Binding of the threshold sweep (`crate::refine::sweep`): the worker adds each finished image that
//! has ground truth, then reads the scores and the heatmap with its cells' rectangles.

use super::masks::Masks;
use super::pipeline::settings;
use super::{js_err, js_error, Label};
use crate::core::cam::CamToLabel;
use crate::refine::sweep::{heatmap::heatmap, parse_range, Grid, Pseudo, Sweep};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// SEPL's t1 × t2 scored over the images added.
#[wasm_bindgen]
pub struct Sweeper {
    inner: Sweep,
}

#[wasm_bindgen]
impl Sweeper {
    /// A sweep with the page's merge settings (preset, combine, classes) over `t1` × `t2`,
    /// each `A:B:STEP` (B included), `a,b,c` or one value.
    #[wasm_bindgen(constructor)]
    pub fn new(settings_js: JsValue, t1: &str, t2: &str) -> Result<Sweeper, JsValue> {
        let merge = settings(settings_js)?.merge_params();
        let grid = Grid {
            merge,
            t1: parse_range(t1, "sweep t1").map_err(js_err)?,
            t2: parse_range(t2, "sweep t2").map_err(js_err)?,
            bg: None,
            cam_to_label: CamToLabel::default(),
        };
        Ok(Sweeper {
            inner: Sweep::new(grid).map_err(js_err)?,
        })
    }

    /// Merge `masks` (without the `rejected` ones, as the page's merge) into `pseudo` at every
    /// cell and count against `gt`.
    pub fn add(
        &mut self,
        pseudo: &Label,
        masks: &Masks,
        gt: &Label,
        name: &str,
        rejected: Vec<u32>,
    ) -> Result<(), JsValue> {
        self.inner
            .add(
                &Pseudo::Label(&pseudo.inner),
                &masks.kept(&rejected),
                &gt.inner,
                name,
            )
            .map_err(js_err)
    }

    /// The scores as `sweep.json` holds them, plus `heatmap`: the PNG's size and its cells
    /// (`{t1, t2, miou, x, y, w, h}`).
    pub fn result(&self) -> Result<JsValue, JsValue> {
        let result = self.inner.result();
        let map = heatmap(&result).map_err(js_err)?;
        let json = serde_json::json!({ "sweep": result, "heatmap": map });
        json.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| js_error("bad-input", &format!("sweep result: {e}")))
    }

    /// The heatmap PNG (as `camsam sweep` writes `sweep.png`).
    #[wasm_bindgen(js_name = heatmapPng)]
    pub fn heatmap_png(&self) -> Result<Vec<u8>, JsValue> {
        Ok(heatmap(&self.inner.result()).map_err(js_err)?.png)
    }
}
