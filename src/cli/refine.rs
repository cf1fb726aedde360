//! `camsam refine`: the whole pipeline over a dataset — image + CAM → CAM pseudo-label
//! (`camsam::cam`) → SAM's automatic mask generator on MobileSAM (`camsam::amg`) → SEPL merge
//! (`camsam::sepl`) → `OUT/<name>.png` — on the batch runner (`--list`, `--shard I/N`,
//! finished names skipped, atomic writes, progress on stderr).
//!
//! ```text
//! camsam refine --weights mobile_sam.pt --images JPEGImages --cams cams --out refined \
//!     --list train.txt --shard 0/4
//! ```

use super::batch::{self, BatchArgs, Output, RunOptions};
use super::cam2label::cam_name;
use super::everything::{amg_files, GeneratorArgs};
use camsam::amg::{AutomaticMaskGenerator, MaskRecord};
use camsam::cam::{self, Cam, CamOptions, CamToLabel, Keys};
use camsam::label::{LabelFormat, LabelMap};
use camsam::masks::BitMask;
use camsam::sam::cpu::CpuSam;
use camsam::sam::preprocess::read_rgb;
use camsam::sam::weights::Weights;
use camsam::sam::Predictor;
use camsam::sepl::{self, Combine, MergeParams, Preset};
use camsam::{Error, Result};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Image file extensions looked for in `--images`, in this order.
const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "JPG", "PNG"];

/// How SAM's masks refine the CAM pseudo-label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// SEPL (arXiv 2305.05803): segment everything, then merge the masks into the
    /// pseudo-label (`--preset`, `--t1`, `--t2`, `--combine`).
    Sepl,
}

/// Refine CAM pseudo-labels with SAM over a dataset: CAM → pseudo-label → segment everything
/// → merge → OUT/<name>.png.
///
/// Names are those of the CAMs in --cams (<name>.npy, <name>.npz or <name>_<class>.png
/// heatmaps), or those in --list; each needs an image <name>.jpg/.jpeg/.png in --images of
/// the CAM's size. Finished outputs are skipped (run again to resume); --shard I/N splits the
/// names across machines.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// MobileSAM weights: the official `mobile_sam.pt` or its `.safetensors` conversion.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Folder of images <name>.jpg / .jpeg / .png.
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Folder of CAMs: <name>.npy (C,H,W), <name>.npz (IRN keys + high_res/cam) or
    /// <name>_<class id>.png heatmaps.
    #[arg(long, value_name = "DIR")]
    pub cams: PathBuf,
    /// Output folder for the refined labels <name>.png (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How SAM refines the pseudo-label.
    #[arg(long, value_enum, default_value = "sepl")]
    pub mode: Mode,
    /// SEPL merge rule: official-imp2, official-imp, official or paper (see `camsam merge --help`).
    #[arg(long, default_value = "official-imp2")]
    pub preset: Preset,
    /// SEPL threshold on O_s = |M∩P_k|/|M|.
    #[arg(long, default_value_t = 0.5)]
    pub t1: f64,
    /// SEPL threshold on O_p = |M∩P_k|/|P_k|.
    #[arg(long, default_value_t = 0.85)]
    pub t2: f64,
    /// How the paper preset combines its two tests: and, or.
    #[arg(long, default_value = "and")]
    pub combine: Combine,
    /// Background score against the max-normalised CAMs (CAM → pseudo-label).
    #[arg(long, default_value_t = 0.25)]
    pub bg_threshold: f32,
    /// Pixels whose two best CAM scores differ by less than this become 255 (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub ignore_margin: f32,
    /// How .npz keys number the classes: foreground (IRN/AMN/ReCAM) or class-ids.
    #[arg(long, default_value = "foreground")]
    pub keys: Keys,
    /// Image-level labels file (`<name> <class id>…` per line); only those CAM channels compete.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Number of classes including background.
    #[arg(long, default_value_t = 21)]
    pub num_classes: usize,
    /// Output PNG format: palette (VOC colours) or gray.
    #[arg(long, default_value = "palette")]
    pub format: LabelFormat,
    /// Also write each image's SAM masks to OUT/masks/<name>/ (amg.py format).
    #[arg(long)]
    pub save_masks: bool,
    #[command(flatten)]
    pub generator: GeneratorArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// What the pipeline did to one image.
struct ImageReport {
    masks: usize,
}

