//! Which implementation runs MobileSAM: `--backend cpu|webgpu|auto` in the CLI.
//! [`AnySam`] is either model behind the one [`SamBackend`] interface, so every command and
//! the generator run unchanged on both; [`open`] makes the choice. `auto` opens WebGPU when an
//! adapter and a device can be made and the weights upload, else falls back to the CPU,
//! returning why (the CLI prints it on stderr). A CPU adapter (lavapipe, SwiftShader) counts
//! as none for `auto`: on the same cores the CPU backend is faster.
//!
//! ```no_run
//! # async fn demo(w: &camsam::sam::weights::Weights) -> camsam::Result<()> {
//! use camsam::sam::backend::{open, Backend};
//! let (model, fallback) = open(w, Backend::Auto, Default::default()).await?;
//! if let Some(why) = fallback {
//!     eprintln!("WebGPU unavailable ({why}); using the CPU");
//! }
//! # Ok(()) }
//! ```

use crate::gpu::{GpuContext, GpuOptions, GpuTensor};
use crate::sam::cpu::{CpuEmbedding, CpuSam};
use crate::sam::gpu::GpuSam;
use crate::sam::predictor::{LowResMasks, Prompt};
use crate::sam::preprocess::ModelInput;
use crate::sam::weights::Weights;
use crate::sam::SamBackend;
use crate::{Error, Result};

/// The backend to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum Backend {
    /// The CPU (multi-threaded).
    #[default]
    Cpu,
    /// WebGPU (wgpu: Vulkan / Metal / DX12; Mesa's lavapipe without a GPU); fails without one.
    Webgpu,
    /// WebGPU when a GPU adapter and device can be made, else the CPU (a software adapter such
    /// as lavapipe is slower than the CPU backend: `auto` passes over it).
    Auto,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "webgpu" => Ok(Backend::Webgpu),
            "auto" => Ok(Backend::Auto),
            other => Err(format!("backend '{other}': expected auto, webgpu or cpu")),
        }
    }
}

/// MobileSAM on either backend.
// One per process, never moved in a loop: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnySam {
    /// [`CpuSam`].
    Cpu(CpuSam),
    /// [`GpuSam`].
    Webgpu(GpuSam),
}

/// An image embedding of [`AnySam`], on the backend that made it.
pub enum AnyEmbedding {
    /// On the host.
    Cpu(CpuEmbedding),
    /// On the device.
    Webgpu(GpuTensor),
}

/// Loads MobileSAM on `backend`. Returns the model and, when `Auto` fell back to the CPU,
/// why WebGPU could not be used. `Webgpu` fails with [`Error::Gpu`] instead of falling back.
/// `gpu` sets how the device is opened (its `no_adapter` simulates a machine without WebGPU).
pub async fn open(
    weights: &Weights,
    backend: Backend,
    gpu: GpuOptions,
) -> Result<(AnySam, Option<String>)> {
    let webgpu = |cpu_adapter_ok: bool| async move {
        // In the browser `auto` takes any adapter the browser offers: the page's CPU model
        // is single-threaded wasm, and a browser names no adapter reliably as software.
        let cpu_adapter_ok = cpu_adapter_ok || cfg!(target_arch = "wasm32");
        let ctx = GpuContext::with_options(gpu).await?;
        if !cpu_adapter_ok && ctx.is_software() {
            return Err(Error::Gpu(software_adapter(&ctx.adapter_name())));
        }
        GpuSam::new(ctx, weights)
    };
    match backend {
        Backend::Cpu => Ok((AnySam::Cpu(CpuSam::new(weights)?), None)),
        Backend::Webgpu => Ok((AnySam::Webgpu(webgpu(true).await?), None)),
        Backend::Auto => match webgpu(false).await {
            Ok(model) => Ok((AnySam::Webgpu(model), None)),
            // Only a missing or failing device falls back; bad weights fail either way.
            Err(Error::Gpu(why)) => Ok((AnySam::Cpu(CpuSam::new(weights)?), Some(why))),
            Err(e) => Err(e),
        },
    }
}

/// Why `auto` passes over a CPU adapter: the CPU path is faster on the same cores (on the
/// 2-core VM a native binary's CPU path ran the encoder about 2× (1.95–2.5×) faster than
/// lavapipe and the decoder 6–13× faster; see `camsam bench sam`).
fn software_adapter(name: &str) -> String {
    format!(
        "the only WebGPU adapter, {name}, is a software renderer running on the CPU, slower than \
         the CPU backend (--backend webgpu uses it anyway)"
    )
}

fn mismatch() -> Error {
    Error::Model("an embedding of one backend was given to the other".into())
}

impl SamBackend for AnySam {
    type Embedding = AnyEmbedding;

    fn name(&self) -> String {
        match self {
            AnySam::Cpu(m) => m.name(),
            AnySam::Webgpu(m) => m.name(),
        }
    }

    async fn embed(&self, input: &ModelInput) -> Result<AnyEmbedding> {
        Ok(match self {
            AnySam::Cpu(m) => AnyEmbedding::Cpu(m.embed(input).await?),
            AnySam::Webgpu(m) => AnyEmbedding::Webgpu(m.embed(input).await?),
        })
    }

    async fn upload_embedding(&self, embedding: &[f32]) -> Result<AnyEmbedding> {
        Ok(match self {
            AnySam::Cpu(m) => AnyEmbedding::Cpu(m.upload_embedding(embedding).await?),
            AnySam::Webgpu(m) => AnyEmbedding::Webgpu(m.upload_embedding(embedding).await?),
        })
    }

    async fn download_embedding(&self, embedding: &AnyEmbedding) -> Result<Vec<f32>> {
        match (self, embedding) {
            (AnySam::Cpu(m), AnyEmbedding::Cpu(e)) => m.download_embedding(e).await,
            (AnySam::Webgpu(m), AnyEmbedding::Webgpu(e)) => m.download_embedding(e).await,
            _ => Err(mismatch()),
        }
    }

    async fn decode(
        &self,
        embedding: &AnyEmbedding,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<LowResMasks>> {
        match (self, embedding) {
            (AnySam::Cpu(m), AnyEmbedding::Cpu(e)) => m.decode(e, prompts, multimask).await,
            (AnySam::Webgpu(m), AnyEmbedding::Webgpu(e)) => m.decode(e, prompts, multimask).await,
            _ => Err(mismatch()),
        }
    }
}
