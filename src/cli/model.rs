//! The MobileSAM model of every model command (`embed`, `predict`, `everything`, `refine`,
//! `bench sam`): `--backend cpu|webgpu|auto` through [`camsam::sam::backend::open`], the one place
//! the CLI loads weights onto a backend. Says on stderr which backend and adapter run, and why
//! `auto` fell back to the CPU.
//!
//! `CAMSAM_WEBGPU=off` in the environment makes the CLI act as if no WebGPU adapter existed
//! (`webgpu` fails, `auto` falls back): the fallback tests use it.

use camsam::gpu::GpuOptions;
use camsam::sam::backend::{AnySam, Backend};
use camsam::sam::weights::Weights;
use camsam::sam::SamBackend;
use std::path::Path;

/// The environment variable that hides WebGPU from the CLI when set to `off`.
pub const WEBGPU_ENV: &str = "CAMSAM_WEBGPU";

/// `--backend` of the model commands.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct BackendArg {
    /// Where MobileSAM runs: cpu, webgpu (fails without an adapter) or auto (WebGPU when a
    /// GPU adapter and device can be made, else the CPU; a software adapter such as lavapipe is
    /// slower than the CPU backend, so auto passes over it).
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// With WebGPU on a GPU whose adapter offers shader-f16: f16 operands in the matmuls
    /// (weights stored as f16, activations rounded to f16, f32 accumulation). Ignored elsewhere.
    #[arg(long)]
    pub f16: bool,
}

impl BackendArg {
    /// The WebGPU device options these flags ask for.
    pub fn gpu_options(&self) -> GpuOptions {
        GpuOptions {
            f16: self.f16,
            ..Default::default()
        }
    }
}

/// Loads `weights` onto `backend` (with `gpu`'s device options) and says on stderr which
/// backend runs, and why `auto` fell back to the CPU.
pub fn open(weights: &Path, backend: Backend, mut gpu: GpuOptions) -> camsam::Result<AnySam> {
    if std::env::var(WEBGPU_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
        gpu.no_adapter = true;
    }
    let weights = Weights::load(weights)?;
    let (model, fallback) = pollster::block_on(camsam::sam::backend::open(&weights, backend, gpu))?;
    if let Some(why) = fallback {
        eprintln!("backend auto: WebGPU unavailable ({why}); falling back to the CPU");
    }
    eprintln!("backend: {}", model.name());
    Ok(model)
}
