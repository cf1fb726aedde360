//! TinyViT-5M, MobileSAM's image encoder (`mobile_sam/modeling/tiny_vit_sam.py`; Wu et al.,
//! "TinyViT", ECCV 2022), ported from candle-transformers' `segment_anything::tiny_vit` with
//! the same module tree (`patch_embed.seq.{0,2}`, `layers.0.blocks.*` MBConvs,
//! `layers.{1,2,3}.blocks.*` window-attention blocks, `*.downsample` patch merging, `neck.*`).
//!
//! Differences from candle's version, all for speed and none changing the function: BatchNorm
//! is folded into the preceding convolution at load; activations stay channels-last
//! (`H × W × C`), so 1×1 convolutions are matrix products and depthwise 3×3 convolutions are
//! direct loops instead of per-group convolutions; GELU is the exact erf form, as in PyTorch.
//!
//! ```no_run
//! # fn main() -> camsam::Result<()> {
//! let weights = camsam::sam::weights::Weights::load("mobile_sam.pt".as_ref())?;
//! let encoder = camsam::sam::cpu::tiny_vit::TinyViT::load(&camsam::sam::cpu::Vb::root(&weights))?;
//! let input = vec![0f32; 3 * 1024 * 1024];
//! let embedding = encoder.forward(&input); // 256 × 64 × 64
//! assert_eq!(embedding.len(), 256 * 64 * 64);
//! # Ok(()) }
//! ```

use super::helpers::{self, RowJob};
use super::kernels::{self, Act, Linear};
use super::Vb;
use crate::profile;
use crate::sam::weights::tiny_vit_config::*;
use crate::sam::{EMBED_SIDE, IMAGE_SIZE};
use crate::{Error, Result};

const BN_EPS: f32 = 1e-5;
const LN_EPS: f32 = 1e-5;
const NECK_LN_EPS: f32 = 1e-6;

/// `Conv2d_BN` with the BatchNorm folded in: `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
/// Returns the folded weight (torch layout) and bias.
fn conv_bn(vb: &Vb) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut w = vb.get("c.weight")?;
    let gamma = vb.get("bn.weight")?;
    let beta = vb.get("bn.bias")?;
    let mean = vb.get("bn.running_mean")?;
    let var = vb.get("bn.running_var")?;
    let out = gamma.len();
    let per_out = w.len() / out;
    let mut bias = vec![0f32; out];
    for o in 0..out {
        let s = gamma[o] / (var[o] + BN_EPS).sqrt();
        w[o * per_out..(o + 1) * per_out]
            .iter_mut()
            .for_each(|v| *v *= s);
        bias[o] = beta[o] - mean[o] * s;
    }
    Ok((w, bias))
}

/// A 1×1 `Conv2d_BN` as a linear layer on channels-last tokens.
fn pointwise(vb: &Vb, cin: usize, cout: usize) -> Result<Linear> {
    let (weight, bias) = conv_bn(vb)?;
    Ok(Linear {
        weight,
        bias: Some(bias),
        d_in: cin,
        d_out: cout,
    })
}

/// A dense 3×3 convolution (padding 1) as im2col + a linear layer.
struct Conv3x3 {
    lin: Linear,
    cin: usize,
    stride: usize,
}

impl Conv3x3 {
    fn new(weight: &[f32], bias: Option<Vec<f32>>, cin: usize, cout: usize, stride: usize) -> Self {
        Conv3x3 {
            lin: Linear {
                weight: kernels::conv3x3_weight_to_hwc(weight, cout, cin),
                bias,
                d_in: 9 * cin,
                d_out: cout,
            },
            cin,
            stride,
        }
    }

    fn forward(&self, x: &[f32], (h, w): (usize, usize), act: Act) -> (Vec<f32>, usize, usize) {
        let (cols, oh, ow) = kernels::im2col3x3(x, (h, w, self.cin), self.stride);
        (self.lin.forward_act(&cols, act), oh, ow)
    }
}

/// A depthwise 3×3 `Conv2d_BN` (`groups = channels`).
struct Depthwise {
    weight: Vec<f32>,
    bias: Vec<f32>,
    stride: usize,
}

