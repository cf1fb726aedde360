//! MobileSAM's image encoder, TinyViT-5M (MobileSAM `tiny_vit_sam.py`; TinyViT paper §3), on
//! the device: `[3, 1024, 1024]` normalised image → `[64·64, 256]` channels-last embedding
//! (the decoder's token layout; [`GpuTinyVit::embed`] also returns it as `(256, 64, 64)`).
//!
//! Stages: `PatchEmbed` (two 3×3 stride-2 Conv-BN, GELU between) → `ConvLayer` (2 MBConv,
//! then PatchMerging) → three `BasicLayer`s of TinyViT blocks (window attention + residual,
//! local depthwise conv, MLP + residual; PatchMerging between) → neck (1×1 conv,
//! LayerNorm2d, 3×3 conv, LayerNorm2d). BatchNorm is folded into every Conv-BN at load.
//! Everything stays on the device; only the embedding is read back.
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext, w: &camsam::sam::weights::Weights,
//! #               image_chw: &[f32]) -> camsam::Result<()> {
//! let enc = camsam::sam::gpu::tiny_vit::GpuTinyVit::load(ctx, w)?;
//! let emb = enc.embed(ctx, image_chw).await?; // 256·64·64 values, channel-major
//! # Ok(()) }
//! ```

use super::layers::{Linear, Norm};
use super::weights::WeightsExt;
use crate::gpu::context::{GpuContext, Recorder};
use crate::gpu::conv::{conv2d, depthwise3x3, fold_batch_norm, taps_last, taps_major};
use crate::gpu::matmul::{linear, Epilogue};
use crate::gpu::window_attention::{
    bias_table, keyed_bias, pad_token_qkv, window_attention, HEAD_DIM,
};
use crate::gpu::GpuTensor;
use crate::sam::weights::Weights;
use crate::{Error, Result};

/// Input side of the encoder.
pub const IMG_SIZE: usize = 1024;
/// Side of the embedding grid.
pub const EMBED_SIDE: usize = 64;
/// Channels of the embedding.
pub const EMBED_DIM: usize = 256;

const EMBED_DIMS: [usize; 4] = [64, 128, 160, 320];
const DEPTHS: [usize; 4] = [2, 2, 6, 2];
const NUM_HEADS: [usize; 4] = [2, 4, 5, 10];
const WINDOW_SIZES: [usize; 4] = [7, 7, 14, 7];
const MBCONV_EXPAND: usize = 4;
/// The image's RGB channels and a zero fourth ([`GpuTinyVit::upload_image`]).
const IMAGE_CHANNELS: usize = 4;
const MLP_RATIO: usize = 4;

/// A convolution with BatchNorm folded in: weight `[cout, k·k·cin]` taps-last (depthwise:
/// tap-major `[9, c]`), bias `[cout]`.
struct ConvBn {
    w: GpuTensor,
    b: GpuTensor,
}

impl ConvBn {
    /// A dense k×k convolution (1×1 ones run as a matmul): the weight is stored taps-last
    /// `[cout, k, k, cin_padded]`, as [`conv2d`] reads it.
    fn load(
        ctx: &GpuContext,
        wts: &Weights,
        prefix: &str,
        (cout, cin, k): (usize, usize, usize),
        cin_padded: usize,
    ) -> Result<Self> {
        let (w, b) = Self::folded(wts, prefix, (cout, cin, k))?;
        Ok(Self {
            w: GpuTensor::upload_weight(
                ctx,
                &[cout, k * k * cin_padded],
                &taps_last(&w, (cout, cin, k), cin_padded)?,
            )?,
            b: GpuTensor::upload(ctx, &[cout], &b)?,
        })
    }

    /// A depthwise 3×3 convolution: the weight is stored tap-major `[9, c]`.
    fn load_depthwise(ctx: &GpuContext, wts: &Weights, prefix: &str, c: usize) -> Result<Self> {
        let (w, b) = Self::folded(wts, prefix, (c, 1, 3))?;
        Ok(Self {
            w: GpuTensor::upload(ctx, &[9, c], &taps_major(&w, c)?)?,
            b: GpuTensor::upload(ctx, &[c], &b)?,
        })
    }

