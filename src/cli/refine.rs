//! `camsam refine`: the whole pipeline over a dataset — image + CAM → CAM pseudo-label
//! (`camsam::cam`) → SAM's automatic mask generator on MobileSAM (`camsam::amg`) → SEPL merge
//! (`camsam::sepl`) → `OUT/<name>.png` — on the batch runner (`--list`, `--shard I/N`,
//! finished names skipped, atomic writes, progress on stderr). `--mode` picks the refiner:
//! `sepl` (default), `cpm` (S2C's CAM-prompted SAM, `camsam::cpm`), `pamr` (no model,
//! `camsam::pamr`) or `cpm+sepl` (CPM's labels as SEPL's pseudo-label input). The settings
//! used are written to `OUT/report.json` (`report-shard-I-of-N.json` with `--shard`).
//!
//! ```text
//! camsam refine --weights mobile_sam.pt --images JPEGImages --cams cams --out refined \
//!     --list train.txt --shard 0/4
//! ```

use super::batch::{self, BatchArgs, Output, RunOptions};
use super::cam2label::{cam_name, present_classes, scan_cams};
use super::everything::{amg_files, GeneratorArgs};
use super::refiners::{cpm_label, RefinerArgs};
use camsam::amg::{AutomaticMaskGenerator, MaskRecord};
use camsam::cam::{self, Cam, CamOptions, CamToLabel, Keys};
use camsam::crf::crf_label;
use camsam::label::{LabelFormat, LabelMap};
use camsam::masks::BitMask;
use camsam::pamr::pamr_label;
use camsam::saliency::{saliency_label, Saliency};
use camsam::sam::preprocess::read_rgb;
use camsam::sam::Predictor;
use camsam::se_map::{se_map_from_records, SeOrder};
use camsam::sepl::{self, Combine, MergeParams, Preset};
use camsam::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Image file extensions looked for in `--images`, in this order.
const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "JPG", "PNG"];

