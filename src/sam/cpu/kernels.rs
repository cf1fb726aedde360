//! The CPU kernels of the MobileSAM network, on row-major `f32` slices.
//!
//! Matrix products go through `gemm` (the kernel behind candle's CPU matmul; on wasm32 the
//! kernel of `super::simd128`) with explicit strides, so transposes, head splits and residual
//! accumulation need no copies; the rest (depthwise 3×3 convolution, LayerNorm, softmax,
//! exact-erf GELU, im2col) are plain loops, parallel over rows with rayon natively and
//! sequential on wasm32. Everything works in channels-last layout (`H × W × C`, one token per
//! row), which makes 1×1 convolutions, linear layers and LayerNorm the same row-wise operations.
//!
//! ```
//! use camsam::sam::cpu::kernels::{matmul, MatRef};
//! let a = [1.0, 2.0, 3.0, 4.0]; // 2×2
//! let b = [5.0, 6.0, 7.0, 8.0]; // 2×2
//! let mut c = [0.0; 4];
//! matmul(&mut c, 2, false, MatRef::rows(&a, 2, 2), MatRef::rows(&b, 2, 2));
//! assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
//! ```

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major `rows × cols` matrix (so `cols × rows`), e.g. a torch
    /// `Linear` weight `out × in` seen as `in × out`.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows: cols,
            cols: rows,
            rs: 1,
            cs: cols,
        }
    }

    /// Columns `start..start + n` of this matrix.
    pub fn col_slice(self, start: usize, n: usize) -> Self {
        assert!(start + n <= self.cols, "column slice out of range");
        MatRef {
            data: &self.data[(start * self.cs).min(self.data.len())..],
            cols: n,
            ..self
        }
    }

    /// Whether every element lies inside `data` (with overflow-checked index arithmetic: on
    /// wasm32 `usize` is 32 bits).
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1)
                .checked_mul(self.rs)
                .zip((self.cols - 1).checked_mul(self.cs))
                .and_then(|(r, c)| r.checked_add(c))
                .is_some_and(|last| last < self.data.len())
    }
}

/// How many threads a top-level product may use.
#[cfg(not(target_arch = "wasm32"))]
fn parallelism() -> gemm::Parallelism {
    let n = rayon::current_num_threads();
    if n > 1 && rayon::current_thread_index().is_none() {
        return gemm::Parallelism::Rayon(n);
    }
    gemm::Parallelism::None
}

/// `C = A · B` (or `C += A · B` with `accumulate`), `C` row-major with row stride `c_rs`.
/// Large products are shared with this thread's helpers, if it has any (the page's helper
/// workers, [`super::helpers`]), with the same result.
pub fn matmul(c: &mut [f32], c_rs: usize, accumulate: bool, a: MatRef, b: MatRef) {
    check(c, c_rs, a, b);
    if !super::helpers::matmul(c, c_rs, accumulate, a, b) {
        gemm_local(c, c_rs, accumulate, a, b);
    }
}

fn check(c: &[f32], c_rs: usize, a: MatRef, b: MatRef) {
    let (m, n) = (a.rows, b.cols);
    assert_eq!(b.rows, a.cols, "matmul: inner dimensions differ");
    assert!(a.fits() && b.fits(), "matmul: operand views out of bounds");
    assert!(
        m == 0
            || n == 0
            || (m - 1)
                .checked_mul(c_rs)
                .and_then(|r| r.checked_add(n))
                .is_some_and(|end| end <= c.len()),
        "matmul: output too small"
    );
}

/// [`matmul`] on this thread (and natively rayon's) only.
pub(super) fn gemm_local(c: &mut [f32], c_rs: usize, accumulate: bool, a: MatRef, b: MatRef) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    check(c, c_rs, a, b);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * c_rs..i * c_rs + n].fill(0.0);
            }
        }
        return;
    }
    #[cfg(target_arch = "wasm32")]
    {
        super::simd128::matmul(c, c_rs, accumulate, a, b);
    }
    // SAFETY: every index the product touches was bounds-checked above, and `c` is borrowed
    // mutably, so it cannot alias `a` or `b`.
    #[cfg(not(target_arch = "wasm32"))]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(),
        )
    }
}

