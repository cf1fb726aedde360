//! LayerNorm over the last dimension (`layer_norm.wgsl`). TinyViT's attention and MLP norms
//! (ε = 1e-5) and, because activations are channels-last, the neck's and upscaler's channel
//! `LayerNorm2d` (ε = 1e-6) too (SAM `modeling/common.py`).
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{norm::layer_norm, GpuTensor};
//! let x = GpuTensor::upload(ctx, &[1, 2], &[1.0, 3.0])?;
//! let g = GpuTensor::upload(ctx, &[2], &[1.0, 1.0])?;
//! let b = GpuTensor::upload(ctx, &[2], &[0.0, 0.0])?;
//! let mut rec = ctx.recorder();
//! let y = layer_norm(&mut rec, &x, &g, &b, 0.0)?;
//! rec.submit();
//! assert_eq!(y.read(ctx).await?, vec![-1.0, 1.0]);
//! # Ok(()) }
//! ```

use super::context::{MatmulKernel, Recorder};
use super::GpuTensor;
use crate::{Error, Result};

/// Normalises each row of `x` (`[.., c]`) and applies `gamma`, `beta` (`[c]`).
pub fn layer_norm(
    rec: &mut Recorder,
    x: &GpuTensor,
    gamma: &GpuTensor,
    beta: &GpuTensor,
    eps: f32,
) -> Result<GpuTensor> {
    layer_norm_act(rec, x, gamma, beta, eps, false)
}

/// [`layer_norm`] followed by GELU when `gelu`.
pub fn layer_norm_act(
    rec: &mut Recorder,
    x: &GpuTensor,
    gamma: &GpuTensor,
    beta: &GpuTensor,
    eps: f32,
    gelu: bool,
) -> Result<GpuTensor> {
    let c = gamma.len();
    if c == 0 || beta.len() != c || x.shape().last() != Some(&c) {
        return Err(Error::Model(format!(
            "layer_norm: input {:?} with gamma {:?}, beta {:?}",
            x.shape(),
            gamma.shape(),
            beta.shape()
        )));
    }
    let rows = x.len() / c;
    let out = GpuTensor::empty(rec.ctx, x.shape())?;
    let params = [rows as u32, c as u32, eps.to_bits(), gelu as u32];
    let texels = if rec.ctx.matmul_kernel() == MatmulKernel::Blocked && c % 4 == 0 {
        let tx = rec.texels_of(x.buffer(), rows * c / 4);
        let tg = rec.texels_of(gamma.buffer(), c / 4);
        let tb = rec.texels_of(beta.buffer(), c / 4);
        tx.zip(tg).zip(tb)
    } else {
        None
    };
    if let Some(((tx, tg), tb)) = texels {
        rec.dispatch_1d_with(
            "layer_norm_tex",
            &params,
            vec![
                wgpu::BindingResource::TextureView(&tx),
                wgpu::BindingResource::TextureView(&tg),
                wgpu::BindingResource::TextureView(&tb),
                out.buffer().as_entire_binding(),
            ],
            rows,
            64,
        )?;
        return Ok(out);
    }
    let buffers = [x.buffer(), gamma.buffer(), beta.buffer(), out.buffer()];
    if rec.ctx.matmul_kernel() == MatmulKernel::Tiled {
        // GPUs: one workgroup per row (`layer_norm_rows.wgsl`).
        rec.dispatch_rows("layer_norm_rows", &params, &buffers, rows)?;
    } else {
        rec.dispatch_1d("layer_norm", &params, &buffers, rows, 64)?;
    }
    Ok(out)
}
