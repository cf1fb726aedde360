//! MobileSAM on the CPU: the network in plain Rust over `gemm` (candle's CPU matrix kernel; on
//! wasm32 a SIMD128 kernel of its own, `simd128`),
//! one module per official sub-module — [`tiny_vit`] (image encoder), [`prompt_encoder`],
//! [`transformer`] and [`mask_decoder`] — loaded by official state-dict names through [`Vb`].
//! Builds for wasm32 (single-threaded there) as the browser's fallback and is the reference
//! the WebGPU engine is held to.
//!
//! ```no_run
//! # fn main() -> camsam::Result<()> {
//! use camsam::sam::{cpu::CpuSam, preprocess, weights::Weights, SamBackend};
//! let sam = CpuSam::new(&Weights::load("mobile_sam.pt".as_ref())?)?;
//! let input = preprocess::prepare(&preprocess::read_rgb("image.png".as_ref())?);
//! let embedding = pollster::block_on(sam.embed(&input))?;
//! # Ok(()) }
//! ```

pub mod helpers;
pub mod kernels;
pub mod mask_decoder;
pub mod prompt_encoder;
#[cfg(target_arch = "wasm32")]
pub mod simd128;
pub mod tiny_vit;
pub mod transformer;

use super::preprocess::ModelInput;
use super::weights::Weights;
use super::{SamBackend, EMBED_DIM, EMBED_LEN, EMBED_SIDE, IMAGE_SIZE};
use crate::sam::predictor::{LowResMasks, Prompt, LOW_RES};
use crate::{Error, Result};
use kernels::Linear;
use mask_decoder::MaskDecoder;
use prompt_encoder::PromptEncoder;
use tiny_vit::TinyViT;
use transformer::ImageSide;

/// A prefix into the weights, mirroring candle's `VarBuilder::pp` over official names.
#[derive(Clone)]
pub struct Vb<'a> {
    weights: &'a Weights,
    prefix: String,
}

impl<'a> Vb<'a> {
    pub fn root(weights: &'a Weights) -> Self {
        Vb {
            weights,
            prefix: String::new(),
        }
    }

    /// Descends into `name` (`vb.pp("layers.0")`).
    pub fn pp(&self, name: &str) -> Self {
        Vb {
            weights: self.weights,
            prefix: self.path(name),
        }
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The tensor `name` under this prefix, as a flat `f32` vector.
    pub fn get(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.weights.get(&self.path(name))?.data.clone())
    }

    /// A `Linear` (`name.weight`, `name.bias`) of the given size.
    pub fn linear(&self, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let weight = self.get(&format!("{name}.weight"))?;
        let bias = self.get(&format!("{name}.bias"))?;
        if weight.len() != d_in * d_out || bias.len() != d_out {
            return Err(Error::Model(format!(
                "{}: expected a {d_in}→{d_out} linear layer",
                self.path(name)
            )));
        }
        Ok(Linear {
            weight,
            bias: Some(bias),
            d_in,
            d_out,
        })
    }
}

/// The CPU backend.
pub struct CpuSam {
    encoder: TinyViT,
    prompt_encoder: PromptEncoder,
    decoder: MaskDecoder,
    /// Dense positional encoding of the embedding grid, `4096 × 256`.
    dense_pe: Vec<f32>,
}

/// An image embedding on the host, with the decoder's prompt-independent image-side work.
pub struct CpuEmbedding {
    /// `256 × 64 × 64` (CHW), as the official encoder outputs it.
    pub embedding: Vec<f32>,
    /// Image side for prompts without mask input (`embedding + no_mask_embed`).
    no_mask: ImageSide,
    /// Unique per embedding made in this instance (helpers hold one by id).
    id: u64,
}

impl CpuSam {
    pub fn new(weights: &Weights) -> Result<Self> {
        let vb = Vb::root(weights);
        let prompt_encoder = PromptEncoder::load(&vb)?;
        let dense_pe = prompt_encoder.dense_pe();
        Ok(CpuSam {
            encoder: TinyViT::load(&vb)?,
            prompt_encoder,
            decoder: MaskDecoder::load(&vb)?,
            dense_pe,
        })
    }

