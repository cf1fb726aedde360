//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod gpu;
pub mod gpu_checks;
pub mod synthetic;

use std::path::{Path, PathBuf};

/// The shared reference fixtures: `$CAMSAM_SHARED`, else `../shared` beside the repo.
/// Panics with a clear message when they are missing.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("CAMSAM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("README.md").is_file(),
        "the shared reference fixtures are missing: expected them at {} \
         (put shared/ beside the repo or set CAMSAM_SHARED)",
        dir.display()
    );
    dir
}

/// A fresh, empty scratch directory under the target directory, named after the test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// S2C's `get_se_map.py` on an `amg.py` mask folder, written out independently of
/// `camsam::refine::se_map`: the generator lists masks by descending predicted IoU (checked here), and
/// S2C paints `reversed(masks)` so the best mask lands on top. Returns the map as
/// `camsam::refine::se_map::SeMap::encode_png` stores it: paint position + 1, 0 where no mask lies.
pub fn s2c_se_map(masks_dir: &Path) -> (u32, u32, Vec<u16>) {
    let csv = std::fs::read_to_string(masks_dir.join("metadata.csv")).expect("metadata.csv");
    let ious: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(8)
                .expect("predicted_iou column")
                .parse()
                .expect("iou")
        })
        .collect();
    assert!(
        ious.windows(2).all(|w| w[0] >= w[1]),
        "{}: masks not in descending predicted IoU: {ious:?}",
        masks_dir.display()
    );
    let mut map: Vec<u16> = Vec::new();
    let mut size = (0, 0);
    for (pos, i) in (0..ious.len()).rev().enumerate() {
        let png = masks_dir.join(format!("{i}.png"));
        let mask = image::open(&png)
            .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
            .to_luma8();
        if map.is_empty() {
            size = mask.dimensions();
            map = vec![0; mask.pixels().len()];
        }
        for (m, p) in map.iter_mut().zip(mask.pixels()) {
            if p.0[0] != 0 {
                *m = pos as u16 + 1;
            }
        }
    }
    (size.0, size.1, map)
}

/// A 16-bit gray PNG's size and samples.
pub fn read_png16(path: &Path) -> (u32, u32, Vec<u16>) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_luma16();
    let (w, h) = img.dimensions();
    (w, h, img.into_raw())
}

/// Run the `camsam` binary with `args`, then each `(flag, path)` pair.
pub fn camsam(args: &[&str], paths: &[(&str, &Path)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_camsam"));
    cmd.args(args);
    for (flag, path) in paths {
        cmd.arg(flag).arg(path);
    }
    cmd.output().expect("run camsam")
}

/// The real VOC crops (`images/`, `gt/`, `labels.tsv`).
pub fn voc() -> PathBuf {
    shared_dir().join("data/voc_val_crops")
}

/// The random-weight MobileSAM fixture checkpoint (safetensors).
pub fn fixture_weights() -> PathBuf {
    shared_dir().join("fixtures/sam/weights/mobile_sam_random.safetensors")
}

/// Generator flags for a 4×4 grid with the quality filters and NMS off, so the random
/// model's masks (which all span most of the image) reach the merge: 16 points × 3 masks.
pub const SMALL_GRID: [&str; 8] = [
    "--points-per-side",
    "4",
    "--pred-iou-thresh",
    "0",
    "--stability-score-thresh",
    "0",
    "--box-nms-thresh",
    "1",
];

/// A 0/255 mask PNG as booleans (> 127 is inside).
pub fn read_mask_png(path: &Path) -> Vec<bool> {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_luma8();
    img.as_raw().iter().map(|&v| v > 127).collect()
}

/// Intersection over union of two masks (1 when both are empty).
pub fn mask_iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// A cone CAM channel `w × h`: 1 at (cx, cy), falling linearly to 0 at `radius`.
pub fn cone(w: usize, h: usize, cx: f64, cy: f64, radius: f64) -> Vec<f32> {
    let mut v = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
            v[y * w + x] = (1.0 - d / radius).max(0.0) as f32;
        }
    }
    v
}
