//! SAM's two-way transformer (SAM `modeling/transformer.py`; SAM paper §3, Fig. 14) on the
//! device, batched over prompts: per block, token self-attention, token→image
//! cross-attention, an MLP on the tokens, image→token cross-attention, each followed by a
//! residual add (fused into the output projection's matmul) and a LayerNorm; then a final
//! token→image attention. Positional encodings are re-added before every attention.
//!
//! The cross attentions are evaluated in the order that suits the few (≈ 7) prompt tokens,
//! as on the CPU ([`crate::sam::cpu::transformer`]): the image-side projections are folded
//! into the token side, so no `4096 × 128` projection of the (per-prompt) image tokens is
//! made. Tokens → image: `softmax((q_h·Wk_h)·(x+pe)ᵀ)·x·Wv_hᵀ + bv` (the key bias adds a
//! per-row constant the softmax ignores; the value bias passes through as rows sum to 1);
//! image → tokens: scores `(x+pe)·(Wq_hᵀ·k_hᵀ) + bq_h·k_hᵀ`, output
//! `keys += A·[v_h·Wo_hᵀ]_h + bo`. Each step is a [`crate::gpu::batched_matmul`] (small inner
//! sizes, e.g. `(8·t) × 256 · 256 × 4096` per prompt) or a [`crate::gpu::softmax`]; ≈ 0.23 instead
//! of ≈ 0.54 GFLOP per attention and prompt. Token self-attention uses [`crate::gpu::attention`].
//!
//! ```no_run
//! # fn demo(ctx: &camsam::gpu::GpuContext, w: &camsam::sam::weights::Weights) -> camsam::Result<()> {
//! let t = camsam::sam::gpu::two_way_transformer::GpuTwoWayTransformer::load(ctx, w)?;
//! # Ok(()) }
//! ```

