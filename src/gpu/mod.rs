//! The WebGPU engine: MobileSAM as WGSL compute kernels on wgpu, natively (Vulkan, Metal,
//! DX12; lavapipe in CI) and in the browser (WebGPU).
//!
//! Tensors stay on the device ([`GpuTensor`]) from the input image to the outputs; every op
//! records a dispatch into a [`context::Recorder`] and only results are read back
//! (`map_async`, never blocking on wasm). Each op lives in its own module with its `.wgsl`
//! file beside it; [`shaders`] lists them and validates all of them with naga in `cargo test`.
//!
//! ```no_run
//! # async fn demo() -> camsam::Result<()> {
//! let ctx = camsam::gpu::GpuContext::new().await?;
//! let x = camsam::gpu::GpuTensor::upload(&ctx, &[3], &[1.0, 2.0, 3.0])?;
//! assert_eq!(x.read(&ctx).await?, vec![1.0, 2.0, 3.0]);
//! # Ok(()) }
//! ```

pub mod add;
pub mod attention;
pub mod batched_matmul;
pub mod context;
pub mod conv;
pub mod conv_transpose;
pub mod matmul;
pub mod norm;
pub mod rows;
pub(crate) mod shaders;
pub mod softmax;
pub mod tensor;
pub mod window_attention;

pub use context::{GpuContext, GpuOptions, MatmulKernel, OpTime, Recorder};
pub use tensor::GpuTensor;
