//! `camsam refine`: the whole pipeline over a dataset — image + CAM → CAM pseudo-label
//! (`camsam::core::cam`) → SAM's automatic mask generator on MobileSAM (`camsam::refine::amg`) → SEPL merge
//! (`camsam::core::sepl`) → `OUT/<name>.png` — on the batch runner (`--list`, `--shard I/N`,
//! finished names skipped, atomic writes, progress on stderr). `--mode` picks the refiner:
//! `sepl` (default), `cpm` (S2C's CAM-prompted SAM, `camsam::refine::cpm`), `pamr` (no model,
//! `camsam::refine::pamr`) or `cpm+sepl` (CPM's labels as SEPL's pseudo-label input). The settings
//! used are written to `OUT/report.json` (`report-shard-I-of-N.json` with `--shard`).
//!
//! ```text
//! camsam refine --weights mobile_sam.pt --images JPEGImages --cams cams --out refined \
//!     --list train.txt --shard 0/4
//! ```

use super::batch::{self, BatchArgs, Output, RunOptions};
use super::cam2label::{cam_name, present_classes, scan_cams};
use super::everything::{amg_files, GeneratorArgs};
use super::images::ImageFolder;
use super::refiners::RefinerArgs;
use camsam::core::cam::{self, Cam, CamOptions};
use camsam::core::label::LabelFormat;
use camsam::refine::saliency::Saliency;
use camsam::refine::se_map::{se_map_from_records, SeOrder};
use camsam::refine::{refine_image, ImageEntry, Inputs, Method, Report, Settings};
use camsam::sam::Predictor;
use camsam::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Refine CAM pseudo-labels with SAM over a dataset: CAM → pseudo-label → segment everything
/// → merge → OUT/<name>.png.
///
/// Names are those of the CAMs in --cams (<name>.npy, <name>.npz or <name>_<class>.png
/// heatmaps), or those in --list; each needs an image <name>.jpg/.jpeg/.png in --images of
/// the CAM's size, or a medical file holding the slice <name> (a CAM ct_0003 takes slice 3
/// of ct.nii.gz or ct.dcm; see --window). Finished outputs are skipped (run again to resume); --shard I/N splits the
/// names across machines.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// MobileSAM weights: the official `mobile_sam.pt` or its `.safetensors` conversion
    /// (every mode but pamr).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Folder of images <name>.jpg / .jpeg / .png, or of medical files (DICOM, NIfTI, TIFF)
    /// whose slices are named as `camsam convert` names them.
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    #[command(flatten)]
    pub medical: super::images::MedicalArgs,
    /// Folder of CAMs: <name>.npy (C,H,W) or an np.save'd CAM dict (IRN, AMN, LPCAM, PSA,
    /// CLIP-ES), <name>.npz (IRN keys + high_res/cam) or <name>_<class id>.png heatmaps.
    #[arg(long, value_name = "DIR")]
    pub cams: PathBuf,
    /// Output folder for the refined labels <name>.png (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How SAM refines the pseudo-label (the method).
    #[arg(long, value_enum, default_value_t = Settings::default().method)]
    pub mode: Method,
    #[command(flatten)]
    pub sepl: super::settings::SeplArgs,
    #[command(flatten)]
    pub cam: super::settings::CamArgs,
    /// Folder of saliency maps <name>.png (8- or 16-bit gray, 0–1 after scaling; EPS / EPS++):
    /// the CAM → pseudo-label step becomes EPS++'s (see --mode saliency), so SEPL merges into it.
    #[arg(long, value_name = "DIR")]
    pub saliency: Option<PathBuf>,
    /// Image-level labels file (`<name> <class id>…` per line); only those CAM channels compete.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Number of classes including background.
    #[arg(long, default_value_t = super::settings::default_num_classes())]
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
    size: (usize, usize),
}

/// The settings of a run from its flags.
pub(super) fn settings(args: &Args) -> Settings {
    let mut s = Settings {
        method: args.mode,
        num_classes: args.num_classes,
        generator: args.generator.config(),
        ..Settings::default()
    };
    args.sepl.apply(&mut s);
    args.cam.apply(&mut s);
    args.refiners.apply(&mut s);
    s
}

