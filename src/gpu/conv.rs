//! TinyViT's convolutions on channels-last tensors `[h·w, c]` (MobileSAM
//! `tiny_vit_sam.py`: `Conv2d_BN`, `PatchEmbed`, `MBConv`, `PatchMerging`, the neck):
//! - dense k×k convolutions (the 3×3 stride-2 stem, the neck's 3×3, the prompt encoder's 2×2)
//!   as im2col (`conv.wgsl`; on CPU adapters, when the channels are a multiple of 4,
//!   `im2col_tex.wgsl` reading the input as texels) followed by the matmul, on channels-last
//!   inputs, with weights taps-last `[cout, ks, ks, cin]` ([`taps_last`]);
//! - 1×1 (pointwise) convolutions are [`super::matmul::linear`] directly;
//! - depthwise 3×3 (stride 1 or 2) with fused bias and GELU (`depthwise.wgsl`; on CPU adapters,
//!   when the channels are a multiple of 4, `depthwise_texels.wgsl` reading input and weights as
//!   texels), weights tap-major `[9, c]` ([`taps_major`]).
//!
//! BatchNorm is folded into the weights at load ([`fold_batch_norm`]).
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{conv, GpuTensor};
//! let x = GpuTensor::upload(ctx, &[4 * 4, 2], &[1.0; 32])?; // 4×4 pixels, 2 channels
//! let w = GpuTensor::upload(ctx, &[9, 2], &[1.0; 18])?; // tap-major
//! let b = GpuTensor::upload(ctx, &[2], &[0.0; 2])?;
//! let mut rec = ctx.recorder();
//! let y = conv::depthwise3x3(&mut rec, &x, (4, 4), &w, &b, 1, false)?;
//! rec.submit();
//! assert_eq!(y.read(ctx).await?[0], 4.0); // corner: 2×2 taps inside
//! # Ok(()) }
//! ```

use super::context::{MatmulKernel, Recorder};
use super::matmul::{linear, Epilogue};
use super::GpuTensor;
use crate::{Error, Result};

/// Output side of a convolution with kernel `ks`, padding `pad`, `stride`.
pub fn out_size(n: usize, ks: usize, stride: usize, pad: usize) -> usize {
    (n + 2 * pad - ks) / stride + 1
}

/// Gathers k×k patches of the channels-last input `x` `[h·w, cin]`: `[ho·wo, ks·ks·cin]`,
/// taps-last (column `(ky·ks + kx)·cin + ci`), zero-padded by `pad`.
pub fn im2col(
    rec: &mut Recorder,
    x: &GpuTensor,
    (cin, h, w): (usize, usize, usize),
    ks: usize,
    stride: usize,
    pad: usize,
) -> Result<GpuTensor> {
    if x.len() != cin * h * w || ks == 0 || stride == 0 || h + 2 * pad < ks || w + 2 * pad < ks {
        return Err(Error::Model(format!(
            "im2col: input {:?} is not {h}×{w}×{cin} or kernel {ks} does not fit",
            x.shape()
        )));
    }
    let (ho, wo) = (out_size(h, ks, stride, pad), out_size(w, ks, stride, pad));
    let cols = cin * ks * ks;
    let out = GpuTensor::empty(rec.ctx, &[ho * wo, cols])?;
    let texels = if rec.ctx.matmul_kernel() == MatmulKernel::Blocked && cin % 4 == 0 {
        rec.texels_of(x.buffer(), h * w * cin / 4)
    } else {
        None
    };
    if let Some(tx) = texels {
        // One invocation per output pixel, writing its ks·ks·cin/4 texels.
        let pixels = ho * wo;
        let params = [cin, h, w, ho, wo, ks, stride, pad, pixels].map(|v| v as u32);
        rec.dispatch_1d_with(
            "im2col_tex",
            &params,
            vec![
                wgpu::BindingResource::TextureView(&tx),
                out.buffer().as_entire_binding(),
            ],
            pixels,
            64,
        )?;
        return Ok(out);
    }
    let total = ho * wo * cols;
    let params = [cin, h, w, ho, wo, ks, stride, pad, total].map(|v| v as u32);
    rec.dispatch_1d("im2col", &params, &[x.buffer(), out.buffer()], total, 256)?;
    Ok(out)
}

/// PyTorch's convolution weight `[cout, cin, ks, ks]` (flattened) in the taps-last order
/// `[cout, ks, ks, cin_padded]` that [`conv2d`] multiplies with: a tap's weights for 4
/// adjacent input channels are adjacent, like the input's channels. Channels `cin..cin_padded`
/// get zero weights (the image is uploaded with a fourth, zero channel).
pub fn taps_last(
    weight: &[f32],
    (cout, cin, ks): (usize, usize, usize),
    cin_padded: usize,
) -> Result<Vec<f32>> {
    if weight.len() != cout * cin * ks * ks || cin_padded < cin {
        return Err(Error::Model(format!(
            "conv weight of {} values is not {cout}×{cin}×{ks}×{ks} (padded to {cin_padded} channels)",
            weight.len()
        )));
    }
    let taps = ks * ks;
    let mut out = vec![0f32; cout * taps * cin_padded];
    for o in 0..cout {
        for ci in 0..cin {
            for t in 0..taps {
                out[(o * taps + t) * cin_padded + ci] = weight[(o * cin + ci) * taps + t];
            }
        }
    }
    Ok(out)
}

