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
//! The cross attentions against per-prompt image tokens are evaluated in the order that suits
//! the few (≈ 7) prompt tokens: the image-side projections are folded into the token side
//! (`softmax(q·Wk·(x+pe)ᵀ)·x·Wvᵀ` for tokens → image, `(x+pe)·Wqᵀ·kᵀ` and `A·(v·Wo_hᵀ)` for
//! image → tokens), so no `4096 × 128` projection of the image is made per prompt: ≈ 0.23
//! instead of ≈ 0.54 GFLOP per attention and prompt. The softmax is invariant to the key
//! bias's per-row constant `q·b_k`, which is therefore dropped; the value bias passes through
//! unchanged because attention rows sum to 1.
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
use crate::{profile, Result};

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
                let qh = head(qb, h, tq, dh, i_dim);
                kernels::matmul(&mut s, tk, false, qh, head_t(kb, h, tk, dh, i_dim));
                for row in s.chunks_mut(tk) {
                    row.iter_mut().for_each(|x| *x *= scale);
                    kernels::softmax(row);
                }
                let vh = head(vb, h, tk, dh, i_dim);
                kernels::matmul(&mut o[h * dh..], i_dim, false, MatRef::rows(&s, tq, tk), vh);
            }
        });
        out
    }
}

impl Attention {
    /// Rows `h·dh..(h+1)·dh` of a projection's `I × 256` weight: head `h`'s `dh × 256` block.
    fn head_rows(w: &[f32], h: usize, dh: usize) -> MatRef<'_> {
        MatRef::rows(&w[h * dh * DIM..(h + 1) * dh * DIM], dh, DIM)
    }

    /// Tokens attend to per-prompt image tokens: `q` (`B × t × I`, projected) over keys
    /// `x + pe` and values `x` (`x`: `B × n × 256`, `pe`: `n × 256`), both projected by this
    /// attention's `k_proj` / `v_proj` — evaluated without projecting the image (module docs).
    /// Returns `B × t × I`, as [`Attention::attend`] on the projected keys and values.
    fn attend_to_image(&self, q: &[f32], x: &[f32], pe: &[f32], t: usize) -> Vec<f32> {
        let i_dim = self.internal;
        let dh = i_dim / HEADS;
        let n = pe.len() / DIM;
        let ht = HEADS * t;
        let scale = 1.0 / (dh as f32).sqrt();
        let (wk, wv) = (&self.k_proj.weight, &self.v_proj.weight);
        let mut out = vec![0f32; q.len()];
        kernels::for_rows(&mut out, t * i_dim, |b, o| {
            let qb = &q[b * t * i_dim..(b + 1) * t * i_dim];
            let xb = &x[b * n * DIM..(b + 1) * n * DIM];
            // Per head, q_h · Wk_h: `(HEADS·t) × 256`, scaled.
            let mut qk = vec![0f32; ht * DIM];
            for h in 0..HEADS {
                let qh = head(qb, h, t, dh, i_dim);
                kernels::matmul(
                    &mut qk[h * t * DIM..],
                    DIM,
                    false,
                    qh,
                    Self::head_rows(wk, h, dh),
                );
            }
            qk.iter_mut().for_each(|v| *v *= scale);
            let ax = SCRATCH.with(|scratch| {
                let (xpe, s) = &mut *scratch.borrow_mut();
                add_rep_into(xb, pe, xpe);
                // Scores `(HEADS·t) × n`, softmax over the image tokens.
                s.resize(ht * n, 0.0);
                kernels::matmul(
                    s,
                    n,
                    false,
                    MatRef::rows(&qk, ht, DIM),
                    MatRef::transposed(xpe, n, DIM),
                );
                s.chunks_mut(n).for_each(kernels::softmax);
                // A · x: `(HEADS·t) × 256`; then per head · Wv_hᵀ + bv_h.
                let mut ax = vec![0f32; ht * DIM];
                kernels::matmul(
                    &mut ax,
                    DIM,
                    false,
                    MatRef::rows(s, ht, n),
                    MatRef::rows(xb, n, DIM),
                );
                ax
            });
            for h in 0..HEADS {
                let wvh = &wv[h * dh * DIM..(h + 1) * dh * DIM];
                kernels::matmul(
                    &mut o[h * dh..],
                    i_dim,
                    false,
                    MatRef::rows(&ax[h * t * DIM..(h + 1) * t * DIM], t, DIM),
                    MatRef::transposed(wvh, dh, DIM),
                );
            }
            kernels::bias_act(o, self.v_proj.bias.as_deref(), i_dim, Act::None);
        });
        out
    }

    /// The image attends to the tokens, and the result is added to the image tokens:
    /// `keys += out_proj(attention)` for queries `keys + pe` projected by `q_proj` (or the
    /// already projected `q_img`: `n × I` shared by the batch, or `B × n × I`) over the
    /// projected tokens `kq`, `vq` (`B × t × I`) — without projecting the image (module docs).
    fn image_to_tokens_add(
        &self,
        keys: &mut [f32],
        q_img: Option<&[f32]>,
        pe: &[f32],
        kq: &[f32],
        vq: &[f32],
        t: usize,
    ) {
        let i_dim = self.internal;
        let dh = i_dim / HEADS;
        let n = pe.len() / DIM;
        let ht = HEADS * t;
        let scale = 1.0 / (dh as f32).sqrt();
        let (wq, wo) = (&self.q_proj.weight, &self.out_proj.weight);
        let batch = kq.len() / (t * i_dim);
        // With queries shared by the batch (the first block without mask inputs), every
        // prompt's scores come from one product per head over the whole batch: `n × (B·t)`
        // per head, head-major (`shared[i][h·B·t + b·t + j]`), gathered per prompt below.
        let shared_scores = q_img.filter(|qi| qi.len() == n * i_dim).map(|qi| {
            let bt = batch * t;
            let mut shared = vec![0f32; n * HEADS * bt];
            for h in 0..HEADS {
                let kt = MatRef {
                    data: &kq[h * dh..],
                    rows: dh,
                    cols: bt,
                    rs: 1,
                    cs: i_dim,
                };
                kernels::matmul(
                    &mut shared[h * bt..],
                    HEADS * bt,
                    false,
                    head(qi, h, n, dh, i_dim),
                    kt,
                );
            }
            shared
        });
        kernels::for_rows(keys, n * DIM, |b, kb| {
            let kqb = &kq[b * t * i_dim..(b + 1) * t * i_dim];
            let vqb = &vq[b * t * i_dim..(b + 1) * t * i_dim];
            // Scores `n × (HEADS·t)`, column block h for head h.
            let mut s = vec![0f32; n * ht];
            match (q_img, &shared_scores) {
                (_, Some(shared)) => {
                    let bt = batch * t;
                    for (row, all) in s.chunks_exact_mut(ht).zip(shared.chunks_exact(HEADS * bt)) {
                        for h in 0..HEADS {
                            let from = h * bt + b * t;
                            row[h * t..(h + 1) * t].copy_from_slice(&all[from..from + t]);
                        }
                    }
                }
                (Some(qi), None) => {
                    let off = b * n * i_dim;
                    for h in 0..HEADS {
                        let qh = head(&qi[off..], h, n, dh, i_dim);
                        let kt = head_t(kqb, h, t, dh, i_dim);
                        kernels::matmul(&mut s[h * t..], ht, false, qh, kt);
                    }
                }
                (None, None) => {
                    // Wq_hᵀ · k_hᵀ: `256 × (HEADS·t)`, and the query bias's part, per column.
                    let mut m = vec![0f32; DIM * ht];
                    let mut c = vec![0f32; ht];
                    for h in 0..HEADS {
                        let wqh = &wq[h * dh * DIM..(h + 1) * dh * DIM];
                        kernels::matmul(
                            &mut m[h * t..],
                            ht,
                            false,
                            MatRef::transposed(wqh, dh, DIM),
                            head_t(kqb, h, t, dh, i_dim),
                        );
                        if let Some(bq) = &self.q_proj.bias {
                            for j in 0..t {
                                c[h * t + j] = (0..dh)
                                    .map(|d| bq[h * dh + d] * kqb[j * i_dim + h * dh + d])
                                    .sum();
                            }
                        }
                    }
                    SCRATCH.with(|scratch| {
                        let (xpe, _) = &mut *scratch.borrow_mut();
                        add_rep_into(kb, pe, xpe);
                        kernels::matmul(
                            &mut s,
                            ht,
                            false,
                            MatRef::rows(xpe, n, DIM),
                            MatRef::rows(&m, DIM, ht),
                        );
                    });
                    kernels::bias_act_slice(&mut s, &c, Act::None);
                }
            }
            kernels::softmax_groups(&mut s, t, scale);
            // v_h · Wo_hᵀ: `(HEADS·t) × 256`; keys += A · that + b_o.
            let mut nv = vec![0f32; ht * DIM];
            for h in 0..HEADS {
                let vh = head(vqb, h, t, dh, i_dim);
                let woh = head_t(wo, h, DIM, dh, i_dim);
                kernels::matmul(&mut nv[h * t * DIM..], DIM, false, vh, woh);
            }
            kernels::matmul(
                kb,
                DIM,
                true,
                MatRef::rows(&s, n, ht),
                MatRef::rows(&nv, ht, DIM),
            );
            kernels::bias_act(kb, self.out_proj.bias.as_deref(), DIM, Act::None);
        });
    }
}