/// Runs `f(row_index, row)` over the `row_len`-sized rows of `data`, in parallel natively.
pub fn for_rows(data: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if row_len == 0 {
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        let rows = data.len() / row_len;
        // Group rows so each task has a useful amount of work.
        let per_task = (16384 / row_len).max(1);
        if rows > per_task {
            data.par_chunks_mut(row_len * per_task)
                .enumerate()
                .for_each(|(t, chunk)| {
                    for (i, row) in chunk.chunks_mut(row_len).enumerate() {
                        f(t * per_task + i, row)
                    }
                });
            return;
        }
    }
    for (i, row) in data.chunks_mut(row_len).enumerate() {
        f(i, row)
    }
}

/// `erf(x)` for `f32`, accurate to a few ULP (a rational minimax fit on [-4, 4], as in Eigen's
/// `generic_fast_erf_float`); branch-free, so loops over it vectorise.
#[inline]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_1e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_4e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

/// Exact (erf) GELU, PyTorch's `nn.GELU()` default.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// What to apply after adding the bias.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Act {
    None,
    Gelu,
    Relu,
}

/// Adds `bias` to each row and applies `act`, in place.
pub fn bias_act(x: &mut [f32], bias: Option<&[f32]>, n: usize, act: Act) {
    if bias.is_none() && act == Act::None {
        return;
    }
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = vec![0f32; n];
            &zeros
        }
    };
    for_rows(x, n, |_, row| bias_act_slice(row, bias, act));
}

/// A linear layer with torch's weight layout (`out × in`), optional bias.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub d_in: usize,
    pub d_out: usize,
}

impl Linear {
    /// `x` (`rows × d_in`) → `rows × d_out`, then `act`.
    pub fn forward_act(&self, x: &[f32], act: Act) -> Vec<f32> {
        let rows = x.len() / self.d_in;
        let mut y = vec![0f32; rows * self.d_out];
        self.forward_into(x, &mut y, false);
        bias_act(&mut y, self.bias.as_deref(), self.d_out, act);
        y
    }

    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.forward_act(x, Act::None)
    }

    /// `y (+)= x · Wᵀ` without the bias.
    pub fn forward_into(&self, x: &[f32], y: &mut [f32], accumulate: bool) {
        let rows = x.len() / self.d_in;
        matmul(
            y,
            self.d_out,
            accumulate,
            MatRef::rows(x, rows, self.d_in),
            MatRef::transposed(&self.weight, self.d_out, self.d_in),
        );
    }

    /// `y += x · Wᵀ + b` (a residual branch's output projection).
    pub fn forward_add(&self, x: &[f32], y: &mut [f32]) {
        self.forward_into(x, y, true);
        if let Some(b) = &self.bias {
            bias_act(y, Some(b), self.d_out, Act::None);
        }
    }
}

/// LayerNorm over the last dimension (`n` channels per row), in place.
pub fn layer_norm(x: &mut [f32], n: usize, weight: &[f32], bias: &[f32], eps: f32) {
    for_rows(x, n, |_, row| {
        layer_norm_row(row, weight, bias, eps, Act::None)
    });
}

/// Compiles `fn name(args) { body }` twice on x86-64 — as built and with AVX2 enabled — and
/// picks the AVX2 copy at run time where the CPU has it, so plain loops over `f32` vectorise 8
/// lanes wide without a build for one CPU. Both copies do the same IEEE operations in the same
/// order (no fused multiply-add is enabled), so they return the same bits.
macro_rules! wide_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $body:block) => {
        $(#[$m])* $vis fn $name($($a: $t),*) {
            #[inline(always)]
            fn imp($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn wide($($a: $t),*) {
                    imp($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { wide($($a),*) };
                }
            }
            imp($($a),*)
        }
    };
}

/// The sum of `x` in 16 interleaved partial sums (so the loop vectorises), then pairwise.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f(*v);
        }
    }
    for (a, v) in acc.iter_mut().zip(rest) {
        *a += f(*v);
    }
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0]
}

wide_fn! {
    /// LayerNorm of one row (its channels), then `act`, in place.
    pub fn layer_norm_row(row: &mut [f32], weight: &[f32], bias: &[f32], eps: f32, act: Act) {
        let n = row.len() as f32;
        let mean = lane_sum(row, |v| v) / n;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * inv * w + b;
        }
        match act {
            Act::None => {}
            Act::Gelu => row.iter_mut().for_each(|v| *v = gelu(*v)),
            Act::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }
}

