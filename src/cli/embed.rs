//! `camsam embed`: the MobileSAM image embedding of one image, as an f32 `.npy`
//! `(1, 256, 64, 64)` — the official `SamPredictor.set_image` + `get_image_embedding`.

use camsam::npy;
use camsam::sam::cpu::CpuSam;
use camsam::sam::weights::Weights;
use camsam::sam::{preprocess, Predictor, EMBED_DIM, EMBED_SIDE};
use std::path::PathBuf;

/// Which implementation of the model runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The CPU (multi-threaded).
    #[default]
    Cpu,
    /// WebGPU (wgpu: Vulkan / Metal / DX12; lavapipe without a GPU).
    Webgpu,
}

/// Loads the weights onto the default WebGPU device.
pub fn load_webgpu_model(weights: &std::path::Path) -> camsam::Result<camsam::gpu::sam::GpuSam> {
    pollster::block_on(camsam::gpu::sam::GpuSam::open(&Weights::load(weights)?))
}

#[derive(clap::Args)]
pub struct Args {
    /// MobileSAM weights: the official `mobile_sam.pt` or a `.safetensors` with official names.
    #[arg(long)]
    pub weights: PathBuf,
    /// The image (PNG or JPEG).
    #[arg(long)]
    pub image: PathBuf,
    /// Output `.npy` file.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
}

/// Loads the weights and the CPU model, saying which file failed if any.
pub fn load_cpu_model(weights: &std::path::Path) -> camsam::Result<CpuSam> {
    CpuSam::new(&Weights::load(weights)?)
}

pub fn run(args: Args) -> camsam::Result<()> {
    match args.backend {
        Backend::Cpu => embed_with(&load_cpu_model(&args.weights)?, &args),
        Backend::Webgpu => embed_with(&load_webgpu_model(&args.weights)?, &args),
    }
}

fn embed_with<B: camsam::sam::SamBackend>(model: &B, args: &Args) -> camsam::Result<()> {
    let image = preprocess::read_rgb(&args.image)?;
    let mut predictor = Predictor::new(model);
    pollster::block_on(predictor.set_image(&image))?;
    let embedding = pollster::block_on(predictor.embedding())?;
    npy::write_f32(
        &args.out,
        &[1, EMBED_DIM, EMBED_SIDE, EMBED_SIDE],
        &embedding,
    )
}
