//! Command-line parsing and dispatch; each subcommand lives in its own module.

mod batch;
mod bench;
mod bench_memory;
mod bench_profile;
mod bench_refine;
mod bench_sam;
mod bench_webgpu;
mod cam2label;
mod convert;
mod demo;
mod embed;
mod eval;
mod everything;
mod images;
mod merge;
mod model;
mod predict;
mod refine;
mod refiners;
mod settings;
mod sweep;
mod volume;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Refine weakly-supervised segmentation pseudo-labels with Segment Anything.
#[derive(Parser)]
#[command(name = "camsam", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the bundled demo data (generated scenes, CAMs, SAM masks, ground truth) to a folder.
    Demo(demo::Args),
    Eval(eval::Args),
    Cam2label(cam2label::Args),
    Merge(merge::Args),
    /// Measure speed on your data and print the figures (`camsam bench merge …`).
    Bench(bench::Args),
    /// Segment everything: SAM's automatic mask generator on one image, written as SAM's
    /// amg.py writes it (DIR/<i>.png + DIR/metadata.csv).
    Everything(everything::Args),
    /// Refine CAM pseudo-labels with SAM over a dataset: CAM → pseudo-label → segment
    /// everything → SEPL merge → OUT/<name>.png (resumable, --shard I/N).
    Refine(Box<refine::Args>),
    /// MobileSAM image embedding of one image → f32 .npy (1, 256, 64, 64).
    Embed(embed::Args),
    /// MobileSAM masks for one prompt (points, box, mask input) → DIR/mask<i>.png,
    /// DIR/low_res_logits.npy, DIR/result.json.
    Predict(predict::Args),
    /// Score a grid of SEPL thresholds (t1 × t2, and the CAM background with --cams) against
    /// ground truth → OUT/sweep.json, sweep.csv, sweep.png (a heatmap).
    Sweep(sweep::Args),
    /// Medical images (DICOM, NIfTI, 8/16-bit PNG/TIFF) → per slice OUT/<slice>.png (8-bit
    /// RGB under a window) and OUT/<slice>.npy (float32 modality values).
    Convert(convert::Args),
    /// Per-slice label maps (LABELS/<slice>.png) → a uint8 .nii.gz on a NIfTI reference's grid.
    Volume(volume::Args),
}

pub fn main() -> ExitCode {
    // Before anything starts a thread (it sets an environment variable).
    camsam::gpu::context::balance_software_vulkan_threads();
    let cli = Cli::parse();
    let result: camsam::Result<()> = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Cam2label(args) => cam2label::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Everything(args) => everything::run(args),
        Command::Refine(args) => refine::run(*args),
        Command::Embed(args) => embed::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Volume(args) => volume::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