wide_fn! {
    /// Adds `bias` (repeated along `x`) and applies `act`, in place; `x.len()` a multiple of
    /// `bias.len()`.
    pub fn bias_act_slice(x: &mut [f32], bias: &[f32], act: Act) {
        for row in x.chunks_exact_mut(bias.len().max(1)) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
            match act {
                Act::None => {}
                Act::Gelu => row.iter_mut().for_each(|v| *v = gelu(*v)),
                Act::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
            }
        }
    }
}

/// Softmax over each row of length `n`, in place.
pub fn softmax_rows(x: &mut [f32], n: usize) {
    for_rows(x, n, |_, row| softmax(row));
}

wide_fn! {
    /// Softmax of one row, in place (with [`exp`]).
    pub fn softmax(row: &mut [f32]) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / lane_sum(row, |v| v);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

wide_fn! {
    /// Softmax of `scale · x` over each run of `group` values of `x`, in place: short rows (a
    /// few prompt tokens per head) in one call.
    pub fn softmax_groups(x: &mut [f32], group: usize, scale: f32) {
        for row in x.chunks_exact_mut(group.max(1)) {
            let mut max = f32::NEG_INFINITY;
            for v in row.iter_mut() {
                *v *= scale;
                max = max.max(*v);
            }
            let mut sum = 0.0;
            for v in row.iter_mut() {
                *v = exp(*v - max);
                sum += *v;
            }
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// `eˣ` for `f32` within 2 ULP on the range that does not overflow (Cephes' `expf`: `2ⁿ · e^r`
/// with `|r| ≤ ln 2 / 2` and a degree-6 polynomial); branch-free, so loops over it
/// vectorise. Below −87.3 it returns about 1e-38 instead of the denormal or 0 (a softmax
/// weight that small adds nothing).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Depthwise 3×3 convolution, padding 1, channels-last: `x` is `h × w × c`, `weight` is
/// `c × 9` (torch `c × 1 × 3 × 3`), plus `bias`; returns the `oh × ow × c` output.
pub fn depthwise3x3(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    weight: &[f32],
    bias: &[f32],
    stride: usize,
    act: Act,
) -> (Vec<f32>, usize, usize) {
    let oh = (h + 2 - 3) / stride + 1;
    let ow = (w + 2 - 3) / stride + 1;
    // Weights tap-major (`9 × c`) so the inner loop runs over contiguous channels.
    let mut wt = vec![0f32; 9 * c];
    for ch in 0..c {
        for t in 0..9 {
            wt[t * c + ch] = weight[ch * 9 + t];
        }
    }
    let mut out = vec![0f32; oh * ow * c];
    for_rows(&mut out, ow * c, |oy, orow| {
        for ox in 0..ow {
            let o = &mut orow[ox * c..(ox + 1) * c];
            o.copy_from_slice(bias);
            for ky in 0..3 {
                let iy = (oy * stride + ky) as isize - 1;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                for kx in 0..3 {
                    let ix = (ox * stride + kx) as isize - 1;
                    if ix < 0 || ix >= w as isize {
                        continue;
                    }
                    let base = (iy as usize * w + ix as usize) * c;
                    let xi = &x[base..base + c];
                    let wk = &wt[(ky * 3 + kx) * c..(ky * 3 + kx + 1) * c];
                    for ((o, xv), wv) in o.iter_mut().zip(xi).zip(wk) {
                        *o += xv * wv;
                    }
                }
            }
            match act {
                Act::None => {}
                Act::Gelu => o.iter_mut().for_each(|v| *v = gelu(*v)),
                Act::Relu => o.iter_mut().for_each(|v| *v = v.max(0.0)),
            }
        }
    });
    (out, oh, ow)
}

/// im2col for a 3×3 convolution with padding 1 over a channels-last `h × w × c` input:
/// one row per output pixel, columns ordered `(ky, kx, channel)`.
pub fn im2col3x3(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    stride: usize,
) -> (Vec<f32>, usize, usize) {
    let oh = (h + 2 - 3) / stride + 1;
    let ow = (w + 2 - 3) / stride + 1;
    let mut cols = vec![0f32; oh * ow * 9 * c];
    for_rows(&mut cols, ow * 9 * c, |oy, row| {
        for ox in 0..ow {
            for ky in 0..3 {
                let iy = (oy * stride + ky) as isize - 1;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                for kx in 0..3 {
                    let ix = (ox * stride + kx) as isize - 1;
                    if ix < 0 || ix >= w as isize {
                        continue;
                    }
                    let src = (iy as usize * w + ix as usize) * c;
                    let dst = (ox * 9 + ky * 3 + kx) * c;
                    row[dst..dst + c].copy_from_slice(&x[src..src + c]);
                }
            }
        }
    });
    (cols, oh, ow)
}

/// Reorders a torch conv weight `out × in × 3 × 3` to `out × (ky, kx, in)`, the im2col order.
pub fn conv3x3_weight_to_hwc(weight: &[f32], out: usize, cin: usize) -> Vec<f32> {
    let mut w = vec![0f32; weight.len()];
    for o in 0..out {
        for i in 0..cin {
            for t in 0..9 {
                w[o * 9 * cin + t * cin + i] = weight[(o * cin + i) * 9 + t];
            }
        }
    }
    w
}

/// Transposes a row-major `rows × cols` matrix.
pub fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for_rows(&mut out, rows, |j, orow| {
        for (i, o) in orow.iter_mut().enumerate() {
            *o = x[i * cols + j];
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (converges everywhere; fine on |x| ≤ 4).
    fn erf_ref(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_matches_series() {
        // A few ULP of f32 near |erf| = 1.
        const TOL: f64 = 5e-7;
        let mut worst = (0.0, 0.0f64);
        for i in -4000..=4000 {
            let x = i as f64 / 1000.0;
            let d = (erf(x as f32) as f64 - erf_ref(x)).abs();
            if d > worst.1 {
                worst = (x, d);
            }
        }
        assert!(
            worst.1 <= TOL,
            "worst |erf - ref| = {} at x = {}",
            worst.1,
            worst.0
        );
        assert!((erf(10.0) - 1.0).abs() <= TOL as f32);
        assert!((erf(-10.0) + 1.0).abs() <= TOL as f32);
        assert!(erf(f32::INFINITY).is_finite());
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = (0.0f32, 0.0f64);
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0 + 0.000_37;
            let want = (x as f64).exp();
            let ulp = (want as f32).abs() * f32::EPSILON;
            let d = ((exp(x) as f64 - want) / ulp as f64).abs();
            if d > worst.1 {
                worst = (x, d);
            }
        }
        assert!(
            worst.1 <= 2.0,
            "worst error {} ULP at x = {}",
            worst.1,
            worst.0
        );
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1e30) < 1e-37 && exp(-1e30) >= 0.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 9.0).collect();
        let orig = row.clone();
        softmax(&mut row);
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        let max = orig.iter().cloned().fold(f32::MIN, f32::max);
        let z: f64 = orig.iter().map(|&v| ((v - max) as f64).exp()).sum();
        for (i, (&p, &v)) in row.iter().zip(&orig).enumerate() {
            let want = ((v - max) as f64).exp() / z;
            assert!(
                (p as f64 - want).abs() <= 1e-6 * want.max(1e-3),
                "[{i}] {p} vs {want}"
            );
        }
    }

    #[test]
    fn strided_matmul_matches_naive() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect(); // n × k
        let mut c = vec![1.0f32; m * n];
        matmul(
            &mut c,
            n,
            true,
            MatRef::rows(&a, m, k),
            MatRef::transposed(&b, n, k),
        );
        for i in 0..m {
            for j in 0..n {
                let r: f32 = 1.0 + (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum::<f32>();
                assert!(
                    (c[i * n + j] - r).abs() < 1e-5,
                    "({i},{j}) {} vs {r}",
                    c[i * n + j]
                );
            }
        }
    }

    #[test]
    fn depthwise_matches_im2col() {
        let (h, w, c) = (5, 6, 3);
        let x: Vec<f32> = (0..h * w * c).map(|i| (i as f32 * 0.7).sin()).collect();
        let wt: Vec<f32> = (0..c * 9).map(|i| (i as f32 * 0.3).cos()).collect();
        for stride in [1, 2] {
            let (dw, oh, ow) = depthwise3x3(&x, (h, w, c), &wt, &[0.0; 3], stride, Act::None);
            let (cols, oh2, ow2) = im2col3x3(&x, (h, w, c), stride);
            assert_eq!((oh, ow), (oh2, ow2));
            for p in 0..oh * ow {
                for ch in 0..c {
                    let r: f32 = (0..9)
                        .map(|t| cols[p * 9 * c + t * c + ch] * wt[ch * 9 + t])
                        .sum();
                    assert!((dw[p * c + ch] - r).abs() < 1e-5);
                }
            }
        }
    }
}