/// How SAM's masks refine the CAM pseudo-label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// SEPL (arXiv 2305.05803): segment everything, then merge the masks into the
    /// pseudo-label (`--preset`, `--t1`, `--t2`, `--combine`).
    Sepl,
    /// S2C's CAM-prompted SAM: each class's CAM peaks prompt SAM; per pixel the class with the
    /// best `mask logit × mean CAM` (`--peak-threshold`, `--peak-distance`, `--prompt`,
    /// `--mask`, `--cpm-margin`).
    Cpm,
    /// PAMR (Araslanov & Roth 2020): the CAM refined with image-colour affinities, then the
    /// CAM → label step; no SAM, no weights needed (`--pamr-iterations`, `--pamr-dilations`).
    Pamr,
    /// The dense CRF of PSA / IRN / EPS (Krähenbühl's densecrf): background (1 − max CAM)^α,
    /// Gaussian + bilateral kernels, mean field; no SAM, no weights needed (`--crf-*`).
    Crf,
    /// CPM's labels as the pseudo-label that SEPL merges the everything-mode masks into.
    #[value(name = "cpm+sepl")]
    CpmSepl,
    /// EPS++'s saliency pseudo-label (`--saliency DIR`): CAM foreground refined with PAMR,
    /// pixels where it and the saliency map disagree ignored (255); no SAM, no weights needed.
    Saliency,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Sepl => "sepl",
            Mode::Cpm => "cpm",
            Mode::Pamr => "pamr",
            Mode::Crf => "crf",
            Mode::CpmSepl => "cpm+sepl",
            Mode::Saliency => "saliency",
        }
    }
    fn uses_sam(self) -> bool {
        !matches!(self, Mode::Pamr | Mode::Crf | Mode::Saliency)
    }
    fn uses_everything(self) -> bool {
        matches!(self, Mode::Sepl | Mode::CpmSepl)
    }
    fn uses_cpm(self) -> bool {
        matches!(self, Mode::Cpm | Mode::CpmSepl)
    }
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
    /// MobileSAM weights: the official `mobile_sam.pt` or its `.safetensors` conversion
    /// (every mode but pamr).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Folder of images <name>.jpg / .jpeg / .png.
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Folder of CAMs: <name>.npy (C,H,W) or an np.save'd CAM dict (IRN, AMN, LPCAM, PSA,
    /// CLIP-ES), <name>.npz (IRN keys + high_res/cam) or <name>_<class id>.png heatmaps.
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
    /// How CAM keys (.npz and np.save'd dicts) number the classes: foreground
    /// (IRN/AMN/ReCAM/PSA) or class-ids.
    #[arg(long, default_value = "foreground")]
    pub keys: Keys,
    /// Folder of saliency maps <name>.png (8- or 16-bit gray, 0–1 after scaling; EPS / EPS++):
    /// the CAM → pseudo-label step becomes EPS++'s (see --mode saliency), so SEPL merges into it.
    #[arg(long, value_name = "DIR")]
    pub saliency: Option<PathBuf>,
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
    /// Also write each image's segment-everything map to OUT/se_map/<name>.png (16-bit gray,
    /// mask paint position + 1, 0 = no mask), painted in --se-order. Modes sepl and cpm+sepl.
    #[arg(long)]
    pub se_map: bool,
    /// SE-map paint order: ascending-iou (S2C: best predicted IoU painted last) or
    /// smallest-on-top.
    #[arg(long, value_name = "ORDER", default_value = "ascending-iou")]
    pub se_order: SeOrder,
    #[command(flatten)]
    pub generator: GeneratorArgs,
    #[command(flatten)]
    pub refiners: RefinerArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub backend: super::model::BackendArg,
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
    let found = scan_cams(&args.cams, &args.batch)?;
    let names = batch::select(found.cams.keys().cloned().collect(), &args.batch)?;
    if names.is_empty() {
        return Err(Error::input(
            args.cams.display().to_string(),
            "no CAMs found; expected <name>.npy, <name>.npz or <name>_<class id>.png files",
        ));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;

    if args.se_map && !args.mode.uses_everything() {
        return Err(Error::input(
            "--se-map",
            format!(
                "--mode {} runs no segment-everything; expected --mode sepl or cpm+sepl",
                args.mode.name()
            ),
        ));
    }
    let saliency_modes = matches!(args.mode, Mode::Sepl | Mode::Saliency);
    match (&args.saliency, args.mode) {
        (None, Mode::Saliency) => {
            return Err(Error::input(
                "--mode saliency",
                "needs --saliency DIR (the saliency maps <name>.png)",
            ))
        }
        (Some(_), mode) if !saliency_modes => {
            return Err(Error::input(
                "--saliency",
                format!(
                    "--mode {} takes no pseudo-label; expected --mode saliency or sepl",
                    mode.name()
                ),
            ))
        }
        _ => {}
    }
    let cpm_settings = args.refiners.cpm_settings()?;
    let pamr_settings = args.refiners.pamr_settings()?;
    let crf_settings = args.refiners.crf_settings()?;
    let sam = if args.mode.uses_sam() {
        let path = args.weights.as_ref().ok_or_else(|| {
            Error::input(
                "--weights",
                format!(
                    "missing; --mode {} runs MobileSAM and needs its weights (mobile_sam.pt)",
                    args.mode.name()
                ),
            )
        })?;
        Some(super::model::open(
            path,
            args.backend.backend,
            Default::default(),
        )?)
    } else {
        None
    };

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
            let present = present_classes(labels.as_ref(), args.labels.as_deref(), name)?;
            // CAM → pseudo-label: the threshold rule, or EPS++'s with a saliency map
            let pseudo_label = || -> Result<LabelMap> {
                match &args.saliency {
                    Some(dir) => {
                        let map = Saliency::read(&dir.join(format!("{name}.png")))?;
                        saliency_label(&image, &cam, present, &map, &pamr_settings, &cam_name)
                    }
                    None => Ok(cam.to_label(present, &cam_params, &cam_name)?.label),
                }
            };
            let records = match &sam {
                Some(sam) if args.mode.uses_everything() => {
                    let mut predictor = Predictor::new(sam);
                    let records = pollster::block_on(generator.generate(&mut predictor, &image))?;
                    Some((predictor, records))
                }
                _ => None,
            };
            let label = match (args.mode, &sam, records) {
                (Mode::Sepl, _, Some((_, records))) => {
                    // CAM → pseudo-label, then merge the everything-mode masks into it
                    let pseudo = pseudo_label()?;
                    (sepl_merge(&pseudo, &records, &params)?, records)
                }
                (Mode::CpmSepl, _, Some((mut predictor, records))) => {
                    // the generator's last image is the whole image unless it used crops
                    let image_is_set = args.generator.crop_n_layers == 0;
                    let pseudo = cpm_label(
                        &mut predictor,
                        &image,
                        image_is_set,
                        &cam,
                        present,
                        &cpm_settings,
                        &cam_name,
                    )?;
                    (sepl_merge(&pseudo, &records, &params)?, records)
                }
                (Mode::Cpm, Some(sam), _) => {
                    let mut predictor = Predictor::new(sam);
                    let label = cpm_label(
                        &mut predictor,
                        &image,
                        false,
                        &cam,
                        present,
                        &cpm_settings,
                        &cam_name,
                    )?;
                    (label, Vec::new())
                }
                (Mode::Pamr, _, _) => {
                    let label = pamr_label(
                        &image,
                        &cam,
                        present,
                        &pamr_settings,
                        &cam_params,
                        &cam_name,
                    )?;
                    (label.label, Vec::new())
                }
                (Mode::Saliency, _, _) => (pseudo_label()?, Vec::new()),
                (Mode::Crf, _, _) => (
                    crf_label(&image, &cam, present, &crf_settings, &cam_name)?,
                    Vec::new(),
                ),
                (mode, _, _) => {
                    return Err(Error::Model(format!(
                        "refine --mode {}: the model was not loaded",
                        mode.name()
                    )))
                }
            };
            let (label, records) = label;

            let mut outputs = Vec::new();
            if args.save_masks {
                let dir = out_dir.join("masks").join(name);
                for (file, bytes) in amg_files(&records)? {
                    outputs.push(Output::new(dir.join(file), bytes));
                }
            }
            if args.se_map {
                let map = se_map_from_records(&records, w, h, args.se_order)?;
                outputs.push(Output::new(
                    out_dir.join("se_map").join(format!("{name}.png")),
                    map.encode_png()?,
                ));
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
    let backend = sam.as_ref().map(camsam::sam::SamBackend::name);
    write_report(
        &args,
        &names,
        &outcome,
        &cpm_settings,
        &pamr_settings,
        &crf_settings,
        backend,
    )?;
    if !outcome.done.is_empty() {
        eprintln!(
            "refine: {masks} SAM masks over {} images ({:.1} per image)",
            outcome.done.len(),
            masks as f64 / outcome.done.len() as f64
        );
    }
    outcome.into_result()
}

/// `OUT/report.json` (`report-shard-I-of-N.json` with `--shard`): the mode and every setting
/// that shaped the labels, and what happened to each name.
fn write_report(
    args: &Args,
    names: &[String],
    outcome: &batch::Outcome<ImageReport>,
    cpm: &camsam::cpm::CpmSettings,
    pamr: &camsam::pamr::PamrSettings,
    crf: &camsam::crf::CrfSettings,
    backend: Option<String>,
) -> Result<()> {
    use serde_json::{json, Value};
    let mode = args.mode;
    let g = &args.generator;
    let report = json!({
        "command": "refine",
        "mode": mode.name(),
        "settings": {
            "weights": args.weights.as_ref().map(|p| p.display().to_string()),
            "backend": backend,
            "images": args.images.display().to_string(),
            "cams": args.cams.display().to_string(),
            "out": args.out.display().to_string(),
            "labels": args.labels.as_ref().map(|p| p.display().to_string()),
            "num_classes": args.num_classes,
            "format": match args.format {
                LabelFormat::Palette => "palette",
                LabelFormat::Gray => "gray",
            },
            "saliency": args.saliency.as_ref().map(|p| p.display().to_string()),
            "cam2label": if matches!(mode, Mode::Sepl | Mode::Pamr) && args.saliency.is_none() {
                json!({ "bg_threshold": args.bg_threshold, "ignore_margin": args.ignore_margin })
            } else {
                Value::Null
            },
            "sepl": if mode.uses_everything() {
                json!({
                    "preset": args.preset.to_string(),
                    "t1": args.t1,
                    "t2": args.t2,
                    "combine": args.combine.to_string(),
                })
            } else {
                Value::Null
            },
            "generator": if mode.uses_everything() {
                json!({
                    "points_per_side": g.points_per_side,
                    "points_per_batch": g.points_per_batch,
                    "pred_iou_thresh": g.pred_iou_thresh,
                    "stability_score_thresh": g.stability_score_thresh,
                    "stability_score_offset": g.stability_score_offset,
                    "box_nms_thresh": g.box_nms_thresh,
                    "crop_n_layers": g.crop_n_layers,
                    "crop_nms_thresh": g.crop_nms_thresh,
                    "crop_overlap_ratio": g.crop_overlap_ratio,
                    "crop_n_points_downscale_factor": g.crop_n_points_downscale_factor,
                    "min_mask_region_area": g.min_mask_region_area,
                })
            } else {
                Value::Null
            },
            "se_map": if args.se_map { Some(args.se_order.name()) } else { None },
            "cpm": if mode.uses_cpm() { json!(cpm) } else { Value::Null },
            "pamr": if mode == Mode::Pamr || args.saliency.is_some() { json!(pamr) } else { Value::Null },
            "crf": if mode == Mode::Crf { json!(crf) } else { Value::Null },
            "list": args.batch.list.as_ref().map(|p| p.display().to_string()),
            "shard": args.batch.shard.map(|s| s.to_string()),
            "overwrite": args.batch.overwrite,
            "names": names.len(),
        },
        "done": outcome.done.iter().map(|(n, r, t)| json!({
            "name": n,
            "sam_masks": r.masks,
            "seconds": t.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "skipped": &outcome.skipped,
        "failed": outcome.failed.iter().map(|(n, e)| json!({
            "name": n,
            "error": e.to_string(),
        })).collect::<Vec<_>>(),
        "seconds": outcome.elapsed.as_secs_f64(),
        "threads": outcome.threads,
    });
    let report_name = match args.batch.shard {
        Some(s) => format!("report-shard-{}-of-{}.json", s.index, s.count),
        None => "report.json".to_string(),
    };
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| Error::input("report", format!("could not serialise: {e}")))?;
    batch::write_atomic(&args.out.join(report_name), &json)
}

/// SEPL merge of the generator's masks, visited in the generator's output order (the order
/// of amg.py's `<i>.png` files).
pub(super) fn sepl_merge(
    pseudo: &LabelMap,
    records: &[MaskRecord],
    params: &MergeParams,
) -> Result<LabelMap> {
    let masks: Vec<&BitMask> = records.iter().map(|r| &r.segmentation).collect();
    Ok(sepl::merge(pseudo, &masks, params)?.label)
}

/// `DIR/<name>.<ext>` for the first image extension that exists.
pub(super) fn find_image(dir: &Path, name: &str) -> Result<PathBuf> {
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
