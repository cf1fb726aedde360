//! `camsam embed`: the MobileSAM image embedding of one image, as an f32 `.npy`
//! `(1, 256, 64, 64)` — the official `SamPredictor.set_image` + `get_image_embedding`.

use super::model::BackendArg;
use camsam::core::npy;
use camsam::sam::{Predictor, EMBED_DIM, EMBED_SIDE};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// MobileSAM weights: the official `mobile_sam.pt` or a `.safetensors` with official names.
    #[arg(long)]
    pub weights: PathBuf,
    #[command(flatten)]
    pub image: super::images::ImageArgs,
    /// Output `.npy` file.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub backend: BackendArg,
}

pub fn run(args: Args) -> camsam::Result<()> {
    let model = super::model::open(
        &args.weights,
        args.backend.backend,
        args.backend.gpu_options(),
    )?;
    let image = args.image.read()?;
    let mut predictor = Predictor::new(&model);
    pollster::block_on(predictor.set_image(&image))?;
    let embedding = pollster::block_on(predictor.embedding())?;
    npy::write_f32(
        &args.out,
        &[1, EMBED_DIM, EMBED_SIDE, EMBED_SIDE],
        &embedding,
    )
}