pub fn run(args: Args) -> Result<()> {
    let settings = settings(&args);
    settings.validate()?;
    let method = settings.method;
    let cam_opts = CamOptions {
        num_classes: args.num_classes,
        keys: settings.keys,
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

    if args.se_map && !method.uses_masks() {
        return Err(Error::input(
            "--se-map",
            format!("--mode {method} runs no segment-everything; expected --mode sepl or cpm+sepl"),
        ));
    }
    match (&args.saliency, method) {
        (None, Method::Saliency) => {
            return Err(Error::input(
                "--mode saliency",
                "needs --saliency DIR (the saliency maps <name>.png)",
            ))
        }
        (Some(_), m) if !matches!(m, Method::Sepl | Method::Saliency) => {
            return Err(Error::input(
                "--saliency",
                format!("--mode {m} takes no pseudo-label; expected --mode saliency or sepl"),
            ))
        }
        _ => {}
    }
    let sam = if method.uses_sam() {
        let path = args.weights.as_ref().ok_or_else(|| {
            Error::input(
                "--weights",
                format!(
                    "missing; --mode {method} runs MobileSAM and needs its weights (mobile_sam.pt)"
                ),
            )
        })?;
        Some(super::model::open(
            path,
            args.backend.backend,
            args.backend.gpu_options(),
        )?)
    } else {
        None
    };

    let images = ImageFolder::open(&args.images, args.medical.options())?;
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
            let found = images.get(name)?;
            let image = found.rgb;
            let (w, h) = (image.width() as usize, image.height() as usize);
            let cam_name = cam_name(files, name);
            let cam = Cam::read(files, &cam_opts)?;
            if (cam.height, cam.width) != (h, w) {
                return Err(Error::input(
                    &cam_name,
                    format!(
                        "a {}×{} CAM; expected the size of {} ({w}×{h})",
                        cam.width, cam.height, found.source
                    ),
                ));
            }
            let saliency = match &args.saliency {
                Some(dir) => Some(Saliency::read(&dir.join(format!("{name}.png")))?),
                None => None,
            };
            let inputs = Inputs {
                image: Some(&image),
                cam: Some(&cam),
                saliency: saliency.as_ref(),
                present: present_classes(labels.as_ref(), args.labels.as_deref(), name)?,
                ..Inputs::new(&cam_name)
            };
            let mut predictor = sam.as_ref().map(Predictor::new);
            let (derived, out) = pollster::block_on(refine_image(
                &inputs,
                &settings,
                None,
                predictor.as_mut(),
                &mut |_, _| Ok(()),
            ))?;
            let records = out.records;

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
                derived.label.encode_png(args.format)?,
            ));
            Ok((
                outputs,
                ImageReport {
                    masks: records.len(),
                    size: (w, h),
                },
            ))
        },
    );
    let masks: usize = outcome.done.iter().map(|(_, r, _)| r.masks).sum();
    outcome.print_summary();
    let backend = sam.as_ref().map(camsam::sam::SamBackend::name);
    write_report(&args, &settings, &names, &outcome, backend)?;
    if !outcome.done.is_empty() {
        eprintln!(
            "refine: {masks} SAM masks over {} images ({:.1} per image)",
            outcome.done.len(),
            masks as f64 / outcome.done.len() as f64
        );
    }
    outcome.into_result()
}

/// `OUT/report.json` (`report-shard-I-of-N.json` with `--shard`): the method, every setting
/// that shaped the labels, and what happened to each name.
fn write_report(
    args: &Args,
    settings: &Settings,
    names: &[String],
    outcome: &batch::Outcome<ImageReport>,
    backend: Option<String>,
) -> Result<()> {
    use serde_json::Value;
    let mut report = Report::new("refine", settings, true, true, args.saliency.is_some());
    report.backend = backend.clone();
    let path = |p: &Path| Value::from(p.display().to_string());
    report.inputs = serde_json::Map::from_iter([
        (
            "weights".to_string(),
            args.weights.as_deref().map(path).into(),
        ),
        ("images".to_string(), path(&args.images)),
        (
            "window".to_string(),
            args.medical.window.as_ref().map(|w| w.to_string()).into(),
        ),
        ("volume".to_string(), args.medical.volume.into()),
        ("cams".to_string(), path(&args.cams)),
        ("out".to_string(), path(&args.out)),
        (
            "labels".to_string(),
            args.labels.as_deref().map(path).into(),
        ),
        (
            "saliency".to_string(),
            args.saliency.as_deref().map(path).into(),
        ),
        ("format".to_string(), args.format.name().into()),
        (
            "se_map".to_string(),
            args.se_map.then(|| args.se_order.name()).into(),
        ),
    ]);
    batch::describe(&mut report, &args.batch, names, outcome);
    let model = if settings.method.uses_sam() {
        backend
    } else {
        Some("none".into())
    };
    for (name, r, t) in &outcome.done {
        report.images.push(ImageEntry {
            name: name.clone(),
            width: Some(r.size.0),
            height: Some(r.size.1),
            method: Some(settings.method),
            backend: model.clone(),
            // SAM masks merged: none for the methods that merge none
            sam_masks: settings.method.uses_masks().then_some(r.masks),
            seconds: Some(t.as_secs_f64()),
            ..ImageEntry::default()
        });
    }
    let report_name = match args.batch.shard {
        Some(s) => format!("report-shard-{}-of-{}.json", s.index, s.count),
        None => "report.json".to_string(),
    };
    batch::write_atomic(&args.out.join(report_name), &report.to_json()?)
}
