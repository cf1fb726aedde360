//! `camsam cam2label`: CAMs → pseudo-labels over a dataset (`CAMS/<name>.npy|.npz` or
//! `CAMS/<name>_<class>.png` → `OUT/<name>.png`), with the batch runner's `--list`, `--shard`,
//! skip-existing and atomic writes. The conversion is [`camsam::core::cam`]'s.

use super::batch::{self, BatchArgs, Output, RunOptions};
use super::images::ImageFolder;
use camsam::core::cam::{self, Cam, CamFiles, CamOptions};
use camsam::core::label::LabelFormat;
use camsam::refine::saliency::Saliency;
use camsam::refine::{derive, Inputs, Settings};
use camsam::{Error, Result};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

const CAMS_HELP: &str = "\
Folder of CAMs, one per image:
  <name>.npy  float (C,H,W); with K = --num-classes, C = K-1 is foreground classes 1..K-1
              (channel c = class c+1), C = K has a background channel 0 (dropped);
  <name>.npy  an np.save'd dict, as the WSSS code bases write them (read without running
              anything): IRN / ReCAM / LPCAM {keys, cam, high_res}, AMN (high_res with the
              background first: the file's background decides, not --bg-threshold),
              CLIP-ES {keys, attn_highres}, PSA / SEAM / EPS / S2C {class index: map};
  <name>.npz  keys + high_res (or cam) (len(keys),H,W) as IRN / AMN / ReCAM write them
              (see --keys);
  <name>_<class id>.png  one 8- or 16-bit grayscale heatmap per class (0-255 read as 0-1).
A plain <name>.png is a pseudo-label, not a CAM, and is ignored.";

/// Turn CAMs into pseudo-labels: per-class max normalisation, a background threshold, argmax
/// over background and the present classes, and an optional ignore band.
///
/// Each class map is clamped at 0 and divided by its maximum; background scores
/// --bg-threshold; every pixel takes the best of background and the present classes (ties to
/// background, then to the lower id). Present classes are the --labels entry of the image if
/// given, else every channel of the CAM. NaN/Inf CAM values count as 0 (with a warning).
/// Writes OUT/<name>.png.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Folder of CAMs (.npy, .npz or per-class heatmap PNGs).
    #[arg(long, value_name = "DIR", long_help = CAMS_HELP)]
    pub cams: PathBuf,

    /// Output folder for <name>.png pseudo-labels (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub cam: super::settings::CamArgs,

    /// Image-level labels: a TSV with a `classes` header column, or lines `<name> <class>…`
    /// (class ids or VOC names). Only these classes compete; each must have a CAM channel.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Output PNG format: palette (VOC colours) or gray.
    #[arg(long, default_value = "palette")]
    pub format: LabelFormat,

    /// Number of classes including background (decides how .npy channels are numbered).
    #[arg(long, default_value_t = super::settings::default_num_classes())]
    pub num_classes: usize,

    /// Folder of saliency maps <name>.png (8- or 16-bit gray; EPS / EPS++): the pseudo-label is
    /// EPS++'s instead — the CAM foreground refined with PAMR (default settings), pixels where
    /// it and the saliency map disagree 255, the rest the best present class or background.
    /// Needs --images.
    #[arg(long, value_name = "DIR", requires = "images")]
    pub saliency: Option<PathBuf>,

    /// Folder of images <name>.jpg / .jpeg / .png, or medical files whose slices are named as
    /// `camsam convert` names them (for --saliency's PAMR step).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,

    #[command(flatten)]
    pub medical: super::images::MedicalArgs,

    #[command(flatten)]
    pub batch: BatchArgs,
}

/// What one image's conversion reports.
struct ImageReport {
    non_finite: usize,
}

