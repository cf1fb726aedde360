//! SAM's prompt encoder on the device (SAM `modeling/prompt_encoder.py`; SAM paper §3):
//! random Fourier positional encoding of points, box corners and the dense 64×64 grid
//! (`prompt_encoding.wgsl`), the learned point-type embeddings, and the mask-input
//! downscaling (two 2×2 stride-2 convs with LayerNorm2d + GELU, then a 1×1 conv).
//!
//! Points are given in the input frame (the resized image); they are shifted to pixel
//! centres (+0.5) and normalised by the 1024² model input, as the official code does.
//!
//! ```no_run
//! # fn demo(ctx: &camsam::gpu::GpuContext, w: &camsam::sam::weights::Weights) -> camsam::Result<()> {
//! let pe = camsam::sam::gpu::prompt_encoder::GpuPromptEncoder::load(ctx, w)?;
//! let grid = pe.dense_pe(); // [4096, 256], the decoder's key positional encoding
//! # Ok(()) }
//! ```

use super::layers::{Linear, Norm};
use super::weights::WeightsExt;
use crate::gpu::context::{GpuContext, Recorder};
use crate::gpu::conv::{conv2d, taps_last};
use crate::gpu::matmul::Epilogue;
use crate::gpu::GpuTensor;
use crate::sam::predictor::{Prompt, LOW_RES};
use crate::sam::weights::Weights;
use crate::{Error, Result};

/// Embedding width of prompts and image tokens.
pub const DIM: usize = 256;
/// Side of the model input the coordinates are normalised by.
const INPUT_SIDE: f64 = 1024.0;
/// Side of the image-embedding grid.
const GRID: usize = 64;

/// The prompt encoder's parameters on the device, and the dense positional encoding.
pub struct GpuPromptEncoder {
    gauss: GpuTensor,
    /// Rows: not_a_point, point_embeddings[0..4].
    table: GpuTensor,
    pub(crate) no_mask: GpuTensor,
    down0: (GpuTensor, GpuTensor),
    norm1: Norm,
    down3: (GpuTensor, GpuTensor),
    norm4: Norm,
    down6: Linear,
    dense_pe: GpuTensor,
}

/// The sparse tokens of one prompt: normalised coordinates and labels (−1 padding, 0/1
/// points, 2/3 box corners), in the official order (points, padding point, box corners).
pub fn sparse_points(prompt: &Prompt) -> Result<(Vec<f32>, Vec<f32>)> {
    if prompt.points.len() != prompt.labels.len() {
        return Err(Error::input(
            "prompt",
            format!(
                "{} points but {} labels; expected one label per point",
                prompt.points.len(),
                prompt.labels.len()
            ),
        ));
    }
    let mut coords = Vec::new();
    let mut labels = Vec::new();
    let norm = |v: f64| ((v + 0.5) / INPUT_SIDE) as f32;
    for (&(x, y), &l) in prompt.points.iter().zip(&prompt.labels) {
        if !(l == 0 || l == 1) {
            return Err(Error::input(
                "prompt",
                format!("point label {l}; expected 1 (foreground) or 0 (background)"),
            ));
        }
        coords.extend([norm(x), norm(y)]);
        labels.push(l as f32);
    }
    match prompt.bbox {
        Some([x0, y0, x1, y1]) => {
            coords.extend([norm(x0), norm(y0), norm(x1), norm(y1)]);
            labels.extend([2.0, 3.0]);
        }
        None if !prompt.points.is_empty() => {
            coords.extend([0.0, 0.0]);
            labels.push(-1.0);
        }
        None => {}
    }
    Ok((coords, labels))
}

impl GpuPromptEncoder {
    /// Uploads the `prompt_encoder.*` tensors and computes the dense positional encoding.
    pub fn load(ctx: &GpuContext, w: &Weights) -> Result<Self> {
        let p = "prompt_encoder";
        let gauss = w.f32s(
            &format!("{p}.pe_layer.positional_encoding_gaussian_matrix"),
            &[2, DIM / 2],
        )?;
        let mut table = w.f32s(&format!("{p}.not_a_point_embed.weight"), &[1, DIM])?;
        for i in 0..4 {
            table.extend(w.f32s(&format!("{p}.point_embeddings.{i}.weight"), &[1, DIM])?);
        }
        let conv = |name: &str, cout: usize, cin: usize| -> Result<(GpuTensor, GpuTensor)> {
            let wt = w.f32s(
                &format!("{p}.mask_downscaling.{name}.weight"),
                &[cout, cin, 2, 2],
            )?;
            let b = w.f32s(&format!("{p}.mask_downscaling.{name}.bias"), &[cout])?;
            Ok((
                GpuTensor::upload_weight(
                    ctx,
                    &[cout, cin * 4],
                    &taps_last(&wt, (cout, cin, 2), cin)?,
                )?,
                GpuTensor::upload(ctx, &[cout], &b)?,
            ))
        };
        let down6w = w.f32s(&format!("{p}.mask_downscaling.6.weight"), &[DIM, 16, 1, 1])?;
        let down6b = w.f32s(&format!("{p}.mask_downscaling.6.bias"), &[DIM])?;
        let gauss = GpuTensor::upload(ctx, &[2, DIM / 2], &gauss)?;
        // The dense grid: token (y, x) at ((x + 0.5) / 64, (y + 0.5) / 64).
        let coords: Vec<f32> = (0..GRID * GRID)
            .flat_map(|i| {
                let (y, x) = (i / GRID, i % GRID);
                [
                    (x as f32 + 0.5) / GRID as f32,
                    (y as f32 + 0.5) / GRID as f32,
                ]
            })
            .collect();
        let coords = GpuTensor::upload(ctx, &[GRID * GRID, 2], &coords)?;
        let table = GpuTensor::upload(ctx, &[5, DIM], &table)?;
        let mut rec = ctx.recorder();
        let dense_pe = encode(
            &mut rec,
            &coords,
            &coords,
            &gauss,
            &table,
            &table,
            (1, GRID * GRID, 0),
            false,
        )?;
        rec.submit();
        Ok(Self {
            gauss,
            table,
            no_mask: GpuTensor::upload(
                ctx,
                &[DIM],
                &w.f32s(&format!("{p}.no_mask_embed.weight"), &[1, DIM])?,
            )?,
            down0: conv("0", 4, 1)?,
            norm1: Norm::load(ctx, w, &format!("{p}.mask_downscaling.1"), 4, 1e-6)?,
            down3: conv("3", 16, 4)?,
            norm4: Norm::load(ctx, w, &format!("{p}.mask_downscaling.4"), 16, 1e-6)?,
            down6: Linear {
                w: GpuTensor::upload_weight(ctx, &[DIM, 16], &down6w)?,
                b: GpuTensor::upload(ctx, &[DIM], &down6b)?,
            },
            dense_pe,
        })
    }

