//! `camsam bench sam --backend webgpu` (dispatched from `bench_sam` when the model opened on WebGPU): speed figures of the WebGPU engine (adapter, encoder
//! ms, decoder ms/prompt in batches, everything-mode s/image, achieved GFLOP/s).
//! Figures are printed, never asserted. `--profile` instead times every op of one encoder
//! pass and one decoder batch (submitting and waiting per dispatch) and prints where the time
//! goes; `--against-cpu` times the encoder alternately on WebGPU and on the CPU backend.

use camsam::gpu::{GpuContext, OpTime};
use camsam::sam::cpu::CpuSam;
use camsam::sam::gpu::GpuSam;
use camsam::sam::predictor::Prompt;
use camsam::sam::preprocess::ModelInput;
use camsam::sam::SamBackend;
use camsam::Result;
use std::time::Instant;

/// FLOPs of one MobileSAM encoder pass (issue 4).
const ENCODER_GFLOP: f64 = 77.5;
/// FLOPs of one decoder pass per prompt (issue 4).
const DECODER_GFLOP: f64 = 3.62;

/// Prints the WebGPU figures: `batches` are decoder batch sizes, `points_per_side` the
/// everything-mode grid (0 skips it).
pub fn run(
    sam: &GpuSam,
    runs: usize,
    batches: &[usize],
    points_per_side: usize,
    profile: bool,
) -> Result<()> {
    let ctx = sam.context();
    println!("backend: webgpu");
    print_device(ctx);
    println!("decoder chain: up to {} prompts", sam.batch_size());
    // A deterministic synthetic image (timings do not depend on content).
    let side = 1024usize;
    let input = ModelInput {
        pixels: (0..3 * side * side)
            .map(|i| ((i * 7919 % 255) as f32 - 127.0) / 58.0)
            .collect(),
        input_size: (side, side),
        original_size: (side, side),
    };
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
    // Encoder time includes reading the embedding back (so the work is finished).
    let encode = |sam: &GpuSam| encode(sam, &input);
    let Pass {
        seconds: warm,
        embedding: emb,
        ..
    } = encode(sam)?;
    println!(
        "encoder warm-up (pipeline compilation): {:.0} ms",
        warm * 1e3
    );
    if profile {
        // The warm-up pass also compiles every pipeline (and lavapipe JIT-compiles a variant
        // per binding state on first use): profile a second pass.
        let warmed = sam.context().profile();
        encode(sam)?;
        print_profile(
            "encoder, one pass after the warm-up",
            sam.context().profile_clock(),
            &sam.context().profile(),
            &warmed,
        );
        let before = sam.context().profile();
        let prompts = grid(batches.iter().copied().max().unwrap_or(1).max(1));
        pollster::block_on(sam.decode(&emb, &prompts, true))?;
        print_profile(
            &format!("decoder, one batch of {}", prompts.len()),
            sam.context().profile_clock(),
            &sam.context().profile(),
            &before,
        );
        return Ok(());
    }
    let (mut times, mut host) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let pass = encode(sam)?;
        times.push(pass.seconds);
        host.push(pass.recorded);
    }
    let enc = sorted_median(&mut times);
    println!(
        "encoder: {:.0} ms (median of {}, best {:.0} ms), {:.1} GFLOP/s; of which recording and submitting {:.1} ms",
        enc * 1e3,
        times.len(),
        times[0] * 1e3,
        ENCODER_GFLOP / enc,
        sorted_median(&mut host) * 1e3
    );
    // Warm the decoder pipelines once.
    pollster::block_on(sam.decode(&emb, &grid(1), true))?;
    for &b in batches {
        let prompts = grid(b.max(1));
        let t = Instant::now();
        pollster::block_on(sam.decode(&emb, &prompts, true))?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "decoder, batch {:>3}: {:.1} ms/prompt, {:.1} GFLOP/s",
            prompts.len(),
            s * 1e3 / prompts.len() as f64,
            DECODER_GFLOP * prompts.len() as f64 / s
        );
    }
    if points_per_side > 0 {
        let n = points_per_side * points_per_side;
        let prompts = grid(n);
        let t = Instant::now();
        let Pass {
            seconds: e,
            embedding: emb,
            ..
        } = encode(sam)?;
        pollster::block_on(sam.decode(&emb, &prompts, true))?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "everything mode ({n} point prompts, 3 masks each; encoder + decoder, without the generator's filtering): {s:.2} s/image (encoder {e:.2} s)"
        );
    }
    Ok(())
}

/// A timed encoder pass ([`encode`]).
struct Pass {
    /// Seconds up to the embedding read back (so the work is finished).
    seconds: f64,
    /// The host's part of it, up to the submit: uploading the image, recording and submitting
    /// the dispatches.
    recorded: f64,
    embedding: camsam::gpu::GpuTensor,
}

/// One encoder pass on `input`.
fn encode(sam: &GpuSam, input: &ModelInput) -> Result<Pass> {
    let t = Instant::now();
    let embedding = pollster::block_on(sam.embed(input))?;
    let recorded = t.elapsed().as_secs_f64();
    pollster::block_on(sam.download_embedding(&embedding))?;
    Ok(Pass {
        seconds: t.elapsed().as_secs_f64(),
        recorded,
        embedding,
    })
}

