//! MobileSAM on the WebGPU engine: encoder, prompt encoder and mask decoder on one device,
//! behind the shared [`MaskPredictor`] interface. The image embedding stays on the device
//! between `set_*` and any number of `predict_low_res` calls; prompts are decoded in batches
//! (grouped by token count and mask input, chunked so no tensor passes the device's binding
//! limit), each batch one dispatch chain with one readback.
//!
//! ```no_run
//! # async fn demo(w: &camsam::gpu::weights::HostWeights, image_chw: &[f32]) -> camsam::Result<()> {
//! use camsam::predictor::{MaskPredictor, Prompt};
//! let ctx = camsam::gpu::GpuContext::new().await?;
//! let mut sam = camsam::gpu::sam::GpuSam::load(ctx, w)?;
//! sam.set_input(image_chw, (513, 513), (1024, 1024)).await?;
//! let prompt = Prompt { points: vec![(512.0, 512.0)], labels: vec![1], ..Default::default() };
//! let out = sam.predict_low_res(&[prompt], true).await?;
//! # Ok(()) }
//! ```

use super::add::add;
use super::context::GpuContext;
use super::mask_decoder::{GpuMaskDecoder, MASK_TOKENS};
use super::prompt_encoder::{sparse_points, GpuPromptEncoder, DIM};
use super::tiny_vit::{tokens_to_chw, GpuTinyVit, EMBED_DIM, EMBED_SIDE, IMG_SIZE};
use super::weights::HostWeights;
use super::GpuTensor;
use crate::predictor::{LowResMasks, MaskPredictor, Prompt, LOW_RES};
use crate::{Error, Result};

/// Bytes per prompt of the decoder's largest tensor (the upscaler's 256²×32 activations).
const BYTES_PER_PROMPT: u64 = (LOW_RES * LOW_RES * 32 * 4) as u64;
/// Upper bound on prompts per dispatch chain (memory, not limits).
const MAX_BATCH: usize = 32;

/// MobileSAM with all three parts on the device.
pub struct GpuSam {
    ctx: GpuContext,
    encoder: GpuTinyVit,
    prompt: GpuPromptEncoder,
    decoder: GpuMaskDecoder,
    embedding: Option<GpuTensor>,
    original_size: (usize, usize),
    input_size: (usize, usize),
}

impl GpuSam {
    /// Uploads every weight (BatchNorm folded) to `ctx`'s device.
    pub fn load(ctx: GpuContext, w: &HostWeights) -> Result<Self> {
        let encoder = GpuTinyVit::load(&ctx, w)?;
        let prompt = GpuPromptEncoder::load(&ctx, w)?;
        let decoder = GpuMaskDecoder::load(&ctx, w)?;
        Ok(Self {
            ctx,
            encoder,
            prompt,
            decoder,
            embedding: None,
            original_size: (0, 0),
            input_size: (0, 0),
        })
    }

    /// The device.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Prompts decoded per dispatch chain on this device.
    pub fn batch_size(&self) -> usize {
        ((self.ctx.max_binding_bytes() / BYTES_PER_PROMPT) as usize).clamp(1, MAX_BATCH)
    }

    fn check_sizes(original: (usize, usize), input: (usize, usize)) -> Result<()> {
        if original.0 == 0 || original.1 == 0 || input.0 > IMG_SIZE || input.1 > IMG_SIZE {
            return Err(Error::input(
                "image",
                format!("original size {original:?}, input size {input:?}; expected non-empty and input ≤ 1024"),
            ));
        }
        Ok(())
    }

    /// Runs the encoder on the normalised, padded `[3, 1024, 1024]` input of an image of
    /// `original_size` resized to `input_size` (both `(h, w)`); keeps the embedding on the device.
    pub async fn set_input(
        &mut self,
        image_chw: &[f32],
        original_size: (usize, usize),
        input_size: (usize, usize),
    ) -> Result<()> {
        Self::check_sizes(original_size, input_size)?;
        self.embedding = None;
        let image = GpuTensor::upload(&self.ctx, &[3, IMG_SIZE, IMG_SIZE], image_chw)?;
        let mut rec = self.ctx.recorder();
        let tokens = self.encoder.forward(&mut rec, &image)?;
        rec.submit();
        drop(image);
        // Surface device errors now rather than at the first prediction.
        self.ctx.check_error()?;
        self.embedding = Some(tokens);
        self.original_size = original_size;
        self.input_size = input_size;
        Ok(())
    }

