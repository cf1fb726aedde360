//! MobileSAM (Zhang et al., "Faster Segment Anything", arXiv 2306.14289; official code
//! `ChaoningZhang/MobileSAM`, `mobile_sam/predictor.py`) behind one model interface.
//!
//! A [`SamBackend`] runs the two halves of the network: `embed` (the TinyViT image encoder,
//! once per image) and `decode` (prompt encoder + two-way-transformer mask decoder, for a batch
//! of prompts, with the image-side work shared across the batch). It is implemented on the CPU
//! with candle ([`cpu::CpuSam`]) and on WebGPU by the `gpu` module. [`Predictor`] wraps any
//! backend into SAM's `SamPredictor` (`set_image`, then prompts) and implements
//! [`crate::sam::predictor::MaskPredictor`], so the automatic mask generator and the CAM-prompted
//! refiner run on either backend.
//!
//! ```no_run
//! # fn main() -> camsam::Result<()> {
//! use camsam::sam::predictor::{MaskPredictor, Prompt};
//! use camsam::sam::{cpu::CpuSam, weights::Weights, Predictor};
//! let weights = Weights::load("mobile_sam.pt".as_ref())?;
//! let mut predictor = Predictor::new(CpuSam::new(&weights)?);
//! let image = camsam::sam::preprocess::read_rgb("image.png".as_ref())?;
//! pollster::block_on(predictor.set_image(&image))?;
//! let prompt = Prompt { points: vec![predictor.transform_point(100.0, 80.0)], labels: vec![1], ..Default::default() };
//! let out = pollster::block_on(predictor.predict_low_res(&[prompt], true))?;
//! println!("IoU predictions {:?}", out[0].iou);
//! # Ok(()) }
//! ```

#[cfg(feature = "webgpu")]
pub mod backend;
pub mod cpu;
#[cfg(feature = "webgpu")]
pub mod gpu;
mod pickle_check;
pub mod postprocess;
pub mod predictor;
pub mod preprocess;
pub mod weights;

use crate::sam::predictor::{ImagePredictor, LowResMasks, MaskPredictor, Prompt};
use crate::{Error, Result};
use preprocess::{ModelInput, RgbImage};

/// Side of the square model input (`ResizeLongestSide(1024)` + padding).
pub const IMAGE_SIZE: usize = 1024;
/// Channels of the image embedding.
pub const EMBED_DIM: usize = 256;
/// Side of the image embedding grid (1024 / 16).
pub const EMBED_SIDE: usize = 64;
/// Number of `f32` in one image embedding (`256 × 64 × 64`).
pub const EMBED_LEN: usize = EMBED_DIM * EMBED_SIDE * EMBED_SIDE;

/// One implementation of the MobileSAM network (CPU or WebGPU).
///
/// `Embedding` is the backend's own handle on an image embedding (a host tensor, or GPU
/// buffers that stay on the device); a backend may also keep in it any image-side work of the
/// decoder that does not depend on the prompts.
#[allow(async_fn_in_trait)]
pub trait SamBackend {
    type Embedding;

    /// A short human-readable name ("cpu (candle, 2 threads)", "webgpu (adapter name)").
    fn name(&self) -> String;

    /// Runs the image encoder on a pre-processed input (`3 × 1024 × 1024`, normalised, padded).
    async fn embed(&self, input: &ModelInput) -> Result<Self::Embedding>;

    /// Wraps a host embedding (`256 × 64 × 64`, e.g. read from an `.npy` file).
    async fn upload_embedding(&self, embedding: &[f32]) -> Result<Self::Embedding>;

    /// Reads an embedding back to the host (`256 × 64 × 64`, row-major).
    async fn download_embedding(&self, embedding: &Self::Embedding) -> Result<Vec<f32>>;

