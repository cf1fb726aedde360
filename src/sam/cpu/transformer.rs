//! SAM's two-way transformer (`segment_anything/modeling/transformer.py`, "Segment Anything"
//! §3 and appendix A): prompt tokens and image tokens attend to each other in two
//! `TwoWayAttentionBlock`s, then a final token-to-image attention.
//!
//! Batched over prompts: `queries` are `B × T × 256` and the image side (`keys`) is either one
//! `4096 × 256` tensor shared by the whole batch — the first block's image-side projections
//! are then computed once per image ([`ImageSide`]) — or `B × 4096 × 256` when the prompts
//! carry different mask inputs. From the first image-to-token attention on, keys differ per
//! prompt and are batched into single large matrix products.
//!
//! ```no_run
//! # fn main() -> camsam::Result<()> {
//! use camsam::sam::cpu::{transformer::TwoWayTransformer, Vb};
//! let weights = camsam::sam::weights::Weights::load("mobile_sam.pt".as_ref())?;
//! let t = TwoWayTransformer::load(&Vb::root(&weights).pp("mask_decoder.transformer"))?;
//! # Ok(()) }
//! ```

use super::kernels::{self, Act, Linear, MatRef};
use super::Vb;
use crate::Result;

const LN_EPS: f32 = 1e-5;
const HEADS: usize = 8;
const DIM: usize = 256;
const MLP_DIM: usize = 2048;

/// `Attention` with q/k/v/out projections and 8 heads (`downsample_rate` 1 or 2).
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    internal: usize,
}

impl Attention {
    fn load(vb: &Vb, internal: usize) -> Result<Self> {
        Ok(Attention {
            q_proj: vb.linear("q_proj", DIM, internal)?,
            k_proj: vb.linear("k_proj", DIM, internal)?,
            v_proj: vb.linear("v_proj", DIM, internal)?,
            out_proj: vb.linear("out_proj", internal, DIM)?,
            internal,
        })
    }

    /// Multi-head attention of already projected `q` (`B × tq × I`) over `k`, `v`
    /// (`B × tk × I`, or `tk × I` shared by the batch); returns `B × tq × I`.
    fn attend(&self, q: &[f32], k: &[f32], v: &[f32], tq: usize, tk: usize) -> Vec<f32> {
        let i_dim = self.internal;
        let dh = i_dim / HEADS;
        let scale = 1.0 / (dh as f32).sqrt();
        let shared = k.len() == tk * i_dim;
        let mut out = vec![0f32; q.len()];
        kernels::for_rows(&mut out, tq * i_dim, |b, o| {
            let qb = &q[b * tq * i_dim..(b + 1) * tq * i_dim];
            let kv_off = if shared { 0 } else { b * tk * i_dim };
            let kb = &k[kv_off..kv_off + tk * i_dim];
            let vb = &v[kv_off..kv_off + tk * i_dim];
            let mut s = vec![0f32; tq * tk];
            for h in 0..HEADS {
                let qh = MatRef {
                    data: &qb[h * dh..],
                    rows: tq,
                    cols: dh,
                    rs: i_dim,
                    cs: 1,
                };
                let kt = MatRef {
                    data: &kb[h * dh..],
                    rows: dh,
                    cols: tk,
                    rs: 1,
                    cs: i_dim,
                };
                kernels::matmul(&mut s, tk, false, qh, kt);
                for row in s.chunks_mut(tk) {
                    row.iter_mut().for_each(|x| *x *= scale);
                    kernels::softmax(row);
                }
                let vh = MatRef {
                    data: &vb[h * dh..],
                    rows: tk,
                    cols: dh,
                    rs: i_dim,
                    cs: 1,
                };
                kernels::matmul(&mut o[h * dh..], i_dim, false, MatRef::rows(&s, tq, tk), vh);
            }
        });
        out
    }
}

