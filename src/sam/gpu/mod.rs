//! MobileSAM on the WebGPU engine: encoder, prompt encoder and mask decoder on one device,
//! implementing the shared [`SamBackend`] (wrap it in `sam::Predictor` for SAM's
//! `SamPredictor` and the `MaskPredictor` interface). The embedding stays on the device as
//! `[4096, 256]` tokens; prompts are decoded in batches (grouped by token count and mask
//! input, chunked so no tensor passes the device's binding limit), each batch one dispatch
//! chain with one readback.
//!
//! ```no_run
//! # async fn demo(w: &camsam::sam::weights::Weights, image: &camsam::sam::preprocess::RgbImage) -> camsam::Result<()> {
//! use camsam::sam::predictor::{MaskPredictor, Prompt};
//! let mut predictor = camsam::sam::Predictor::new(camsam::sam::gpu::GpuSam::open(w).await?);
//! predictor.set_image(image).await?;
//! let prompt = Prompt { points: vec![(512.0, 512.0)], labels: vec![1], ..Default::default() };
//! let out = predictor.predict_low_res(&[prompt], true).await?;
//! # Ok(()) }
//! ```

pub(crate) mod layers;
pub mod mask_decoder;
pub mod prompt_encoder;
pub mod tiny_vit;
pub mod two_way_transformer;
pub mod weights;

use self::mask_decoder::{GpuMaskDecoder, FIXED_TOKENS, MASK_TOKENS};
use self::prompt_encoder::{sparse_points, GpuPromptEncoder, DIM};
use self::tiny_vit::{chw_to_tokens, tokens_to_chw, GpuTinyVit, EMBED_DIM, EMBED_SIDE};
use crate::gpu::add::add;
use crate::gpu::context::GpuContext;
use crate::gpu::tensor::Readback;
use crate::gpu::GpuTensor;
use crate::sam::predictor::{LowResMasks, Prompt, LOW_RES};
use crate::sam::preprocess::ModelInput;
use crate::sam::weights::Weights;
use crate::sam::SamBackend;
use crate::{Error, Result};

/// Bytes per prompt of the decoder's largest tensor (the upscaler's 256²×32 activations).
const BYTES_PER_PROMPT: u64 = (LOW_RES * LOW_RES * 32 * 4) as u64;
/// Upper bound on prompts per dispatch chain (memory, not limits).
const MAX_BATCH: usize = 32;

/// MobileSAM with all three parts on the device: the WebGPU [`SamBackend`].
pub struct GpuSam {
    ctx: GpuContext,
    encoder: GpuTinyVit,
    prompt: GpuPromptEncoder,
    decoder: GpuMaskDecoder,
}

impl GpuSam {
    /// Uploads every weight (BatchNorm folded) to `ctx`'s device.
    pub fn new(ctx: GpuContext, w: &Weights) -> Result<Self> {
        let encoder = GpuTinyVit::load(&ctx, w)?;
        let prompt = GpuPromptEncoder::load(&ctx, w)?;
        let decoder = GpuMaskDecoder::load(&ctx, w)?;
        Ok(Self {
            ctx,
            encoder,
            prompt,
            decoder,
        })
    }

    /// Opens the default adapter and uploads the weights; fails with [`Error::Gpu`] when there
    /// is no usable WebGPU device (callers fall back to the CPU backend).
    pub async fn open(w: &Weights) -> Result<Self> {
        Self::new(GpuContext::new().await?, w)
    }

    /// The device.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Prompts decoded per dispatch chain on this device.
    pub fn batch_size(&self) -> usize {
        ((self.ctx.max_binding_bytes() / BYTES_PER_PROMPT) as usize).clamp(1, MAX_BATCH)
    }

