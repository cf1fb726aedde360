//! SAM's mask decoder (`segment_anything/modeling/mask_decoder.py`, "Segment Anything" §3):
//! output tokens (IoU token + 4 mask tokens) are concatenated with the sparse prompt tokens,
//! run through the two-way transformer with the image embedding (+ dense prompt embedding),
//! the image tokens are upscaled 4× by two transposed convolutions, and each mask token's
//! hypernetwork MLP gives the weights of a dot product with the upscaled features; the IoU
//! token's MLP predicts each mask's IoU.
//!
//! The upscaling runs per prompt inside a parallel loop, with the transposed convolutions as
//! matrix products whose columns are ordered (sub-pixel, channel), so no prompt's full-size
//! intermediates outlive its own task.
//!
//! ```no_run
//! # fn main() -> camsam::Result<()> {
//! use camsam::sam::cpu::{mask_decoder::MaskDecoder, Vb};
//! let weights = camsam::sam::weights::Weights::load("mobile_sam.pt".as_ref())?;
//! let decoder = MaskDecoder::load(&Vb::root(&weights))?;
//! # Ok(()) }
//! ```

use super::kernels::{self, Act, Linear, MatRef};
use super::transformer::{self, ImageSide, TwoWayTransformer};
use super::Vb;
use crate::sam::predictor::LOW_RES;
use crate::sam::{EMBED_DIM, EMBED_SIDE};
use crate::{profile, Result};

const NUM_MASK_TOKENS: usize = 4;
const UP1: usize = EMBED_DIM / 4; // 64
const UP2: usize = EMBED_DIM / 8; // 32
const LN2D_EPS: f32 = 1e-6;

/// A 3-layer MLP with ReLU between layers.
struct Mlp(Vec<Linear>);

impl Mlp {
    fn load(vb: &Vb, out: usize) -> Result<Self> {
        Ok(Mlp(vec![
            vb.linear("layers.0", EMBED_DIM, EMBED_DIM)?,
            vb.linear("layers.1", EMBED_DIM, EMBED_DIM)?,
            vb.linear("layers.2", EMBED_DIM, out)?,
        ]))
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        for (i, l) in self.0.iter().enumerate() {
            let act = if i + 1 < self.0.len() {
                Act::Relu
            } else {
                Act::None
            };
            h = l.forward_act(&h, act);
        }
        h
    }
}

/// A 2×2 stride-2 transposed convolution as a product with columns `(dy, dx, cout)`.
struct ConvT2x2 {
    /// `cin × (4·cout)`.
    weight: Vec<f32>,
    /// `4·cout`: the bias repeated per sub-pixel.
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
}

impl ConvT2x2 {
    fn load(vb: &Vb, name: &str, cin: usize, cout: usize) -> Result<Self> {
        let w = vb.get(&format!("{name}.weight"))?; // cin × cout × 2 × 2
        let b = vb.get(&format!("{name}.bias"))?;
        let mut weight = vec![0f32; cin * 4 * cout];
        for ci in 0..cin {
            for co in 0..cout {
                for s in 0..4 {
                    weight[ci * 4 * cout + s * cout + co] = w[(ci * cout + co) * 4 + s];
                }
            }
        }
        let bias = (0..4).flat_map(|_| b.iter().copied()).collect();
        Ok(ConvT2x2 {
            weight,
            bias,
            cin,
            cout,
        })
    }

    /// `x`: `rows × cin` → `y`: `rows × (4·cout)`, without the bias and without threading
    /// (it runs inside a prompt's task).
    fn forward_into(&self, x: &[f32], y: &mut Vec<f32>) {
        let rows = x.len() / self.cin;
        let n = 4 * self.cout;
        y.resize(rows * n, 0.0);
        kernels::matmul(
            y,
            n,
            false,
            MatRef::rows(x, rows, self.cin),
            MatRef::rows(&self.weight, self.cin, n),
        );
    }
}

pub struct MaskDecoder {
    transformer: TwoWayTransformer,
    /// `iou_token` then the 4 `mask_tokens`: `5 × 256`.
    output_tokens: Vec<f32>,
    upscale1: ConvT2x2,
    upscale_ln: (Vec<f32>, Vec<f32>),
    upscale2: ConvT2x2,
    hypernetworks: Vec<Mlp>,
    iou_head: Mlp,
}

