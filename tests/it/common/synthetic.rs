//! The synthetic SAM predictor of `../shared/README.md` (section `fixtures/amg`), a test
//! double for the automatic mask generator and the CAM-prompted refiner: its masks have real
//! structure (colour regions of the image, cut by distance to the prompt point), so the
//! generator's grids, batching, coordinate transforms, post-processing, filters, NMS, crops
//! and small-region removal are all exercised. The official generator produced the
//! `fixtures/amg` references with its model replaced by exactly this predictor.

use camsam::sam::predictor::{ImagePredictor, LowResMasks, MaskPredictor, Prompt, LOW_RES};
use camsam::{Error, Result};
use image::RgbImage;
use std::collections::HashMap;

/// Base predicted IoU of the three masks (before the point-dependent penalty).
const BASE_IOU: [f64; 3] = [0.90, 0.95, 0.86];
/// Radius (input-frame pixels) of mask 0 and mask 1; mask 2 is the whole colour region.
const RADII: [f64; 2] = [96.0, 256.0];

/// The synthetic predictor, with or without an image set.
#[derive(Debug, Clone, Default)]
pub struct SyntheticPredictor {
    image: Option<RgbImage>,
    /// 1024 / max(H, W)
    scale: f64,
    input: (usize, usize),
    /// Colour under each low-res cell centre, `None` outside the input.
    cell_colour: Vec<Option<[u8; 3]>>,
    /// Logits of mask 2 (the colour region) per colour, computed once per image.
    region_logits: HashMap<[u8; 3], Vec<f32>>,
}

impl SyntheticPredictor {
    pub fn new() -> Self {
        Self::default()
    }

    fn image(&self) -> Result<&RgbImage> {
        self.image
            .as_ref()
            .ok_or_else(|| Error::Model("synthetic predictor: no image set".into()))
    }

    /// Three low-res logit maps and IoUs for one point in the input frame.
    fn predict_point(&mut self, px: f64, py: f64) -> Result<([Vec<f32>; 3], [f32; 3])> {
        let img = self.image()?;
        let (w, h) = (img.width() as i64, img.height() as i64);
        let s = self.scale;
        let x0 = ((px / s).floor() as i64).clamp(0, w - 1);
        let y0 = ((py / s).floor() as i64).clamp(0, h - 1);
        let k = img.get_pixel(x0 as u32, y0 as u32).0;
        let n = LOW_RES;
        let same: Vec<bool> = self.cell_colour.iter().map(|&c| c == Some(k)).collect();
        // Mask 2 (the whole colour region) depends on the colour only.
        let m2 = self
            .region_logits
            .entry(k)
            .or_insert_with(|| box_mean_3x3(&same, n, (0, n - 1), (0, n - 1)))
            .clone();
        // Masks 0 and 1 are −10 everywhere but near the disc: evaluate only there.
        let disc = |radius: f64| {
            let cells = |centre: f64| {
                let lo = ((centre - radius - 2.0) / 4.0).ceil() as i64 - 1;
                let hi = ((centre + radius - 2.0) / 4.0).floor() as i64 + 1;
                (
                    lo.clamp(0, n as i64 - 1) as usize,
                    hi.clamp(0, n as i64 - 1) as usize,
                )
            };
            let (rows, cols) = (cells(py), cells(px));
            let mut inside = vec![false; n * n];
            for r in rows.0..=rows.1 {
                for c in cols.0..=cols.1 {
                    let (cx, cy) = ((4 * c + 2) as f64, (4 * r + 2) as f64);
                    let d = ((cx - px).powi(2) + (cy - py).powi(2)).sqrt();
                    inside[r * n + c] = same[r * n + c] && d <= radius;
                }
            }
            box_mean_3x3(&inside, n, rows, cols)
        };
        let logits = [disc(RADII[0]), disc(RADII[1]), m2];
        let penalty = 0.01 * ((x0 + 2 * y0) % 7) as f64;
        let iou = [0, 1, 2].map(|j| (BASE_IOU[j] - penalty) as f32);
        Ok((logits, iou))
    }
}

/// `v = +10` where `inside`, else −10; the mean of `v` over the 3×3 neighbourhood of each
/// cell, clipped to the grid. Cells outside `rows × cols` (inclusive ranges) have no inside
/// cell in their neighbourhood, so their mean is −10. Sums of ±10 are exact integers, so
/// `(20·inside − 10·count) / count` is the mean in any summation order.
fn box_mean_3x3(inside: &[bool], n: usize, rows: (usize, usize), cols: (usize, usize)) -> Vec<f32> {
    let mut out = vec![-10.0f32; n * n];
    for r in rows.0..=rows.1 {
        for c in cols.0..=cols.1 {
            let (mut count, mut hits) = (0i64, 0i64);
            for rr in r.saturating_sub(1)..=(r + 1).min(n - 1) {
                for cc in c.saturating_sub(1)..=(c + 1).min(n - 1) {
                    hits += i64::from(inside[rr * n + cc]);
                    count += 1;
                }
            }
            let sum = 20 * hits - 10 * count;
            out[r * n + c] = (sum as f64 / count as f64) as f32;
        }
    }
    out
}

impl ImagePredictor for SyntheticPredictor {
    async fn set_image(&mut self, image: &RgbImage) -> Result<()> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        if w == 0 || h == 0 {
            return Err(Error::input("synthetic predictor", "an empty image"));
        }
        let s = 1024.0 / w.max(h) as f64;
        let newh = (h as f64 * s + 0.5).floor() as usize;
        let neww = (w as f64 * s + 0.5).floor() as usize;
        let n = LOW_RES;
        let mut cell_colour = vec![None; n * n];
        for r in 0..n {
            for c in 0..n {
                let (cx, cy) = (4 * c + 2, 4 * r + 2);
                if cx < neww && cy < newh {
                    let y = ((cy as f64 / s).floor() as usize).min(h - 1);
                    let x = ((cx as f64 / s).floor() as usize).min(w - 1);
                    cell_colour[r * n + c] = Some(image.get_pixel(x as u32, y as u32).0);
                }
            }
        }
        *self = SyntheticPredictor {
            image: Some(image.clone()),
            scale: s,
            input: (newh, neww),
            cell_colour,
            region_logits: HashMap::new(),
        };
        Ok(())
    }
}

impl MaskPredictor for SyntheticPredictor {
    fn original_size(&self) -> (usize, usize) {
        self.image
            .as_ref()
            .map_or((0, 0), |i| (i.height() as usize, i.width() as usize))
    }

    fn input_size(&self) -> (usize, usize) {
        self.input
    }

    /// Each prompt must be one point; `multimask = false` returns mask 0 only (SAM's
    /// single-mask output token).
    async fn predict_low_res(
        &mut self,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        prompts
            .iter()
            .map(|p| -> Result<LowResMasks> {
                let &[(px, py)] = p.points.as_slice() else {
                    return Err(Error::Model(format!(
                        "synthetic predictor: {} points in a prompt; expected exactly one",
                        p.points.len()
                    )));
                };
                let (logits, iou) = self.predict_point(px, py)?;
                let count = if multimask { 3 } else { 1 };
                Ok(LowResMasks {
                    count,
                    logits: logits[..count].concat(),
                    iou: iou[..count].to_vec(),
                })
            })
            .collect()
    }
}
