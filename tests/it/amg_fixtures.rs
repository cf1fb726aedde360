//! The automatic mask generator against the official one (`../shared/fixtures/amg`): both
//! scenes × both configs, driven by the synthetic predictor. Same number of masks, in the
//! official order, each matched at IoU ≥ 0.99, scores within 1e-4, boxes, points and crops
//! equal.

use crate::common;
use common::mask_iou;

use camsam::refine::amg::{AmgConfig, AutomaticMaskGenerator, MaskRecord};
use common::synthetic::SyntheticPredictor;
use serde_json::Value;
use std::path::Path;

/// Minimum IoU between a generated mask and the reference mask.
const MASK_IOU_MIN: f64 = 0.99;
/// Tolerance on `predicted_iou` and `stability_score`.
const SCORE_TOL: f64 = 1e-4;
/// Tolerance on point coordinates (pixels).
const POINT_TOL: f64 = 1e-6;

struct Reference {
    area: usize,
    bbox: [i64; 4],
    predicted_iou: f64,
    stability_score: f64,
    point: [f64; 2],
    crop_box: [usize; 4],
    mask: Vec<bool>,
}

fn config_from(json: &Value) -> AmgConfig {
    let mut c = AmgConfig::default();
    let f = |k: &str| json.get(k).and_then(Value::as_f64);
    let u = |k: &str| json.get(k).and_then(Value::as_u64).map(|v| v as usize);
    if let Some(v) = u("points_per_side") {
        c.points_per_side = Some(v);
    }
    if let Some(v) = u("points_per_batch") {
        c.points_per_batch = v;
    }
    if let Some(v) = f("pred_iou_thresh") {
        c.pred_iou_thresh = v;
    }
    if let Some(v) = f("stability_score_thresh") {
        c.stability_score_thresh = v;
    }
    if let Some(v) = f("stability_score_offset") {
        c.stability_score_offset = v;
    }
    if let Some(v) = f("box_nms_thresh") {
        c.box_nms_thresh = v;
    }
    if let Some(v) = u("crop_n_layers") {
        c.crop_n_layers = v;
    }
    if let Some(v) = f("crop_nms_thresh") {
        c.crop_nms_thresh = v;
    }
    if let Some(v) = f("crop_overlap_ratio") {
        c.crop_overlap_ratio = v;
    }
    if let Some(v) = u("crop_n_points_downscale_factor") {
        c.crop_n_points_downscale_factor = v;
    }
    if let Some(v) = u("min_mask_region_area") {
        c.min_mask_region_area = v;
    }
    c
}

fn load_references(dir: &Path, json: &Value) -> Vec<Reference> {
    let masks = json["masks"].as_array().expect("records.json: masks array");
    masks
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let arr = |k: &str| -> Vec<f64> {
                m[k].as_array()
                    .unwrap_or_else(|| panic!("record {i}: {k}"))
                    .iter()
                    .map(|v| v.as_f64().expect("number"))
                    .collect()
            };
            let b = arr("bbox");
            let c = arr("crop_box");
            let p = &m["point_coords"][0];
            let png = dir.join(format!("mask{i:03}.png"));
            let mask = image::open(&png)
                .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
                .to_luma8()
                .pixels()
                .map(|p| p.0[0] > 127)
                .collect();
            Reference {
                area: m["area"].as_u64().expect("area") as usize,
                bbox: [b[0] as i64, b[1] as i64, b[2] as i64, b[3] as i64],
                predicted_iou: m["predicted_iou"].as_f64().expect("predicted_iou"),
                stability_score: m["stability_score"].as_f64().expect("stability_score"),
                point: [p[0].as_f64().expect("x"), p[1].as_f64().expect("y")],
                crop_box: [c[0] as usize, c[1] as usize, c[2] as usize, c[3] as usize],
                mask,
            }
        })
        .collect()
}

/// Every disagreement of record `i`, as text.
fn differences(i: usize, got: &MaskRecord, want: &Reference) -> (f64, Vec<String>) {
    let mut d = Vec::new();
    let iou = mask_iou(&got.segmentation.to_bools(), &want.mask);
    if iou < MASK_IOU_MIN {
        d.push(format!("mask IoU {iou:.4} < {MASK_IOU_MIN}"));
    }
    let dp = (got.predicted_iou as f64 - want.predicted_iou).abs();
    if dp > SCORE_TOL {
        d.push(format!(
            "predicted_iou {} vs {}",
            got.predicted_iou, want.predicted_iou
        ));
    }
    let ds = (got.stability_score as f64 - want.stability_score).abs();
    if ds > SCORE_TOL {
        d.push(format!(
            "stability_score {} vs {}",
            got.stability_score, want.stability_score
        ));
    }
    if got.bbox != want.bbox {
        d.push(format!("bbox {:?} vs {:?}", got.bbox, want.bbox));
    }
    if got.area.abs_diff(want.area) as f64 > (1.0 - MASK_IOU_MIN) * want.area as f64 {
        d.push(format!("area {} vs {}", got.area, want.area));
    }
    let dpt = (got.point_coords[0] - want.point[0])
        .abs()
        .max((got.point_coords[1] - want.point[1]).abs());
    if dpt > POINT_TOL {
        d.push(format!("point {:?} vs {:?}", got.point_coords, want.point));
    }
    if got.crop_box != want.crop_box {
        d.push(format!(
            "crop_box {:?} vs {:?}",
            got.crop_box, want.crop_box
        ));
    }
    let _ = i;
    (iou, d)
}

fn check(scene: &str, config: &str) {
    let root = common::shared_dir().join("fixtures/amg").join(scene);
    let image = image::open(root.join("image.png"))
        .expect("fixture image")
        .to_rgb8();
    let dir = root.join(config);
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("records.json")).expect("records.json"))
            .expect("records.json parses");
    let cfg = config_from(&json["config"]);
    let want = load_references(&dir, &json);
    let generator = AutomaticMaskGenerator::new(cfg).expect("config");
    let got = pollster::block_on(generator.generate(&mut SyntheticPredictor::new(), &image))
        .expect("generate");

    let mut failures = Vec::new();
    let mut worst: Option<(usize, f64)> = None;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let (iou, d) = differences(i, g, w);
        if worst.is_none_or(|(_, v)| iou < v) {
            worst = Some((i, iou));
        }
        if !d.is_empty() {
            failures.push(format!("  mask {i}: {}", d.join("; ")));
        }
    }
    let n_fail = failures.len();
    failures.truncate(15);
    assert!(
        got.len() == want.len() && n_fail == 0,
        "{scene}/{config}: {} masks, expected {}; {n_fail} masks differ; worst mask IoU {:?} \
         (index, IoU); first differences:\n{}",
        got.len(),
        want.len(),
        worst,
        failures.join("\n")
    );
}

#[test]
fn landscape_default() {
    check("scene_landscape", "default");
}

#[test]
fn landscape_crops() {
    check("scene_landscape", "crops");
}

#[test]
fn portrait_default() {
    check("scene_portrait", "default");
}

#[test]
fn portrait_crops() {
    check("scene_portrait", "crops");
}
