//! `camsam bench sam --backend cpu --profile`: where the CPU decoder and the mask generator
//! spend their time, stage by stage ([`camsam::profile`]), on one thread so every stage's
//! time is its own work and the stages add up. Printed, never asserted.
//!
//! Two runs: one decoder batch (the bench's grid of point prompts, three masks each), and the
//! generator at 16×16 points with its IoU and stability filters off, so every mask goes
//! through the post-processing (the default filters let through a share that depends on the
//! weights and the image).

use camsam::profile::{self, StageTime};
use camsam::refine::amg::{AmgConfig, AutomaticMaskGenerator};
use camsam::sam::cpu::CpuSam;
use camsam::sam::predictor::Prompt;
use camsam::sam::preprocess::RgbImage;
use camsam::sam::{Predictor, SamBackend};
use camsam::{Error, Result};

/// Points per side of the profiled generator run.
const GENERATOR_POINTS: usize = 16;

pub fn run(model: &CpuSam, image: &RgbImage, prompts: &[Prompt]) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::Model(format!("a one-thread pool for the profile: {e}")))?;
    pool.install(|| {
        let input = camsam::sam::preprocess::prepare(image);
        let embedding = pollster::block_on(model.embed(&input))?;
        // A warm-up batch (first-touch allocations), then the profiled one.
        pollster::block_on(model.decode(&embedding, &prompts[..1], true))?;
        profile::start();
        pollster::block_on(model.decode(&embedding, prompts, true))?;
        let stages = profile::take();
        println!(
            "\nprofile of the CPU decoder: one batch of {} point prompts, 3 masks each, on 1 thread",
            prompts.len()
        );
        print(&stages, prompts.len(), "prompt");

        let generator = AutomaticMaskGenerator::new(AmgConfig {
            points_per_side: Some(GENERATOR_POINTS),
            pred_iou_thresh: 0.0,
            stability_score_thresh: 0.0,
            ..AmgConfig::default()
        })?;
        let mut predictor = Predictor::new(model);
        profile::start();
        let records = pollster::block_on(generator.generate(&mut predictor, image))?;
        let stages = profile::take();
        let n = GENERATOR_POINTS * GENERATOR_POINTS;
        println!(
            "\nprofile of segment-everything: {GENERATOR_POINTS}×{GENERATOR_POINTS} points, IoU and \
             stability filters off (every mask post-processed, {} kept), image {}×{}, on 1 thread",
            records.len(),
            image.width(),
            image.height()
        );
        print(&stages, n, "prompt");
        Ok(())
    })
}

/// Prints `stages` as a tree (` › ` separates levels) with time per `unit`, share of the
/// top-level total and GFLOP/s where the stage counted its arithmetic; a parent's time not
/// covered by its children is printed as "(rest)".
fn print(stages: &[StageTime], units: usize, unit: &str) {
    // A stage's parent is the longest prefix that is itself a stage; stages without one
    // (e.g. the generator's, whose parent is not timed as a whole) are roots.
    let present = |p: &str| stages.iter().any(|t| t.name == p);
    let ancestors = |name: &'static str| -> Vec<&'static str> {
        prefixes(name)
            .filter(|&p| p != name && present(p))
            .collect()
    };
    let total: f64 = stages
        .iter()
        .filter(|s| ancestors(s.name).is_empty())
        .map(|s| s.seconds)
        .sum();
    println!(
        "  {:<52} {:>10} {:>7} {:>8}",
        "stage",
        format!("ms/{unit}"),
        "share",
        "GFLOP/s"
    );
    let line = |name: &str, depth: usize, seconds: f64, flops: f64| {
        let gflops = if flops > 0.0 && seconds > 0.0 {
            format!("{:.1}", flops / seconds / 1e9)
        } else {
            String::new()
        };
        println!(
            "  {:<52} {:>10.3} {:>6.1}% {:>8}",
            format!("{}{}", "  ".repeat(depth), name),
            seconds * 1e3 / units.max(1) as f64,
            100.0 * seconds / total.max(f64::MIN_POSITIVE),
            gflops
        );
    };
    let mut order: Vec<&StageTime> = stages.iter().collect();
    // Parents before their children, siblings in first-seen order.
    order.sort_by_key(|s| {
        let path: Vec<usize> = ancestors(s.name)
            .into_iter()
            .chain(std::iter::once(s.name))
            .map(|p| {
                stages
                    .iter()
                    .position(|t| t.name == p)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        path
    });
    for s in &order {
        let up = ancestors(s.name);
        let shown = match up.last() {
            Some(parent) => &s.name[parent.len() + " › ".len()..],
            None => s.name,
        };
        line(shown, up.len(), s.seconds, s.flops);
    }
    // The rest of each parent: its time less its direct children's.
    for s in stages {
        let direct: f64 = stages
            .iter()
            .filter(|c| ancestors(c.name).last() == Some(&s.name))
            .map(|c| c.seconds)
            .sum();
        if direct > 0.0 {
            line(
                &format!("{} (rest: not in a stage below it)", s.name),
                0,
                s.seconds - direct,
                0.0,
            );
        }
    }
}

/// `"a › b › c"` → `"a"`, `"a › b"`, `"a › b › c"`.
fn prefixes(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(" › ")
        .map(move |(i, _)| &name[..i])
        .chain(std::iter::once(name))
}
