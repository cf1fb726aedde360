//! SAM's mask decoder on the device (SAM `modeling/mask_decoder.py`; SAM paper §3),
//! batched over prompts with the image-side work shared: the two-way transformer, the
//! transposed-conv upscaler (64² → 256², LayerNorm2d + GELU), the per-mask-token
//! hypernetwork MLPs, the mask product (`mask_product.wgsl`) and the IoU head.
//!
//! ```no_run
//! # fn demo(ctx: &camsam::gpu::GpuContext, w: &camsam::sam::weights::Weights) -> camsam::Result<()> {
//! let dec = camsam::sam::gpu::mask_decoder::GpuMaskDecoder::load(ctx, w)?;
//! # Ok(()) }
//! ```

use super::layers::{Linear, Norm};
use super::two_way_transformer::GpuTwoWayTransformer;
use super::weights::WeightsExt;
use crate::gpu::context::{GpuContext, Recorder};
use crate::gpu::conv_transpose::{conv_transpose2x2, taps_matrix};
use crate::gpu::matmul::Epilogue;
use crate::gpu::rows::{copy_rows, RowMap};
use crate::gpu::GpuTensor;
use crate::sam::predictor::LOW_RES;
use crate::sam::weights::Weights;
use crate::{Error, Result};

const DIM: usize = 256;
/// The IoU token plus four mask tokens lead every prompt's tokens.
pub const FIXED_TOKENS: usize = 5;
/// Mask tokens (one single-mask output, three multimask outputs).
pub const MASK_TOKENS: usize = 4;
const GRID: usize = 64;

/// A 3-layer MLP with ReLU between layers (hypernetworks and the IoU head).
struct Mlp3 {
    layers: [Linear; 3],
}

impl Mlp3 {
    fn load(ctx: &GpuContext, w: &Weights, prefix: &str, out: usize) -> Result<Self> {
        Ok(Self {
            layers: [
                Linear::load(ctx, w, &format!("{prefix}.layers.0"), DIM, DIM)?,
                Linear::load(ctx, w, &format!("{prefix}.layers.1"), DIM, DIM)?,
                Linear::load(ctx, w, &format!("{prefix}.layers.2"), out, DIM)?,
            ],
        })
    }

    fn forward(&self, rec: &mut Recorder, x: &GpuTensor) -> Result<GpuTensor> {
        let relu = Epilogue {
            relu: true,
            ..Default::default()
        };
        let h = self.layers[0].forward(rec, x, relu)?;
        let h = self.layers[1].forward(rec, &h, relu)?;
        self.layers[2].forward(rec, &h, Epilogue::default())
    }
}

/// The mask decoder's parameters on the device.
pub struct GpuMaskDecoder {
    /// `[5, 256]`: the IoU token, then the mask tokens.
    pub(crate) fixed_tokens: GpuTensor,
    transformer: GpuTwoWayTransformer,
    up1: (GpuTensor, GpuTensor),
    up_norm: Norm,
    up2: (GpuTensor, GpuTensor),
    hyper: Vec<Mlp3>,
    iou_head: Mlp3,
}

/// Low-resolution outputs of a batch: all four masks per prompt.
pub struct DecoderOutput {
    /// `[b, 4, 256, 256]` logits.
    pub masks: GpuTensor,
    /// `[b, 4]` predicted IoUs.
    pub iou: GpuTensor,
}

impl GpuMaskDecoder {
    /// Uploads `mask_decoder.*`.
    pub fn load(ctx: &GpuContext, w: &Weights) -> Result<Self> {
        let p = "mask_decoder";
        let mut fixed = w.f32s(&format!("{p}.iou_token.weight"), &[1, DIM])?;
        fixed.extend(w.f32s(&format!("{p}.mask_tokens.weight"), &[MASK_TOKENS, DIM])?);
        let up = |name: &str, cin: usize, cout: usize| -> Result<(GpuTensor, GpuTensor)> {
            let wt = w.f32s(
                &format!("{p}.output_upscaling.{name}.weight"),
                &[cin, cout, 2, 2],
            )?;
            let b = w.f32s(&format!("{p}.output_upscaling.{name}.bias"), &[cout])?;
            Ok((
                GpuTensor::upload_weight(ctx, &[cout * 4, cin], &taps_matrix(&wt, cin, cout)?)?,
                GpuTensor::upload(ctx, &[cout], &b)?,
            ))
        };
        Ok(Self {
            fixed_tokens: GpuTensor::upload(ctx, &[FIXED_TOKENS, DIM], &fixed)?,
            transformer: GpuTwoWayTransformer::load(ctx, w)?,
            up1: up("0", DIM, DIM / 4)?,
            up_norm: Norm::load(ctx, w, &format!("{p}.output_upscaling.1"), DIM / 4, 1e-6)?,
            up2: up("3", DIM / 4, DIM / 8)?,
            hyper: (0..MASK_TOKENS)
                .map(|i| {
                    Mlp3::load(
                        ctx,
                        w,
                        &format!("{p}.output_hypernetworks_mlps.{i}"),
                        DIM / 8,
                    )
                })
                .collect::<Result<Vec<_>>>()?,
            iou_head: Mlp3::load(ctx, w, &format!("{p}.iou_prediction_head"), MASK_TOKENS)?,
        })
    }

