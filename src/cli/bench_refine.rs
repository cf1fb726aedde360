//! `camsam bench refine`: the refiners side by side, per image, on your images and CAMs —
//! each stage timed once per image (image + CAM reading excluded) and composed per mode:
//! - `sepl` = CAM → label + segment everything (encoder included) + SEPL merge
//! - `cpm` = encoder + CPM (prompts, masks, scores)
//! - `cpm+sepl` = segment everything + CPM (sharing the encoder) + SEPL merge
//! - `pamr` = CAM → PAMR → label (no model)
//! - `crf` = the dense CRF of PSA / IRN / EPS (no model)
//!
//! Printed, never asserted; with the core count.

use super::everything::GeneratorArgs;
use super::refiners::RefinerArgs;
use camsam::core::cam::{self, Cam, CamOptions};
use camsam::core::label::LabelMap;
use camsam::core::masks::BitMask;
use camsam::core::sepl::MergeParams;
use camsam::refine::amg::{AutomaticMaskGenerator, MaskRecord};
use camsam::refine::cpm::cpm_cam;
use camsam::refine::crf::crf_label;
use camsam::refine::pamr::pamr_label;
use camsam::refine::Settings;
use camsam::sam::cpu::CpuSam;
use camsam::sam::weights::Weights;
use camsam::sam::Predictor;
use camsam::{Error, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct RefineBench {
    /// MobileSAM weights (`mobile_sam.pt` or `.safetensors`).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Folder of images <name>.jpg / .jpeg / .png, or medical files whose slices are named as
    /// `camsam convert` names them (under their default window).
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Folder of CAMs (<name>.npy, <name>.npz or <name>_<class id>.png heatmaps).
    #[arg(long, value_name = "DIR")]
    cams: PathBuf,
    /// At most this many images (in name order).
    #[arg(long, default_value_t = 3)]
    limit: usize,
    #[command(flatten)]
    generator: GeneratorArgs,
    #[command(flatten)]
    refiners: RefinerArgs,
}

/// Seconds per stage for one image.
#[derive(Debug, Default, Clone, Copy)]
struct Stages {
    cam2label: f64,
    everything: f64,
    merge: f64,
    encoder: f64,
    cpm: f64,
    merge_cpm: f64,
    pamr: f64,
    crf: f64,
}

impl Stages {
    /// `(sepl, cpm, cpm+sepl, pamr, crf)` seconds.
    fn modes(&self) -> [f64; 5] {
        [
            self.cam2label + self.everything + self.merge,
            self.encoder + self.cpm,
            self.everything + self.cpm + self.merge_cpm,
            self.pamr,
            self.crf,
        ]
    }
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let v = f()?;
    Ok((v, start.elapsed().as_secs_f64()))
}

pub fn run(args: RefineBench) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let generator = AutomaticMaskGenerator::new(args.generator.config())?;
    let mut settings = Settings::default();
    args.refiners.apply(&mut settings);
    settings.validate()?;
    let (cpm_settings, pamr_settings, crf_settings) =
        (settings.cpm, settings.pamr.clone(), settings.crf.clone());
    let found = cam::scan_dir(&args.cams, None)?;
    let names: Vec<String> = found.cams.keys().take(args.limit).cloned().collect();
    if names.is_empty() {
        return Err(Error::input(
            args.cams.display().to_string(),
            "no CAMs found; expected <name>.npy, <name>.npz or <name>_<class id>.png files",
        ));
    }
    let images = super::images::ImageFolder::open(&args.images, Default::default())?;
    let weights = Weights::load(&args.weights)?;
    let sam = CpuSam::new(&weights)?;
    drop(weights);
    let params = settings.merge_params();
    let to_label = settings.cam;

    println!(
        "camsam bench refine: {} image(s), {cores} core(s), MobileSAM on the CPU, \
         {} points per side for segment everything",
        names.len(),
        args.generator.points_per_side
    );
    println!(
        "{:<16} {:>9} {:>9} {:>10} {:>9} {:>9} | {:>8} {:>10} {:>8} {:>8}",
        "image",
        "sepl s",
        "cpm s",
        "cpm+sepl s",
        "pamr s",
        "crf s",
        "encoder",
        "everything",
        "cpm",
        "merge"
    );
    let mut total = Stages::default();
    for name in &names {
        let cam_name = name.clone();
        let cam = Cam::read(&found.cams[name], &CamOptions::default())?;
        let image = images.get(name)?.rgb;
        let mut s = Stages::default();

        let (pseudo, t) = timed(|| Ok(cam.to_label(None, &to_label, &cam_name)?.label))?;
        s.cam2label = t;
        let mut predictor = Predictor::new(&sam);
        let (records, t) =
            timed(|| pollster::block_on(generator.generate(&mut predictor, &image)))?;
        s.everything = t;
        let (_, t) = timed(|| sepl_merge(&pseudo, &records, &params))?;
        s.merge = t;

        let (_, t) = timed(|| pollster::block_on(predictor.set_image(&image)))?;
        s.encoder = t;
        let (cpm_label, t) = timed(|| {
            Ok(pollster::block_on(cpm_cam(
                &mut predictor,
                &cam,
                None,
                &cpm_settings,
                &cam_name,
            ))?
            .label)
        })?;
        s.cpm = t;
        let (_, t) = timed(|| sepl_merge(&cpm_label, &records, &params))?;
        s.merge_cpm = t;
        let (_, t) =
            timed(|| pamr_label(&image, &cam, None, &pamr_settings, &to_label, &cam_name))?;
        s.pamr = t;
        let (_, t) = timed(|| crf_label(&image, &cam, None, &crf_settings, &cam_name))?;
        s.crf = t;

        let m = s.modes();
        println!(
            "{:<16} {:>9.3} {:>9.3} {:>10.3} {:>9.3} {:>9.3} | {:>8.3} {:>10.3} {:>8.3} {:>8.4}",
            name, m[0], m[1], m[2], m[3], m[4], s.encoder, s.everything, s.cpm, s.merge
        );
        total.cam2label += s.cam2label;
        total.everything += s.everything;
        total.merge += s.merge;
        total.encoder += s.encoder;
        total.cpm += s.cpm;
        total.merge_cpm += s.merge_cpm;
        total.pamr += s.pamr;
        total.crf += s.crf;
    }
    let n = names.len() as f64;
    let m = total.modes().map(|v| v / n);
    println!(
        "{:<16} {:>9.3} {:>9.3} {:>10.3} {:>9.3} {:>9.3} | {:>8.3} {:>10.3} {:>8.3} {:>8.4}",
        "mean",
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        total.encoder / n,
        total.everything / n,
        total.cpm / n,
        total.merge / n
    );
    println!(
        "(seconds per image; image and CAM reading excluded; cpm+sepl reuses the encoder run of \
         segment everything)"
    );
    Ok(())
}

/// SEPL merge of the generator's masks, visited in the generator's output order.
fn sepl_merge(pseudo: &LabelMap, records: &[MaskRecord], params: &MergeParams) -> Result<LabelMap> {
    let masks: Vec<&BitMask> = records.iter().map(|r| &r.segmentation).collect();
    Ok(camsam::core::sepl::merge(pseudo, &masks, params)?.label)
}