use super::layers::{Linear, Norm};
use crate::gpu::add::add;
use crate::gpu::attention::attention;
use crate::gpu::batched_matmul::{batched_matmul, Operand, Product};
use crate::gpu::context::{GpuContext, Recorder};
use crate::gpu::matmul::Epilogue;
use crate::gpu::softmax::softmax_rows;
use crate::gpu::GpuTensor;
use crate::sam::weights::Weights;
use crate::{Error, Result};

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
    /// Per head, `scale · x_h · W_h` for `x` `[b, t, I]` (a projected token tensor) and `w` an
    /// `I × 256` projection weight: `[b, 8·t, 256]`, row block `h` for head `h`.
    fn fold_heads(rec: &mut Recorder, x: &GpuTensor, w: &GpuTensor, t: usize) -> Result<GpuTensor> {
        let (b, inner) = (x.len() / (t * x.shape()[2]), x.shape()[2]);
        let dh = inner / HEADS;
        batched_matmul(
            rec,
            &Product {
                m: t,
                n: DIM,
                k: dh,
                batch: b,
                heads: HEADS,
                alpha: (1.0 / (dh as f64).sqrt()) as f32,
            },
            Operand::new(x, [t * inner, dh, inner, 1]),
            Operand::new(w, [0, dh * DIM, DIM, 1]),
            (&[b, HEADS * t, DIM], [HEADS * t * DIM, t * DIM, DIM]),
            None,
            None,
        )
    }

    /// Tokens attend to per-prompt image tokens `x` `[b, n, 256]` with keys `xpe` (`x` plus
    /// the positional encoding), both projected by this attention's `k`/`v`, evaluated without
    /// projecting the image: `softmax((q_h·Wk_h)·xpeᵀ)·x·Wv_hᵀ + bv` (the key bias adds a
    /// per-row constant to the scores, which the softmax ignores). Then `out` with `residual`.
    fn attend_to_image(
        &self,
        rec: &mut Recorder,
        q: &GpuTensor,
        x: &GpuTensor,
        xpe: &GpuTensor,
        residual: &GpuTensor,
    ) -> Result<GpuTensor> {
        let (b, t) = match q.shape() {
            &[b, t, DIM] => (b, t),
            s => return Err(Error::Model(format!("token→image attention: tokens {s:?}"))),
        };
        let n = x.len() / (b * DIM);
        let q = self.q.forward(rec, q, Epilogue::default())?;
        let inner = q.shape()[2];
        let (ht, dh) = (HEADS * t, inner / HEADS);
        let qk = Self::fold_heads(rec, &q, &self.k.w, t)?;
        drop(q);
        let one = |m, n, k| Product {
            m,
            n,
            k,
            batch: b,
            heads: 1,
            alpha: 1.0,
        };
        let s = batched_matmul(
            rec,
            &one(ht, n, DIM),
            Operand::new(&qk, [ht * DIM, 0, DIM, 1]),
            Operand::new(xpe, [n * DIM, 0, 1, DIM]),
            (&[b, ht, n], [ht * n, 0, n]),
            None,
            None,
        )?;
        drop(qk);
        let a = softmax_rows(rec, &s, n)?;
        drop(s);
        let ax = batched_matmul(
            rec,
            &one(ht, DIM, n),
            Operand::new(&a, [ht * n, 0, n, 1]),
            Operand::new(x, [n * DIM, 0, DIM, 1]),
            (&[b, ht, DIM], [ht * DIM, 0, DIM]),
            None,
            None,
        )?;
        drop(a);
        let o = batched_matmul(
            rec,
            &Product {
                m: t,
                n: dh,
                k: DIM,
                batch: b,
                heads: HEADS,
                alpha: 1.0,
            },
            Operand::new(&ax, [ht * DIM, t * DIM, DIM, 1]),
            Operand::new(&self.v.w, [0, dh * DIM, 1, DIM]),
            (&[b, t, inner], [t * inner, dh, inner]),
            Some((&self.v.b, [0, dh])),
            None,
        )?;
        drop(ax);
        self.out.forward(
            rec,
            &o,
            Epilogue {
                residual: Some(residual),
                ..Default::default()
            },
        )
    }

    /// The image attends to the tokens and the result is added to it: `keys + out(attention)`
    /// for image queries `keys + pe` (`kpe`) over the tokens `k_in` (keys, with their
    /// positional encoding) and `v_in` (values), both `[b, t, 256]`, without projecting the
    /// image: scores `kpe·(Wq_hᵀ·k_hᵀ) + bq_h·k_hᵀ`, output `A·[v_h·Wo_hᵀ]_h + bo`.
    fn image_to_tokens_add(
        &self,
        rec: &mut Recorder,
        keys: &GpuTensor,
        kpe: &GpuTensor,
        k_in: &GpuTensor,
        v_in: &GpuTensor,
    ) -> Result<GpuTensor> {
        let (b, t) = match k_in.shape() {
            &[b, t, DIM] => (b, t),
            s => return Err(Error::Model(format!("image→token attention: tokens {s:?}"))),
        };
        let n = keys.len() / (b * DIM);
        let kq = self.k.forward(rec, k_in, Epilogue::default())?;
        let inner = kq.shape()[2];
        let (ht, dh) = (HEADS * t, inner / HEADS);
        let scale = (1.0 / (dh as f64).sqrt()) as f32;
        let s = {
            let mt = Self::fold_heads(rec, &kq, &self.q.w, t)?;
            // The query bias's part of the scores, per token column: scale · bq_h·k_hᵀ.
            let c = batched_matmul(
                rec,
                &Product {
                    m: t,
                    n: 1,
                    k: dh,
                    batch: b,
                    heads: HEADS,
                    alpha: scale,
                },
                Operand::new(&kq, [t * inner, dh, inner, 1]),
                Operand::new(&self.q.b, [0, dh, 1, 0]),
                (&[b, ht], [ht, t, 1]),
                None,
                None,
            )?;
            batched_matmul(
                rec,
                &Product {
                    m: n,
                    n: ht,
                    k: DIM,
                    batch: b,
                    heads: 1,
                    alpha: 1.0,
                },
                Operand::new(kpe, [n * DIM, 0, DIM, 1]),
                Operand::new(&mt, [ht * DIM, 0, 1, DIM]),
                (&[b, n, ht], [n * ht, 0, ht]),
                Some((&c, [ht, 0])),
                None,
            )?
        };
        drop(kq);
        let a = softmax_rows(rec, &s, t)?;
        drop(s);
        let vq = self.v.forward(rec, v_in, Epilogue::default())?;
        // (v_h · Wo_hᵀ)ᵀ = Wo_h · v_hᵀ: `[b, 256, 8·t]`, contiguous along the heads' tokens for
        // the product with A.
        let nv_t = batched_matmul(
            rec,
            &Product {
                m: DIM,
                n: t,
                k: dh,
                batch: b,
                heads: HEADS,
                alpha: 1.0,
            },
            Operand::new(&self.out.w, [0, dh, inner, 1]),
            Operand::new(&vq, [t * inner, dh, 1, inner]),
            (&[b, DIM, ht], [DIM * ht, t, ht]),
            None,
            None,
        )?;
        drop(vq);
        batched_matmul(
            rec,
            &Product {
                m: n,
                n: DIM,
                k: ht,
                batch: b,
                heads: 1,
                alpha: 1.0,
            },
            Operand::new(&a, [n * ht, 0, ht, 1]),
            Operand::new(&nv_t, [DIM * ht, 0, 1, ht]),
            (keys.shape(), [n * DIM, 0, DIM]),
            Some((&self.out.b, [0, 0])),
            Some(keys),
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
            let a = blk.t2i.attend_to_image(rec, &q, &keys, &k, &q1)?;
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
            let a = blk.i2t.image_to_tokens_add(rec, &keys, &k, &q, &q3)?;
            drop((k, q));
            keys = blk.norm4.forward(rec, &a, false)?;
            queries = Some(q3);
        }
        let q_cur = queries.as_ref().unwrap_or(tokens);
        let q = add(rec, q_cur, tokens, &qs)?;
        let k = add(rec, &keys, key_pe, &ks)?;
        let a = self.final_t2i.attend_to_image(rec, &q, &keys, &k, q_cur)?;
        let out = self.norm_final.forward(rec, &a, false)?;
        Ok((out, keys))
    }
}
