//! `camsam predict`: MobileSAM masks for one prompt (points, box, low-res mask input) — the
//! official `SamPredictor.predict`. Writes `mask<i>.png` (0/255, original size),
//! `low_res_logits.npy` `(C, 256, 256)` and `result.json` (`iou_predictions`, mask areas).

use super::model::BackendArg;
use camsam::core::npy::{self, NpyArray};
use camsam::sam::predictor::{MaskPredictor, Prompt, LOW_RES};
use camsam::sam::Predictor;
use camsam::Error;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// MobileSAM weights: the official `mobile_sam.pt` or a `.safetensors` with official names.
    #[arg(long)]
    pub weights: PathBuf,
    #[command(flatten)]
    pub image: super::images::ImageArgs,
    /// A point prompt `X,Y,L` in image pixels; label L is 1 (foreground) or 0 (background).
    /// Repeatable.
    #[arg(long = "point", value_name = "X,Y,L", allow_hyphen_values = true)]
    pub points: Vec<String>,
    /// A box prompt `X0,Y0,X1,Y1` in image pixels.
    #[arg(long = "box", value_name = "X0,Y0,X1,Y1", allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// Low-resolution mask logits from an earlier prediction (`.npy`, 256×256 values).
    #[arg(long)]
    pub mask_input: Option<PathBuf>,
    /// Three masks (SAM's multimask output) instead of one.
    #[arg(long)]
    pub multimask: bool,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub backend: BackendArg,
}

fn numbers(text: &str, n: usize, what: &str) -> camsam::Result<Vec<f64>> {
    let values: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| Error::input(what, format!("`{text}` is not {n} comma-separated numbers")))?;
    if values.len() != n || values.iter().any(|v| !v.is_finite()) {
        return Err(Error::input(
            what,
            format!(
                "`{text}` has {} values; expected {n} finite numbers",
                values.len()
            ),
        ));
    }
    Ok(values)
}

/// The prompt from the command line, in image pixels.
fn prompt(args: &Args) -> camsam::Result<Prompt> {
    let mut p = Prompt::default();
    for text in &args.points {
        let v = numbers(text, 3, "--point")?;
        if v[2] != 0.0 && v[2] != 1.0 {
            return Err(Error::input(
                "--point",
                format!(
                    "`{text}` has label {}; expected 1 (foreground) or 0 (background)",
                    v[2]
                ),
            ));
        }
        p.points.push((v[0], v[1]));
        p.labels.push(v[2] as i32);
    }
    if let Some(text) = &args.bbox {
        let v = numbers(text, 4, "--box")?;
        p.bbox = Some([v[0], v[1], v[2], v[3]]);
    }
    if let Some(path) = &args.mask_input {
        let array = NpyArray::read(path)?;
        let data = array.to_f32();
        let square =
            array.shape.len() >= 2 && array.shape[array.shape.len() - 2..] == [LOW_RES, LOW_RES];
        if data.len() != LOW_RES * LOW_RES || !square {
            return Err(Error::input(
                path.display().to_string(),
                format!(
                    "an array of shape {:?}; expected one 256×256 low-res logit map, e.g. (1, 256, 256)",
                    array.shape
                ),
            ));
        }
        p.mask_input = Some(data);
    }
    if p.points.is_empty() && p.bbox.is_none() && p.mask_input.is_none() {
        return Err(Error::input(
            "prompt",
            "no prompt given; expected at least one --point, a --box or a --mask-input",
        ));
    }
    Ok(p)
}

fn write_mask(path: &Path, mask: &[bool], (h, w): (usize, usize)) -> camsam::Result<()> {
    let pixels: Vec<u8> = mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
    let image = image::GrayImage::from_raw(w as u32, h as u32, pixels)
        .ok_or_else(|| Error::Model("mask size does not match the image".to_string()))?;
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::io(path, std::io::Error::other(e)))
}

pub fn run(args: Args) -> camsam::Result<()> {
    let prompt = prompt(&args)?;
    let model = super::model::open(
        &args.weights,
        args.backend.backend,
        args.backend.gpu_options(),
    )?;
    let image = args.image.read()?;
    let original = (image.height() as usize, image.width() as usize);
    let mut predictor = Predictor::new(&model);
    pollster::block_on(predictor.set_image(&image))?;
    let prediction = pollster::block_on(predictor.predict(&prompt, args.multimask))?;

    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let mut areas = Vec::new();
    for (i, mask) in prediction.masks.iter().enumerate() {
        write_mask(&args.out.join(format!("mask{i}.png")), mask, original)?;
        areas.push(mask.iter().filter(|m| **m).count());
    }
    let low = &prediction.low_res;
    npy::write_f32(
        &args.out.join("low_res_logits.npy"),
        &[low.count, LOW_RES, LOW_RES],
        &low.logits,
    )?;
    let result = serde_json::json!({
        "iou_predictions": prediction.iou,
        "mask_area": areas,
        "masks": (0..low.count).map(|i| format!("mask{i}.png")).collect::<Vec<_>>(),
        "original_size_hw": [original.0, original.1],
        "input_size_hw": [predictor.input_size().0, predictor.input_size().1],
        "backend": camsam::sam::SamBackend::name(predictor.backend()),
    });
    let path = args.out.join("result.json");
    let text = serde_json::to_string_pretty(&result).map_err(|e| Error::encode("JSON", e))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))
}