    /// Uses a precomputed embedding (`(256, 64, 64)` channel-major, as `embedding.npy`).
    pub fn set_embedding(
        &mut self,
        embedding_chw: &[f32],
        original_size: (usize, usize),
        input_size: (usize, usize),
    ) -> Result<()> {
        Self::check_sizes(original_size, input_size)?;
        let hw = EMBED_SIDE * EMBED_SIDE;
        if embedding_chw.len() != EMBED_DIM * hw {
            return Err(Error::input(
                "embedding",
                format!("{} values; expected 256×64×64", embedding_chw.len()),
            ));
        }
        let mut hwc = vec![0f32; embedding_chw.len()];
        for c in 0..EMBED_DIM {
            for p in 0..hw {
                hwc[p * EMBED_DIM + c] = embedding_chw[c * hw + p];
            }
        }
        self.embedding = Some(GpuTensor::upload(&self.ctx, &[hw, EMBED_DIM], &hwc)?);
        self.original_size = original_size;
        self.input_size = input_size;
        Ok(())
    }

    /// Reads the current embedding back as `(256, 64, 64)` channel-major.
    pub async fn embedding(&self) -> Result<Vec<f32>> {
        let e = self.current()?;
        let hwc = e.read(&self.ctx).await?;
        Ok(tokens_to_chw(&hwc, EMBED_SIDE * EMBED_SIDE, EMBED_DIM))
    }

    fn current(&self) -> Result<&GpuTensor> {
        self.embedding.as_ref().ok_or_else(|| {
            Error::Model("no image set: call set_input or set_embedding first".into())
        })
    }

    /// Decodes one uniform batch (same token count, all with or all without mask input);
    /// returns all four masks and IoUs per prompt.
    async fn decode_batch(&self, prompts: &[&Prompt]) -> Result<(Vec<f32>, Vec<f32>)> {
        let emb = self.current()?;
        let b = prompts.len();
        let mut rec = self.ctx.recorder();
        let tokens = self
            .prompt
            .tokens(&mut rec, prompts, &self.decoder.fixed_tokens)?;
        let shape = [b, EMBED_SIDE * EMBED_SIDE, DIM];
        let src = if prompts[0].mask_input.is_some() {
            let mut m = Vec::with_capacity(b * LOW_RES * LOW_RES);
            for p in prompts {
                match &p.mask_input {
                    Some(v) if v.len() == LOW_RES * LOW_RES => m.extend_from_slice(v),
                    _ => {
                        return Err(Error::input(
                            "mask input",
                            "expected 256×256 low-resolution logits",
                        ))
                    }
                }
            }
            let masks = GpuTensor::upload(&self.ctx, &[b, LOW_RES, LOW_RES], &m)?;
            let dense = self.prompt.embed_masks(&mut rec, &masks, b)?;
            add(&mut rec, emb, &dense, &shape)?
        } else {
            add(&mut rec, emb, &self.prompt.no_mask, &shape)?
        };
        let out = self
            .decoder
            .forward(&mut rec, &tokens, src, self.prompt.dense_pe())?;
        rec.submit();
        let masks = out.masks.read(&self.ctx).await?;
        let iou = out.iou.read(&self.ctx).await?;
        Ok((masks, iou))
    }
}

impl MaskPredictor for GpuSam {
    fn original_size(&self) -> (usize, usize) {
        self.original_size
    }

    fn input_size(&self) -> (usize, usize) {
        self.input_size
    }

    async fn predict_low_res(
        &mut self,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        self.current()?;
        // Group prompts that can share a batch: same sparse-token count, same mask use.
        let mut groups: Vec<((usize, bool), Vec<usize>)> = Vec::new();
        for (i, p) in prompts.iter().enumerate() {
            let key = (sparse_points(p)?.1.len(), p.mask_input.is_some());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let plane = LOW_RES * LOW_RES;
        let (first, count) = if multimask { (1, 3) } else { (0, 1) };
        let mut results: Vec<Option<LowResMasks>> = vec![None; prompts.len()];
        let batch = self.batch_size();
        for (_, idx) in groups {
            for chunk in idx.chunks(batch) {
                let refs: Vec<&Prompt> = chunk.iter().map(|&i| &prompts[i]).collect();
                let (masks, iou) = self.decode_batch(&refs).await?;
                for (j, &i) in chunk.iter().enumerate() {
                    let base = j * MASK_TOKENS;
                    results[i] = Some(LowResMasks {
                        count,
                        logits: masks[(base + first) * plane..(base + first + count) * plane]
                            .to_vec(),
                        iou: iou[base + first..base + first + count].to_vec(),
                    });
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| Error::Model("a prompt was not decoded".into())))
            .collect()
    }
}
