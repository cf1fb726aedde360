//! The SAM mask-predictor interface shared by the automatic mask generator (`amg`), the
//! CAM-prompted refiner (`cpm`) and every model implementation (CPU via candle, WebGPU via
//! wgpu, and the synthetic test predictor of `../shared/README.md`).
//!
//! It works at the level of SAM's *low-resolution* output: prompts are given in the model's
//! input frame (coordinates after `ResizeLongestSide(1024)`), and the predictor returns
//! 256×256 mask logits and predicted IoUs. Up-sampling to the original image size is
//! shared code (`postprocess`), so every implementation is post-processed identically.
//!
//! The methods are `async` because the WebGPU implementation reads results back with
//! `map_async`; native callers drive them with `pollster::block_on`.

use crate::Result;

/// Side of SAM's low-resolution mask logits.
pub const LOW_RES: usize = 256;

/// One prompt, in the input frame (pixels of the resized, unpadded image).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    /// Point coordinates `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// One label per point: 1 foreground, 0 background.
    pub labels: Vec<i32>,
    /// Box `(x0, y0, x1, y1)`.
    pub bbox: Option<[f64; 4]>,
    /// Low-resolution mask logits (256×256) from an earlier prediction.
    pub mask_input: Option<Vec<f32>>,
}

/// The benchmarks' decoder batch: `n` one-point foreground prompts on an 8×8 grid over the
/// input frame `(height, width)` (`camsam bench sam` and the page's bench view decode the same).
pub fn bench_prompts((h, w): (usize, usize), n: usize) -> Vec<Prompt> {
    (0..n)
        .map(|i| Prompt {
            points: vec![(
                (i % 8) as f64 * w as f64 / 8.0 + 10.0,
                (i / 8 % 8) as f64 * h as f64 / 8.0 + 10.0,
            )],
            labels: vec![1],
            ..Default::default()
        })
        .collect()
}

/// The predictor's answer for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct LowResMasks {
    /// Number of masks (1, or 3 with multimask output).
    pub count: usize,
    /// `count × 256 × 256` logits, row-major.
    pub logits: Vec<f32>,
    /// Predicted IoU of each mask.
    pub iou: Vec<f32>,
}

/// A SAM-like mask predictor with an image already set.
#[allow(async_fn_in_trait)]
pub trait MaskPredictor {
    /// `(height, width)` of the image as given to `set_image` (or of the crop).
    fn original_size(&self) -> (usize, usize);
    /// `(height, width)` of the resized, unpadded input (longest side 1024).
    fn input_size(&self) -> (usize, usize);
    /// Predict masks for a batch of prompts; the image-side work is done once per image.
    async fn predict_low_res(
        &mut self,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>>;
}

/// A [`MaskPredictor`] that can be given a new image: the automatic mask generator sets the
/// whole image and then each crop in turn (the official generator calls `set_image` per crop).
#[allow(async_fn_in_trait)]
pub trait ImagePredictor: MaskPredictor {
    /// Run the image-side work (for SAM: resize, normalise, encode) for `image`.
    async fn set_image(&mut self, image: &image::RgbImage) -> Result<()>;
}
