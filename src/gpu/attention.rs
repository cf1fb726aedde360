//! Multi-head attention of SAM's two-way transformer (SAM `modeling/transformer.py`,
//! `Attention`; SAM paper §3 and appendix A), batched over prompts, with the softmax fused
//! (`attention.wgsl`): token self-attention, token→image (4096 keys) and image→token
//! (4096 queries). The q/k/v/out projections are [`super::matmul::linear`].
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{attention::attention, GpuTensor};
//! let q = GpuTensor::upload(ctx, &[1, 1, 4], &[1.0; 4])?;
//! let k = GpuTensor::upload(ctx, &[1, 2, 4], &[0.0; 8])?;
//! let v = GpuTensor::upload(ctx, &[1, 2, 4], &[1., 1., 1., 1., 3., 3., 3., 3.])?;
//! let mut rec = ctx.recorder();
//! let o = attention(&mut rec, &q, &k, &v, 1)?; // equal scores: the mean of v
//! rec.submit();
//! assert_eq!(o.read(ctx).await?, vec![2.0; 4]);
//! # Ok(()) }
//! ```

use super::context::Recorder;
use super::GpuTensor;
use crate::{Error, Result};

/// Largest head size the kernel holds in registers.
pub const MAX_HEAD_DIM: usize = 32;

/// `q` `[b, tq, width]`, `k`/`v` `[b, tk, width]` with `width = heads · dh` →
/// `softmax(q·kᵀ/√dh)·v` per head, `[b, tq, width]`.
pub fn attention(
    rec: &mut Recorder,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    heads: usize,
) -> Result<GpuTensor> {
    let bad = || {
        Error::Model(format!(
            "attention: q {:?}, k {:?}, v {:?} with {heads} heads",
            q.shape(),
            k.shape(),
            v.shape()
        ))
    };
    let [b, tq, width] = <[usize; 3]>::try_from(q.shape()).map_err(|_| bad())?;
    let [bk, tk, wk] = <[usize; 3]>::try_from(k.shape()).map_err(|_| bad())?;
    if heads == 0
        || width % heads != 0
        || bk != b
        || wk != width
        || v.shape() != k.shape()
        || tk == 0
    {
        return Err(bad());
    }
    let dh = width / heads;
    if dh % 4 != 0 || dh > MAX_HEAD_DIM {
        return Err(Error::Model(format!(
            "attention: head size {dh} must be a multiple of 4 and at most {MAX_HEAD_DIM}"
        )));
    }
    let total = b * tq * heads;
    let out = GpuTensor::empty(rec.ctx, q.shape())?;
    let scale = (1.0 / (dh as f64).sqrt()) as f32;
    let params = [b, tq, tk, heads, dh, 0, total, 0].map(|x| x as u32);
    let mut params = params;
    params[5] = scale.to_bits();
    rec.dispatch_1d(
        "attention",
        &params,
        &[q.buffer(), k.buffer(), v.buffer(), out.buffer()],
        total,
        64,
    )?;
    Ok(out)
}
