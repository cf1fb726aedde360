//! The WebGPU kernel parity checks of `tests/it/gpu_kernels.rs` (shared in
//! `it/common/gpu_checks.rs`) in headless Chromium through `wasm-bindgen-test`, on the browser's
//! WebGPU (SwiftShader there; `webdriver.json` passes `--enable-unsafe-webgpu`): both matmul
//! kernels, im2col convolutions, depthwise 3×3, LayerNorm and window attention, on odd sizes.
//! SwiftShader is a fallback (CPU) adapter, so `Auto` runs the texel kernels of CPU adapters;
//! the texel matmul needs subgroups, which wgpu does not expose in the browser, so the blocked
//! matmul reads storage there. The decoder on the official embedding runs on WebGPU in
//! `wasm_sam_decoder.rs`. Run with `CHROMEDRIVER=/usr/bin/chromedriver
//! WASM_BINDGEN_TEST_TIMEOUT=180 cargo test --target wasm32-unknown-unknown --test
//! wasm_gpu_kernels` (SwiftShader is slow: some checks pass the runner's default 20 s).
#![cfg(target_arch = "wasm32")]

#[path = "it/common/gpu.rs"]
mod gpu;
#[path = "it/common/gpu_checks.rs"]
mod gpu_checks;

use camsam::gpu::{GpuContext, GpuOptions, MatmulKernel};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The browser's WebGPU device; CI's Chromium must have one.
async fn context(matmul: MatmulKernel) -> GpuContext {
    GpuContext::with_options(GpuOptions {
        matmul,
        ..Default::default()
    })
    .await
    .expect("a WebGPU adapter in headless Chromium (webdriver.json: --enable-unsafe-webgpu)")
}

#[wasm_bindgen_test]
async fn matmul_tiled_in_the_browser() {
    let ctx = context(MatmulKernel::Tiled).await;
    gpu_checks::matmul(&ctx, MatmulKernel::Tiled).await;
    gpu_checks::matmul_rejects_mismatched_shapes(&ctx);
}

#[wasm_bindgen_test]
async fn matmul_blocked_in_the_browser() {
    let ctx = context(MatmulKernel::Blocked).await;
    gpu_checks::matmul(&ctx, MatmulKernel::Blocked).await;
}

#[wasm_bindgen_test]
async fn conv2d_im2col_in_the_browser() {
    let ctx = context(MatmulKernel::Auto).await;
    gpu_checks::conv2d_im2col(&ctx).await;
}

#[wasm_bindgen_test]
async fn depthwise3x3_in_the_browser() {
    let ctx = context(MatmulKernel::Auto).await;
    gpu_checks::depthwise3x3(&ctx).await;
}

#[wasm_bindgen_test]
async fn layer_norm_in_the_browser() {
    // Both kernel families: the GPUs' one-workgroup-per-row kernel must pass Tint too.
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        gpu_checks::layer_norm(&context(kernel).await).await;
    }
}

#[wasm_bindgen_test]
async fn window_attention_in_the_browser() {
    let ctx = context(MatmulKernel::Auto).await;
    gpu_checks::window_attention(&ctx).await;
}

#[wasm_bindgen_test]
async fn batched_matmul_and_softmax_in_the_browser() {
    // Both kernel families: the GPUs' split-k sum and wide softmax must pass Tint too.
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        let ctx = context(kernel).await;
        gpu_checks::batched_matmul(&ctx).await;
        gpu_checks::softmax(&ctx).await;
    }
}
