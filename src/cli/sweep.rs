//! `camsam sweep`: SEPL's `t1` × `t2` (and with `--cams` the CAM background threshold) scored
//! on a labelled subset → `OUT/sweep.json`, `OUT/sweep.csv`, `OUT/sweep.png` (see
//! [`camsam::refine::sweep`]). Each image is decoded once for the whole grid; images run in parallel.

use super::batch;
use super::cam2label::{present_classes, scan_cams};
use super::merge::MaskSource;
use camsam::core::cam::{self, Cam, CamOptions, CamToLabel, Keys};
use camsam::core::label::LabelMap;
use camsam::core::sepl::{Combine, MergeParams, Preset};
use camsam::refine::sweep::{heatmap::heatmap_png, parse_range, Grid, Pseudo, Sweep};
use camsam::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Score a grid of SEPL thresholds on images with ground truth: every cell is `camsam merge` +
/// `camsam eval` at its settings (dataset mIoU), without writing the merged labels.
///
/// Ranges are A:B:STEP (B included), a,b,c or one value. Writes OUT/sweep.json (`miou` indexed
/// [t1][t2], or [bg][t1][t2] with --bg, as fractions; `best`), OUT/sweep.csv (one row per cell)
/// and OUT/sweep.png (a heatmap, the best cell outlined).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of pseudo-labels <name>.png (class ids).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "cams",
        required_unless_present = "cams"
    )]
    pub pseudo: Option<PathBuf>,
    /// Folder of CAMs instead (as `camsam cam2label` reads them): sweeps --bg too.
    #[arg(long, value_name = "DIR")]
    pub cams: Option<PathBuf>,
    /// SAM masks: a folder of <name>/<i>.png mask folders, or a .zip of them.
    #[arg(long, value_name = "DIR|ZIP")]
    pub masks: PathBuf,
    /// Folder of ground-truth labels <name>.png (255 = void).
    #[arg(long, value_name = "DIR")]
    pub gt: PathBuf,
    /// Only the images named in this file (one per line).
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// SEPL merge rule (see `camsam merge --help`).
    #[arg(long, default_value = "official-imp2")]
    pub preset: Preset,
    /// How the paper preset combines its two tests: and, or.
    #[arg(long, default_value = "and")]
    pub combine: Combine,
    /// Values of t1 (O_s threshold).
    #[arg(long, default_value = "0.3:0.7:0.1")]
    pub t1: String,
    /// Values of t2 (O_p threshold).
    #[arg(long, default_value = "0.7:0.95:0.05")]
    pub t2: String,
    /// Values of the CAM background threshold (with --cams; default 0.25).
    #[arg(long, requires = "cams")]
    pub bg: Option<String>,
    /// With --cams: pixels whose two best CAM scores differ by less than this become 255.
    #[arg(long, default_value_t = 0.0)]
    pub ignore_margin: f32,
    /// With --cams: image-level labels (only those CAM channels compete).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// With --cams: how CAM keys number the classes (foreground or class-ids).
    #[arg(long, default_value = "foreground")]
    pub keys: Keys,
    /// Number of classes including background.
    #[arg(long, default_value_t = 21)]
    pub num_classes: usize,
    /// Output folder (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let t0 = std::time::Instant::now();
    let grid = Grid {
        merge: MergeParams {
            preset: args.preset,
            combine: args.combine,
            num_classes: args.num_classes,
            ..Default::default()
        },
        t1: parse_range(&args.t1, "--t1")?,
        t2: parse_range(&args.t2, "--t2")?,
        bg: match (&args.cams, &args.bg) {
            (Some(_), Some(spec)) => Some(parse_range(spec, "--bg")?),
            (Some(_), None) => Some(vec![CamToLabel::default().bg_threshold as f64]),
            (None, _) => None,
        },
        cam_to_label: CamToLabel {
            ignore_margin: args.ignore_margin,
            ..Default::default()
        },
    };
    grid.cam_to_label.validate()?;
    let empty = Sweep::new(grid)?;
    let masks = MaskSource::open(&args.masks)?;
    let cam_opts = CamOptions {
        num_classes: args.num_classes,
        keys: args.keys,
    };
    let labels: Option<BTreeMap<String, Vec<u8>>> = match &args.labels {
        Some(path) => Some(cam::read_image_labels(path, args.num_classes)?),
        None => None,
    };
    let cams = match &args.cams {
        Some(dir) => Some(scan_cams(dir, &Default::default())?),
        None => None,
    };
    let names = match (&args.list, &args.pseudo, &cams) {
        (Some(list), _, _) => batch::read_list(list)?,
        (None, Some(dir), _) => batch::names_with_extension(dir, "png")?,
        (None, None, Some(found)) => found.cams.keys().cloned().collect(),
        (None, None, None) => Vec::new(),
    };
    if names.is_empty() {
        return Err(Error::input(
            "sweep",
            "no images: expected <name>.png pseudo-labels in --pseudo, CAMs in --cams, or --list",
        ));
    }
    let score = |name: &String| -> Result<Sweep> {
        let gt = LabelMap::read_png(&args.gt.join(format!("{name}.png")))?;
        let set = masks.mask_set(name, (gt.width, gt.height))?;
        let bits = set.bit_masks();
        let mut sweep = empty.clone();
        match (&args.pseudo, &cams) {
            (Some(dir), _) => {
                let pseudo = LabelMap::read_png(&dir.join(format!("{name}.png")))?;
                sweep.add(&Pseudo::Label(&pseudo), &bits, &gt, name)?;
            }
            (None, Some(found)) => {
                let dir = args.cams.clone().unwrap_or_default();
                let files = found.cams.get(name).ok_or_else(|| {
                    Error::input(
                        dir.join(name).display().to_string(),
                        "no CAM for this listed name",
                    )
                })?;
                let cam = Cam::read(files, &cam_opts)?;
                let present = present_classes(labels.as_ref(), args.labels.as_deref(), name)?;
                sweep.add(&Pseudo::Cam(&cam, present), &bits, &gt, name)?;
            }
            (None, None) => unreachable!("clap requires --pseudo or --cams"),
        }
        Ok(sweep)
    };
    let per_image: Vec<Result<Sweep>> = names.par_iter().map(score).collect();
    let mut total = empty.clone();
    let mut failed = Vec::new();
    for (name, r) in names.iter().zip(per_image) {
        match r {
            Ok(s) => total.merge(&s)?,
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    if !failed.is_empty() {
        for f in failed.iter().take(10) {
            eprintln!("error: {f}");
        }
        return Err(Error::input(
            "sweep",
            format!(
                "{} of {} images could not be scored; a sweep scores every listed image or none",
                failed.len(),
                names.len()
            ),
        ));
    }
    let result = total.result();
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let write = |file: &str, bytes: &[u8]| {
        let path = args.out.join(file);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))
    };
    let json = serde_json::to_string_pretty(&result)
        .map_err(|e| Error::input("sweep.json", e.to_string()))?;
    write("sweep.json", json.as_bytes())?;
    write("sweep.csv", result.to_csv().as_bytes())?;
    write("sweep.png", &heatmap_png(&result)?)?;
    let cells = result.miou.planes().len() * result.t1.len() * result.t2.len();
    let secs = t0.elapsed().as_secs_f64();
    match &result.best {
        Some(b) => eprintln!(
            "sweep: {} images × {cells} cells in {secs:.2} s ({:.1} ms per image and cell); best{} t1 {} t2 {}: mIoU {:.2}",
            result.images,
            1000.0 * secs / (result.images * cells).max(1) as f64,
            b.bg.map(|v| format!(" bg {v}")).unwrap_or_default(),
            b.t1,
            b.t2,
            100.0 * b.miou
        ),
        None => eprintln!("sweep: no cell could be scored (no ground-truth pixels?)"),
    }
    eprintln!(
        "sweep: wrote {}",
        args.out.join("sweep.{json,csv,png}").display()
    );
    Ok(())
}
