//! Strided, batched matrix multiply (`batched_matmul.wgsl`): `out = α·A·B + bias + residual`
//! for every prompt `b` and head `h`, each operand read through its own strides, so a head's
//! slice of a projection, a transposed operand or one shared by the batch (stride 0) needs no
//! copy. The two-way transformer's reordered cross attentions (SAM `modeling/transformer.py`,
//! evaluated as in [`crate::sam::cpu::transformer`]) are chains of such products with small
//! inner sizes, e.g. `(8·t) × 256 · 256 × 4096` per prompt.
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::batched_matmul::{batched_matmul, Operand, Product};
//! use camsam::gpu::GpuTensor;
//! // Two prompts' 1×2 rows times one shared 2×1 column.
//! let a = GpuTensor::upload(ctx, &[2, 1, 2], &[1., 2., 3., 4.])?;
//! let b = GpuTensor::upload(ctx, &[2, 1], &[1., 1.])?;
//! let mut rec = ctx.recorder();
//! let out = batched_matmul(
//!     &mut rec,
//!     &Product { m: 1, n: 1, k: 2, batch: 2, heads: 1, alpha: 1.0 },
//!     Operand::new(&a, [2, 0, 2, 1]),
//!     Operand::new(&b, [0, 0, 1, 1]),
//!     (&[2, 1, 1], [1, 0, 1]),
//!     None,
//!     None,
//! )?;
//! rec.submit();
//! assert_eq!(out.read(ctx).await?, vec![3., 7.]);
//! # Ok(()) }
//! ```

use super::context::{MatmulKernel, Recorder, MAX_GROUPS_PER_DIM};
use super::GpuTensor;
use crate::{Error, Result};

/// Sizes of one batched product: `batch · heads` products of `m × k` by `k × n`, scaled by
/// `alpha`.
#[derive(Clone, Copy, Debug)]
pub struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub heads: usize,
    pub alpha: f32,
}

/// A matrix operand: element `(b, h, row, col)` is at
/// `b·strides[0] + h·strides[1] + row·strides[2] + col·strides[3]`.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    pub t: &'a GpuTensor,
    pub strides: [usize; 4],
}

impl<'a> Operand<'a> {
    pub fn new(t: &'a GpuTensor, strides: [usize; 4]) -> Self {
        Self { t, strides }
    }