/// The profile stages of the attentions between the tokens and the image tokens, per block.
const TOKENS_TO_IMAGE: [&str; 3] = [
    "decoder › transformer › tokens → image, block 1",
    "decoder › transformer › tokens → image, block 2",
    "decoder › transformer › tokens → image, final",
];
const IMAGE_TO_TOKENS: [&str; 2] = [
    "decoder › transformer › image → tokens, block 1",
    "decoder › transformer › image → tokens, block 2",
];

/// FLOPs of one attention between `batch × t` tokens and `n` image tokens as evaluated here
/// (two `(8·t) × 256 × n` products per prompt; the token-side projections are negligible).
fn image_flops(batch: usize, t: usize, n: usize) -> f64 {
    4.0 * (batch * HEADS * t * DIM * n) as f64
}

/// Head `h`'s columns `h·dh..(h+1)·dh` of a row-major matrix with row stride `rs`: `rows × dh`.
fn head(x: &[f32], h: usize, rows: usize, dh: usize, rs: usize) -> MatRef<'_> {
    MatRef {
        data: &x[h * dh..],
        rows,
        cols: dh,
        rs,
        cs: 1,
    }
}

/// The transpose of [`head`]: `dh × cols`.
fn head_t(x: &[f32], h: usize, cols: usize, dh: usize, rs: usize) -> MatRef<'_> {
    MatRef {
        data: &x[h * dh..],
        rows: dh,
        cols,
        rs: 1,
        cs: rs,
    }
}

