//! SAM's two-way transformer (SAM `modeling/transformer.py`; SAM paper §3, Fig. 14) on the
//! device, batched over prompts: per block, token self-attention, token→image
//! cross-attention, an MLP on the tokens, image→token cross-attention, each followed by a
//! residual add (fused into the output projection's matmul) and a LayerNorm; then a final
//! token→image attention. Positional encodings are re-added before every attention.
//!
//! ```no_run
//! # fn demo(ctx: &camsam::gpu::GpuContext, w: &camsam::sam::weights::Weights) -> camsam::Result<()> {
//! let t = camsam::gpu::two_way_transformer::GpuTwoWayTransformer::load(ctx, w)?;
//! # Ok(()) }
//! ```

use super::add::add;
use super::attention::attention;
use super::context::{GpuContext, Recorder};
use super::layers::{Linear, Norm};
use super::matmul::Epilogue;
use super::GpuTensor;
use crate::sam::weights::Weights;
use crate::Result;

const DIM: usize = 256;
const HEADS: usize = 8;
const MLP_DIM: usize = 2048;
const DEPTH: usize = 2;

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

impl Attention {
    fn load(ctx: &GpuContext, w: &Weights, prefix: &str, downsample: usize) -> Result<Self> {
        let inner = DIM / downsample;
        Ok(Self {
            q: Linear::load(ctx, w, &format!("{prefix}.q_proj"), inner, DIM)?,
            k: Linear::load(ctx, w, &format!("{prefix}.k_proj"), inner, DIM)?,
            v: Linear::load(ctx, w, &format!("{prefix}.v_proj"), inner, DIM)?,
            out: Linear::load(ctx, w, &format!("{prefix}.out_proj"), DIM, inner)?,
        })
    }

    /// `out_proj(attn(q_proj(q), k_proj(k), v_proj(v))) (+ residual)`; inputs `[b, t, 256]`.
    fn forward(
        &self,
        rec: &mut Recorder,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        residual: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        let q = self.q.forward(rec, q, Epilogue::default())?;
        let k = self.k.forward(rec, k, Epilogue::default())?;
        let v = self.v.forward(rec, v, Epilogue::default())?;
        let o = attention(rec, &q, &k, &v, HEADS)?;
        drop((q, k, v));
        self.out.forward(
            rec,
            &o,
            Epilogue {
                residual,
                ..Default::default()
            },
        )
    }
}

struct Block {
    self_attn: Attention,
    norm1: Norm,
    t2i: Attention,
    norm2: Norm,
    lin1: Linear,
    lin2: Linear,
    norm3: Norm,
    norm4: Norm,
    i2t: Attention,
    skip_first_layer_pe: bool,
}

/// The two-way transformer's parameters on the device.
pub struct GpuTwoWayTransformer {
    blocks: Vec<Block>,
    final_t2i: Attention,
    norm_final: Norm,
}

impl GpuTwoWayTransformer {
    /// Uploads `mask_decoder.transformer.*`.
    pub fn load(ctx: &GpuContext, w: &Weights) -> Result<Self> {
        let p = "mask_decoder.transformer";
        let norm = |name: String| Norm::load(ctx, w, &name, DIM, 1e-5);
        let blocks = (0..DEPTH)
            .map(|i| {
                let b = format!("{p}.layers.{i}");
                Ok(Block {
                    self_attn: Attention::load(ctx, w, &format!("{b}.self_attn"), 1)?,
                    norm1: norm(format!("{b}.norm1"))?,
                    t2i: Attention::load(ctx, w, &format!("{b}.cross_attn_token_to_image"), 2)?,
                    norm2: norm(format!("{b}.norm2"))?,
                    lin1: Linear::load(ctx, w, &format!("{b}.mlp.lin1"), MLP_DIM, DIM)?,
                    lin2: Linear::load(ctx, w, &format!("{b}.mlp.lin2"), DIM, MLP_DIM)?,
                    norm3: norm(format!("{b}.norm3"))?,
                    norm4: norm(format!("{b}.norm4"))?,
                    i2t: Attention::load(ctx, w, &format!("{b}.cross_attn_image_to_token"), 2)?,
                    skip_first_layer_pe: i == 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            blocks,
            final_t2i: Attention::load(ctx, w, &format!("{p}.final_attn_token_to_image"), 2)?,
            norm_final: norm(format!("{p}.norm_final_attn"))?,
        })
    }

    /// `tokens` `[b, t, 256]` (also the query positional encoding), `keys` `[b, 4096, 256]`
    /// (image embedding + dense prompt), `key_pe` `[4096, 256]` (shared by the batch) →
    /// `(queries [b, t, 256], keys [b, 4096, 256])`.
    pub fn forward(
        &self,
        rec: &mut Recorder,
        tokens: &GpuTensor,
        keys: GpuTensor,
        key_pe: &GpuTensor,
    ) -> Result<(GpuTensor, GpuTensor)> {
        let qs = tokens.shape().to_vec();
        let ks = keys.shape().to_vec();
        let mut queries: Option<GpuTensor> = None;
        let mut keys = keys;
        for blk in &self.blocks {
            let q_cur = queries.as_ref().unwrap_or(tokens);
            let after_self = if blk.skip_first_layer_pe {
                blk.self_attn.forward(rec, q_cur, q_cur, q_cur, None)?
            } else {
                let q = add(rec, q_cur, tokens, &qs)?;
                blk.self_attn.forward(rec, &q, &q, q_cur, Some(q_cur))?
            };
            let q1 = blk.norm1.forward(rec, &after_self, false)?;
            drop(after_self);
            // Tokens attend to the image.
            let q = add(rec, &q1, tokens, &qs)?;
            let k = add(rec, &keys, key_pe, &ks)?;
            let a = blk.t2i.forward(rec, &q, &k, &keys, Some(&q1))?;
            let q2 = blk.norm2.forward(rec, &a, false)?;
            drop((a, q, q1));
            // MLP.
            let h = blk.lin1.forward(
                rec,
                &q2,
                Epilogue {
                    relu: true,
                    ..Default::default()
                },
            )?;
            let m = blk.lin2.forward(
                rec,
                &h,
                Epilogue {
                    residual: Some(&q2),
                    ..Default::default()
                },
            )?;
            drop(h);
            let q3 = blk.norm3.forward(rec, &m, false)?;
            drop((m, q2));
            // The image attends to the tokens (keys are unchanged since `k` was formed).
            let q = add(rec, &q3, tokens, &qs)?;
            let a = blk.i2t.forward(rec, &k, &q, &q3, Some(&keys))?;
            drop((k, q));
            keys = blk.norm4.forward(rec, &a, false)?;
            queries = Some(q3);
        }
        let q_cur = queries.as_ref().unwrap_or(tokens);
        let q = add(rec, q_cur, tokens, &qs)?;
        let k = add(rec, &keys, key_pe, &ks)?;
        let a = self.final_t2i.forward(rec, &q, &k, &keys, Some(q_cur))?;
        let out = self.norm_final.forward(rec, &a, false)?;
        Ok((out, keys))
    }
}