    /// One past the largest index read for `rows × cols` matrices.
    fn extent(&self, p: &Product, rows: usize, cols: usize) -> usize {
        let [sb, sh, rs, cs] = self.strides;
        (p.batch - 1) * sb + (p.heads - 1) * sh + (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// How many ways to split k on GPUs: products with under 1024 output tiles of 64×64 leave
/// most of a GPU idle while each tile walks all of k (the tokens → image attention's 56 × 256
/// outputs per prompt over 4096 image tokens), so k is split until there are about 1024
/// workgroups, keeping at least 256 of k per split. 1: no split.
fn split_k(tiles: usize, k: usize) -> usize {
    if tiles >= 1024 || k < 512 {
        return 1;
    }
    1024usize.div_ceil(tiles).min(k / 256).max(1)
}

/// `out[b, h][i, j] = alpha · Σ_k a[b, h][i, k] · b[b, h][k, j] + bias + residual`.
/// The output is a new tensor of shape `out.0`, written at
/// `b·out.1[0] + h·out.1[1] + i·out.1[2] + j`; `bias` is `(tensor, [batch stride, head
/// stride])`, indexed by `j` from there; `residual` is read where the output is written.
pub fn batched_matmul(
    rec: &mut Recorder,
    p: &Product,
    a: Operand,
    b: Operand,
    out: (&[usize], [usize; 3]),
    bias: Option<(&GpuTensor, [usize; 2])>,
    residual: Option<&GpuTensor>,
) -> Result<GpuTensor> {
    let bad = |what: &str| {
        Error::Model(format!(
            "batched matmul {p:?}: {what} (a {:?}, b {:?}, out {:?})",
            a.t.shape(),
            b.t.shape(),
            out.0
        ))
    };
    if p.m == 0 || p.n == 0 || p.k == 0 || p.batch == 0 || p.heads == 0 {
        return Err(bad("empty product"));
    }
    if a.extent(p, p.m, p.k) > a.t.len() {
        return Err(bad("a reaches past its tensor"));
    }
    if b.extent(p, p.k, p.n) > b.t.len() {
        return Err(bad("b reaches past its tensor"));
    }
    let (shape, [c_sb, c_sh, c_rs]) = out;
    let out_len: usize = shape.iter().product();
    let c = Operand::new(a.t, [c_sb, c_sh, c_rs, 1]);
    if c.extent(p, p.m, p.n) > out_len {
        return Err(bad("the output reaches past its shape"));
    }
    let mut flags = 0u32;
    let (bias_t, [bias_sb, bias_sh]) = bias.unwrap_or((a.t, [0, 0]));
    if bias.is_some() {
        if Operand::new(bias_t, [bias_sb, bias_sh, 0, 1]).extent(p, 1, p.n) > bias_t.len() {
            return Err(bad("the bias reaches past its tensor"));
        }
        flags |= 1;
    }
    if let Some(r) = residual {
        if r.len() != out_len {
            return Err(bad("the residual is not the output's size"));
        }
        flags |= 2;
    }
    let products = p.batch * p.heads;
    let tiles = p.n.div_ceil(64) * p.m.div_ceil(64) * products;
    let splits = if rec.ctx.matmul_kernel() == MatmulKernel::Tiled {
        split_k(tiles, p.k)
    } else {
        1
    };
    let groups = (p.n.div_ceil(64), p.m.div_ceil(64), products * splits);
    if groups.0.max(groups.1).max(groups.2) > MAX_GROUPS_PER_DIM as usize {
        return Err(bad("too large for one dispatch"));
    }
    let plane = products * p.m * p.n;
    let words = |c: [usize; 3], flags: u32, alpha: f32| -> Result<Vec<u32>> {
        let words = [
            p.m,
            p.n,
            p.k,
            p.heads,
            a.strides[0],
            a.strides[1],
            a.strides[2],
            a.strides[3],
            b.strides[0],
            b.strides[1],
            b.strides[2],
            b.strides[3],
            c[0],
            c[1],
            c[2],
            flags as usize,
            bias_sb,
            bias_sh,
            0,
            splits,
            plane,
            0,
            0,
            0,
        ];
        let mut params = Vec::with_capacity(words.len());
        for w in words {
            params.push(u32::try_from(w).map_err(|_| bad("a size or stride passes u32"))?);
        }
        params[18] = alpha.to_bits();
        Ok(params)
    };
    let result = GpuTensor::empty(rec.ctx, shape)?;
    let res = residual.unwrap_or(a.t);
    let grid = (groups.0 as u32, groups.1 as u32, groups.2 as u32);
    // Split: partial sums in contiguous planes, then their sum with the epilogue.
    let scratch = if splits > 1 {
        Some(GpuTensor::empty(rec.ctx, &[splits, products, p.m, p.n])?)
    } else {
        None
    };
    let (target, first) = match &scratch {
        None => (&result, words([c_sb, c_sh, c_rs], flags, p.alpha)?),
        Some(s) => (s, words([p.heads * p.m * p.n, p.m * p.n, p.n], 0, 1.0)?),
    };
    let operands = [a.t.buffer(), b.t.buffer(), bias_t.buffer(), res.buffer()];
    let buffers = [&operands[..], &[target.buffer()]].concat();
    rec.dispatch("batched_matmul", &first, &buffers, grid)?;
    if let Some(s) = &scratch {
        let buffers = [&[s.buffer()], &operands[2..], &[result.buffer()]].concat();
        let params = words([c_sb, c_sh, c_rs], flags, p.alpha)?;
        rec.dispatch_1d("batched_split_sum", &params, &buffers, plane, 64)?;
    }
    Ok(result)
}
