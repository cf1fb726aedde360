//! Helpers for the WebGPU tests: the adapter (or a clear skip), seeded random data and
//! named tolerance comparisons that report the worst element.
#![allow(dead_code)]

#[cfg(not(target_arch = "wasm32"))]
use camsam::gpu::{GpuContext, GpuOptions};

/// Opens the device. Without an adapter the test is skipped with a message, unless
/// `CAMSAM_REQUIRE_GPU=1` (set by `tests/run.sh`, so CI fails instead of skipping).
#[cfg(not(target_arch = "wasm32"))]
pub fn context(test: &str) -> Option<GpuContext> {
    context_with(test, GpuOptions::default())
}

/// [`context`] with options (e.g. a forced matmul kernel).
#[cfg(not(target_arch = "wasm32"))]
pub fn context_with(test: &str, options: GpuOptions) -> Option<GpuContext> {
    match pollster::block_on(GpuContext::with_options(options)) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            if std::env::var("CAMSAM_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("{test}: CAMSAM_REQUIRE_GPU=1 but no WebGPU device: {e}");
            }
            eprintln!("{test}: skipped, no WebGPU adapter ({e})");
            None
        }
    }
}

/// Seeded uniform values in [-scale, scale] (SplitMix64).
pub fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * u - 1.0) * scale
        })
        .collect()
}

/// A named tolerance: |got − want| ≤ atol + rtol·|want|.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub name: &'static str,
    pub atol: f32,
    pub rtol: f32,
}

/// Single f32 ops (element-wise, norms, depthwise conv).
pub const ELEMENTWISE: Tol = Tol {
    name: "elementwise f32",
    atol: 1e-5,
    rtol: 1e-5,
};
/// Reductions over up to a few thousand products (matmul, attention).
pub const REDUCTION: Tol = Tol {
    name: "reduction f32",
    atol: 1e-4,
    rtol: 1e-4,
};

/// Panics naming the worst element (index, both values) when any element is out of `tol`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tol) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    let mut worst = (0usize, 0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = if g.is_finite() {
            (g - w).abs() - (tol.atol + tol.rtol * w.abs())
        } else {
            f32::INFINITY
        };
        if excess > worst.1 || (i == 0 && excess > 0.0) {
            worst = (i, excess);
        }
    }
    let (i, excess) = worst;
    assert!(
        excess <= 0.0,
        "{what}: outside {} (atol {}, rtol {}): worst at index {i}: got {}, want {} (|Δ| = {})",
        tol.name,
        tol.atol,
        tol.rtol,
        got[i],
        want[i],
        (got[i] - want[i]).abs()
    );
}
