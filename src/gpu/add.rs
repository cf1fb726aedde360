//! Element-wise addition with cyclic broadcast (`add.wgsl`): `out[i] = a[i % |a|] + b[i % |b|]`.
//! Adds positional encodings and prompt embeddings across a batch without copies.
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{add::add, GpuTensor};
//! let a = GpuTensor::upload(ctx, &[2, 2], &[1., 2., 3., 4.])?;
//! let b = GpuTensor::upload(ctx, &[2], &[10., 20.])?;
//! let mut rec = ctx.recorder();
//! let y = add(&mut rec, &a, &b, &[2, 2])?;
//! rec.submit();
//! assert_eq!(y.read(ctx).await?, vec![11., 22., 13., 24.]);
//! # Ok(()) }
//! ```

use super::context::Recorder;
use super::GpuTensor;
use crate::{Error, Result};

/// `a + b` broadcast to `shape`; each operand's length must divide the output's.
pub fn add(rec: &mut Recorder, a: &GpuTensor, b: &GpuTensor, shape: &[usize]) -> Result<GpuTensor> {
    let total: usize = shape.iter().product();
    if a.is_empty() || b.is_empty() || total % a.len() != 0 || total % b.len() != 0 {
        return Err(Error::Model(format!(
            "add: {:?} + {:?} does not broadcast to {shape:?}",
            a.shape(),
            b.shape()
        )));
    }
    let out = GpuTensor::empty(rec.ctx, shape)?;
    rec.dispatch_1d(
        "add",
        &[total as u32, a.len() as u32, b.len() as u32, 0],
        &[a.buffer(), b.buffer(), out.buffer()],
        total,
        256,
    )?;
    Ok(out)
}