/// `a + b`, elementwise, with `b` repeated when shorter (a shared positional encoding).
fn add_rep(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut out = a.to_vec();
    kernels::for_rows(&mut out, b.len(), |_, row| {
        row.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    });
    out
}

struct Norm(Vec<f32>, Vec<f32>);

impl Norm {
    fn load(vb: &Vb, name: &str) -> Result<Self> {
        Ok(Norm(
            vb.get(&format!("{name}.weight"))?,
            vb.get(&format!("{name}.bias"))?,
        ))
    }
    fn apply(&self, x: &mut [f32]) {
        kernels::layer_norm(x, DIM, &self.0, &self.1, LN_EPS);
    }
}

struct Block {
    self_attn: Attention,
    norm1: Norm,
    cross_attn_token_to_image: Attention,
    norm2: Norm,
    lin1: Linear,
    lin2: Linear,
    norm3: Norm,
    norm4: Norm,
    cross_attn_image_to_token: Attention,
    skip_first_layer_pe: bool,
}

/// The prompt-independent image-side work of the first block: its keys (`src`), and their
/// projections for the token-to-image (`k`, `v`) and image-to-token (`q`) attentions.
pub struct ImageSide {
    pub src: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    q_img: Vec<f32>,
}

pub struct TwoWayTransformer {
    layers: Vec<Block>,
    final_attn_token_to_image: Attention,
    norm_final_attn: Norm,
}