    /// The dense positional encoding of the 64×64 grid, `[4096, 256]` (`get_dense_pe`).
    pub fn dense_pe(&self) -> &GpuTensor {
        &self.dense_pe
    }

    /// Decoder tokens `[b, n_fixed + sparse, 256]` for a batch of prompts that all have the
    /// same number of sparse tokens: `fixed` (`[n_fixed, 256]`, the IoU and mask tokens)
    /// followed by each prompt's point and box embeddings.
    pub fn tokens(
        &self,
        rec: &mut Recorder,
        prompts: &[&Prompt],
        fixed: &GpuTensor,
    ) -> Result<GpuTensor> {
        let mut coords = Vec::new();
        let mut labels = Vec::new();
        let mut sparse = None;
        for p in prompts {
            let (c, l) = sparse_points(p)?;
            if *sparse.get_or_insert(l.len()) != l.len() {
                return Err(Error::Model("prompt batch mixes token counts".into()));
            }
            coords.extend(c);
            labels.extend(l);
        }
        let sparse = sparse.unwrap_or(0);
        let n_fixed = fixed.len() / DIM;
        if labels.is_empty() {
            // No sparse prompt: a placeholder keeps the bindings non-empty.
            coords = vec![0.0; 2];
            labels = vec![-1.0];
        }
        let coords = GpuTensor::upload(rec.ctx, &[coords.len() / 2, 2], &coords)?;
        let labels = GpuTensor::upload(rec.ctx, &[labels.len()], &labels)?;
        encode(
            rec,
            &coords,
            &labels,
            &self.gauss,
            &self.table,
            fixed,
            (prompts.len(), n_fixed + sparse, n_fixed),
            true,
        )
    }

    /// Dense prompt embeddings `[b·4096, 256]` of a batch of 256×256 mask inputs
    /// (`[b, 256, 256]` logits): conv 2×2/2 → LayerNorm2d → GELU → conv 2×2/2 → LayerNorm2d →
    /// GELU → conv 1×1. A batch is one tall image: 2×2 stride-2 windows never straddle prompts.
    pub fn embed_masks(
        &self,
        rec: &mut Recorder,
        masks: &GpuTensor,
        b: usize,
    ) -> Result<GpuTensor> {
        if masks.len() != b * LOW_RES * LOW_RES {
            return Err(Error::Model(format!(
                "mask input {:?} for {b} prompts",
                masks.shape()
            )));
        }
        let x = conv2d(
            rec,
            masks,
            (1, b * LOW_RES, LOW_RES),
            &self.down0.0,
            2,
            2,
            0,
            Epilogue {
                bias: Some(&self.down0.1),
                ..Default::default()
            },
        )?;
        let x = self.norm1.forward(rec, &x, true)?;
        let half = LOW_RES / 2;
        let x = conv2d(
            rec,
            &x,
            (4, b * half, half),
            &self.down3.0,
            2,
            2,
            0,
            Epilogue {
                bias: Some(&self.down3.1),
                ..Default::default()
            },
        )?;
        let x = self.norm4.forward(rec, &x, true)?;
        self.down6.forward(rec, &x, Epilogue::default())
    }
}

/// Launches `prompt_encoding.wgsl` for `(batch, tokens, n_fixed)`.
#[allow(clippy::too_many_arguments)]
fn encode(
    rec: &mut Recorder,
    coords: &GpuTensor,
    labels: &GpuTensor,
    gauss: &GpuTensor,
    table: &GpuTensor,
    fixed: &GpuTensor,
    (batch, tokens, n_fixed): (usize, usize, usize),
    use_labels: bool,
) -> Result<GpuTensor> {
    let total = batch * tokens * DIM;
    let out = GpuTensor::empty(rec.ctx, &[batch, tokens, DIM])?;
    rec.dispatch_1d(
        "prompt_encoding",
        &[
            batch,
            tokens,
            n_fixed,
            use_labels as usize,
            DIM,
            total,
            0,
            0,
        ]
        .map(|v| v as u32),
        &[
            coords.buffer(),
            labels.buffer(),
            gauss.buffer(),
            table.buffer(),
            fixed.buffer(),
            out.buffer(),
        ],
        total,
        256,
    )?;
    Ok(out)
}
