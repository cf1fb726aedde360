//! `camsam bench …`: speed and memory figures, printed rather than asserted. One
//! sub-subcommand per workload; add a variant to [`Workload`] and a function for a new one.

use super::batch::{self, RunOptions};
use super::merge::{ImageReport, Job, MaskSource, StageTimes};
use camsam::core::label::LabelFormat;
use camsam::core::sepl::{Combine, MergeParams, Preset};
use camsam::{Error, Result};
use std::path::PathBuf;

/// Measure camsam's speed on your data and print the figures.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(clap::Subcommand, Debug)]
enum Workload {
    Merge(MergeBench),
    /// MobileSAM speed: encoder ms/image, decoder ms/prompt (batched), everything s/image.
    Sam(super::bench_sam::SamBench),
    /// The refiners side by side per image: sepl, cpm, cpm+sepl, pamr (and their stages).
    Refine(super::bench_refine::RefineBench),
    /// Peak resident memory of the merge batch on N and 4N images (flat: independent of N).
    Memory(super::bench_memory::MemoryBench),
}

/// The published SEPL code's merge time per image, single-threaded, on the 2-core x86 VM the
/// project is developed on (its own figure, given in the project's issue 2).
const PUBLISHED_MERGE_S_PER_IMAGE: f64 = 0.02;

/// SEPL merge throughput end to end: PNG decode of the pseudo-label and every mask, the
/// merge, PNG encode and the atomic write (into a temp folder, removed afterwards), once on
/// one thread and once on all threads, next to the published code's figure.
#[derive(clap::Args, Debug)]
struct MergeBench {
    /// Folder of pseudo-labels <name>.png.
    #[arg(long, value_name = "DIR")]
    pseudo: PathBuf,

    /// Folder of SAM mask folders <name>/<i>.png, or a .zip of them.
    #[arg(long, value_name = "DIR")]
    masks: PathBuf,

    /// Only these names (one per line).
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,

    /// Threads for the parallel pass (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Merge rule (see `camsam merge --help`).
    #[arg(long, default_value = "official-imp2")]
    preset: Preset,

    /// Timed passes per thread count; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

pub fn run(args: Args) -> Result<()> {
    match args.workload {
        Workload::Merge(a) => bench_merge(a),
        Workload::Sam(a) => super::bench_sam::run(a),
        Workload::Refine(a) => super::bench_refine::run(a),
        Workload::Memory(a) => super::bench_memory::run(a),
    }
}

fn bench_merge(args: MergeBench) -> Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = args.threads.unwrap_or(cores).max(1);
    let names = batch::select(
        batch::names_with_extension(&args.pseudo, "png")?,
        &batch::BatchArgs {
            list: args.list.clone(),
            ..Default::default()
        },
    )?;
    if names.is_empty() {
        return Err(Error::input(
            args.pseudo.display().to_string(),
            "no <name>.png pseudo-labels to merge",
        ));
    }
    let out = std::env::temp_dir().join(format!("camsam-bench-merge-{}", std::process::id()));
    let opts = RunOptions {
        verb: "bench merge",
        overwrite: true,
        progress: false,
        print_errors: true,
    };
    let job = Job {
        pseudo: args.pseudo.clone(),
        masks: MaskSource::open(&args.masks)?,
        out: out.clone(),
        params: MergeParams {
            preset: args.preset,
            t1: 0.5,
            t2: 0.85,
            combine: Combine::And,
            num_classes: 21,
        },
        format: LabelFormat::Palette,
        overlay: false,
        images: None,
    };
    let result = (|| {
        println!(
            "camsam bench merge: {} images, preset {}, {cores} cores available",
            names.len(),
            args.preset
        );
        // Warm the file cache and the allocator; not timed.
        pass(&job, &names, threads, &opts)?;
        let mut rows = Vec::new();
        let mut counts = vec![1];
        if threads > 1 {
            counts.push(threads);
        }
        for &t in &counts {
            let mut best: Option<(f64, Option<f64>, StageTimes)> = None;
            for _ in 0..args.repeat.max(1) {
                let (secs, cpu, stages) = pass(&job, &names, t, &opts)?;
                if best.is_none_or(|(b, _, _)| secs < b) {
                    best = Some((secs, cpu, stages));
                }
            }
            if let Some(b) = best {
                rows.push((t, b));
            }
        }
        println!(
            "{:>7}  {:>9}  {:>9}  {:>12}  {:>12}  stage ms/image (decode / merge / encode)",
            "threads", "images/s", "ms/image", "vs published", "CPU ms/image"
        );
        let n = names.len() as f64;
        for (t, (secs, cpu, st)) in &rows {
            let ms = secs * 1e3 / n;
            let cpu = cpu.map_or("n/a".to_string(), |c| format!("{:.2}", c * 1e3 / n));
            println!(
                "{:>7}  {:>9.1}  {:>9.3}  {:>11.1}×  {:>12}  {:.3} / {:.3} / {:.3}",
                t,
                n / secs,
                ms,
                PUBLISHED_MERGE_S_PER_IMAGE * 1e3 / ms,
                cpu,
                st.decode / n,
                st.merge / n,
                st.encode / n
            );
        }
        println!(
            "(wall-clock figures; CPU ms/image is the process's CPU time, 10 ms ticks, \
             which stays meaningful when other work shares the cores)"
        );
        println!(
            "published SEPL code: {:.0} ms/image single-threaded ({:.0} images/s) on this project's 2-core VM",
            PUBLISHED_MERGE_S_PER_IMAGE * 1e3,
            1.0 / PUBLISHED_MERGE_S_PER_IMAGE
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&out);
    result
}

/// CPU seconds (user + system, all threads) this process has used so far, where the OS says
/// (Linux `/proc/self/stat`, in USER_HZ = 100 ticks per second); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// One timed pass over all names on `threads` threads: wall seconds, CPU seconds (if known)
/// and summed stage times.
pub(super) fn pass(
    job: &Job,
    names: &[String],
    threads: usize,
    opts: &RunOptions,
) -> Result<(f64, Option<f64>, StageTimes)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::input("--threads", format!("cannot start {threads} threads: {e}")))?;
    let cpu0 = process_cpu_seconds();
    let outcome = pool.install(|| batch::run(names, opts, |n| job.output_path(n), |n| job.run(n)));
    let secs = outcome.elapsed.as_secs_f64();
    let cpu = cpu0.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    let mut st = StageTimes::default();
    for (_, r, _) in &outcome.done {
        let r: &ImageReport = r;
        st.decode += r.ms.decode;
        st.merge += r.ms.merge;
        st.encode += r.ms.encode;
    }
    outcome.into_result()?;
    Ok((secs, cpu, st))
}