/// One decoded prompt: `masks × 256 × 256` logits and IoU predictions.
pub struct Decoded {
    pub logits: Vec<f32>,
    pub iou: Vec<f32>,
}

impl MaskDecoder {
    /// Loads `mask_decoder.*` (pass the root [`Vb`]).
    pub fn load(root: &Vb) -> Result<Self> {
        let vb = root.pp("mask_decoder");
        let mut output_tokens = vb.get("iou_token.weight")?;
        output_tokens.extend(vb.get("mask_tokens.weight")?);
        Ok(MaskDecoder {
            transformer: TwoWayTransformer::load(&vb.pp("transformer"))?,
            output_tokens,
            upscale1: ConvT2x2::load(&vb, "output_upscaling.0", EMBED_DIM, UP1)?,
            upscale_ln: (
                vb.get("output_upscaling.1.weight")?,
                vb.get("output_upscaling.1.bias")?,
            ),
            upscale2: ConvT2x2::load(&vb, "output_upscaling.3", UP1, UP2)?,
            hypernetworks: (0..NUM_MASK_TOKENS)
                .map(|i| Mlp::load(&vb.pp(&format!("output_hypernetworks_mlps.{i}")), UP2))
                .collect::<Result<_>>()?,
            iou_head: Mlp::load(&vb.pp("iou_prediction_head"), NUM_MASK_TOKENS)?,
        })
    }

    pub fn transformer(&self) -> &TwoWayTransformer {
        &self.transformer
    }

    /// Decodes `batch` prompts with `t_sparse` sparse tokens each (`sparse`:
    /// `batch × t_sparse × 256`) against `image` (see [`TwoWayTransformer::image_side`]).
    pub fn forward(
        &self,
        image: &ImageSide,
        pe: &[f32],
        sparse: &[f32],
        t_sparse: usize,
        batch: usize,
        multimask: bool,
    ) -> Vec<Decoded> {
        let d = EMBED_DIM;
        let t = 1 + NUM_MASK_TOKENS + t_sparse;
        let mut tokens = Vec::with_capacity(batch * t * d);
        for b in 0..batch {
            tokens.extend_from_slice(&self.output_tokens);
            tokens.extend_from_slice(&sparse[b * t_sparse * d..(b + 1) * t_sparse * d]);
        }
        let (hs, src) = profile::time("decoder › transformer", 0.0, || {
            self.transformer.forward(&tokens, t, image, pe)
        });

        // Which masks to output: 1..4 with multimask, else 0.
        let picked: Vec<usize> = if multimask {
            (1..NUM_MASK_TOKENS).collect()
        } else {
            vec![0]
        };
        let m = picked.len();
        let (iou_all, hyper) = profile::time("decoder › hypernetworks + IoU head", 0.0, || {
            let iou_in: Vec<f32> = (0..batch)
                .flat_map(|b| hs[b * t * d..b * t * d + d].iter().copied())
                .collect();
            let iou_all = self.iou_head.forward(&iou_in);
            // Hypernetwork weights: batch × m × 32.
            let mut hyper = vec![0f32; batch * m * UP2];
            for (j, &mi) in picked.iter().enumerate() {
                let tok: Vec<f32> = (0..batch)
                    .flat_map(|b| {
                        let s = (b * t + 1 + mi) * d;
                        hs[s..s + d].iter().copied()
                    })
                    .collect();
                let h = self.hypernetworks[mi].forward(&tok);
                for b in 0..batch {
                    hyper[(b * m + j) * UP2..(b * m + j + 1) * UP2]
                        .copy_from_slice(&h[b * UP2..(b + 1) * UP2]);
                }
            }
            (iou_all, hyper)
        });
        let plane = LOW_RES * LOW_RES;
        let n_img = EMBED_SIDE * EMBED_SIDE;
        let mut logits = vec![0f32; batch * m * plane];
        kernels::for_rows(&mut logits, m * plane, |b, out| {
            let x = &src[b * n_img * d..(b + 1) * n_img * d];
            let hb = &hyper[b * m * UP2..(b + 1) * m * UP2];
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                for tile in 0..n_img / TILE {
                    self.upscale_tile(&x[tile * TILE * d..(tile + 1) * TILE * d], hb, &mut s);
                    profile::time("decoder › mask product + scatter", 0.0, || {
                        scatter(&s.px, m, tile * TILE, out)
                    });
                }
            });
        });
        transformer::recycle_keys(src);
        (0..batch)
            .map(|b| Decoded {
                logits: logits[b * m * plane..(b + 1) * m * plane].to_vec(),
                iou: picked
                    .iter()
                    .map(|&mi| iou_all[b * NUM_MASK_TOKENS + mi])
                    .collect(),
            })
            .collect()
    }
}