/// The batch's image tokens (`B × 4096 × 256`), kept between decoder calls: at 4 MB per
/// prompt the buffer is above the allocator's mmap threshold, so a fresh one would be mapped
/// and page-faulted in (≈ 1 ms per prompt) in every batch. The decoder hands it back with
/// [`recycle_keys`] when the upscaler is done with it.
static KEYS: std::sync::Mutex<Vec<f32>> = std::sync::Mutex::new(Vec::new());

fn take_keys() -> Vec<f32> {
    KEYS.lock()
        .map(|mut k| std::mem::take(&mut *k))
        .unwrap_or_default()
}

/// Keeps `keys` (the image tokens [`TwoWayTransformer::forward`] returned) for the next batch.
pub fn recycle_keys(keys: Vec<f32>) {
    if let Ok(mut k) = KEYS.lock() {
        if keys.capacity() > k.capacity() {
            *k = keys;
        }
    }
}

thread_local! {
    /// One thread's buffers for a prompt's attention with the image: keys + positional
    /// encoding (`4096 × 256`) and the scores; reused so no prompt allocates (and page-faults
    /// in) megabytes.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// `out = a + b` (`a` and `b` of one length: one prompt's image tokens and the encoding).
fn add_rep_into(a: &[f32], b: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend(a.iter().zip(b).map(|(x, y)| x + y));
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
            let batch = queries.len() / (t * DIM);
            // The first block attends to keys and values projected once per image.
            let (token_flops, image_flops) = if li == 0 {
                let bn = (batch * n_img) as f64;
                let i_dim = a.internal as f64;
                (
                    4.0 * bn * t as f64 * i_dim,
                    2.0 * bn * (i_dim * t as f64 + (HEADS * t * DIM) as f64),
                )
            } else {
                (image_flops(batch, t, n_img), image_flops(batch, t, n_img))
            };
            let o = profile::time(TOKENS_TO_IMAGE[li], token_flops, || {
                if li == 0 {
                    a.attend(&q, &image.k, &image.v, t, n_img)
                } else {
                    a.attend_to_image(&q, keys.as_deref().unwrap_or(&image.src), pe, t)
                }
            });
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
            let mut new_keys = profile::time(IMAGE_TO_TOKENS[li], image_flops, || {
                if li == 0 {
                    let mut base = if image.src.len() == n_img * DIM {
                        let batch = queries.len() / (t * DIM);
                        let mut rep = take_keys();
                        rep.clear();
                        for _ in 0..batch {
                            rep.extend_from_slice(&image.src);
                        }
                        rep
                    } else {
                        image.src.clone()
                    };
                    a.image_to_tokens_add(&mut base, Some(&image.q_img), pe, &kq, &vq, t);
                    base
                } else {
                    let mut kv = keys.take().unwrap_or_default();
                    a.image_to_tokens_add(&mut kv, None, pe, &kq, &vq, t);
                    kv
                }
            });
            profile::time(
                "decoder › transformer › LayerNorm of image tokens",
                0.0,
                || layer.norm4.apply(&mut new_keys),
            );
            keys = Some(new_keys);
        }
        let keys = keys.unwrap_or_default();
        let a = &self.final_attn_token_to_image;
        let q = a.q_proj.forward(&add_rep(&queries, tokens));
        let batch = queries.len() / (t * DIM);
        let o = profile::time(TOKENS_TO_IMAGE[2], image_flops(batch, t, n_img), || {
            a.attend_to_image(&q, &keys, pe, t)
        });
        a.out_proj.forward_add(&o, &mut queries);
        self.norm_final_attn.apply(&mut queries);
        (queries, keys)
    }
}