    /// The weight `[cout, cin·k·k]` and bias with BatchNorm folded in.
    fn folded(
        wts: &Weights,
        prefix: &str,
        (cout, cin_per_group, k): (usize, usize, usize),
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let w = wts.f32s(&format!("{prefix}.c.weight"), &[cout, cin_per_group, k, k])?;
        let bn = |s: &str| wts.f32s(&format!("{prefix}.bn.{s}"), &[cout]);
        fold_batch_norm(
            &w,
            None,
            &bn("weight")?,
            &bn("bias")?,
            &bn("running_mean")?,
            &bn("running_var")?,
            1e-5,
        )
    }

    /// As a 1×1 convolution (matmul) on `[hw, cin]`.
    fn pointwise(&self, rec: &mut Recorder, x: &GpuTensor, epi: Epilogue) -> Result<GpuTensor> {
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

    fn depthwise(
        &self,
        rec: &mut Recorder,
        x: &GpuTensor,
        hw: (usize, usize),
        stride: usize,
        gelu: bool,
    ) -> Result<GpuTensor> {
        depthwise3x3(rec, x, hw, &self.w, &self.b, stride, gelu)
    }
}

fn gelu() -> Epilogue<'static> {
    Epilogue {
        gelu: true,
        ..Default::default()
    }
}

struct MbConv {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
}

impl MbConv {
    fn forward(&self, rec: &mut Recorder, x: &GpuTensor, hw: (usize, usize)) -> Result<GpuTensor> {
        let h = self.conv1.pointwise(rec, x, gelu())?;
        let h = self.conv2.depthwise(rec, &h, hw, 1, true)?;
        self.conv3.pointwise(
            rec,
            &h,
            Epilogue {
                residual: Some(x),
                gelu: true,
                ..Default::default()
            },
        )
    }
}

struct PatchMerging {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    stride: usize,
}

impl PatchMerging {
    fn load(ctx: &GpuContext, w: &Weights, prefix: &str, dim: usize, out: usize) -> Result<Self> {
        Ok(Self {
            conv1: ConvBn::load(ctx, w, &format!("{prefix}.conv1"), (out, dim, 1), dim)?,
            conv2: ConvBn::load_depthwise(ctx, w, &format!("{prefix}.conv2"), out)?,
            conv3: ConvBn::load(ctx, w, &format!("{prefix}.conv3"), (out, out, 1), out)?,
            // As the official code: no spatial reduction into the last stages' widths.
            stride: if [320, 448, 576].contains(&out) { 1 } else { 2 },
        })
    }

    /// Returns the output and its `(h, w)`.
    fn forward(
        &self,
        rec: &mut Recorder,
        x: &GpuTensor,
        hw: (usize, usize),
    ) -> Result<(GpuTensor, (usize, usize))> {
        let h = self.conv1.pointwise(rec, x, gelu())?;
        let h = self.conv2.depthwise(rec, &h, hw, self.stride, true)?;
        let out_hw = (
            crate::gpu::conv::out_size(hw.0, 3, self.stride, 1),
            crate::gpu::conv::out_size(hw.1, 3, self.stride, 1),
        );
        Ok((self.conv3.pointwise(rec, &h, Epilogue::default())?, out_hw))
    }
}

struct TinyVitBlock {
    norm: Norm,
    qkv: Linear,
    pad_qkv: GpuTensor,
    bias: GpuTensor,
    proj: Linear,
    local_conv: ConvBn,
    mlp_norm: Norm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    ws: usize,
}

