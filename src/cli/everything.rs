//! `camsam everything`: SAM's automatic mask generator ("segment everything") on one image,
//! written as SAM's `scripts/amg.py` writes it (`write_masks_to_folder`): `DIR/<i>.png`
//! (0/255, full size) and `DIR/metadata.csv`, so `camsam merge` reads the folder directly.
//!
//! ```text
//! camsam everything --weights mobile_sam.pt --image dog.jpg --out masks/dog --points-per-side 32
//! ```

use camsam::core::label::{LabelFormat, LabelMap};
use camsam::refine::amg::output::metadata_csv;
use camsam::refine::amg::{AmgConfig, AutomaticMaskGenerator, MaskRecord};
use camsam::refine::se_map::{se_map_from_records, SeOrder};
use camsam::sam::Predictor;
use camsam::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// The automatic mask generator's parameters as command-line flags, with the official names
/// (SAM's `scripts/amg.py`) and defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct GeneratorArgs {
    /// Points sampled along one side of the image (the grid has N² points).
    #[arg(long, default_value_t = amg().points_per_side.unwrap_or_default(), value_name = "N")]
    pub points_per_side: usize,
    /// Points run through the mask decoder at once.
    #[arg(long, default_value_t = amg().points_per_batch, value_name = "N")]
    pub points_per_batch: usize,
    /// Keep masks whose predicted IoU is above this.
    #[arg(long, default_value_t = amg().pred_iou_thresh, value_name = "T")]
    pub pred_iou_thresh: f64,
    /// Keep masks whose stability score is at least this.
    #[arg(long, default_value_t = amg().stability_score_thresh, value_name = "T")]
    pub stability_score_thresh: f64,
    /// Logit offset of the stability score's two cutoffs.
    #[arg(long, default_value_t = amg().stability_score_offset, value_name = "X")]
    pub stability_score_offset: f64,
    /// Box IoU above which NMS drops a duplicate mask within a crop.
    #[arg(long, default_value_t = amg().box_nms_thresh, value_name = "T")]
    pub box_nms_thresh: f64,
    /// Crop layers beyond the whole image (layer i has (2^i)² crops).
    #[arg(long, default_value_t = amg().crop_n_layers, value_name = "N")]
    pub crop_n_layers: usize,
    /// Box IoU above which NMS drops a duplicate mask across crops.
    #[arg(long, default_value_t = amg().crop_nms_thresh, value_name = "T")]
    pub crop_nms_thresh: f64,
    /// Overlap of neighbouring crops, as a fraction of the short side.
    #[arg(long, default_value_t = amg().crop_overlap_ratio, value_name = "R")]
    pub crop_overlap_ratio: f64,
    /// Points per side in crop layer n are divided by this to the power n.
    #[arg(long, default_value_t = amg().crop_n_points_downscale_factor, value_name = "K")]
    pub crop_n_points_downscale_factor: usize,
    /// Fill holes and remove islands smaller than this many pixels (0: off).
    #[arg(long, default_value_t = amg().min_mask_region_area, value_name = "PIXELS")]
    pub min_mask_region_area: usize,
}

/// The generator's defaults (the official ones, written in `camsam::refine::amg`).
fn amg() -> AmgConfig {
    AmgConfig::default()
}

impl GeneratorArgs {
    pub fn config(&self) -> AmgConfig {
        AmgConfig {
            points_per_side: Some(self.points_per_side),
            points_per_batch: self.points_per_batch,
            pred_iou_thresh: self.pred_iou_thresh,
            stability_score_thresh: self.stability_score_thresh,
            stability_score_offset: self.stability_score_offset,
            box_nms_thresh: self.box_nms_thresh,
            crop_n_layers: self.crop_n_layers,
            crop_nms_thresh: self.crop_nms_thresh,
            crop_overlap_ratio: self.crop_overlap_ratio,
            crop_n_points_downscale_factor: self.crop_n_points_downscale_factor,
            point_grids: None,
            min_mask_region_area: self.min_mask_region_area,
        }
    }
}

/// `camsam everything` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// MobileSAM weights: the official `mobile_sam.pt` or its `.safetensors` conversion.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    #[command(flatten)]
    pub image: super::images::ImageArgs,
    /// Output folder for `<i>.png` and `metadata.csv` (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also write the segment-everything map to FILE (16-bit gray PNG: mask paint position + 1,
    /// 0 = no mask), painted in --se-order.
    #[arg(long, value_name = "FILE")]
    pub se_map: Option<PathBuf>,
    /// SE-map paint order: ascending-iou (S2C: best predicted IoU painted last) or
    /// smallest-on-top.
    #[arg(long, value_name = "ORDER", default_value = "ascending-iou")]
    pub se_order: SeOrder,
    #[command(flatten)]
    pub generator: GeneratorArgs,
    #[command(flatten)]
    pub backend: super::model::BackendArg,
}

pub fn run(args: Args) -> Result<()> {
    let generator = AutomaticMaskGenerator::new(args.generator.config())?;
    let model = super::model::open(
        &args.weights,
        args.backend.backend,
        args.backend.gpu_options(),
    )?;
    let mut predictor = Predictor::new(model);
    let image = args.image.read()?;
    let total = generator.batch_count((image.height() as usize, image.width() as usize));
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} batches, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(args.image.image.display().to_string());
    let records = pollster::block_on(generator.generate_with_progress(
        &mut predictor,
        &image,
        &mut |done, _| {
            bar.set_position(done as u64);
            Ok(())
        },
    ))?;
    bar.finish_and_clear();
    write_masks_to_folder(&records, &args.out)?;
    if let Some(path) = &args.se_map {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let png = se_map_from_records(&records, w, h, args.se_order)?.encode_png()?;
        std::fs::write(path, png).map_err(|e| Error::io(path, e))?;
    }
    eprintln!(
        "{}: {} masks → {}",
        args.image.image.display(),
        records.len(),
        args.out.display()
    );
    Ok(())
}

/// The files SAM `amg.py`'s `write_masks_to_folder` writes for `records`: `(name, bytes)` of
/// `<i>.png` (0/255) per mask, then `metadata.csv`.
pub fn amg_files(records: &[MaskRecord]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::with_capacity(records.len() + 1);
    for (i, r) in records.iter().enumerate() {
        let m = &r.segmentation;
        let png =
            LabelMap::new(m.width(), m.height(), m.to_values())?.encode_png(LabelFormat::Gray)?;
        files.push((format!("{i}.png"), png));
    }
    files.push((
        "metadata.csv".to_string(),
        metadata_csv(records).into_bytes(),
    ));
    Ok(files)
}

/// SAM `amg.py`'s `write_masks_to_folder`.
pub fn write_masks_to_folder(records: &[MaskRecord], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for (name, bytes) in amg_files(records)? {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}
