//! Softmax over the contiguous rows of a tensor (`softmax.wgsl`), for the score matrices of
//! the two-way transformer's reordered cross attentions (see [`super::batched_matmul`]).
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{softmax::softmax_rows, GpuTensor};
//! let x = GpuTensor::upload(ctx, &[2, 2], &[0., 0., 1., 1.])?;
//! let mut rec = ctx.recorder();
//! let y = softmax_rows(&mut rec, &x, 2)?;
//! rec.submit();
//! assert_eq!(y.read(ctx).await?, vec![0.5; 4]);
//! # Ok(()) }
//! ```

use super::context::{MatmulKernel, Recorder};
use super::GpuTensor;
use crate::{Error, Result};

/// Rows at least this long get a workgroup each on GPUs (as many values as its invocations).
const WIDE: usize = super::context::ROW_WG as usize;

/// `x` viewed as rows of `len` values → the softmax of each row, in `x`'s shape.
pub fn softmax_rows(rec: &mut Recorder, x: &GpuTensor, len: usize) -> Result<GpuTensor> {
    if len == 0 || x.is_empty() || x.len() % len != 0 {
        return Err(Error::Model(format!(
            "softmax: {:?} is not made of rows of {len}",
            x.shape()
        )));
    }
    let rows = x.len() / len;
    let out = GpuTensor::empty(rec.ctx, x.shape())?;
    let params = [rows, len, 0, 0].map(|v| v as u32);
    let buffers = [x.buffer(), out.buffer()];
    if rec.ctx.matmul_kernel() == MatmulKernel::Tiled && len >= WIDE {
        // GPUs, long rows: one workgroup per row (`softmax_wide.wgsl`).
        rec.dispatch_rows("softmax_wide", &params, &buffers, rows)?;
    } else {
        rec.dispatch_1d("softmax", &params, &buffers, rows, 64)?;
    }
    Ok(out)
}