pub fn run(args: Args) -> Result<()> {
    let mut settings = Settings {
        num_classes: args.num_classes,
        ..Settings::default()
    };
    args.cam.apply(&mut settings);
    settings.validate()?;
    let opts = CamOptions {
        num_classes: args.num_classes,
        keys: settings.keys,
    };
    // Checks --num-classes once rather than failing every image.
    cam::parse_image_labels("", "--num-classes", args.num_classes)?;
    let found = scan_cams(&args.cams, &args.batch)?;
    let labels: Option<BTreeMap<String, Vec<u8>>> = match &args.labels {
        Some(path) => Some(cam::read_image_labels(path, args.num_classes)?),
        None => None,
    };
    let names = batch::select(found.cams.keys().cloned().collect(), &args.batch)?;
    if names.is_empty() {
        return Err(Error::input(
            args.cams.display().to_string(),
            "no CAMs found; expected <name>.npy, <name>.npz or <name>_<class>.png files",
        ));
    }
    let ignored = found
        .skipped
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .count();
    if ignored > 0 {
        eprintln!(
            "note: {ignored} plain <name>.png file(s) in {} ignored (a plain <name>.png is a pseudo-label, not a CAM)",
            args.cams.display()
        );
    }
    let images = match (&args.saliency, &args.images) {
        (Some(_), Some(dir)) => Some(ImageFolder::open(dir, args.medical.options())?),
        _ => None,
    };
    let output = |name: &str| args.out.join(format!("{name}.png"));
    let job = |name: &str| -> Result<(Vec<Output>, ImageReport)> {
        let files = found.cams.get(name).ok_or_else(|| {
            Error::input(
                args.cams.join(name).display().to_string(),
                "no CAM for this listed name; expected <name>.npy, <name>.npz or <name>_<class>.png",
            )
        })?;
        let present = present_classes(labels.as_ref(), args.labels.as_deref(), name)?;
        let cam = Cam::read(files, &opts)?;
        let image = match &images {
            Some(folder) => Some(folder.get(name)?.rgb),
            None => None,
        };
        let saliency = match &args.saliency {
            Some(dir) => Some(Saliency::read(&dir.join(format!("{name}.png")))?),
            None => None,
        };
        let cam_name = cam_name(files, name);
        let inputs = Inputs {
            image: image.as_ref(),
            cam: Some(&cam),
            saliency: saliency.as_ref(),
            present,
            ..Inputs::new(&cam_name)
        };
        // the pseudo-label of the refine pipeline (its CAM → label step)
        let out = derive(&inputs, &settings, &[], None)?;
        Ok((
            vec![Output::new(
                output(name),
                out.pseudo.encode_png(args.format)?,
            )],
            ImageReport {
                non_finite: out.non_finite,
            },
        ))
    };
    let outcome = batch::run(
        &names,
        &RunOptions::new("cam2label", args.batch.overwrite),
        output,
        job,
    );
    outcome.print_summary();
    let bad: Vec<(&str, usize)> = outcome
        .done
        .iter()
        .filter(|(_, r, _)| r.non_finite > 0)
        .map(|(n, r, _)| (n.as_str(), r.non_finite))
        .collect();
    if !bad.is_empty() {
        let total: usize = bad.iter().map(|b| b.1).sum();
        let first: Vec<String> = bad
            .iter()
            .take(5)
            .map(|(n, c)| format!("{n} ({c})"))
            .collect();
        eprintln!(
            "warning: {total} NaN/Inf CAM values in {} image(s) were treated as 0: {}{}",
            bad.len(),
            first.join(", "),
            if bad.len() > 5 { ", …" } else { "" }
        );
    }
    outcome.into_result()
}

/// The image-level labels of `name` from the `--labels` file `file` (`None` without one); an
/// error naming the file when it has no line for the image.
pub(super) fn present_classes<'a>(
    labels: Option<&'a BTreeMap<String, Vec<u8>>>,
    file: Option<&Path>,
    name: &str,
) -> Result<Option<&'a [u8]>> {
    match (labels, file) {
        (Some(map), Some(file)) => map.get(name).map(|v| Some(v.as_slice())).ok_or_else(|| {
            Error::input(
                file.display().to_string(),
                format!("no image-level labels for '{name}'; expected a line for every image"),
            )
        }),
        _ => Ok(None),
    }
}

/// The file to name in an image's errors.
pub(super) fn cam_name(files: &CamFiles, name: &str) -> String {
    match files {
        CamFiles::Npy(p) | CamFiles::Npz(p) => p.display().to_string(),
        CamFiles::Heatmaps(list) => {
            let dir = list
                .first()
                .and_then(|(_, p)| p.parent())
                .unwrap_or(Path::new(""));
            dir.join(format!("{name}_<class>.png"))
                .display()
                .to_string()
        }
    }
}

/// The CAMs in the `--cams` folder, limited to the names of `--list` when given; shared by
/// `cam2label` and `refine`.
pub fn scan_cams(cams: &Path, args: &BatchArgs) -> Result<cam::CamDir> {
    if !cams.is_dir() {
        return Err(Error::input(
            cams.display().to_string(),
            "not a folder; expected --cams DIR of <name>.npy, <name>.npz or <name>_<class>.png CAMs",
        ));
    }
    let listed: Option<HashSet<String>> = match &args.list {
        Some(list) => Some(batch::read_list(list)?.into_iter().collect()),
        None => None,
    };
    cam::scan_dir(cams, listed.as_ref())
}