impl Depthwise {
    fn load(vb: &Vb, stride: usize) -> Result<Self> {
        let (weight, bias) = conv_bn(vb)?;
        Ok(Depthwise {
            weight,
            bias,
            stride,
        })
    }

    fn forward(&self, x: &[f32], (h, w): (usize, usize), act: Act) -> (Vec<f32>, usize, usize) {
        let c = self.bias.len();
        kernels::depthwise3x3(x, (h, w, c), &self.weight, &self.bias, self.stride, act)
    }
}

/// `patch_embed`: two stride-2 3×3 `Conv2d_BN` with a GELU between (1024² → 256²).
struct PatchEmbed {
    conv1: Conv3x3,
    conv2: Conv3x3,
}

impl PatchEmbed {
    fn load(vb: &Vb) -> Result<Self> {
        let half = EMBED_DIMS[0] / 2;
        let (w1, b1) = conv_bn(&vb.pp("seq.0"))?;
        let (w2, b2) = conv_bn(&vb.pp("seq.2"))?;
        Ok(PatchEmbed {
            conv1: Conv3x3::new(&w1, Some(b1), 3, half, 2),
            conv2: Conv3x3::new(&w2, Some(b2), half, EMBED_DIMS[0], 2),
        })
    }

    /// `x`: `1024 × 1024 × 3` channels-last; output rows shared with the helpers (one output
    /// row is four input rows, with four rows of context either side).
    fn forward(&self, x: &[f32]) -> (Vec<f32>, usize) {
        let side = IMAGE_SIZE / 4;
        let out = helpers::rows(
            RowJob::PatchEmbed,
            x,
            (4 * IMAGE_SIZE * 3, side * EMBED_DIMS[0]),
            (8, 1),
            |x, lead, count| self.forward_rows(x, lead, count),
        );
        (out, side)
    }

    /// Output rows `lead .. lead + count` of the input rows `x` (`4k × 1024 × 3`).
    fn forward_rows(&self, x: &[f32], lead: usize, count: usize) -> Vec<f32> {
        let rows = x.len() / (IMAGE_SIZE * 3);
        let (x, h, w) = self.conv1.forward(x, (rows, IMAGE_SIZE), Act::Gelu);
        let (x, _, w) = self.conv2.forward(&x, (h, w), Act::None);
        let row = w * EMBED_DIMS[0];
        x[lead * row..(lead + count) * row].to_vec()
    }
}

/// `MBConv`: 1×1 expand, depthwise 3×3, 1×1 project, residual, GELU.
struct MBConv {
    conv1: Linear,
    conv2: Depthwise,
    conv3: Linear,
    /// Position among the encoder's MBConvs (how a helper finds it).
    index: u32,
}

impl MBConv {
    fn load(vb: &Vb, dim: usize, index: u32) -> Result<Self> {
        let hidden = dim * MBCONV_EXPAND_RATIO;
        Ok(MBConv {
            conv1: pointwise(&vb.pp("conv1"), dim, hidden)?,
            conv2: Depthwise::load(&vb.pp("conv2"), 1)?,
            conv3: pointwise(&vb.pp("conv3"), hidden, dim)?,
            index,
        })
    }

    /// `x`: `side × side × C`; image rows shared with the helpers.
    fn forward(&self, x: Vec<f32>, side: usize) -> Vec<f32> {
        let row = side * self.conv3.d_out;
        helpers::rows(
            RowJob::MbConv(self.index),
            &x,
            (row, row),
            (8, 1),
            |x, lead, count| self.forward_rows(x, side, lead, count),
        )
    }

    /// Output rows `lead .. lead + count` of the rows `x` (`h × side × C`; the rows around
    /// them are context for the depthwise convolution, zero padding beyond `x`).
    fn forward_rows(&self, x: &[f32], side: usize, lead: usize, count: usize) -> Vec<f32> {
        let c = self.conv3.d_out;
        let rows = x.len() / (side * c);
        let h = self.conv1.forward_act(x, Act::Gelu);
        let (h, _, _) = self.conv2.forward(&h, (rows, side), Act::Gelu);
        let hidden = self.conv1.d_out;
        let h = &h[lead * side * hidden..(lead + count) * side * hidden];
        let mut out = x[lead * side * c..(lead + count) * side * c].to_vec();
        self.conv3.forward_add(h, &mut out);
        kernels::bias_act(&mut out, None, c, Act::Gelu);
        out
    }
}

