//! `camsam bench sam --backend webgpu`: speed figures of the WebGPU engine (adapter, encoder
//! ms, decoder ms/prompt in batches, everything-mode s/image, achieved GFLOP/s).
//! Figures are printed, never asserted.

use camsam::gpu::sam::GpuSam;
use camsam::gpu::weights::HostWeights;
use camsam::gpu::GpuContext;
use camsam::predictor::{MaskPredictor, Prompt};
use camsam::{Error, Result};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;

/// FLOPs of one MobileSAM encoder pass (issue 4).
const ENCODER_GFLOP: f64 = 77.5;
/// FLOPs of one decoder pass per prompt (issue 4).
const DECODER_GFLOP: f64 = 3.62;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// MobileSAM encoder, decoder and segment-everything timings.
    Sam(SamArgs),
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Backend {
    Webgpu,
}

#[derive(ClapArgs)]
struct SamArgs {
    /// Model backend.
    #[arg(long, value_enum, default_value = "webgpu")]
    backend: Backend,
    /// MobileSAM checkpoint (`.safetensors` or the official `.pt`).
    #[arg(long)]
    weights: PathBuf,
    /// Timed encoder runs (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Prompt batch sizes to time the decoder with.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    batches: Vec<usize>,
    /// Points per side of the everything-mode grid (0 skips it).
    #[arg(long, default_value_t = 32)]
    points_per_side: usize,
}

/// Reads a checkpoint into name → tensor.
pub fn load_weights(path: &std::path::Path) -> Result<HostWeights> {
    let name = path.display().to_string();
    let dev = candle_core::Device::Cpu;
    let is_pt = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pt") || e.eq_ignore_ascii_case("pth"));
    let map = if is_pt {
        candle_core::pickle::read_all(path)
            .map_err(|e| Error::input(&name, format!("not a PyTorch checkpoint: {e}")))?
            .into_iter()
            .collect()
    } else {
        candle_core::safetensors::load(path, &dev)
            .map_err(|e| Error::input(&name, format!("not a safetensors checkpoint: {e}")))?
    };
    Ok(HostWeights::new(name, map))
}

pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::Sam(a) => bench_sam(a),
    }
}

fn bench_sam(a: SamArgs) -> Result<()> {
    let Backend::Webgpu = a.backend;
    let weights = load_weights(&a.weights)?;
    let ctx = pollster::block_on(GpuContext::new())?;
    println!("backend: webgpu");
    println!("adapter: {}", ctx.adapter_name());
    println!(
        "host: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut sam = GpuSam::load(ctx, &weights)?;
    println!("decoder chain: up to {} prompts", sam.batch_size());
    // A deterministic synthetic image (timings do not depend on content).
    let side = 1024usize;
    let image: Vec<f32> = (0..3 * side * side)
        .map(|i| ((i * 7919 % 255) as f32 - 127.0) / 58.0)
        .collect();
    let encode = |sam: &mut GpuSam| -> Result<f64> {
        let t = Instant::now();
        pollster::block_on(async {
            sam.set_input(&image, (side, side), (side, side)).await?;
            sam.embedding().await.map(|_| ())
        })?;
        Ok(t.elapsed().as_secs_f64())
    };
    let warm = encode(&mut sam)?;
    println!(
        "encoder warm-up (pipeline compilation): {:.0} ms",
        warm * 1e3
    );
    let mut times = Vec::new();
    for _ in 0..a.runs.max(1) {
        times.push(encode(&mut sam)?);
    }
    times.sort_by(f64::total_cmp);
    let enc = times[times.len() / 2];
    println!(
        "encoder: {:.0} ms (median of {}), {:.1} GFLOP/s",
        enc * 1e3,
        times.len(),
        ENCODER_GFLOP / enc
    );
    let grid = |n: usize| -> Vec<Prompt> {
        let per = (n as f64).sqrt().ceil().max(1.0) as usize;
        (0..n)
            .map(|i| {
                let (y, x) = (i / per, i % per);
                Prompt {
                    points: vec![(
                        (x as f64 + 0.5) * side as f64 / per as f64,
                        (y as f64 + 0.5) * side as f64 / per as f64,
                    )],
                    labels: vec![1],
                    ..Default::default()
                }
            })
            .collect()
    };
    // Warm the decoder pipelines once.
    pollster::block_on(sam.predict_low_res(&grid(1), true))?;
    for &b in &a.batches {
        let prompts = grid(b.max(1));
        let t = Instant::now();
        pollster::block_on(sam.predict_low_res(&prompts, true))?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "decoder, batch {:>3}: {:.1} ms/prompt, {:.1} GFLOP/s",
            prompts.len(),
            s * 1e3 / prompts.len() as f64,
            DECODER_GFLOP * prompts.len() as f64 / s
        );
    }
    if a.points_per_side > 0 {
        let n = a.points_per_side * a.points_per_side;
        let prompts = grid(n);
        let t = Instant::now();
        let e = encode(&mut sam)?;
        pollster::block_on(sam.predict_low_res(&prompts, true))?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "everything mode ({n} point prompts, 3 masks each; encoder + decoder, without the generator's filtering): {s:.2} s/image (encoder {e:.2} s)"
        );
    }
    Ok(())
}