impl TinyVitBlock {
    fn load(
        ctx: &GpuContext,
        w: &Weights,
        prefix: &str,
        dim: usize,
        heads: usize,
        ws: usize,
    ) -> Result<Self> {
        if dim != heads * HEAD_DIM {
            return Err(Error::Model(format!(
                "TinyViT block {prefix}: {dim} channels / {heads} heads is not {HEAD_DIM}"
            )));
        }
        let qkv_out = 3 * dim;
        let a = format!("{prefix}.attn");
        let norm_beta = w.f32s(&format!("{a}.norm.bias"), &[dim])?;
        let qkv_w = w.f32s(&format!("{a}.qkv.weight"), &[qkv_out, dim])?;
        let qkv_b = w.f32s(&format!("{a}.qkv.bias"), &[qkv_out])?;
        let pad = pad_token_qkv(&qkv_w, &qkv_b, &norm_beta)?;
        let n_offsets = w
            .dims(&format!("{a}.attention_biases"))
            .and_then(|d| d.get(1).copied())
            .unwrap_or(0);
        let biases = w.f32s(&format!("{a}.attention_biases"), &[heads, n_offsets])?;
        let table = keyed_bias(&bias_table(&biases, heads, ws)?, heads, ws * ws)?;
        Ok(Self {
            norm: Norm::load(ctx, w, &format!("{a}.norm"), dim, 1e-5)?,
            qkv: Linear {
                w: GpuTensor::upload_weight(ctx, &[qkv_out, dim], &qkv_w)?,
                b: GpuTensor::upload(ctx, &[qkv_out], &qkv_b)?,
            },
            pad_qkv: GpuTensor::upload(ctx, &[qkv_out], &pad)?,
            bias: GpuTensor::upload(ctx, &[table.len()], &table)?,
            proj: Linear::load(ctx, w, &format!("{a}.proj"), dim, dim)?,
            local_conv: ConvBn::load_depthwise(ctx, w, &format!("{prefix}.local_conv"), dim)?,
            mlp_norm: Norm::load(ctx, w, &format!("{prefix}.mlp.norm"), dim, 1e-5)?,
            fc1: Linear::load(ctx, w, &format!("{prefix}.mlp.fc1"), dim * MLP_RATIO, dim)?,
            fc2: Linear::load(ctx, w, &format!("{prefix}.mlp.fc2"), dim, dim * MLP_RATIO)?,
            heads,
            ws,
        })
    }

    fn forward(&self, rec: &mut Recorder, x: &GpuTensor, hw: (usize, usize)) -> Result<GpuTensor> {
        let n = self.norm.forward(rec, x, false)?;
        let qkv = self.qkv.forward(rec, &n, Epilogue::default())?;
        drop(n);
        let att = window_attention(
            rec,
            &qkv,
            &self.pad_qkv,
            &self.bias,
            hw,
            self.ws,
            self.heads,
        )?;
        drop(qkv);
        let x1 = self.proj.forward(
            rec,
            &att,
            Epilogue {
                residual: Some(x),
                ..Default::default()
            },
        )?;
        drop(att);
        let x2 = self.local_conv.depthwise(rec, &x1, hw, 1, false)?;
        drop(x1);
        let n2 = self.mlp_norm.forward(rec, &x2, false)?;
        let h = self.fc1.forward(rec, &n2, gelu())?;
        drop(n2);
        self.fc2.forward(
            rec,
            &h,
            Epilogue {
                residual: Some(&x2),
                ..Default::default()
            },
        )
    }
}

struct BasicLayer {
    blocks: Vec<TinyVitBlock>,
    downsample: Option<PatchMerging>,
}

/// TinyViT-5M on the device, weights uploaded once.
pub struct GpuTinyVit {
    stem1: ConvBn,
    stem2: ConvBn,
    layer0: Vec<MbConv>,
    layer0_down: PatchMerging,
    layers: Vec<BasicLayer>,
    neck0: GpuTensor,
    neck1: Norm,
    neck2: GpuTensor,
    neck3: Norm,
}