/// `PatchMerging`: 1×1, depthwise 3×3 (stride 2, or 1 into the 320-wide last stage), 1×1.
struct PatchMerging {
    conv1: Linear,
    conv2: Depthwise,
    conv3: Linear,
    /// Position among the encoder's patch mergings (how a helper finds it).
    index: u32,
}

impl PatchMerging {
    fn load(vb: &Vb, dim: usize, out: usize, index: u32) -> Result<Self> {
        let stride = if [320, 448, 576].contains(&out) { 1 } else { 2 };
        Ok(PatchMerging {
            conv1: pointwise(&vb.pp("conv1"), dim, out)?,
            conv2: Depthwise::load(&vb.pp("conv2"), stride)?,
            conv3: pointwise(&vb.pp("conv3"), out, out)?,
            index,
        })
    }

    /// `x`: `side × side × C`; output rows shared with the helpers (one output row is
    /// `stride` input rows, with as many rows of context either side).
    fn forward(&self, x: &[f32], side: usize) -> (Vec<f32>, usize) {
        let stride = self.conv2.stride;
        let out_side = side.div_ceil(stride);
        let (cin, cout) = (self.conv1.d_in, self.conv3.d_out);
        let out = helpers::rows(
            RowJob::PatchMerging(self.index),
            x,
            (stride * side * cin, out_side * cout),
            (4, 1),
            |x, lead, count| self.forward_rows(x, side, lead, count),
        );
        (out, out_side)
    }

    /// Output rows `lead .. lead + count` of the input rows `x` (`k·stride × side × C`).
    fn forward_rows(&self, x: &[f32], side: usize, lead: usize, count: usize) -> Vec<f32> {
        let rows = x.len() / (side * self.conv1.d_in);
        let h = self.conv1.forward_act(x, Act::Gelu);
        let (h, _, ow) = self.conv2.forward(&h, (rows, side), Act::Gelu);
        let row = ow * self.conv1.d_out;
        self.conv3.forward(&h[lead * row..(lead + count) * row])
    }
}

/// TinyViT's window `Attention`: LayerNorm, qkv, per-head softmax(q·kᵀ/√d + bias)·v, proj.
struct Attention {
    norm_w: Vec<f32>,
    norm_b: Vec<f32>,
    qkv: Linear,
    proj: Linear,
    /// `heads × N × N` attention biases, gathered from `attention_biases` by offset.
    bias: Vec<f32>,
    heads: usize,
    key_dim: usize,
    tokens: usize,
}

impl Attention {
    fn load(vb: &Vb, dim: usize, heads: usize, window: usize) -> Result<Self> {
        let key_dim = dim / heads;
        // Offsets (|Δrow|, |Δcol|) numbered in order of first appearance, as in the official code.
        let points: Vec<(i64, i64)> = (0..window as i64)
            .flat_map(|x| (0..window as i64).map(move |y| (x, y)))
            .collect();
        let mut offsets = std::collections::HashMap::new();
        let mut idxs = Vec::with_capacity(points.len() * points.len());
        for &(x1, y1) in &points {
            for &(x2, y2) in &points {
                let off = ((x2 - x1).abs(), (y2 - y1).abs());
                let next = offsets.len();
                idxs.push(*offsets.entry(off).or_insert(next));
            }
        }
        let biases = vb.get("attention_biases")?;
        let n_off = biases.len() / heads;
        let n = points.len();
        let mut bias = vec![0f32; heads * n * n];
        for h in 0..heads {
            for (i, &idx) in idxs.iter().enumerate() {
                bias[h * n * n + i] = biases[h * n_off + idx];
            }
        }
        Ok(Attention {
            norm_w: vb.get("norm.weight")?,
            norm_b: vb.get("norm.bias")?,
            qkv: vb.linear("qkv", dim, 3 * dim)?,
            proj: vb.linear("proj", dim, dim)?,
            bias,
            heads,
            key_dim,
            tokens: n,
        })
    }