/// A dense k×k convolution of the channels-last `x` `[h·w, cin]`: `weight` is taps-last
/// `[cout, ks·ks·cin]` ([`taps_last`]), output `[ho·wo, cout]` channels-last, with the
/// matmul's fused epilogue.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    rec: &mut Recorder,
    x: &GpuTensor,
    dims: (usize, usize, usize),
    weight: &GpuTensor,
    ks: usize,
    stride: usize,
    pad: usize,
    epi: Epilogue,
) -> Result<GpuTensor> {
    let col = im2col(rec, x, dims, ks, stride, pad)?;
    linear(rec, &col, weight, epi)
}

/// PyTorch's depthwise weight `[c, 1, 3, 3]` (flattened, `[c, 9]`) in the tap-major order
/// `[9, c]` that [`depthwise3x3`] reads: a tap's weights for 4 adjacent channels are one texel.
pub fn taps_major(weight: &[f32], c: usize) -> Result<Vec<f32>> {
    if weight.len() != c * 9 {
        return Err(Error::Model(format!(
            "depthwise weight of {} values for {c} channels (want {c}×9)",
            weight.len()
        )));
    }
    Ok((0..9 * c).map(|i| weight[(i % c) * 9 + i / c]).collect())
}

/// Depthwise 3×3 convolution, padding 1: `x` is `[h·w, c]`, `weight` tap-major `[9, c]`
/// ([`taps_major`]), `bias` `[c]`; returns `[ho·wo, c]`, with GELU applied when `gelu`.
pub fn depthwise3x3(
    rec: &mut Recorder,
    x: &GpuTensor,
    (h, w): (usize, usize),
    weight: &GpuTensor,
    bias: &GpuTensor,
    stride: usize,
    gelu: bool,
) -> Result<GpuTensor> {
    let c = bias.len();
    if x.len() != h * w * c || weight.len() != c * 9 || stride == 0 || stride > 2 {
        return Err(Error::Model(format!(
            "depthwise3x3: input {:?}, weight {:?}, bias {:?} do not describe {h}×{w}×{c}, stride {stride}",
            x.shape(),
            weight.shape(),
            bias.shape()
        )));
    }
    let (ho, wo) = (out_size(h, 3, stride, 1), out_size(w, 3, stride, 1));
    let out = GpuTensor::empty(rec.ctx, &[ho * wo, c])?;
    // One invocation per 4 channels and 2 rows of 4 adjacent output pixels.
    let total = ho.div_ceil(2) * wo.div_ceil(4) * c.div_ceil(4);
    let params = [c, h, w, ho, wo, stride, gelu as usize, total].map(|v| v as u32);
    let texels = if rec.ctx.matmul_kernel() == MatmulKernel::Blocked && c % 4 == 0 {
        rec.texels_of(x.buffer(), h * w * c / 4)
            .zip(rec.texels_of(weight.buffer(), 9 * c / 4))
    } else {
        None
    };
    let (shader, inputs) = match &texels {
        Some((tx, tw)) => (
            "depthwise3x3_tex",
            [
                wgpu::BindingResource::TextureView(tx),
                wgpu::BindingResource::TextureView(tw),
            ],
        ),
        None => (
            "depthwise3x3",
            [
                x.buffer().as_entire_binding(),
                weight.buffer().as_entire_binding(),
            ],
        ),
    };
    let [rx, rw] = inputs;
    rec.dispatch_1d_with(
        shader,
        &params,
        vec![
            rx,
            rw,
            bias.buffer().as_entire_binding(),
            out.buffer().as_entire_binding(),
        ],
        total,
        64,
    )?;
    Ok(out)
}

/// Folds inference-mode BatchNorm into the preceding convolution:
/// `w' = w·γ/√(σ²+ε)` per output channel, `b' = β − μ·γ/√(σ²+ε)` (+ the conv's own bias).
/// `weight` is `[cout, …]` flattened; returns `(w', b')`.
pub fn fold_batch_norm(
    weight: &[f32],
    conv_bias: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let cout = gamma.len();
    if cout == 0
        || weight.len() % cout != 0
        || [beta.len(), mean.len(), var.len()] != [cout; 3]
        || conv_bias.is_some_and(|b| b.len() != cout)
    {
        return Err(Error::Model(format!(
            "fold_batch_norm: weight of {} values and BatchNorm of {cout} channels disagree",
            weight.len()
        )));
    }
    let per = weight.len() / cout;
    let mut w = weight.to_vec();
    let mut b = vec![0f32; cout];
    for o in 0..cout {
        let s = gamma[o] as f64 / (var[o] as f64 + eps).sqrt();
        for v in &mut w[o * per..(o + 1) * per] {
            *v = (*v as f64 * s) as f32;
        }
        let cb = conv_bias.map_or(0.0, |cb| cb[o] as f64);
        b[o] = (beta[o] as f64 + (cb - mean[o] as f64) * s) as f32;
    }
    Ok((w, b))
}