impl GpuTinyVit {
    /// Uploads the `image_encoder.*` tensors (BatchNorm folded).
    pub fn load(ctx: &GpuContext, w: &Weights) -> Result<Self> {
        let p = "image_encoder";
        let d = EMBED_DIMS;
        let stem1 = ConvBn::load(
            ctx,
            w,
            &format!("{p}.patch_embed.seq.0"),
            (d[0] / 2, 3, 3),
            IMAGE_CHANNELS,
        )?;
        let stem2 = ConvBn::load(
            ctx,
            w,
            &format!("{p}.patch_embed.seq.2"),
            (d[0], d[0] / 2, 3),
            d[0] / 2,
        )?;
        let hidden = d[0] * MBCONV_EXPAND;
        let layer0 = (0..DEPTHS[0])
            .map(|i| {
                let b = format!("{p}.layers.0.blocks.{i}");
                Ok(MbConv {
                    conv1: ConvBn::load(ctx, w, &format!("{b}.conv1"), (hidden, d[0], 1), d[0])?,
                    conv2: ConvBn::load_depthwise(ctx, w, &format!("{b}.conv2"), hidden)?,
                    conv3: ConvBn::load(ctx, w, &format!("{b}.conv3"), (d[0], hidden, 1), hidden)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let layer0_down =
            PatchMerging::load(ctx, w, &format!("{p}.layers.0.downsample"), d[0], d[1])?;
        let mut layers = Vec::new();
        for i in 1..4 {
            let blocks = (0..DEPTHS[i])
                .map(|j| {
                    TinyVitBlock::load(
                        ctx,
                        w,
                        &format!("{p}.layers.{i}.blocks.{j}"),
                        d[i],
                        NUM_HEADS[i],
                        WINDOW_SIZES[i],
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let downsample = if i < 3 {
                Some(PatchMerging::load(
                    ctx,
                    w,
                    &format!("{p}.layers.{i}.downsample"),
                    d[i],
                    d[i + 1],
                )?)
            } else {
                None
            };
            layers.push(BasicLayer { blocks, downsample });
        }
        let neck0 = w.f32s(&format!("{p}.neck.0.weight"), &[EMBED_DIM, d[3], 1, 1])?;
        let neck2 = w.f32s(&format!("{p}.neck.2.weight"), &[EMBED_DIM, EMBED_DIM, 3, 3])?;
        Ok(Self {
            stem1,
            stem2,
            layer0,
            layer0_down,
            layers,
            neck0: GpuTensor::upload_weight(ctx, &[EMBED_DIM, d[3]], &neck0)?,
            neck1: Norm::load(ctx, w, &format!("{p}.neck.1"), EMBED_DIM, 1e-6)?,
            neck2: GpuTensor::upload_weight(
                ctx,
                &[EMBED_DIM, EMBED_DIM * 9],
                &taps_last(&neck2, (EMBED_DIM, EMBED_DIM, 3), EMBED_DIM)?,
            )?,
            neck3: Norm::load(ctx, w, &format!("{p}.neck.3"), EMBED_DIM, 1e-6)?,
        })
    }

    /// Uploads a normalised, padded `[3, 1024, 1024]` image (channel-major) as the encoder's
    /// input: channels-last with a fourth, zero channel (`[1024·1024, 4]`), so every pixel is
    /// one texel for the CPU adapters' kernels.
    pub fn upload_image(ctx: &GpuContext, image_chw: &[f32]) -> Result<GpuTensor> {
        let hw = IMG_SIZE * IMG_SIZE;
        if image_chw.len() != 3 * hw {
            return Err(Error::Model(format!(
                "image encoder: {} input values, expected 3×{IMG_SIZE}×{IMG_SIZE}",
                image_chw.len()
            )));
        }
        let hwc = chw_to_tokens(image_chw, hw, IMAGE_CHANNELS);
        GpuTensor::upload(ctx, &[hw, IMAGE_CHANNELS], &hwc)
    }

    /// Records the encoder on `image` (from [`GpuTinyVit::upload_image`]); returns the
    /// embedding as `[4096, 256]` tokens, still on the device.
    pub fn forward(&self, rec: &mut Recorder, image: &GpuTensor) -> Result<GpuTensor> {
        if image.len() != IMAGE_CHANNELS * IMG_SIZE * IMG_SIZE {
            return Err(Error::Model(format!(
                "image encoder: input {:?}, expected [{IMG_SIZE}·{IMG_SIZE}, {IMAGE_CHANNELS}]",
                image.shape()
            )));
        }
        let s1 = IMG_SIZE / 2;
        let x = conv2d(
            rec,
            image,
            (IMAGE_CHANNELS, IMG_SIZE, IMG_SIZE),
            &self.stem1.w,
            3,
            2,
            1,
            Epilogue {
                bias: Some(&self.stem1.b),
                gelu: true,
                ..Default::default()
            },
        )?;
        let mut hw = (s1 / 2, s1 / 2);
        let mut x = conv2d(
            rec,
            &x,
            (EMBED_DIMS[0] / 2, s1, s1),
            &self.stem2.w,
            3,
            2,
            1,
            Epilogue {
                bias: Some(&self.stem2.b),
                ..Default::default()
            },
        )?;
        for block in &self.layer0 {
            x = block.forward(rec, &x, hw)?;
        }
        (x, hw) = self.layer0_down.forward(rec, &x, hw)?;
        for layer in &self.layers {
            for block in &layer.blocks {
                x = block.forward(rec, &x, hw)?;
            }
            if let Some(down) = &layer.downsample {
                (x, hw) = down.forward(rec, &x, hw)?;
            }
        }
        if hw != (EMBED_SIDE, EMBED_SIDE) {
            return Err(Error::Model(format!(
                "image encoder: ended at {hw:?}, expected 64×64"
            )));
        }
        let x = linear(rec, &x, &self.neck0, Epilogue::default())?;
        let x = self.neck1.forward(rec, &x, false)?;
        let x = conv2d(
            rec,
            &x,
            (EMBED_DIM, EMBED_SIDE, EMBED_SIDE),
            &self.neck2,
            3,
            1,
            1,
            Epilogue::default(),
        )?;
        self.neck3.forward(rec, &x, false)
    }

    /// Runs the encoder on a normalised, padded `[3, 1024, 1024]` image (channel-major) and
    /// reads back the embedding as `(256, 64, 64)` channel-major, like the official model.
    pub async fn embed(&self, ctx: &GpuContext, image_chw: &[f32]) -> Result<Vec<f32>> {
        let image = Self::upload_image(ctx, image_chw)?;
        let mut rec = ctx.recorder();
        let tokens = self.forward(&mut rec, &image)?;
        rec.submit();
        let hwc = tokens.read(ctx).await?;
        Ok(tokens_to_chw(&hwc, EMBED_SIDE * EMBED_SIDE, EMBED_DIM))
    }
}

/// `[c, hw]` channel-major → `[hw, c_out]` channels-last; channels past the input's
/// (`c_out` > c) are zero.
pub fn chw_to_tokens(chw: &[f32], hw: usize, c_out: usize) -> Vec<f32> {
    let mut out = vec![0f32; hw * c_out];
    for (c, plane) in chw.chunks_exact(hw).enumerate().take(c_out) {
        for (p, &v) in plane.iter().enumerate() {
            out[p * c_out + c] = v;
        }
    }
    out
}

/// `[hw, c]` channels-last → `[c, hw]` channel-major.
pub fn tokens_to_chw(hwc: &[f32], hw: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0f32; hw * c];
    for (p, row) in hwc.chunks_exact(c).enumerate().take(hw) {
        for (ch, &v) in row.iter().enumerate() {
            out[ch * hw + p] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chw_to_tokens_pads_channels_and_inverts_tokens_to_chw() {
        // 2 channels × 3 pixels.
        let chw = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0];
        assert_eq!(
            chw_to_tokens(&chw, 3, 2),
            vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]
        );
        assert_eq!(
            chw_to_tokens(&chw, 3, 4),
            vec![1.0, 10.0, 0.0, 0.0, 2.0, 20.0, 0.0, 0.0, 3.0, 30.0, 0.0, 0.0]
        );
        assert_eq!(
            tokens_to_chw(&chw_to_tokens(&chw, 3, 2), 3, 2),
            chw.to_vec()
        );
    }
}
