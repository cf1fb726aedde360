//! `camsam bench sam`: MobileSAM speed on this machine — encoder ms/image, decoder ms/prompt
//! in batches (the image-side work shared), and segment-everything s/image with the default
//! generator (32×32 points, batches of 64) — with the core count, printed, never asserted.

use camsam::gpu::GpuOptions;
use camsam::refine::amg::{AmgConfig, AutomaticMaskGenerator};
use camsam::sam::backend::{AnySam, Backend};
use camsam::sam::predictor::MaskPredictor;
use camsam::sam::preprocess::{self, RgbImage};
use camsam::sam::{Predictor, SamBackend};
use camsam::Result;
use std::path::PathBuf;
use std::time::Instant;

/// The official PyTorch MobileSAM on the project's 2-core VM (issue 3), for comparison.
const OFFICIAL_ENCODER_S: f64 = 2.0;
const OFFICIAL_DECODER_S_PER_PROMPT: f64 = 0.23;

#[derive(clap::Args, Debug)]
pub struct SamBench {
    #[command(flatten)]
    backend: super::model::BackendArg,
    /// MobileSAM weights (`mobile_sam.pt` or `.safetensors`).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Image to embed (default: a synthetic 1024×768 gradient).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Prompts per decoder batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed encoder runs (the fastest is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Skip segment-everything (it runs the decoder on 1,024 points).
    #[arg(long)]
    no_everything: bool,
    /// Where the time goes, instead of the figures. WebGPU: every op of one encoder pass and
    /// one decoder batch (submitting and waiting per dispatch), slowest kernels first. CPU: the
    /// decoder's and the mask generator's stages on one thread, per prompt, with GFLOP/s.
    #[arg(long)]
    profile: bool,
    /// WebGPU only: time the encoder on WebGPU and on the CPU backend alternately, pass by
    /// pass in this process (so both see the same machine load), and print the time ratio.
    #[arg(long)]
    against_cpu: bool,
}

/// CPU time (user + system, all threads) of this process in seconds, from `/proc/self/stat`
/// (Linux; `None` elsewhere). Unlike wall time it does not depend on other load.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs `f`, returning its result, wall seconds and CPU seconds (if known).
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64, Option<f64>)> {
    let c0 = cpu_seconds();
    let t = Instant::now();
    let out = f()?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = c0.zip(cpu_seconds()).map(|(a, b)| b - a);
    Ok((out, wall, cpu))
}

fn cpu_text(cpu: Option<f64>, per: f64) -> String {
    cpu.map_or_else(String::new, |c| format!(", CPU {:.0} ms", c * 1e3 / per))
}

/// `--image`, or else the synthetic one.
fn bench_image(path: &Option<PathBuf>) -> Result<RgbImage> {
    match path {
        Some(p) => preprocess::read_rgb(p),
        None => Ok(synthetic_image()),
    }
}

fn synthetic_image() -> RgbImage {
    RgbImage::from_fn(1024, 768, |x, y| {
        image::Rgb([(x / 4) as u8, (y / 3) as u8, ((x + y) / 8) as u8])
    })
}

pub fn run(args: SamBench) -> Result<()> {
    let t = Instant::now();
    let gpu = GpuOptions {
        profile: args.profile,
        ..args.backend.gpu_options()
    };
    let model = match super::model::open(&args.weights, args.backend.backend, gpu)? {
        AnySam::Webgpu(sam) if args.against_cpu => {
            let AnySam::Cpu(cpu) =
                super::model::open(&args.weights, Backend::Cpu, GpuOptions::default())?
            else {
                return Err(camsam::Error::Model("the CPU backend did not open".into()));
            };
            return super::bench_webgpu::against_cpu(
                &sam,
                &cpu,
                &preprocess::prepare(&bench_image(&args.image)?),
                args.repeat,
            );
        }
        AnySam::Webgpu(sam) => {
            return super::bench_webgpu::run(
                &sam,
                args.repeat,
                &[1, args.batch],
                if args.no_everything { 0 } else { 32 },
                args.profile,
            )
        }
        AnySam::Cpu(_) if args.against_cpu => {
            return Err(camsam::Error::input(
                "--against-cpu",
                "compares the WebGPU encoder with the CPU one: use it with --backend webgpu",
            ))
        }
        AnySam::Cpu(model) => model,
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let image = bench_image(&args.image)?;
    println!(
        "backend: {}, {cores} cores; weights loaded in {:.0} ms",
        model.name(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let input = preprocess::prepare(&image);
    let batch = args.batch.max(1);
    let prompts = camsam::sam::predictor::bench_prompts(input.input_size, batch);
    if args.profile {
        return super::bench_profile::run(&model, &image, &prompts);
    }

    let mut best = (f64::INFINITY, None);
    let mut walls = Vec::new();
    let mut embedding = None;
    for _ in 0..args.repeat.max(1) {
        let (e, wall, cpu) = timed(|| pollster::block_on(model.embed(&input)))?;
        embedding = Some(e);
        walls.push(wall);
        if wall < best.0 {
            best = (wall, cpu);
        }
    }
    let median = super::bench_webgpu::sorted_median(&mut walls);
    println!(
        "encoder: {:.0} ms/image wall{} (best of {}, median {:.0} ms; official PyTorch {:.1} s on the 2-core VM)",
        best.0 * 1e3,
        cpu_text(best.1, 1.0),
        walls.len(),
        median * 1e3,
        OFFICIAL_ENCODER_S
    );
    let Some(embedding) = embedding else {
        return Ok(());
    };

    for (n, multimask) in [(1, true), (batch, true), (batch, false)] {
        let (_, wall, cpu) =
            timed(|| pollster::block_on(model.decode(&embedding, &prompts[..n], multimask)))?;
        println!(
            "decoder: {:.1} ms/prompt wall{} in batches of {n} ({} masks each; official {:.2} s/prompt)",
            wall * 1e3 / n as f64,
            cpu_text(cpu, n as f64),
            if multimask { 3 } else { 1 },
            OFFICIAL_DECODER_S_PER_PROMPT
        );
    }

    if !args.no_everything {
        let generator = AutomaticMaskGenerator::new(AmgConfig::default())?;
        let mut predictor = Predictor::new(&model);
        let (records, wall, cpu) =
            timed(|| pollster::block_on(generator.generate(&mut predictor, &image)))?;
        println!(
            "everything: {:.2} s/image wall{} ({} masks, default generator: 32×32 points, batches of 64; image {}×{})",
            wall,
            cpu.map_or_else(String::new, |c| format!(", CPU {c:.2} s")),
            records.len(),
            predictor.original_size().1,
            predictor.original_size().0
        );
    }
    Ok(())
}
