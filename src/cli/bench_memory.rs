//! `camsam bench memory`: peak resident memory (Linux `VmHWM`) of the SEPL merge batch on the
//! first N names and on the first 4N, to show it does not grow with the dataset: the batch
//! runner holds one image's label and masks per thread and drops them once written.
//!
//! The peak is reset between the two passes where the kernel allows it (`/proc/self/clear_refs`
//! ← `5`); where it does not, the second figure is the peak of both passes, which still shows a
//! flat profile when it equals the first. Printed, never asserted.

use super::batch::{peak_rss_kib, RunOptions};
use super::bench::pass;
use super::merge::{Job, MaskSource};
use camsam::core::label::LabelFormat;
use camsam::core::sepl::{MergeParams, Preset};
use camsam::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct MemoryBench {
    /// Folder of pseudo-labels <name>.png.
    #[arg(long, value_name = "DIR")]
    pseudo: PathBuf,
    /// Folder of SAM mask folders <name>/<i>.png, or a .zip of them.
    #[arg(long, value_name = "DIR")]
    masks: PathBuf,
    /// N: the small pass merges N names, the large one 4N (the dataset needs 4N names).
    #[arg(long, default_value_t = 50)]
    names: usize,
    /// Threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Merge rule (see `camsam merge --help`).
    #[arg(long, default_value = "official-imp2")]
    preset: Preset,
}

/// Reset the peak to the current resident size; false where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn run(args: MemoryBench) -> Result<()> {
    let n = args.names.max(1);
    let names = super::batch::names_with_extension(&args.pseudo, "png")?;
    if names.len() < 4 * n {
        return Err(Error::input(
            args.pseudo.display().to_string(),
            format!(
                "{} pseudo-labels; --names {n} needs at least {} (4N)",
                names.len(),
                4 * n
            ),
        ));
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1)
    });
    let out = std::env::temp_dir().join(format!("camsam-bench-memory-{}", std::process::id()));
    let job = Job {
        pseudo: args.pseudo.clone(),
        masks: MaskSource::open(&args.masks)?,
        out: out.clone(),
        params: MergeParams {
            preset: args.preset,
            ..MergeParams::default()
        },
        format: LabelFormat::Palette,
        overlay: false,
        images: None,
    };
    let opts = RunOptions {
        verb: "bench memory",
        overwrite: true,
        progress: false,
        print_errors: true,
    };
    let result = (|| {
        println!(
            "camsam bench memory: SEPL merge ({}) on {threads} thread(s), peak RSS (VmHWM)",
            args.preset
        );
        let before = peak_rss_kib();
        let mut rows = Vec::new();
        let mut reset = true;
        for count in [n, 4 * n] {
            reset &= reset_peak_rss();
            pass(&job, &names[..count], threads, &opts)?;
            rows.push((count, peak_rss_kib()));
        }
        let mib =
            |k: Option<u64>| k.map_or("n/a".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
        println!("peak RSS before merging: {} MiB", mib(before));
        for (count, peak) in &rows {
            println!("{count:>6} images: peak RSS {} MiB", mib(*peak));
        }
        if let (Some(a), Some(b)) = (rows[0].1, rows[1].1) {
            println!(
                "4N / N: {:.3} ({})",
                b as f64 / a as f64,
                if reset {
                    "peak reset before each pass"
                } else {
                    "no reset allowed: the 4N figure is the peak of both passes"
                }
            );
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&out);
    result
}