    /// Decodes a batch of prompts (input-frame coordinates, see [`Prompt`]) against one image:
    /// 256×256 low-res logits and predicted IoUs for each prompt — 3 masks with `multimask`,
    /// else 1 — in the order of `prompts`.
    async fn decode(
        &self,
        embedding: &Self::Embedding,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>>;
}

struct ImageState<E> {
    embedding: E,
    original_size: (usize, usize),
    input_size: (usize, usize),
}

/// SAM's `SamPredictor` over any backend: set an image once, then predict for many prompts.
pub struct Predictor<B: SamBackend> {
    backend: B,
    image: Option<ImageState<B::Embedding>>,
}

impl<B: SamBackend> Predictor<B> {
    pub fn new(backend: B) -> Self {
        Predictor {
            backend,
            image: None,
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Pre-processes `image` exactly as the official predictor does and runs the encoder.
    pub async fn set_image(&mut self, image: &RgbImage) -> Result<()> {
        let input = preprocess::prepare(image);
        self.set_input(&input).await
    }

    /// Runs the encoder on an already pre-processed input.
    pub async fn set_input(&mut self, input: &ModelInput) -> Result<()> {
        self.image = None;
        let embedding = self.backend.embed(input).await?;
        self.image = Some(ImageState {
            embedding,
            original_size: input.original_size,
            input_size: input.input_size,
        });
        Ok(())
    }

    /// Uses a precomputed embedding for an image of `original_size` `(h, w)`.
    pub async fn set_embedding(
        &mut self,
        embedding: &[f32],
        original_size: (usize, usize),
    ) -> Result<()> {
        if embedding.len() != EMBED_LEN {
            return Err(Error::Model(format!(
                "an image embedding has {} values, expected 256×64×64 = {EMBED_LEN}",
                embedding.len()
            )));
        }
        self.image = None;
        let embedding = self.backend.upload_embedding(embedding).await?;
        self.image = Some(ImageState {
            embedding,
            original_size,
            input_size: preprocess::input_size(original_size),
        });
        Ok(())
    }

    fn state(&self) -> Result<&ImageState<B::Embedding>> {
        self.image
            .as_ref()
            .ok_or_else(|| Error::Model("no image set: call set_image first".to_string()))
    }

    /// The current image embedding on the host (`256 × 64 × 64`).
    pub async fn embedding(&self) -> Result<Vec<f32>> {
        let state = self.state()?;
        self.backend.download_embedding(&state.embedding).await
    }

    /// Maps a point from original-image pixels to the input frame (SAM's `apply_coords`).
    pub fn transform_point(&self, x: f64, y: f64) -> (f64, f64) {
        let (original, input) = match &self.image {
            Some(s) => (s.original_size, s.input_size),
            None => ((1, 1), (1, 1)),
        };
        preprocess::apply_coords((x, y), original, input)
    }
}

/// The answer of [`Predictor::predict`] (SAM's `SamPredictor.predict`).
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Binary masks at the original image size (`logit > 0`), `count × h × w`, row-major.
    pub masks: Vec<Vec<bool>>,
    /// Predicted IoU of each mask.
    pub iou: Vec<f32>,
    /// The 256×256 low-resolution logits (input for a later `mask_input`).
    pub low_res: LowResMasks,
}

impl<B: SamBackend> Predictor<B> {
    /// SAM's `SamPredictor.predict` for one prompt given in **original-image** pixels
    /// (points and box are mapped to the input frame with `apply_coords`; a mask input is
    /// 256×256 low-res logits): masks at the original size, IoU predictions, low-res logits.
    pub async fn predict(&mut self, prompt: &Prompt, multimask: bool) -> Result<Prediction> {
        let state = self.state()?;
        let (original, input) = (state.original_size, state.input_size);
        let map = |(x, y)| preprocess::apply_coords((x, y), original, input);
        let mut p = prompt.clone();
        p.points = p.points.into_iter().map(map).collect();
        p.bbox = p.bbox.map(|[x0, y0, x1, y1]| {
            let (a, b) = map((x0, y0));
            let (c, d) = map((x1, y1));
            [a, b, c, d]
        });
        let low_res = self
            .predict_low_res(std::slice::from_ref(&p), multimask)
            .await?
            .pop()
            .ok_or_else(|| Error::Model("the decoder returned no masks".to_string()))?;
        let mut post = crate::sam::postprocess::Postprocessor::new(input, original)?;
        let plane = crate::sam::predictor::LOW_RES * crate::sam::predictor::LOW_RES;
        let masks = low_res
            .logits
            .chunks_exact(plane)
            .map(|m| {
                post.apply(m)
                    .map(|l| crate::sam::postprocess::threshold(&l))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Prediction {
            masks,
            iou: low_res.iou.clone(),
            low_res,
        })
    }
}

impl<B: SamBackend> MaskPredictor for Predictor<B> {
    fn original_size(&self) -> (usize, usize) {
        self.image.as_ref().map_or((0, 0), |s| s.original_size)
    }

    fn input_size(&self) -> (usize, usize) {
        self.image.as_ref().map_or((0, 0), |s| s.input_size)
    }

    async fn predict_low_res(
        &mut self,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        let state = self.state()?;
        self.backend
            .decode(&state.embedding, prompts, multimask)
            .await
    }
}

impl<B: SamBackend> ImagePredictor for Predictor<B> {
    async fn set_image(&mut self, image: &RgbImage) -> Result<()> {
        Predictor::set_image(self, image).await
    }
}

/// A shared reference to a backend is a backend (several predictors can share one model).
impl<B: SamBackend> SamBackend for &B {
    type Embedding = B::Embedding;

    fn name(&self) -> String {
        (**self).name()
    }

    async fn embed(&self, input: &ModelInput) -> Result<Self::Embedding> {
        (**self).embed(input).await
    }

    async fn upload_embedding(&self, embedding: &[f32]) -> Result<Self::Embedding> {
        (**self).upload_embedding(embedding).await
    }

    async fn download_embedding(&self, embedding: &Self::Embedding) -> Result<Vec<f32>> {
        (**self).download_embedding(embedding).await
    }

    async fn decode(
        &self,
        embedding: &Self::Embedding,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        (**self).decode(embedding, prompts, multimask).await
    }
}
