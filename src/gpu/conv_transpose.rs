//! 2×2 stride-2 transposed convolution, the mask decoder's upscaler (SAM
//! `modeling/mask_decoder.py`, `output_upscaling`): one matmul over the input pixels produces
//! all four taps per output channel, then `conv_transpose.wgsl` scatters them to the doubled
//! grid with the bias and an optional GELU. Channels-last throughout.
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{conv_transpose::{conv_transpose2x2, taps_matrix}, GpuTensor};
//! // 1×1 input, 1 → 1 channel, weight taps 1, 2, 3, 4.
//! let w = GpuTensor::upload(ctx, &[4, 1], &taps_matrix(&[1., 2., 3., 4.], 1, 1)?)?;
//! let b = GpuTensor::upload(ctx, &[1], &[0.0])?;
//! let x = GpuTensor::upload(ctx, &[1, 1], &[1.0])?;
//! let mut rec = ctx.recorder();
//! let y = conv_transpose2x2(&mut rec, &x, &w, &b, (1, 1, 1), false)?;
//! rec.submit();
//! assert_eq!(y.read(ctx).await?, vec![1., 2., 3., 4.]);
//! # Ok(()) }
//! ```

use super::context::Recorder;
use super::matmul::{linear, Epilogue};
use super::GpuTensor;
use crate::{Error, Result};

/// PyTorch `ConvTranspose2d` weight `[cin, cout, 2, 2]` → matmul weight `[cout·4, cin]`
/// (row `co·4 + dy·2 + dx`).
pub fn taps_matrix(weight: &[f32], cin: usize, cout: usize) -> Result<Vec<f32>> {
    if weight.len() != cin * cout * 4 {
        return Err(Error::Model(format!(
            "conv_transpose: weight of {} values, expected {cin}×{cout}×2×2",
            weight.len()
        )));
    }
    let mut m = vec![0f32; cout * 4 * cin];
    for ci in 0..cin {
        for co in 0..cout {
            for t in 0..4 {
                m[(co * 4 + t) * cin + ci] = weight[(ci * cout + co) * 4 + t];
            }
        }
    }
    Ok(m)
}

/// `x` `[b·h·w, cin]` → `[b·2h·2w, cout]`; `taps` from [`taps_matrix`], `bias` `[cout]`.
pub fn conv_transpose2x2(
    rec: &mut Recorder,
    x: &GpuTensor,
    taps: &GpuTensor,
    bias: &GpuTensor,
    (b, h, w): (usize, usize, usize),
    gelu: bool,
) -> Result<GpuTensor> {
    let cout = bias.len();
    let cin = taps.shape().get(1).copied().unwrap_or(0);
    if taps.shape().first() != Some(&(cout * 4)) || x.len() != b * h * w * cin || cin == 0 {
        return Err(Error::Model(format!(
            "conv_transpose: input {:?}, taps {:?}, bias {:?} for {b}×{h}×{w}",
            x.shape(),
            taps.shape(),
            bias.shape()
        )));
    }
    let y = linear(rec, x, taps, Epilogue::default())?;
    let total = b * 4 * h * w * cout;
    let out = GpuTensor::empty(rec.ctx, &[b * 4 * h * w, cout])?;
    rec.dispatch_1d(
        "conv_transpose",
        &[h, w, cout, gelu as usize, total, 0, 0, 0].map(|v| v as u32),
        &[y.buffer(), bias.buffer(), out.buffer()],
        total,
        256,
    )?;
    Ok(out)
}