    /// `x`: `windows × N × C` tokens; returns the projected attention output, same shape.
    fn forward(&self, mut x: Vec<f32>) -> Vec<f32> {
        let c = self.qkv.d_in;
        kernels::layer_norm(&mut x, c, &self.norm_w, &self.norm_b, LN_EPS);
        let qkv = self.qkv.forward(&x);
        let n = self.tokens;
        let kd = self.key_dim;
        let scale = 1.0 / (kd as f32).sqrt();
        let mut out = vec![0f32; x.len()];
        kernels::for_rows(&mut out, n * c, |win, o| {
            let q_all = &qkv[win * n * 3 * c..(win + 1) * n * 3 * c];
            let mut s = vec![0f32; n * n];
            for h in 0..self.heads {
                // Per head the qkv channels are [q (kd) | k (kd) | v (kd)].
                let base = h * 3 * kd;
                let q = kernels::MatRef {
                    data: &q_all[base..],
                    rows: n,
                    cols: kd,
                    rs: 3 * c,
                    cs: 1,
                };
                let kt = kernels::MatRef {
                    data: &q_all[base + kd..],
                    rows: kd,
                    cols: n,
                    rs: 1,
                    cs: 3 * c,
                };
                kernels::matmul(&mut s, n, false, q, kt);
                let bias = &self.bias[h * n * n..(h + 1) * n * n];
                for (sv, b) in s.iter_mut().zip(bias) {
                    *sv = *sv * scale + b;
                }
                for row in s.chunks_mut(n) {
                    kernels::softmax(row);
                }
                let v = kernels::MatRef {
                    data: &q_all[base + 2 * kd..],
                    rows: n,
                    cols: kd,
                    rs: 3 * c,
                    cs: 1,
                };
                kernels::matmul(
                    &mut o[h * kd..],
                    c,
                    false,
                    kernels::MatRef::rows(&s, n, n),
                    v,
                );
            }
        });
        self.proj.forward(&out)
    }
}

/// `TinyViTBlock`: window attention (zero padding to whole windows), residual; depthwise
/// `local_conv`; MLP (LayerNorm, fc1, GELU, fc2), residual.
struct TinyViTBlock {
    attn: Attention,
    local_conv: Depthwise,
    mlp_norm_w: Vec<f32>,
    mlp_norm_b: Vec<f32>,
    fc1: Linear,
    fc2: Linear,
    window: usize,
    dim: usize,
    /// Position among the encoder's blocks (how a helper finds it).
    index: u32,
}

impl TinyViTBlock {
    fn load(vb: &Vb, dim: usize, heads: usize, window: usize, index: u32) -> Result<Self> {
        Ok(TinyViTBlock {
            attn: Attention::load(&vb.pp("attn"), dim, heads, window)?,
            local_conv: Depthwise::load(&vb.pp("local_conv"), 1)?,
            mlp_norm_w: vb.get("mlp.norm.weight")?,
            mlp_norm_b: vb.get("mlp.norm.bias")?,
            fc1: vb.linear("mlp.fc1", dim, MLP_RATIO * dim)?,
            fc2: vb.linear("mlp.fc2", MLP_RATIO * dim, dim)?,
            window,
            dim,
            index,
        })
    }

    fn forward(&self, x: Vec<f32>, side: usize) -> Vec<f32> {
        let x = profile::time("encoder › window attention", 0.0, || {
            self.attention(x, side)
        });
        let (x, _, _) = profile::time("encoder › local conv", 0.0, || {
            self.local_conv.forward(&x, (side, side), Act::None)
        });
        profile::time("encoder › MLP", 0.0, || {
            let c = self.dim;
            helpers::rows(RowJob::Mlp(self.index), &x, (c, c), (64, 0), |x, _, _| {
                self.mlp(x)
            })
        })
    }

    /// The MLP with its residual on tokens `x` (`rows × C`).
    fn mlp(&self, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        kernels::layer_norm(&mut h, self.dim, &self.mlp_norm_w, &self.mlp_norm_b, LN_EPS);
        let h = self.fc1.forward_act(&h, Act::Gelu);
        let mut out = x.to_vec();
        self.fc2.forward_add(&h, &mut out);
        out
    }

