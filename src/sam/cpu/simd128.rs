//! The CPU model's matrix product on wasm32: WebAssembly SIMD128, with relaxed-SIMD fused
//! multiply-add in the build made for browsers that have it.
//!
//! gemm's wasm kernel (8 × 4 outputs, a multiply and an add per step, operands packed into a
//! buffer it allocates per call) ran the encoder's products at 25–29 GFLOP/s on one thread of
//! the 2-core VM, and its speed moved with where the allocator put the operands. This kernel
//! packs B into a buffer kept per thread, in panels of 8 columns, and computes 4 × 8 outputs per
//! step from one broadcast value of A per row: eight accumulators, no spills. Measured the same
//! way (Node 20, one thread, the encoder's product shapes): 33–40 GFLOP/s with a multiply and
//! an add, 50–52 GFLOP/s with `f32x4.relaxed_madd`, the 128-bit peak of that CPU.
//!
//! Every output is `Σ_k a[i][k]·b[k][j]` summed in order of `k` from zero, then added to `C`
//! when accumulating, whatever the split of rows: a product shared with helper workers by rows
//! gives the same bits as on one thread.

use super::kernels::MatRef;
use core::arch::wasm32::*;
use std::cell::RefCell;

/// Columns of B per packed panel (two vectors).
const NR: usize = 8;
/// Rows of A per step.
const MR: usize = 4;

/// Which multiply-add this build uses, for the bench view: `simd128` (a multiply, then an add)
/// or `simd128+relaxed-simd` (`f32x4.relaxed_madd`: fused where the CPU has FMA).
pub const LEVEL: &str = if cfg!(target_feature = "relaxed-simd") {
    "simd128+relaxed-simd"
} else {
    "simd128"
};

thread_local! {
    /// The packed B of the product in progress, reused across calls.
    static PACKED: RefCell<Vec<v128>> = const { RefCell::new(Vec::new()) };
}

#[inline(always)]
fn madd(a: v128, b: v128, c: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    {
        f32x4_relaxed_madd(a, b, c)
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        f32x4_add(c, f32x4_mul(a, b))
    }
}

/// `C = A · B` (or `C += A · B`), `C` row-major with row stride `c_rs`. The caller has checked
/// that every index of the product lies inside its slice (`kernels::gemm_local`), and that
/// `m`, `n` and `k` are non-zero.
pub(super) fn matmul(c: &mut [f32], c_rs: usize, accumulate: bool, a: MatRef, b: MatRef) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let panels = n.div_ceil(NR);
    PACKED.with(|packed| {
        let mut packed = packed.borrow_mut();
        pack(&mut packed, b);
        for i0 in (0..m).step_by(MR) {
            let rows = MR.min(m - i0);
            for p in 0..panels {
                let j0 = p * NR;
                let panel = &packed[p * k * 2..(p + 1) * k * 2];
                let acc = if rows == MR {
                    tile::<MR>(a, i0, panel)
                } else {
                    let mut acc = [[f32x4_splat(0.0); 2]; MR];
                    for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                        *acc = tile::<1>(a, i0 + r, panel)[0];
                    }
                    acc
                };
                store(c, c_rs, accumulate, i0, rows, j0, NR.min(n - j0), &acc);
            }
        }
    });
}

/// B (`k × n`) into panels of 8 columns: panel `p` holds rows `0..k` of columns `8p..8p + 8`
/// as two vectors per row, zero past column `n`.
fn pack(packed: &mut Vec<v128>, b: MatRef) {
    let (k, n) = (b.rows, b.cols);
    let panels = n.div_ceil(NR);
    packed.clear();
    packed.reserve(panels * k * 2);
    for p in 0..panels {
        let j0 = p * NR;
        let cols = NR.min(n - j0);
        for kk in 0..k {
            let mut row = [0f32; NR];
            for (jj, v) in row.iter_mut().enumerate().take(cols) {
                *v = b.data[kk * b.rs + (j0 + jj) * b.cs];
            }
            packed.push(f32x4(row[0], row[1], row[2], row[3]));
            packed.push(f32x4(row[4], row[5], row[6], row[7]));
        }
    }
}

/// Rows `i0..i0 + R` of A times one packed panel: `R × 8` sums.
#[inline(always)]
fn tile<const R: usize>(a: MatRef, i0: usize, panel: &[v128]) -> [[v128; 2]; MR] {
    let k = a.cols;
    let mut acc = [[f32x4_splat(0.0); 2]; MR];
    let base = i0 * a.rs;
    // `kernels::gemm_local` checked `(m - 1)·rs + (k - 1)·cs < len`, and `i0 + R ≤ m`.
    debug_assert!(base + (R - 1) * a.rs + (k - 1) * a.cs < a.data.len());
    let ap = a.data.as_ptr();
    for (kk, bv) in panel.chunks_exact(2).enumerate() {
        let (b0, b1) = (bv[0], bv[1]);
        let off = base + kk * a.cs;
        for (r, acc) in acc.iter_mut().enumerate().take(R) {
            // SAFETY: `off + r·rs` is an index of `a.data` (checked by the caller, above).
            let av = unsafe { v128_load32_splat(ap.add(off + r * a.rs) as *const u32) };
            acc[0] = madd(av, b0, acc[0]);
            acc[1] = madd(av, b1, acc[1]);
        }
    }
    acc
}

/// Writes (or adds) `rows × cols` sums at `(i0, j0)` of `C`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn store(
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    i0: usize,
    rows: usize,
    j0: usize,
    cols: usize,
    acc: &[[v128; 2]; MR],
) {
    for (r, acc) in acc.iter().enumerate().take(rows) {
        let at = (i0 + r) * c_rs + j0;
        let out = &mut c[at..at + cols];
        if cols == NR {
            let p = out.as_mut_ptr() as *mut v128;
            // SAFETY: `out` holds 8 f32 (two unaligned v128), borrowed mutably.
            unsafe {
                let (lo, hi) = if accumulate {
                    (
                        f32x4_add(v128_load(p), acc[0]),
                        f32x4_add(v128_load(p.add(1)), acc[1]),
                    )
                } else {
                    (acc[0], acc[1])
                };
                v128_store(p, lo);
                v128_store(p.add(1), hi);
            }
        } else {
            let mut sums = [0f32; NR];
            // SAFETY: `sums` holds two v128.
            unsafe {
                v128_store(sums.as_mut_ptr() as *mut v128, acc[0]);
                v128_store((sums.as_mut_ptr() as *mut v128).add(1), acc[1]);
            }
            for (o, s) in out.iter_mut().zip(sums) {
                *o = if accumulate { *o + s } else { s };
            }
        }
    }
}