/// Coarse cells (of the 64×64 grid) upscaled together: 4 rows of the grid, so a tile's
/// intermediates (≈ 0.8 MB) stay in cache.
const TILE: usize = 4 * EMBED_SIDE;

/// One thread's buffers for [`MaskDecoder::upscale_tile`], reused across tiles and prompts.
#[derive(Default)]
struct Scratch {
    y1: Vec<f32>,
    y2: Vec<f32>,
    px: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl MaskDecoder {
    /// The upscaler and mask product for [`TILE`] coarse cells `x` (`TILE × 256`) of one prompt
    /// with its hypernetwork weights `hyper` (`m × 32`): leaves `s.px`, `(TILE·16) × m` mask
    /// logits in row order `(cell, dy, dx, dy2, dx2)`.
    fn upscale_tile(&self, x: &[f32], hyper: &[f32], s: &mut Scratch) {
        let m = hyper.len() / UP2;
        // ConvT 1: TILE × 256 → TILE × (4·64), i.e. (TILE·4) rows of 64, rows (cell, dy, dx).
        profile::time(
            "decoder › upscale conv 1",
            flops(TILE, EMBED_DIM, 4 * UP1),
            || self.upscale1.forward_into(x, &mut s.y1),
        );
        profile::time("decoder › bias + LayerNorm2d + GELU", 0.0, || {
            let (w, b) = &self.upscale_ln;
            for (row, bias) in
                s.y1.chunks_exact_mut(UP1)
                    .zip(self.upscale1.bias.chunks_exact(UP1).cycle())
            {
                kernels::bias_act_slice(row, bias, Act::None);
                kernels::layer_norm_row(row, w, b, LN2D_EPS, Act::Gelu);
            }
        });
        // ConvT 2: (TILE·4) × 64 → (TILE·4) × (4·32), columns (dy2, dx2, c).
        profile::time(
            "decoder › upscale conv 2",
            flops(4 * TILE, UP1, 4 * UP2),
            || self.upscale2.forward_into(&s.y1, &mut s.y2),
        );
        profile::time("decoder › bias + GELU", 0.0, || {
            kernels::bias_act_slice(&mut s.y2, &self.upscale2.bias, Act::Gelu)
        });
        // Per fine pixel: dot with each picked mask's hypernetwork weights.
        let fine = 16 * TILE;
        s.px.resize(fine * m, 0.0);
        profile::time(
            "decoder › mask product + scatter",
            flops(fine, UP2, m),
            || {
                kernels::matmul(
                    &mut s.px,
                    m,
                    false,
                    MatRef::rows(&s.y2, fine, UP2),
                    MatRef::transposed(hyper, m, UP2),
                )
            },
        );
    }
}

/// Multiply-adds of an `rows × k` by `k × n` product, as FLOPs.
fn flops(rows: usize, k: usize, n: usize) -> f64 {
    2.0 * (rows * k * n) as f64
}

/// Writes a tile's mask logits `px` (rows `(cell, dy, dx, dy2, dx2)`, `m` columns; cells from
/// `first`) into the `m × 256 × 256` planes of `out`.
fn scatter(px: &[f32], m: usize, first: usize, out: &mut [f32]) {
    let plane = LOW_RES * LOW_RES;
    for (r, vals) in px.chunks_exact(m).enumerate() {
        let s2 = r % 4;
        let s1 = (r / 4) % 4;
        let cell = first + r / 16;
        let (cy, cx) = (cell / EMBED_SIDE, cell % EMBED_SIDE);
        let yy = 4 * cy + 2 * (s1 / 2) + s2 / 2;
        let xx = 4 * cx + 2 * (s1 % 2) + s2 % 2;
        for (j, v) in vals.iter().enumerate() {
            out[j * plane + yy * LOW_RES + xx] = *v;
        }
    }
}