    /// Window attention with the residual added.
    fn attention(&self, x: Vec<f32>, side: usize) -> Vec<f32> {
        let (c, ws) = (self.dim, self.window);
        let nw = side.div_ceil(ws);
        let n = ws * ws;
        // Partition into windows, zero-padding bottom/right.
        let mut win = vec![0f32; nw * nw * n * c];
        kernels::for_rows(&mut win, n * c, |wi, chunk| {
            let (wy, wx) = (wi / nw, wi % nw);
            for ty in 0..ws {
                let y = wy * ws + ty;
                if y >= side {
                    break;
                }
                for tx in 0..ws {
                    let xx = wx * ws + tx;
                    if xx >= side {
                        break;
                    }
                    let src = (y * side + xx) * c;
                    chunk[(ty * ws + tx) * c..(ty * ws + tx + 1) * c]
                        .copy_from_slice(&x[src..src + c]);
                }
            }
        });
        let attn = helpers::rows(
            RowJob::Attention(self.index),
            &win,
            (n * c, n * c),
            (1, 0),
            |w, _, _| self.attn.forward(w.to_vec()),
        );
        // Un-partition, crop the padding, add the residual.
        let mut x = x;
        kernels::for_rows(&mut x, side * c, |y, row| {
            let (wy, ty) = (y / ws, y % ws);
            for xx in 0..side {
                let (wx, tx) = (xx / ws, xx % ws);
                let src = ((wy * nw + wx) * n + ty * ws + tx) * c;
                for (o, a) in row[xx * c..(xx + 1) * c]
                    .iter_mut()
                    .zip(&attn[src..src + c])
                {
                    *o += a;
                }
            }
        });
        x
    }
}

/// The MobileSAM image encoder.
pub struct TinyViT {
    patch_embed: PatchEmbed,
    mbconvs: Vec<MBConv>,
    /// `(blocks, downsample)` of the attention stages 1–3, and stage 0's downsample.
    stages: Vec<(Vec<TinyViTBlock>, Option<PatchMerging>)>,
    downsample0: PatchMerging,
    neck0: Linear,
    neck1: (Vec<f32>, Vec<f32>),
    neck2: Conv3x3,
    neck3: (Vec<f32>, Vec<f32>),
}

