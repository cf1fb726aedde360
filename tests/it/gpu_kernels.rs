//! Each WebGPU kernel against a CPU reference on random shapes, including sizes that are not
//! multiples of the tiles (the checks live in `common/gpu_checks.rs`, shared with the browser
//! tests in `tests/wasm_gpu_kernels.rs`).

use crate::common::gpu;
use crate::common::gpu_checks;

use camsam::gpu::{GpuOptions, MatmulKernel};

/// Both matmul kernels run on every adapter (each is forced here), whatever the default.
fn matmul_should_match_reference(kernel: MatmulKernel) {
    let test = format!("matmul_{kernel:?}_should_match_reference");
    let options = GpuOptions {
        matmul: kernel,
        ..Default::default()
    };
    if let Some(ctx) = gpu::context_with(&test, options) {
        pollster::block_on(gpu_checks::matmul(&ctx, kernel));
    }
}

#[test]
fn matmul_tiled_should_match_reference() {
    matmul_should_match_reference(MatmulKernel::Tiled);
}

/// The GPU family with f16 operands, where the adapter offers `shader-f16` (lavapipe does):
/// against the reference on the f16 roundings of the operands.
#[test]
fn matmul_tiled_f16_should_match_reference() {
    let test = "matmul_tiled_f16_should_match_reference";
    let options = GpuOptions {
        matmul: MatmulKernel::Tiled,
        f16: true,
        ..Default::default()
    };
    if let Some(ctx) = gpu::context_with(test, options) {
        if !ctx.offers_shader_f16() {
            eprintln!(
                "{test}: skipped: {} does not offer shader-f16",
                ctx.adapter_name()
            );
            return;
        }
        assert!(ctx.f16_operands());
        pollster::block_on(gpu_checks::matmul(&ctx, MatmulKernel::Tiled));
    }
}

#[test]
fn matmul_blocked_should_match_reference() {
    matmul_should_match_reference(MatmulKernel::Blocked);
}

#[test]
fn matmul_rejects_mismatched_shapes() {
    if let Some(ctx) = gpu::context("matmul_rejects_mismatched_shapes") {
        gpu_checks::matmul_rejects_mismatched_shapes(&ctx);
    }
}

#[test]
fn conv2d_im2col_should_match_reference() {
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        if let Some(ctx) = context_for("conv2d_im2col_should_match_reference", kernel) {
            pollster::block_on(gpu_checks::conv2d_im2col(&ctx));
        }
    }
}

/// A context running `kernel`'s family: the texel kernels of CPU adapters (`Blocked`) or the
/// storage-buffer ones (`Tiled`), whatever the adapter.
fn context_for(test: &str, kernel: MatmulKernel) -> Option<camsam::gpu::GpuContext> {
    let options = GpuOptions {
        matmul: kernel,
        ..Default::default()
    };
    gpu::context_with(&format!("{test}_{kernel:?}"), options)
}

#[test]
fn depthwise3x3_should_match_reference() {
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        if let Some(ctx) = context_for("depthwise3x3_should_match_reference", kernel) {
            pollster::block_on(gpu_checks::depthwise3x3(&ctx));
        }
    }
}

#[test]
fn layer_norm_should_match_reference() {
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        if let Some(ctx) = context_for("layer_norm_should_match_reference", kernel) {
            pollster::block_on(gpu_checks::layer_norm(&ctx));
        }
    }
}

#[test]
fn window_attention_should_match_reference() {
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        if let Some(ctx) = context_for("window_attention_should_match_reference", kernel) {
            pollster::block_on(gpu_checks::window_attention(&ctx));
        }
    }
}

#[test]
fn batched_matmul_should_match_reference() {
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        if let Some(ctx) = context_for("batched_matmul_should_match_reference", kernel) {
            pollster::block_on(gpu_checks::batched_matmul(&ctx));
        }
    }
}

#[test]
fn softmax_should_match_reference() {
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        if let Some(ctx) = context_for("softmax_should_match_reference", kernel) {
            pollster::block_on(gpu_checks::softmax(&ctx));
        }
    }
}