    /// A decoder-only backend state from a host embedding (no encoder run).
    fn wrap(&self, embedding: Vec<f32>) -> CpuEmbedding {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.wrap_with_id(
            embedding,
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn wrap_with_id(&self, embedding: Vec<f32>, id: u64) -> CpuEmbedding {
        // Tokens (4096 × 256) of embedding + no_mask_embed.
        let mut src = kernels::transpose(&embedding, EMBED_DIM, EMBED_SIDE * EMBED_SIDE);
        let nm = self.prompt_encoder.no_mask_embed().to_vec();
        kernels::for_rows(&mut src, EMBED_DIM, |_, row| {
            row.iter_mut().zip(&nm).for_each(|(v, e)| *v += e)
        });
        let no_mask = self.decoder.transformer().image_side(src, &self.dense_pe);
        CpuEmbedding {
            embedding,
            no_mask,
            id,
        }
    }

    /// Runs the image encoder: `3 × 1024 × 1024` → `256 × 64 × 64`.
    pub fn encode(&self, pixels: &[f32]) -> Result<Vec<f32>> {
        if pixels.len() != 3 * IMAGE_SIZE * IMAGE_SIZE {
            return Err(Error::Model(format!(
                "the model input has {} values, expected 3×1024×1024",
                pixels.len()
            )));
        }
        Ok(self.encoder.forward(pixels))
    }

    fn decode_group(
        &self,
        emb: &CpuEmbedding,
        prompts: &[&Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        let t_sparse = PromptEncoder::sparse_len(prompts[0]);
        let sparse: Vec<f32> = prompts
            .iter()
            .flat_map(|p| self.prompt_encoder.sparse(p))
            .collect();
        let with_mask = prompts[0].mask_input.is_some();
        let owned;
        let image = if with_mask {
            let n_img = EMBED_SIDE * EMBED_SIDE;
            let base = kernels::transpose(&emb.embedding, EMBED_DIM, n_img);
            let mut src = Vec::with_capacity(prompts.len() * n_img * EMBED_DIM);
            for p in prompts {
                let mask = p.mask_input.as_deref().unwrap_or_default();
                if mask.len() != LOW_RES * LOW_RES {
                    return Err(Error::Model(format!(
                        "a mask input has {} values, expected 256×256",
                        mask.len()
                    )));
                }
                let dense = self.prompt_encoder.embed_mask(mask);
                src.extend(base.iter().zip(&dense).map(|(a, b)| a + b));
            }
            owned = self.decoder.transformer().image_side(src, &self.dense_pe);
            &owned
        } else {
            &emb.no_mask
        };
        let out = crate::profile::time("decoder", 0.0, || {
            self.decoder.forward(
                image,
                &self.dense_pe,
                &sparse,
                t_sparse,
                prompts.len(),
                multimask,
            )
        });
        Ok(out
            .into_iter()
            .map(|d| LowResMasks {
                count: d.iou.len(),
                logits: d.logits,
                iou: d.iou,
            })
            .collect())
    }
}

/// Prompts decoded together: same number of sparse tokens, same kind of dense input.
const MAX_BATCH: usize = 16;

impl SamBackend for CpuSam {
    type Embedding = CpuEmbedding;

    fn name(&self) -> String {
        #[cfg(not(target_arch = "wasm32"))]
        let threads = rayon::current_num_threads();
        #[cfg(target_arch = "wasm32")]
        let threads = helpers::threads();
        format!("cpu ({threads} threads)")
    }

    async fn embed(&self, input: &ModelInput) -> Result<CpuEmbedding> {
        let embedding = self.encode(&input.pixels)?;
        Ok(self.wrap(embedding))
    }

    async fn upload_embedding(&self, embedding: &[f32]) -> Result<CpuEmbedding> {
        if embedding.len() != EMBED_LEN {
            return Err(Error::Model(format!(
                "an image embedding has {} values, expected 256×64×64",
                embedding.len()
            )));
        }
        Ok(self.wrap(embedding.to_vec()))
    }

    async fn download_embedding(&self, embedding: &CpuEmbedding) -> Result<Vec<f32>> {
        Ok(embedding.embedding.clone())
    }

    async fn decode(
        &self,
        embedding: &CpuEmbedding,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        for p in prompts {
            if p.labels.len() != p.points.len() {
                return Err(Error::Model(format!(
                    "a prompt has {} points but {} labels",
                    p.points.len(),
                    p.labels.len()
                )));
            }
        }
        // Group by (sparse tokens, mask input or not), keeping each group's order.
        let mut groups: Vec<((usize, bool), Vec<usize>)> = Vec::new();
        for (i, p) in prompts.iter().enumerate() {
            let key = (PromptEncoder::sparse_len(p), p.mask_input.is_some());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let chunks: Vec<Vec<usize>> = groups
            .iter()
            .flat_map(|(_, idx)| idx.chunks(MAX_BATCH).map(<[usize]>::to_vec))
            .collect();
        let decoded = match helpers::decode_groups(self, embedding, prompts, &chunks, multimask) {
            Some(r) => r?,
            None => chunks
                .iter()
                .map(|chunk| {
                    let ps: Vec<&Prompt> = chunk.iter().map(|&i| &prompts[i]).collect();
                    self.decode_group(embedding, &ps, multimask)
                })
                .collect::<Result<_>>()?,
        };
        let mut out: Vec<Option<LowResMasks>> = vec![None; prompts.len()];
        for (chunk, masks) in chunks.iter().zip(decoded) {
            for (&i, r) in chunk.iter().zip(masks) {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| Error::Model("a prompt was not decoded".to_string())))
            .collect()
    }
}
