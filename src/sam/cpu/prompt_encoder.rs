//! SAM's prompt encoder (`segment_anything/modeling/prompt_encoder.py`, Kirillov et al.,
//! "Segment Anything", §3): random-Fourier positional encoding of points and box corners plus
//! learned type embeddings (sparse tokens), and the mask input downscaled to a dense
//! embedding (`mask_downscaling`), else `no_mask_embed` everywhere.
//!
//! ```no_run
//! # fn main() -> camsam::Result<()> {
//! use camsam::sam::cpu::{prompt_encoder::PromptEncoder, Vb};
//! let weights = camsam::sam::weights::Weights::load("mobile_sam.pt".as_ref())?;
//! let pe = PromptEncoder::load(&Vb::root(&weights))?;
//! let prompt = camsam::sam::predictor::Prompt { points: vec![(512.0, 300.0)], labels: vec![1], ..Default::default() };
//! let tokens = pe.sparse(&prompt); // (1 point + 1 padding point) × 256
//! assert_eq!(tokens.len(), 2 * 256);
//! # Ok(()) }
//! ```

use super::kernels::{self, gelu};
use super::Vb;
use crate::sam::predictor::{Prompt, LOW_RES};
use crate::sam::{EMBED_DIM, EMBED_SIDE, IMAGE_SIZE};
use crate::Result;

const MASK_LN_EPS: f32 = 1e-6;

pub struct PromptEncoder {
    /// `2 × 128` Gaussian matrix of the random Fourier features.
    gaussian: Vec<f32>,
    /// Point embeddings: negative, positive, box top-left, box bottom-right.
    point_embeddings: Vec<Vec<f32>>,
    not_a_point: Vec<f32>,
    no_mask: Vec<f32>,
    mask_conv0: (Vec<f32>, Vec<f32>),
    mask_ln1: (Vec<f32>, Vec<f32>),
    mask_conv3: (Vec<f32>, Vec<f32>),
    mask_ln4: (Vec<f32>, Vec<f32>),
    mask_conv6: kernels::Linear,
}

impl PromptEncoder {
    /// Loads `prompt_encoder.*` (pass the root [`Vb`]).
    pub fn load(root: &Vb) -> Result<Self> {
        let vb = root.pp("prompt_encoder");
        let pair =
            |a: &str, b: &str| -> Result<(Vec<f32>, Vec<f32>)> { Ok((vb.get(a)?, vb.get(b)?)) };
        Ok(PromptEncoder {
            gaussian: vb.get("pe_layer.positional_encoding_gaussian_matrix")?,
            point_embeddings: (0..4)
                .map(|i| vb.get(&format!("point_embeddings.{i}.weight")))
                .collect::<Result<_>>()?,
            not_a_point: vb.get("not_a_point_embed.weight")?,
            no_mask: vb.get("no_mask_embed.weight")?,
            mask_conv0: pair("mask_downscaling.0.weight", "mask_downscaling.0.bias")?,
            mask_ln1: pair("mask_downscaling.1.weight", "mask_downscaling.1.bias")?,
            mask_conv3: pair("mask_downscaling.3.weight", "mask_downscaling.3.bias")?,
            mask_ln4: pair("mask_downscaling.4.weight", "mask_downscaling.4.bias")?,
            mask_conv6: vb.linear("mask_downscaling.6", 16, EMBED_DIM)?,
        })
    }

    /// `PositionEmbeddingRandom._pe_encoding` of a point normalised to `[0, 1]²`.
    fn pe(&self, x: f32, y: f32, out: &mut [f32]) {
        let half = EMBED_DIM / 2;
        let (cx, cy) = (2.0 * x - 1.0, 2.0 * y - 1.0);
        let two_pi = 2.0 * std::f32::consts::PI;
        for j in 0..half {
            let v = (cx * self.gaussian[j] + cy * self.gaussian[half + j]) * two_pi;
            out[j] = v.sin();
            out[half + j] = v.cos();
        }
    }

    /// The positional encoding of every embedding cell (`get_dense_pe`), `4096 × 256` tokens.
    pub fn dense_pe(&self) -> Vec<f32> {
        let mut out = vec![0f32; EMBED_SIDE * EMBED_SIDE * EMBED_DIM];
        for (i, tok) in out.chunks_mut(EMBED_DIM).enumerate() {
            let (y, x) = (i / EMBED_SIDE, i % EMBED_SIDE);
            let fx = (x as f32 + 0.5) / EMBED_SIDE as f32;
            let fy = (y as f32 + 0.5) / EMBED_SIDE as f32;
            self.pe(fx, fy, tok);
        }
        out
    }