impl TwoWayTransformer {
    /// Loads `mask_decoder.transformer.*` (pass that prefix).
    pub fn load(vb: &Vb) -> Result<Self> {
        let layers = (0..2)
            .map(|i| {
                let l = vb.pp(&format!("layers.{i}"));
                Ok(Block {
                    self_attn: Attention::load(&l.pp("self_attn"), DIM)?,
                    norm1: Norm::load(&l, "norm1")?,
                    cross_attn_token_to_image: Attention::load(
                        &l.pp("cross_attn_token_to_image"),
                        DIM / 2,
                    )?,
                    norm2: Norm::load(&l, "norm2")?,
                    lin1: l.linear("mlp.lin1", DIM, MLP_DIM)?,
                    lin2: l.linear("mlp.lin2", MLP_DIM, DIM)?,
                    norm3: Norm::load(&l, "norm3")?,
                    norm4: Norm::load(&l, "norm4")?,
                    cross_attn_image_to_token: Attention::load(
                        &l.pp("cross_attn_image_to_token"),
                        DIM / 2,
                    )?,
                    skip_first_layer_pe: i == 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TwoWayTransformer {
            layers,
            final_attn_token_to_image: Attention::load(
                &vb.pp("final_attn_token_to_image"),
                DIM / 2,
            )?,
            norm_final_attn: Norm::load(vb, "norm_final_attn")?,
        })
    }

    /// The first block's image-side projections for keys `src` (`n × 4096 × 256`, n ≥ 1) and
    /// the dense positional encoding `pe` (`4096 × 256`).
    pub fn image_side(&self, src: Vec<f32>, pe: &[f32]) -> ImageSide {
        let l0 = &self.layers[0];
        let kpe = add_rep(&src, pe);
        ImageSide {
            k: l0.cross_attn_token_to_image.k_proj.forward(&kpe),
            v: l0.cross_attn_token_to_image.v_proj.forward(&src),
            q_img: l0.cross_attn_image_to_token.q_proj.forward(&kpe),
            src,
        }
    }

    /// Runs the transformer on `tokens` (`B × T × 256`) against `image` (shared by the batch
    /// or one per prompt); returns the output tokens `B × T × 256` and the updated image
    /// tokens `B × 4096 × 256`.
    pub fn forward(
        &self,
        tokens: &[f32],
        t: usize,
        image: &ImageSide,
        pe: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let n_img = pe.len() / DIM;
        let mut queries = tokens.to_vec();
        let mut keys: Option<Vec<f32>> = None;
        for (li, layer) in self.layers.iter().enumerate() {
            // Self attention.
            if layer.skip_first_layer_pe {
                let a = &layer.self_attn;
                let q = a.q_proj.forward(&queries);
                let k = a.k_proj.forward(&queries);
                let v = a.v_proj.forward(&queries);
                let o = a.attend(&q, &k, &v, t, t);
                queries = a.out_proj.forward(&o);
            } else {
                let a = &layer.self_attn;
                let qpe = add_rep(&queries, tokens);
                let q = a.q_proj.forward(&qpe);
                let k = a.k_proj.forward(&qpe);
                let v = a.v_proj.forward(&queries);
                let o = a.attend(&q, &k, &v, t, t);
                a.out_proj.forward_add(&o, &mut queries);
            }
            layer.norm1.apply(&mut queries);

            // Tokens attend to the image.
            let a = &layer.cross_attn_token_to_image;
            let q = a.q_proj.forward(&add_rep(&queries, tokens));
            let o = if li == 0 {
                a.attend(&q, &image.k, &image.v, t, n_img)
            } else {
                let kv = keys.as_deref().unwrap_or(&image.src);
                let k = a.k_proj.forward(&add_rep(kv, pe));
                let v = a.v_proj.forward(kv);
                a.attend(&q, &k, &v, t, n_img)
            };
            a.out_proj.forward_add(&o, &mut queries);
            layer.norm2.apply(&mut queries);

            // MLP.
            let h = layer.lin1.forward_act(&queries, Act::Relu);
            layer.lin2.forward_add(&h, &mut queries);
            layer.norm3.apply(&mut queries);

            // The image attends to the tokens.
            let a = &layer.cross_attn_image_to_token;
            let kq = a.k_proj.forward(&add_rep(&queries, tokens));
            let vq = a.v_proj.forward(&queries);
            let batch = queries.len() / (t * DIM);
            let (o, mut new_keys) = if li == 0 {
                let q_img = if image.q_img.len() == n_img * a.internal {
                    // Shared by the batch: attend once per prompt against the same queries.
                    let mut rep = Vec::with_capacity(batch * image.q_img.len());
                    for _ in 0..batch {
                        rep.extend_from_slice(&image.q_img);
                    }
                    rep
                } else {
                    image.q_img.clone()
                };
                let o = attend_image_to_token(a, &q_img, &kq, &vq, n_img, t);
                let base = if image.src.len() == n_img * DIM {
                    let mut rep = Vec::with_capacity(batch * image.src.len());
                    for _ in 0..batch {
                        rep.extend_from_slice(&image.src);
                    }
                    rep
                } else {
                    image.src.clone()
                };
                (o, base)
            } else {
                let kv = keys.take().unwrap_or_default();
                let q_img = a.q_proj.forward(&add_rep(&kv, pe));
                (attend_image_to_token(a, &q_img, &kq, &vq, n_img, t), kv)
            };
            a.out_proj.forward_add(&o, &mut new_keys);
            layer.norm4.apply(&mut new_keys);
            keys = Some(new_keys);
        }
        let keys = keys.unwrap_or_default();
        let a = &self.final_attn_token_to_image;
        let q = a.q_proj.forward(&add_rep(&queries, tokens));
        let k = a.k_proj.forward(&add_rep(&keys, pe));
        let v = a.v_proj.forward(&keys);
        let o = a.attend(&q, &k, &v, t, n_img);
        a.out_proj.forward_add(&o, &mut queries);
        self.norm_final_attn.apply(&mut queries);
        (queries, keys)
    }
}

/// Image-to-token attention: `q_img` is `B × 4096 × I`, `k`, `v` are `B × T × I`.
fn attend_image_to_token(
    a: &Attention,
    q_img: &[f32],
    k: &[f32],
    v: &[f32],
    n_img: usize,
    t: usize,
) -> Vec<f32> {
    a.attend(q_img, k, v, n_img, t)
}
