//! Dense layers as one matrix multiply with a fused epilogue:
//! `out = act(a · wᵀ + bias + residual)`, `w` in PyTorch's `Linear` layout (out × in).
//! Pointwise (1×1) convolutions and im2col'd 3×3 convolutions run through it too.
//!
//! Kernels with the same contract, chosen per device ([`super::context::MatmulKernel`]):
//! `matmul.wgsl` (64×64×16 tiles staged in workgroup memory, for GPUs; f16 operands where
//! [`GpuContext::f16_operands`](super::GpuContext::f16_operands)) and, for CPU adapters,
//! where a barrier switches between all of a workgroup's invocations, two without workgroup
//! memory: `matmul_tex.wgsl` when the weight was uploaded with [`GpuTensor::upload_weight`]
//! (k a multiple of 4) and so also lives in a texture, n is a multiple of 4 and the device
//! has subgroups of 8 — the input is copied into a texture too
//! ([`super::context::Recorder::texels_of`]) and both are read with texel fetches, which
//! lavapipe gathers without the per-lane loop of a storage load, the rows shared through
//! `subgroupBroadcast` (16×8 outputs per invocation, 16×64 per workgroup; 16×4 and 16×32 in
//! `matmul_tex_narrow.wgsl` where 64-column tiles would leave many columns idle) — else
//! `matmul_blocked.wgsl` (8×8 outputs per invocation read straight from storage).
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{matmul::{linear, Epilogue}, GpuTensor};
//! let x = GpuTensor::upload(ctx, &[2, 3], &[1., 2., 3., 4., 5., 6.])?;
//! let w = GpuTensor::upload(ctx, &[1, 3], &[1., 1., 1.])?;
//! let mut rec = ctx.recorder();
//! let y = linear(&mut rec, &x, &w, Epilogue::default())?;
//! rec.submit();
//! assert_eq!(y.read(ctx).await?, vec![6., 15.]);
//! # Ok(()) }
//! ```

use super::context::{MatmulKernel, Recorder};
use super::GpuTensor;
use crate::{Error, Result};

/// What the matmul adds after the product.
#[derive(Default, Clone, Copy)]
pub struct Epilogue<'a> {
    /// Per-output-column bias.
    pub bias: Option<&'a GpuTensor>,
    /// Tensor of the output's shape added before the activation.
    pub residual: Option<&'a GpuTensor>,
    /// Apply GELU (erf form) last.
    pub gelu: bool,
    /// Apply ReLU last.
    pub relu: bool,
}

/// `a` is `[.., k]` (rows = product of the leading dims), `w` is `[n, k]`; returns `[.., n]`.
pub fn linear(
    rec: &mut Recorder,
    a: &GpuTensor,
    w: &GpuTensor,
    epi: Epilogue,
) -> Result<GpuTensor> {
    let (&k, lead) = a
        .shape()
        .split_last()
        .ok_or_else(|| Error::Model("matmul: scalar input".into()))?;
    let m: usize = lead.iter().product();
    if w.shape().len() != 2 || w.shape()[1] != k {
        return Err(Error::Model(format!(
            "matmul: input {:?} and weight {:?} disagree on k",
            a.shape(),
            w.shape()
        )));
    }
    let n = w.shape()[0];
    let mut out_shape = lead.to_vec();
    out_shape.push(n);
    let mut flags = 0u32;
    if let Some(b) = epi.bias {
        if b.len() != n {
            return Err(Error::Model(format!(
                "matmul: bias {:?} for n = {n}",
                b.shape()
            )));
        }
        flags |= 1;
    }
    if let Some(r) = epi.residual {
        if r.len() != m * n {
            return Err(Error::Model(format!(
                "matmul: residual {:?} for output {out_shape:?}",
                r.shape()
            )));
        }
        flags |= 2;
    }
    if epi.gelu {
        flags |= 4;
    }
    if epi.relu {
        flags |= 8;
    }
    // The texel variant's tiles are 16 rows high.
    if m.div_ceil(16) > super::context::MAX_GROUPS_PER_DIM as usize {
        return Err(Error::Model(format!(
            "matmul: {m} rows is too many for one dispatch"
        )));
    }
    let out = GpuTensor::empty(rec.ctx, &out_shape)?;
    let bias = epi.bias.unwrap_or(a);
    let res = epi.residual.unwrap_or(a);
    let params = [m as u32, n as u32, k as u32, flags];
    let blocked = rec.ctx.matmul_kernel() == MatmulKernel::Blocked;
    let texel_kernel = blocked && k % 4 == 0 && n % 4 == 0 && rec.ctx.subgroups_of_8();
    let a_texels = match w.texture() {
        Some(_) if texel_kernel => rec.texels_of(a.buffer(), m * k / 4),
        _ => None,
    };
    match (w.texture(), a_texels) {
        (Some(w_texels), Some(a_texels)) => {
            let (shader, tile) = if narrow_tiles(n) {
                ("matmul_tex_narrow", 32)
            } else {
                ("matmul_tex", 64)
            };
            rec.dispatch_with(
                shader,
                &params,
                vec![
                    wgpu::BindingResource::TextureView(&a_texels),
                    wgpu::BindingResource::TextureView(w_texels),
                    bias.buffer().as_entire_binding(),
                    res.buffer().as_entire_binding(),
                    out.buffer().as_entire_binding(),
                ],
                (n.div_ceil(tile) as u32, m.div_ceil(16) as u32, 1),
            )?
        }
        _ => {
            // f16 operands where the weight has its f16 copy (GPU family only).
            let half = w.half().filter(|_| !blocked);
            let shader = match (blocked, half.is_some()) {
                (true, _) => "matmul_blocked",
                (false, false) => "matmul",
                (false, true) => "matmul_f16",
            };
            rec.dispatch(
                shader,
                &params,
                &[
                    a.buffer(),
                    half.unwrap_or(w.buffer()),
                    bias.buffer(),
                    res.buffer(),
                    out.buffer(),
                ],
                (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1),
            )?
        }
    }
    Ok(out)
}

/// Whether the texel matmul takes 32-column tiles (`matmul_tex_narrow.wgsl`) for `n` output
/// columns: when 64-column tiles would leave an eighth or more of their columns idle (n = 32:
/// half; n = 160: a sixth). Narrow tiles need 6 fetches per 256 multiply-adds against 10 per
/// 512, so they only pay where they save that much idle work. Measured on the 2-core VM
/// (matmul alone, LP_NUM_THREADS=4, 3 interleaved rounds): 262144×32×36 26–38 ms against
/// 45–54 ms with 64-column tiles.
fn narrow_tiles(n: usize) -> bool {
    let idle = n.div_ceil(64) * 64 - n;
    8 * idle >= n
}