    /// Number of sparse tokens a prompt produces.
    pub fn sparse_len(prompt: &Prompt) -> usize {
        let pad = prompt.bbox.is_none() && !prompt.points.is_empty();
        prompt.points.len() + usize::from(pad) + if prompt.bbox.is_some() { 2 } else { 0 }
    }

    /// Sparse prompt embeddings (`tokens × 256`): points (padded with a "not a point" when
    /// there is no box), then the two box corners. Coordinates are in the input frame.
    pub fn sparse(&self, prompt: &Prompt) -> Vec<f32> {
        let d = EMBED_DIM;
        let n = Self::sparse_len(prompt);
        let mut out = vec![0f32; n * d];
        let norm = |v: f64| ((v as f32) + 0.5) / IMAGE_SIZE as f32;
        let mut t = 0;
        if !prompt.points.is_empty() {
            let pad = prompt.bbox.is_none();
            let mut pts: Vec<((f32, f32), i32)> = prompt
                .points
                .iter()
                .zip(prompt.labels.iter().chain(std::iter::repeat(&1)))
                .map(|(&(x, y), &l)| ((norm(x), norm(y)), l))
                .collect();
            if pad {
                pts.push(((0.5 / IMAGE_SIZE as f32, 0.5 / IMAGE_SIZE as f32), -1));
            }
            for ((x, y), label) in pts {
                let tok = &mut out[t * d..(t + 1) * d];
                self.pe(x, y, tok);
                let add = match label {
                    -1 => {
                        tok.fill(0.0);
                        Some(&self.not_a_point)
                    }
                    0 => Some(&self.point_embeddings[0]),
                    1 => Some(&self.point_embeddings[1]),
                    _ => None,
                };
                if let Some(e) = add {
                    tok.iter_mut().zip(e).for_each(|(v, e)| *v += e);
                }
                t += 1;
            }
        }
        if let Some([x0, y0, x1, y1]) = prompt.bbox {
            for (k, (x, y)) in [(x0, y0), (x1, y1)].into_iter().enumerate() {
                let tok = &mut out[t * d..(t + 1) * d];
                self.pe(norm(x), norm(y), tok);
                tok.iter_mut()
                    .zip(&self.point_embeddings[2 + k])
                    .for_each(|(v, e)| *v += e);
                t += 1;
            }
        }
        out
    }

    /// `no_mask_embed`, the dense embedding of every cell when there is no mask input.
    pub fn no_mask_embed(&self) -> &[f32] {
        &self.no_mask
    }

    /// The dense embedding of a 256×256 low-res mask input: `4096 × 256` tokens.
    pub fn embed_mask(&self, mask: &[f32]) -> Vec<f32> {
        let s1 = LOW_RES / 2;
        let h1 = conv2x2(mask, LOW_RES, 1, &self.mask_conv0.0, &self.mask_conv0.1);
        let mut h1 = h1;
        ln_gelu(&mut h1, 4, &self.mask_ln1);
        let mut h2 = conv2x2(&h1, s1, 4, &self.mask_conv3.0, &self.mask_conv3.1);
        ln_gelu(&mut h2, 16, &self.mask_ln4);
        self.mask_conv6.forward(&h2)
    }
}

/// LayerNorm2d (over channels, channels-last) then GELU.
fn ln_gelu(x: &mut [f32], c: usize, (w, b): &(Vec<f32>, Vec<f32>)) {
    kernels::layer_norm(x, c, w, b, MASK_LN_EPS);
    x.iter_mut().for_each(|v| *v = gelu(*v));
}

/// A 2×2 stride-2 convolution over a channels-last `side × side × cin` input; torch weight
/// `cout × cin × 2 × 2`. Returns `(side/2)² × cout`.
fn conv2x2(x: &[f32], side: usize, cin: usize, w: &[f32], b: &[f32]) -> Vec<f32> {
    let cout = b.len();
    let os = side / 2;
    let mut out = vec![0f32; os * os * cout];
    for oy in 0..os {
        for ox in 0..os {
            let o = &mut out[(oy * os + ox) * cout..(oy * os + ox + 1) * cout];
            for (co, ov) in o.iter_mut().enumerate() {
                let mut s = b[co];
                for ci in 0..cin {
                    for dy in 0..2 {
                        for dx in 0..2 {
                            let xv = x[((2 * oy + dy) * side + 2 * ox + dx) * cin + ci];
                            s += xv * w[((co * cin + ci) * 2 + dy) * 2 + dx];
                        }
                    }
                }
                *ov = s;
            }
        }
    }
    out
}
