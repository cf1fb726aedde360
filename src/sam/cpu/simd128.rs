//! The CPU model's matrix product on wasm32: WebAssembly SIMD128, with relaxed-SIMD fused
//! multiply-add in the build made for browsers that have it.
//!
//! gemm's wasm kernel (8 × 4 outputs, a multiply and an add per step, operands packed into a
//! buffer it allocates per call) ran the encoder's products at 25–29 GFLOP/s on one thread of
//! the 2-core VM, and its speed moved with where the allocator put the operands. This kernel
//! reads B in panels of 8 columns (packed into a buffer kept per thread where B is strided) and
//! computes 4 × 8 outputs per step from one broadcast value of A per row: eight accumulators,
//! no spills. Measured the same way (Node 20, one thread, the encoder's product shapes):
//! 33–40 GFLOP/s with a multiply and an add, 50–52 GFLOP/s with `f32x4.relaxed_madd`, the
//! 128-bit peak of that CPU.
//!
//! Every output is `Σ_k a[i][k]·b[k][j]` summed in order of `k` from zero, then added to `C`
//! when accumulating, whatever the split of rows: a product shared with helper workers by rows
//! gives the same bits as on one thread.

use super::kernels::MatRef;
use core::arch::wasm32::*;
use std::cell::RefCell;

/// Columns of B per panel (two vectors).
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
    /// The packed panels of B of the product in progress, reused across calls.
    static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
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
///
/// B's panels of 8 columns are read in place where B is row-major (a row of 8 is contiguous);
/// a strided B (a transposed weight, keys as columns) and a row-major B's last, partial panel
/// are packed first, into a buffer kept per thread.
pub(super) fn matmul(c: &mut [f32], c_rs: usize, accumulate: bool, a: MatRef, b: MatRef) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let panels = n.div_ceil(NR);
    let in_place = if b.cs == 1 { n / NR } else { 0 };
    PACKED.with(|packed| {
        let mut packed = packed.borrow_mut();
        pack(&mut packed, b, in_place);
        for i0 in (0..m).step_by(MR) {
            let rows = MR.min(m - i0);
            for p in 0..panels {
                let j0 = p * NR;
                let panel = if p < in_place {
                    // Rows `0..k` of columns `j0..j0 + 8`: the last is at
                    // `(k - 1)·rs + j0 + 7 ≤ (k - 1)·rs + n - 1`, inside (checked by the caller).
                    Panel {
                        data: &b.data[j0..],
                        stride: b.rs,
                    }
                } else {
                    Panel {
                        data: &packed[(p - in_place) * k * NR..],
                        stride: NR,
                    }
                };
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

/// One panel of B as a tile reads it: row `kk`'s 8 values at `data[kk·stride..]`.
#[derive(Clone, Copy)]
struct Panel<'a> {
    data: &'a [f32],
    stride: usize,
}

/// B's panels from `first` on (`k` rows of 8 columns each, zero past column `n`), one after
/// the other.
fn pack(packed: &mut Vec<f32>, b: MatRef, first: usize) {
    let (k, n) = (b.rows, b.cols);
    packed.clear();
    for p in first..n.div_ceil(NR) {
        let j0 = p * NR;
        let cols = NR.min(n - j0);
        for kk in 0..k {
            let row = &b.data[kk * b.rs..];
            packed.extend((0..NR).map(|jj| {
                if jj < cols {
                    row[(j0 + jj) * b.cs]
                } else {
                    0.0
                }
            }));
        }
    }
}

/// Rows `i0..i0 + R` of A times one panel of B: `R × 8` sums, each over `k` in order.
#[inline(always)]
fn tile<const R: usize>(a: MatRef, i0: usize, panel: Panel) -> [[v128; 2]; MR] {
    let k = a.cols;
    let mut acc = [[f32x4_splat(0.0); 2]; MR];
    let base = i0 * a.rs;
    // `kernels::gemm_local` checked `(m - 1)·rs + (k - 1)·cs < len` without overflow, and
    // `i0 + R ≤ m`.
    assert!(base + (R - 1) * a.rs + (k - 1) * a.cs < a.data.len());
    assert!((k - 1) * panel.stride + NR <= panel.data.len());
    let (ap, bp) = (a.data.as_ptr(), panel.data.as_ptr());
    for kk in 0..k {
        let off = base + kk * a.cs;
        // SAFETY: `kk·stride + 8 ≤ len` of the panel (asserted above); unaligned loads.
        let (b0, b1) = unsafe {
            let row = bp.add(kk * panel.stride) as *const v128;
            (v128_load(row), v128_load(row.add(1)))
        };
        for (r, acc) in acc.iter_mut().enumerate().take(R) {
            // SAFETY: `off + r·rs` is an index of `a.data` (asserted above).
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