/// Sorts `times` (ascending, so `times[0]` is the best) and returns the median. `times` must
/// not be empty.
pub(super) fn sorted_median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Prints the adapter, the matmul kernel family, llvmpipe's thread count when set and the
/// host's cores.
fn print_device(ctx: &GpuContext) {
    println!(
        "adapter: {} (shader-f16 {}; matmul operands {})",
        ctx.adapter_name(),
        if ctx.offers_shader_f16() {
            "offered"
        } else {
            "not offered"
        },
        if ctx.f16_operands() { "f16" } else { "f32" }
    );
    println!("matmul kernel: {:?}", ctx.matmul_kernel());
    if let Ok(threads) = std::env::var(camsam::gpu::context::SOFTWARE_VULKAN_THREADS) {
        println!(
            "{}={threads} (read by llvmpipe/lavapipe only)",
            camsam::gpu::context::SOFTWARE_VULKAN_THREADS
        );
    }
    println!(
        "host: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

/// `camsam bench sam --backend webgpu --against-cpu`: the encoder on WebGPU and on the CPU
/// backend alternately, `pairs` times after one warm-up pass each (WebGPU's includes pipeline
/// compilation), on the same input; prints both medians and the median of the per-pair
/// WebGPU/CPU ratios. Alternating pass by pass keeps the two under the same machine load,
/// which on a shared VM moves single timings by ±15–30 % between minutes. The WebGPU time
/// includes reading the embedding back; the CPU backend's embedding is already in memory.
pub fn against_cpu(gpu: &GpuSam, cpu: &CpuSam, input: &ModelInput, pairs: usize) -> Result<()> {
    println!("backend: webgpu against cpu");
    print_device(gpu.context());
    let gpu_pass = || encode(gpu, input).map(|p| p.seconds);
    let cpu_pass = || -> Result<f64> {
        let t = Instant::now();
        pollster::block_on(cpu.embed(input))?;
        Ok(t.elapsed().as_secs_f64())
    };
    gpu_pass()?;
    cpu_pass()?;
    let (mut g, mut c, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs.max(1) {
        let tg = gpu_pass()?;
        let tc = cpu_pass()?;
        g.push(tg);
        c.push(tc);
        r.push(tg / tc);
    }
    let (mg, mc, mr) = (
        sorted_median(&mut g),
        sorted_median(&mut c),
        sorted_median(&mut r),
    );
    println!(
        "encoder, WebGPU and CPU alternately ({} pass(es) each after a warm-up pass):",
        r.len()
    );
    println!(
        "  webgpu: {:.0} ms median (best {:.0} ms), {:.1} GFLOP/s",
        mg * 1e3,
        g[0] * 1e3,
        ENCODER_GFLOP / mg
    );
    println!(
        "  cpu:    {:.0} ms median (best {:.0} ms), {:.1} GFLOP/s",
        mc * 1e3,
        c[0] * 1e3,
        ENCODER_GFLOP / mc
    );
    println!(
        "  webgpu / cpu: {mr:.2} (median of the per-pair ratios; {:.2}–{:.2})",
        r[0],
        r[r.len() - 1]
    );
    Ok(())
}

/// Prints per-kernel totals and the slowest ops of a profiled run, less what `before` held.
fn print_profile(what: &str, clock: &str, ops: &[OpTime], before: &[OpTime]) {
    let ops: Vec<OpTime> = ops
        .iter()
        .filter_map(|o| {
            let prev = before
                .iter()
                .find(|b| b.kernel == o.kernel && b.params == o.params);
            let calls = o.calls - prev.map_or(0, |b| b.calls);
            (calls > 0).then(|| OpTime {
                calls,
                seconds: o.seconds - prev.map_or(0.0, |b| b.seconds),
                ..o.clone()
            })
        })
        .collect();
    let total: f64 = ops.iter().map(|o| o.seconds).sum();
    println!(
        "profile of the {what}: {:.1} ms in {} dispatches (submitted and waited one by one; {clock})",
        total * 1e3,
        ops.iter().map(|o| o.calls).sum::<usize>()
    );
    let mut kernels: Vec<(&str, usize, f64)> = Vec::new();
    for o in &ops {
        match kernels.iter_mut().find(|k| k.0 == o.kernel) {
            Some(k) => {
                k.1 += o.calls;
                k.2 += o.seconds;
            }
            None => kernels.push((o.kernel, o.calls, o.seconds)),
        }
    }
    kernels.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (kernel, calls, s) in kernels {
        println!(
            "  {kernel:<22} {calls:>4} calls {:>10.2} ms {:>5.1} %",
            s * 1e3,
            100.0 * s / total.max(f64::MIN_POSITIVE)
        );
    }
    let mut slowest = ops;
    slowest.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    println!("  slowest ops (kernel, parameter words, calls, ms):");
    for o in slowest.iter().take(16) {
        println!(
            "    {:<22} {:?} ×{} {:.2} ms",
            o.kernel,
            o.params,
            o.calls,
            o.seconds * 1e3
        );
    }
}
