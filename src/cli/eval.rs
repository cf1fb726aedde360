//! `camsam eval`: score predicted label PNGs against ground truth (dataset-level mIoU,
//! per-class IoU / precision / recall, per-image mIoU worst first; see [`camsam::core::metrics`]).

use super::batch;
use camsam::core::label::{LabelMap, VOC_CLASSES};
use camsam::core::metrics::{Confusion, ImageConfusion, Report};
use camsam::{Error, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Score predicted labels against ground truth (mIoU, per-class IoU / precision / recall).
///
/// mIoU is over all classes, background included, GT 255 ignored; classes absent from both GT
/// and predictions over the whole set are excluded (nan-mean). Per-image mIoU lists the worst
/// images first. Images are `<name>.png` in --pred (all of them, or those named in --list), each scored
/// against `<name>.png` in --gt (palette or grayscale class ids). A predicted 255 (ignore)
/// counts as a miss.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of predicted label PNGs, `<name>.png`.
    #[arg(long)]
    pred: PathBuf,
    /// Folder of ground-truth label PNGs, `<name>.png` (255 = void, ignored).
    #[arg(long)]
    gt: PathBuf,
    /// Number of classes, background included.
    #[arg(long, default_value_t = 21)]
    num_classes: usize,
    /// Only the images named in this file (one per line: the first field; `#` comments skipped).
    #[arg(long)]
    list: Option<PathBuf>,
    /// Print one JSON object (miou, per_class_iou, precision, recall, images, …) instead of a table.
    #[arg(long)]
    json: bool,
    /// Earlier predictions (e.g. the pseudo-labels before a merge) to compare against.
    #[arg(long)]
    before: Option<PathBuf>,
    /// How many of the worst images the table lists.
    #[arg(long, default_value_t = 10)]
    worst: usize,
}

pub fn run(args: Args) -> Result<()> {
    let names = match &args.list {
        Some(list) => batch::read_list(list)?,
        None => batch::names_with_extension(&args.pred, "png")?,
    };
    if names.is_empty() {
        return Err(Error::input(
            args.pred.display().to_string(),
            "no <name>.png label files to evaluate",
        ));
    }
    let k = args.num_classes;
    Confusion::new(k)?;
    let images = names
        .par_iter()
        .map(|name| {
            let file = format!("{name}.png");
            let gt_path = args.gt.join(&file);
            let gt = LabelMap::read_png(&gt_path)?;
            let gt_name = gt_path.display().to_string();
            let score = |dir: &Path| -> Result<Confusion> {
                let path = dir.join(&file);
                let pred = LabelMap::read_png(&path)?;
                let mut conf = Confusion::new(k)?;
                conf.add(&gt, &pred, &gt_name, &path.display().to_string())?;
                Ok(conf)
            };
            Ok(ImageConfusion {
                name: name.clone(),
                after: score(&args.pred)?,
                before: args.before.as_deref().map(score).transpose()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let names: &[&str] = if k == VOC_CLASSES.len() {
        &VOC_CLASSES
    } else {
        &[]
    };
    let report = Report::new(k, &images, names)?;
    if args.json {
        let text = serde_json::to_string(&report).map_err(|e| Error::encode("JSON", e))?;
        println!("{text}");
    } else {
        print!("{}", report.to_table(args.worst));
    }
    Ok(())
}