pub fn run(args: Args) -> Result<()> {
    let generator = AutomaticMaskGenerator::new(args.generator.config())?;
    let params = MergeParams {
        preset: args.preset,
        t1: args.t1,
        t2: args.t2,
        combine: args.combine,
        num_classes: args.num_classes,
    };
    let cam_params = CamToLabel {
        bg_threshold: args.bg_threshold,
        ignore_margin: args.ignore_margin,
    };
    cam_params.validate()?;
    let cam_opts = CamOptions {
        num_classes: args.num_classes,
        keys: args.keys,
    };
    let labels: Option<BTreeMap<String, Vec<u8>>> = match &args.labels {
        Some(path) => Some(cam::read_image_labels(path, args.num_classes)?),
        None => None,
    };
    if !args.cams.is_dir() {
        return Err(Error::input(
            args.cams.display().to_string(),
            "not a folder; expected --cams DIR of <name>.npy, <name>.npz or <name>_<class>.png CAMs",
        ));
    }
    let listed: Option<HashSet<String>> = match &args.batch.list {
        Some(list) => Some(batch::read_list(list)?.into_iter().collect()),
        None => None,
    };
    let found = cam::scan_dir(&args.cams, listed.as_ref())?;
    let names = batch::select(found.cams.keys().cloned().collect(), &args.batch)?;
    if names.is_empty() {
        return Err(Error::input(
            args.cams.display().to_string(),
            "no CAMs found; expected <name>.npy, <name>.npz or <name>_<class id>.png files",
        ));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;

    let weights = Weights::load(&args.weights)?;
    let sam = CpuSam::new(&weights)?;
    drop(weights);

    let out_dir = args.out.clone();
    let outcome = batch::run(
        &names,
        &RunOptions::new("refine", args.batch.overwrite),
        |name| out_dir.join(format!("{name}.png")),
        |name| {
            let files = found.cams.get(name).ok_or_else(|| {
                Error::input(
                    args.cams.join(name).display().to_string(),
                    "no CAM for this listed name; expected <name>.npy, <name>.npz or \
                     <name>_<class>.png",
                )
            })?;
            let image_path = find_image(&args.images, name)?;
            let image = read_rgb(&image_path)?;
            let (w, h) = (image.width() as usize, image.height() as usize);

            // CAM → pseudo-label
            let cam_name = cam_name(files, name);
            let cam = Cam::read(files, &cam_opts)?;
            if (cam.height, cam.width) != (h, w) {
                return Err(Error::input(
                    &cam_name,
                    format!(
                        "a {}×{} CAM; expected the size of {} ({w}×{h})",
                        cam.width,
                        cam.height,
                        image_path.display()
                    ),
                ));
            }
            let present = match (&labels, &args.labels) {
                (Some(map), Some(file)) => Some(map.get(name).map(Vec::as_slice).ok_or_else(|| {
                    Error::input(
                        file.display().to_string(),
                        format!("no image-level labels for '{name}'; expected a line for every image"),
                    )
                })?),
                _ => None,
            };
            let pseudo = cam.to_label(present, &cam_params, &cam_name)?.label;

            // segment everything, then merge
            let mut predictor = Predictor::new(&sam);
            let records = pollster::block_on(generator.generate(&mut predictor, &image))?;
            let label = match args.mode {
                Mode::Sepl => sepl_merge(&pseudo, &records, &params)?,
            };

            let mut outputs = Vec::new();
            if args.save_masks {
                let dir = out_dir.join("masks").join(name);
                for (file, bytes) in amg_files(&records)? {
                    outputs.push(Output::new(dir.join(file), bytes));
                }
            }
            // the primary output last: its existence marks the name finished
            outputs.push(Output::new(
                out_dir.join(format!("{name}.png")),
                label.encode_png(args.format)?,
            ));
            Ok((
                outputs,
                ImageReport {
                    masks: records.len(),
                },
            ))
        },
    );
    let masks: usize = outcome.done.iter().map(|(_, r, _)| r.masks).sum();
    outcome.print_summary();
    if !outcome.done.is_empty() {
        eprintln!(
            "refine: {masks} SAM masks over {} images ({:.1} per image)",
            outcome.done.len(),
            masks as f64 / outcome.done.len() as f64
        );
    }
    outcome.into_result()
}

/// SEPL merge of the generator's masks, visited in the generator's output order (the order
/// of amg.py's `<i>.png` files).
fn sepl_merge(pseudo: &LabelMap, records: &[MaskRecord], params: &MergeParams) -> Result<LabelMap> {
    let masks = records
        .iter()
        .map(|r| {
            let m = &r.segmentation;
            BitMask::from_values(m.width(), m.height(), &m.to_u8(), |v| v > 0)
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&BitMask> = masks.iter().collect();
    Ok(sepl::merge(pseudo, &refs, params)?.label)
}

/// `DIR/<name>.<ext>` for the first image extension that exists.
fn find_image(dir: &Path, name: &str) -> Result<PathBuf> {
    IMAGE_EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::input(
                dir.join(name).display().to_string(),
                "no image for this CAM; expected <name>.jpg, .jpeg or .png",
            )
        })
}