    /// Runs the decoder on `tokens` `[b, t, 256]` and `src` `[b, 4096, 256]` (image
    /// embedding + dense prompt embedding) with the shared `dense_pe` `[4096, 256]`.
    pub fn forward(
        &self,
        rec: &mut Recorder,
        tokens: &GpuTensor,
        src: GpuTensor,
        dense_pe: &GpuTensor,
    ) -> Result<DecoderOutput> {
        let (b, t) = match tokens.shape() {
            &[b, t, DIM] if t >= FIXED_TOKENS => (b, t),
            s => return Err(Error::Model(format!("mask decoder: tokens {s:?}"))),
        };
        let (hs, keys) = self.transformer.forward(rec, tokens, src, dense_pe)?;
        // Upscale the image tokens: 64² × 256 → 128² × 64 → LayerNorm2d, GELU → 256² × 32, GELU.
        let x = conv_transpose2x2(rec, &keys, &self.up1.0, &self.up1.1, (b, GRID, GRID), false)?;
        drop(keys);
        let x = self.up_norm.forward(rec, &x, true)?;
        let up = conv_transpose2x2(
            rec,
            &x,
            &self.up2.0,
            &self.up2.1,
            (b, 2 * GRID, 2 * GRID),
            true,
        )?;
        drop(x);
        // Hypernetworks: mask token i → [b, 32], interleaved into hyper [b, 4, 32].
        let hyper = GpuTensor::empty(rec.ctx, &[b, MASK_TOKENS, DIM / 8])?;
        let token = GpuTensor::empty(rec.ctx, &[b, DIM])?;
        for (i, mlp) in self.hyper.iter().enumerate() {
            let pick = RowMap {
                rows: b,
                cols: DIM,
                in_stride: t,
                in_offset: 1 + i,
                out_stride: 1,
                out_offset: 0,
            };
            copy_rows(rec, &hs, &token, pick)?;
            let h = mlp.forward(rec, &token)?;
            let place = RowMap {
                rows: b,
                cols: DIM / 8,
                in_stride: 1,
                in_offset: 0,
                out_stride: MASK_TOKENS,
                out_offset: i,
            };
            copy_rows(rec, &h, &hyper, place)?;
        }
        let masks = mask_product(rec, &hyper, &up, b)?;
        drop(up);
        // IoU head on the IoU token.
        let pick = RowMap {
            rows: b,
            cols: DIM,
            in_stride: t,
            in_offset: 0,
            out_stride: 1,
            out_offset: 0,
        };
        copy_rows(rec, &hs, &token, pick)?;
        let iou = self.iou_head.forward(rec, &token)?;
        Ok(DecoderOutput { masks, iou })
    }
}

/// `hyper` `[b, 4, 32]` × `up` `[b, 256², 32]` → masks `[b, 4, 256, 256]`.
pub fn mask_product(
    rec: &mut Recorder,
    hyper: &GpuTensor,
    up: &GpuTensor,
    b: usize,
) -> Result<GpuTensor> {
    let pixels = LOW_RES * LOW_RES;
    let c = DIM / 8;
    if hyper.len() != b * MASK_TOKENS * c || up.len() != b * pixels * c {
        return Err(Error::Model(format!(
            "mask product: hyper {:?}, upscaled {:?} for {b} prompts",
            hyper.shape(),
            up.shape()
        )));
    }
    let out = GpuTensor::empty(rec.ctx, &[b, MASK_TOKENS, LOW_RES, LOW_RES])?;
    rec.dispatch_1d(
        "mask_product",
        &[b, pixels, c, MASK_TOKENS].map(|v| v as u32),
        &[hyper.buffer(), up.buffer(), out.buffer()],
        b * pixels,
        256,
    )?;
    Ok(out)
}