    /// Prompts per dispatch chain for prompts of `sparse` sparse tokens: the reordered
    /// token↔image attentions' score matrices (`4096 × 8·tokens` per prompt) must stay under
    /// the binding limit too.
    fn batch_size_for(&self, sparse: usize) -> usize {
        let scores = (EMBED_SIDE * EMBED_SIDE * 8 * (FIXED_TOKENS + sparse) * 4) as u64;
        let fit = (self.ctx.max_binding_bytes() / scores) as usize;
        self.batch_size().min(fit).max(1)
    }

    /// Records and submits one uniform batch (same token count, all with or all without mask
    /// input) and starts reading back all four masks and IoUs per prompt.
    fn start_batch(&self, emb: &GpuTensor, prompts: &[&Prompt]) -> Result<(Readback, Readback)> {
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
        Ok((
            out.masks.start_read(&self.ctx),
            out.iou.start_read(&self.ctx),
        ))
    }
}

impl SamBackend for GpuSam {
    /// `[4096, 256]` image tokens, kept on the device.
    type Embedding = GpuTensor;

    fn name(&self) -> String {
        format!("webgpu ({})", self.ctx.adapter_name())
    }

    async fn embed(&self, input: &ModelInput) -> Result<GpuTensor> {
        let image = GpuTinyVit::upload_image(&self.ctx, &input.pixels)?;
        let mut rec = self.ctx.recorder();
        let tokens = self.encoder.forward(&mut rec, &image)?;
        rec.submit();
        // Surface device errors now rather than at the first prediction.
        self.ctx.check_error()?;
        Ok(tokens)
    }

    async fn upload_embedding(&self, embedding_chw: &[f32]) -> Result<GpuTensor> {
        let hw = EMBED_SIDE * EMBED_SIDE;
        if embedding_chw.len() != EMBED_DIM * hw {
            return Err(Error::input(
                "embedding",
                format!("{} values; expected 256×64×64", embedding_chw.len()),
            ));
        }
        let hwc = chw_to_tokens(embedding_chw, hw, EMBED_DIM);
        GpuTensor::upload(&self.ctx, &[hw, EMBED_DIM], &hwc)
    }

    async fn download_embedding(&self, embedding: &GpuTensor) -> Result<Vec<f32>> {
        let hwc = embedding.read(&self.ctx).await?;
        Ok(tokens_to_chw(&hwc, EMBED_SIDE * EMBED_SIDE, EMBED_DIM))
    }

    async fn decode(
        &self,
        embedding: &GpuTensor,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
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
        // One batch runs on the device while the one before is read back and unpacked.
        let chunks: Vec<&[usize]> = groups
            .iter()
            .flat_map(|((sparse, _), idx)| idx.chunks(self.batch_size_for(*sparse)))
            .collect();
        let mut in_flight: Option<(&[usize], (Readback, Readback))> = None;
        for next in chunks.iter().map(Some).chain([None]) {
            let started = match next {
                Some(chunk) => {
                    let refs: Vec<&Prompt> = chunk.iter().map(|&i| &prompts[i]).collect();
                    Some((*chunk, self.start_batch(embedding, &refs)?))
                }
                None => None,
            };
            let Some((chunk, (masks, iou))) = std::mem::replace(&mut in_flight, started) else {
                continue;
            };
            let iou = iou.finish(&self.ctx).await?;
            // Each prompt's planes are copied once, straight out of the mapped readback.
            let decoded = masks
                .finish_with(&self.ctx, |masks| {
                    (0..chunk.len())
                        .map(|j| {
                            let base = j * MASK_TOKENS;
                            let planes = (base + first) * plane..(base + first + count) * plane;
                            Some(LowResMasks {
                                count,
                                logits: masks.get(planes)?.to_vec(),
                                iou: iou.get(base + first..base + first + count)?.to_vec(),
                            })
                        })
                        .collect::<Vec<_>>()
                })
                .await?;
            for (&i, r) in chunk.iter().zip(decoded) {
                results[i] = Some(r.ok_or_else(|| {
                    Error::Model("the decoder's readback is shorter than its batch".into())
                })?);
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| Error::Model("a prompt was not decoded".into())))
            .collect()
    }
}
