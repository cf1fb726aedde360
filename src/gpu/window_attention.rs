//! TinyViT window attention (MobileSAM `tiny_vit_sam.py`, `Attention` / `TinyViTBlock`;
//! TinyViT paper §3.1), fused into one kernel (`window_attention.wgsl`; on CPU adapters
//! `window_attention_texels.wgsl` supplying its inputs as texels): partition into
//! ws×ws windows (zero padding bottom/right), per-head `softmax(q·kᵀ/√d + B)·v` with TinyViT's
//! learned attention biases `B`, and the reverse partition with the padding cropped.
//!
//! Padding tokens are zeros *before* the block's LayerNorm, so their q/k/v are
//! `qkv(LayerNorm(0)) = W·β + b`; [`pad_token_qkv`] computes that row once at load.
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext, qkv: camsam::gpu::GpuTensor,
//! #   pad: camsam::gpu::GpuTensor, bias: camsam::gpu::GpuTensor) -> camsam::Result<()> {
//! use camsam::gpu::window_attention::window_attention;
//! let mut rec = ctx.recorder();
//! // 64×64 tokens, 14×14 windows, 5 heads of 32.
//! let out = window_attention(&mut rec, &qkv, &pad, &bias, (64, 64), 14, 5)?;
//! rec.submit();
//! # Ok(()) }
//! ```

use super::context::{MatmulKernel, Recorder};
use super::GpuTensor;
use crate::{Error, Result};

/// The only head size TinyViT-5M uses (key_dim = value dim = 32 in every stage).
pub const HEAD_DIM: usize = 32;

/// Queries of one window and head per invocation of `window_attention.wgsl` (each key and
/// value row loaded serves all of them).
const QUERIES_PER_INVOCATION: usize = 4;

/// The `[heads, n, n]` bias table (n = ws²) from `attention_biases` `[heads, offsets]`, with
/// the offset indices built exactly as the official code does (first-seen order of
/// `(|Δrow|, |Δcol|)` over all point pairs).
pub fn bias_table(biases: &[f32], heads: usize, ws: usize) -> Result<Vec<f32>> {
    let points: Vec<(i64, i64)> = (0..ws as i64)
        .flat_map(|x| (0..ws as i64).map(move |y| (x, y)))
        .collect();
    let n = points.len();
    let mut offsets: Vec<(i64, i64)> = Vec::new();
    let mut idxs = Vec::with_capacity(n * n);
    for &(x1, y1) in &points {
        for &(x2, y2) in &points {
            let off = ((x2 - x1).abs(), (y2 - y1).abs());
            let i = match offsets.iter().position(|&o| o == off) {
                Some(i) => i,
                None => {
                    offsets.push(off);
                    offsets.len() - 1
                }
            };
            idxs.push(i);
        }
    }
    if biases.len() != heads * offsets.len() {
        return Err(Error::Model(format!(
            "attention_biases: {} values, expected {heads} heads × {} offsets for window {ws}",
            biases.len(),
            offsets.len()
        )));
    }
    let mut table = Vec::with_capacity(heads * n * n);
    for h in 0..heads {
        table.extend(idxs.iter().map(|&i| biases[h * offsets.len() + i]));
    }
    Ok(table)
}

/// The `[heads, n, n]` table of [`bias_table`] (query-major) in the layout
/// [`window_attention`] reads: `[heads, n (key), ⌈n/4⌉·4 (query)]`, zero for the padding
/// queries, so the biases of 4 consecutive queries for one key are adjacent (one texel).
pub fn keyed_bias(table: &[f32], heads: usize, n: usize) -> Result<Vec<f32>> {
    if table.len() != heads * n * n {
        return Err(Error::Model(format!(
            "keyed_bias: {} values for {heads} heads × {n}² keys",
            table.len()
        )));
    }
    let qpad = n.div_ceil(QUERIES_PER_INVOCATION) * QUERIES_PER_INVOCATION;
    let mut out = vec![0f32; heads * n * qpad];
    for h in 0..heads {
        for q in 0..n {
            for k in 0..n {
                out[(h * n + k) * qpad + q] = table[(h * n + q) * n + k];
            }
        }
    }
    Ok(out)
}

/// The qkv row of a padding token: `W·β + b` (LayerNorm of a zero vector is β).
pub fn pad_token_qkv(w: &[f32], b: &[f32], ln_beta: &[f32]) -> Result<Vec<f32>> {
    let c = ln_beta.len();
    if c == 0 || w.len() != b.len() * c {
        return Err(Error::Model(format!(
            "pad_token_qkv: weight of {} values for {} outputs × {c} inputs",
            w.len(),
            b.len()
        )));
    }
    Ok(b.iter()
        .enumerate()
        .map(|(o, &bo)| {
            let row = &w[o * c..(o + 1) * c];
            (row.iter()
                .zip(ln_beta)
                .map(|(&a, &x)| a as f64 * x as f64)
                .sum::<f64>()
                + bo as f64) as f32
        })
        .collect())
}

/// `qkv` `[h·w, heads·96]` → attention output `[h·w, heads·32]` in token order; `bias` as
/// [`keyed_bias`] lays it out.
pub fn window_attention(
    rec: &mut Recorder,
    qkv: &GpuTensor,
    pad_qkv: &GpuTensor,
    bias: &GpuTensor,
    (h, w): (usize, usize),
    ws: usize,
    heads: usize,
) -> Result<GpuTensor> {
    let row = heads * 3 * HEAD_DIM;
    let n = ws * ws;
    // One invocation per window, head and group of QUERIES_PER_INVOCATION queries.
    let groups = n.div_ceil(QUERIES_PER_INVOCATION);
    let keyed = heads * n * groups * QUERIES_PER_INVOCATION;
    if ws == 0 || qkv.len() != h * w * row || pad_qkv.len() != row || bias.len() != keyed {
        return Err(Error::Model(format!(
            "window_attention: qkv {:?}, pad {:?}, bias {:?} for {h}×{w} tokens, window {ws}, {heads} heads of {HEAD_DIM}",
            qkv.shape(),
            pad_qkv.shape(),
            bias.shape()
        )));
    }
    let (wh, ww) = (h.div_ceil(ws), w.div_ceil(ws));
    let total = wh * ww * heads * groups;
    let out = GpuTensor::empty(rec.ctx, &[h * w, heads * HEAD_DIM])?;
    let scale = (1.0 / (HEAD_DIM as f64).sqrt()) as f32;
    let params = [
        h as u32,
        w as u32,
        ws as u32,
        heads as u32,
        ww as u32,
        n as u32,
        total as u32,
        scale.to_bits(),
        groups as u32,
    ];
    let texels = if rec.ctx.matmul_kernel() == MatmulKernel::Blocked {
        let q = rec.texels_of(qkv.buffer(), qkv.len() / 4);
        let p = rec.texels_of(pad_qkv.buffer(), row / 4);
        let b = rec.texels_of(bias.buffer(), keyed / 4);
        q.zip(p).zip(b)
    } else {
        None
    };
    if let Some(((tq, tp), tb)) = texels {
        rec.dispatch_1d_with(
            "window_attention_tex",
            &params,
            vec![
                wgpu::BindingResource::TextureView(&tq),
                wgpu::BindingResource::TextureView(&tp),
                wgpu::BindingResource::TextureView(&tb),
                out.buffer().as_entire_binding(),
            ],
            total,
            64,
        )?;
        return Ok(out);
    }
    rec.dispatch_1d(
        "window_attention",
        &params,
        &[qkv.buffer(), pad_qkv.buffer(), bias.buffer(), out.buffer()],
        total,
        64,
    )?;
    Ok(out)
}
