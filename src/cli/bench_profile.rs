//! `camsam bench sam --backend cpu --profile`: where the CPU encoder, decoder and mask generator
//! spend their time, stage by stage ([`camsam::profile`]), on one thread so every stage's
//! time is its own work and the stages add up. Printed, never asserted.
//!
//! Three runs: one encoder pass, one decoder batch (the bench's grid of point prompts, three masks each), and the
//! generator at 16×16 points with its IoU and stability filters off, so every mask goes
//! through the post-processing (the default filters let through a share that depends on the
//! weights and the image).

use camsam::profile;
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
        profile::start();
        let embedding = pollster::block_on(model.embed(&input))?;
        let stages = profile::take();
        println!("profile of the CPU encoder: one image, on 1 thread");
        print(&stages, 1, "image");
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

fn print(stages: &[profile::StageTime], units: usize, unit: &str) {
    for line in profile::table(stages, units, unit) {
        println!("{line}");
    }
}