impl TinyViT {
    /// Loads `image_encoder.*` (pass the root [`Vb`]).
    pub fn load(root: &Vb) -> Result<Self> {
        let vb = root.pp("image_encoder");
        let l0 = vb.pp("layers.0");
        let mbconvs = (0..DEPTHS[0])
            .map(|b| MBConv::load(&l0.pp(&format!("blocks.{b}")), EMBED_DIMS[0], b as u32))
            .collect::<Result<Vec<_>>>()?;
        let downsample0 =
            PatchMerging::load(&l0.pp("downsample"), EMBED_DIMS[0], EMBED_DIMS[1], 0)?;
        let mut stages = Vec::new();
        for i in 1..EMBED_DIMS.len() {
            let l = vb.pp(&format!("layers.{i}"));
            let blocks = (0..DEPTHS[i])
                .map(|b| {
                    TinyViTBlock::load(
                        &l.pp(&format!("blocks.{b}")),
                        EMBED_DIMS[i],
                        NUM_HEADS[i],
                        WINDOW_SIZES[i],
                        (DEPTHS[1..i].iter().sum::<usize>() + b) as u32,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let down = if i + 1 < EMBED_DIMS.len() {
                Some(PatchMerging::load(
                    &l.pp("downsample"),
                    EMBED_DIMS[i],
                    EMBED_DIMS[i + 1],
                    i as u32,
                )?)
            } else {
                None
            };
            stages.push((blocks, down));
        }
        let last = EMBED_DIMS[EMBED_DIMS.len() - 1];
        Ok(TinyViT {
            patch_embed: PatchEmbed::load(&vb.pp("patch_embed"))?,
            mbconvs,
            stages,
            downsample0,
            neck0: Linear {
                weight: vb.get("neck.0.weight")?,
                bias: None,
                d_in: last,
                d_out: NECK_DIM,
            },
            neck1: (vb.get("neck.1.weight")?, vb.get("neck.1.bias")?),
            neck2: Conv3x3::new(&vb.get("neck.2.weight")?, None, NECK_DIM, NECK_DIM, 1),
            neck3: (vb.get("neck.3.weight")?, vb.get("neck.3.bias")?),
        })
    }

    /// A helper's share of a row job ([`helpers::RowJob`]): output rows `lead .. lead +
    /// count` of `input`.
    pub(super) fn rows(
        &self,
        job: RowJob,
        input: &[f32],
        lead: usize,
        count: usize,
    ) -> Result<Vec<f32>> {
        let missing = |what: &str, i: u32| Error::Model(format!("the encoder has no {what} {i}"));
        let block = |i: u32| {
            self.stages
                .iter()
                .flat_map(|(blocks, _)| blocks)
                .nth(i as usize)
                .ok_or_else(|| missing("block", i))
        };
        Ok(match job {
            RowJob::PatchEmbed => self.patch_embed.forward_rows(input, lead, count),
            RowJob::Neck => self.neck_rows(input, EMBED_SIDE, lead, count),
            RowJob::PatchMerging(i) => {
                let (merging, side) = self.merging(i).ok_or_else(|| missing("patch merging", i))?;
                merging.forward_rows(input, side, lead, count)
            }
            RowJob::MbConv(i) => {
                let conv = self
                    .mbconvs
                    .get(i as usize)
                    .ok_or_else(|| missing("MBConv", i))?;
                // MBConvs run at the patch embedding's resolution.
                conv.forward_rows(input, IMAGE_SIZE / 4, lead, count)
            }
            RowJob::Attention(i) => block(i)?.attn.forward(input.to_vec()),
            RowJob::Mlp(i) => block(i)?.mlp(input),
        })
    }

    /// The neck's output rows `lead .. lead + count` of the rows `x` (`k × side × 320`, the
    /// rows around them context for its 3×3 convolution), channels-last.
    fn neck_rows(&self, x: &[f32], side: usize, lead: usize, count: usize) -> Vec<f32> {
        let mut x = self.neck0.forward(x);
        kernels::layer_norm(&mut x, NECK_DIM, &self.neck1.0, &self.neck1.1, NECK_LN_EPS);
        let rows = x.len() / (side * NECK_DIM);
        let (x, _, _) = self.neck2.forward(&x, (rows, side), Act::None);
        let row = side * NECK_DIM;
        let mut x = x[lead * row..(lead + count) * row].to_vec();
        kernels::layer_norm(&mut x, NECK_DIM, &self.neck3.0, &self.neck3.1, NECK_LN_EPS);
        x
    }

    /// Patch merging `i` (0: stage 0's, then the attention stages') and its input side.
    fn merging(&self, i: u32) -> Option<(&PatchMerging, usize)> {
        let mut side = IMAGE_SIZE / 4;
        if i == 0 {
            return Some((&self.downsample0, side));
        }
        side = side.div_ceil(self.downsample0.conv2.stride);
        for (_, down) in &self.stages {
            let down = down.as_ref()?;
            if down.index == i {
                return Some((down, side));
            }
            side = side.div_ceil(down.conv2.stride);
        }
        None
    }

    /// `input`: `3 × 1024 × 1024` (CHW, normalised, padded) → embedding `256 × 64 × 64` (CHW).
    pub fn forward(&self, input: &[f32]) -> Vec<f32> {
        let plane = IMAGE_SIZE * IMAGE_SIZE;
        let hwc = kernels::transpose(&input[..3 * plane], 3, plane);
        let (mut x, mut side) = profile::time("encoder › patch embed", 0.0, || {
            self.patch_embed.forward(&hwc)
        });
        for block in &self.mbconvs {
            x = profile::time("encoder › MBConv", 0.0, || block.forward(x, side));
        }
        (x, side) = profile::time("encoder › patch merging", 0.0, || {
            self.downsample0.forward(&x, side)
        });
        for (blocks, down) in &self.stages {
            for block in blocks {
                x = block.forward(x, side);
            }
            if let Some(down) = down {
                (x, side) =
                    profile::time("encoder › patch merging", 0.0, || down.forward(&x, side));
            }
        }
        debug_assert_eq!(side, EMBED_SIDE);
        profile::time("encoder › neck", 0.0, || {
            let c = self.neck0.d_in;
            let x = helpers::rows(
                RowJob::Neck,
                &x,
                (side * c, side * NECK_DIM),
                (4, 1),
                |x, lead, count| self.neck_rows(x, side, lead, count),
            );
            kernels::transpose(&x, side * side, NECK_DIM)
        })
    }
}
