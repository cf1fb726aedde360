//! Device-resident parameter blocks shared by the encoder and decoder modules: a `Linear`
//! (weight `[out, in]`, bias) and a LayerNorm's affine, loaded by state-dict prefix.

use super::weights::WeightsExt;
use crate::gpu::context::{GpuContext, Recorder};
use crate::gpu::matmul::{linear, Epilogue};
use crate::gpu::norm::layer_norm_act;
use crate::gpu::GpuTensor;
use crate::sam::weights::Weights;
use crate::Result;

/// `nn.Linear` on the device.
pub(crate) struct Linear {
    pub w: GpuTensor,
    pub b: GpuTensor,
}

impl Linear {
    /// Loads `{prefix}.weight` `[out, inp]` and `{prefix}.bias` `[out]`.
    pub fn load(
        ctx: &GpuContext,
        wts: &Weights,
        prefix: &str,
        out: usize,
        inp: usize,
    ) -> Result<Self> {
        let w = wts.f32s(&format!("{prefix}.weight"), &[out, inp])?;
        let b = wts.f32s(&format!("{prefix}.bias"), &[out])?;
        Ok(Self {
            w: GpuTensor::upload_weight(ctx, &[out, inp], &w)?,
            b: GpuTensor::upload(ctx, &[out], &b)?,
        })
    }

    /// `x·wᵀ + b` with the rest of `epi` (residual, activation).
    pub fn forward(&self, rec: &mut Recorder, x: &GpuTensor, epi: Epilogue) -> Result<GpuTensor> {
        linear(
            rec,
            x,
            &self.w,
            Epilogue {
                bias: Some(&self.b),
                ..epi
            },
        )
    }
}

/// A LayerNorm's `weight` and `bias` on the device.
pub(crate) struct Norm {
    pub g: GpuTensor,
    pub b: GpuTensor,
    pub eps: f32,
}

impl Norm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`, both `[c]`.
    pub fn load(ctx: &GpuContext, wts: &Weights, prefix: &str, c: usize, eps: f32) -> Result<Self> {
        Ok(Self {
            g: GpuTensor::upload(ctx, &[c], &wts.f32s(&format!("{prefix}.weight"), &[c])?)?,
            b: GpuTensor::upload(ctx, &[c], &wts.f32s(&format!("{prefix}.bias"), &[c])?)?,
            eps,
        })
    }

    /// Normalises the last dimension of `x`, then GELU when `gelu`.
    pub fn forward(&self, rec: &mut Recorder, x: &GpuTensor, gelu: bool) -> Result<GpuTensor> {
        layer_norm_act(rec, x, &self.g, &self.b, self.eps, gelu)
    }
}
