//! `camsam eval` on the SEPL fixtures (`../shared/fixtures/sepl`, 293 VOC train images):
//! its JSON mIoU must match a plain hand-written confusion-matrix loop here and the fixture
//! README's reference numbers (TransCAM pseudo-labels 72.40, `max_iou_imp2` 83.48).

use crate::common;

use std::path::Path;
use std::process::Command;

/// The README gives mIoU in percent to two decimals.
const README_TOLERANCE_PCT: f64 = 0.01;
/// The CLI and the hand check sum the same integers; only the final division order differs.
const SAME_COUNTS_TOLERANCE: f64 = 1e-12;

/// Decode an 8-bit grayscale or palette PNG to its raw indices, with the png crate directly.
fn raw_indices(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png data");
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let w = info.width as usize;
    let data = buf
        .chunks(info.line_size)
        .take(info.height as usize)
        .flat_map(|row| row[..w].to_vec())
        .collect();
    (info.width, info.height, data)
}

/// Standard mIoU: 21×21 histogram summed over the list, GT 255 skipped, nan-mean of IoU.
fn hand_miou(pred_dir: &Path, gt_dir: &Path, names: &[String]) -> f64 {
    let mut hist = [[0u64; 21]; 21];
    for name in names {
        let (pw, ph, pred) = raw_indices(&pred_dir.join(format!("{name}.png")));
        let (gw, gh, gt) = raw_indices(&gt_dir.join(format!("{name}.png")));
        assert_eq!((pw, ph), (gw, gh), "{name}");
        for i in 0..gt.len() {
            if gt[i] != 255 {
                hist[gt[i] as usize][pred[i] as usize] += 1;
            }
        }
    }
    let mut sum = 0.0;
    let mut present = 0;
    for (c, gt_row) in hist.iter().enumerate() {
        let tp = gt_row[c];
        let row: u64 = gt_row.iter().sum();
        let col: u64 = (0..21).map(|g| hist[g][c]).sum();
        let union = row + col - tp;
        if union > 0 {
            sum += tp as f64 / union as f64;
            present += 1;
        }
    }
    sum / present as f64
}

fn eval_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_camsam"))
        .arg("eval")
        .args(args)
        .output()
        .expect("run camsam");
    assert!(
        out.status.success(),
        "camsam eval {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "camsam eval --json did not print one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn names(sepl: &Path) -> Vec<String> {
    std::fs::read_to_string(sepl.join("list.txt"))
        .expect("list.txt")
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn check(pred_sub: &str, readme_pct: f64) {
    let sepl = common::shared_dir().join("fixtures/sepl");
    let names = names(&sepl);
    assert_eq!(names.len(), 293);
    let pred = sepl.join(pred_sub);
    let gt = sepl.join("gt");
    let json = eval_json(&[
        "--pred",
        pred.to_str().unwrap(),
        "--gt",
        gt.to_str().unwrap(),
        "--list",
        sepl.join("list.txt").to_str().unwrap(),
        "--json",
    ]);
    let miou = json["miou"].as_f64().expect("miou is a number");
    let hand = hand_miou(&pred, &gt, &names);
    assert!(
        (miou - hand).abs() <= SAME_COUNTS_TOLERANCE,
        "{pred_sub}: camsam eval mIoU {miou} vs hand check {hand}"
    );
    assert!(
        (100.0 * miou - readme_pct).abs() <= README_TOLERANCE_PCT,
        "{pred_sub}: mIoU {:.4} % vs the README's {readme_pct} %",
        100.0 * miou
    );
    assert_eq!(json["num_images"], 293);
    assert_eq!(json["per_class_iou"].as_array().map(Vec::len), Some(21));
    assert_eq!(json["precision"].as_array().map(Vec::len), Some(21));
    assert_eq!(json["recall"].as_array().map(Vec::len), Some(21));
    let images = json["images"].as_array().expect("images");
    assert_eq!(images.len(), 293);
    let scores: Vec<f64> = images
        .iter()
        .map(|i| i["miou"].as_f64().expect("per-image miou"))
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] <= w[1]),
        "images are not worst first"
    );
    println!(
        "{pred_sub}: mIoU {:.4} % (README {readme_pct})",
        100.0 * miou
    );
}

#[test]
fn eval_of_transcam_pseudo_labels_matches_hand_check_and_readme() {
    check("pseudo", 72.40);
}

#[test]
fn eval_of_published_max_iou_imp2_matches_hand_check_and_readme() {
    check("expected/max_iou_imp2", 83.48);
}

#[test]
fn eval_with_before_reports_both_and_the_delta() {
    let sepl = common::shared_dir().join("fixtures/sepl");
    let json = eval_json(&[
        "--pred",
        sepl.join("expected/max_iou").to_str().unwrap(),
        "--before",
        sepl.join("pseudo").to_str().unwrap(),
        "--gt",
        sepl.join("gt").to_str().unwrap(),
        "--json",
    ]);
    let after = json["miou"].as_f64().unwrap();
    let before = json["before"]["miou"].as_f64().unwrap();
    let delta = json["delta"]["miou"].as_f64().unwrap();
    assert!(
        (100.0 * after - 81.57).abs() <= README_TOLERANCE_PCT,
        "{after}"
    );
    assert!(
        (100.0 * before - 72.40).abs() <= README_TOLERANCE_PCT,
        "{before}"
    );
    assert!((delta - (after - before)).abs() <= SAME_COUNTS_TOLERANCE);
    let first = &json["images"][0];
    assert!(
        first["before_miou"].is_number() && first["delta"].is_number(),
        "{first}"
    );
}

#[test]
fn eval_table_and_errors() {
    let sepl = common::shared_dir().join("fixtures/sepl");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_camsam"))
            .arg("eval")
            .args(args)
            .output()
            .expect("run camsam")
    };
    let dir = common::scratch_dir("eval_errors");
    let list = dir.join("list.txt");
    std::fs::write(&list, "2007_000032\n").unwrap();
    let pred = sepl.join("pseudo");
    let gt = sepl.join("gt");
    let out = run(&[
        "--pred",
        pred.to_str().unwrap(),
        "--gt",
        gt.to_str().unwrap(),
        "--list",
        list.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("aeroplane") && table.contains("mIoU"),
        "{table}"
    );

    // A prediction of another size: the error names both files.
    let small = dir.join("pred");
    std::fs::create_dir_all(&small).unwrap();
    let map = camsam::core::label::LabelMap::filled(3, 2, 0);
    std::fs::write(
        small.join("2007_000032.png"),
        map.encode_png(camsam::core::label::LabelFormat::Gray)
            .unwrap(),
    )
    .unwrap();
    let out = run(&[
        "--pred",
        small.to_str().unwrap(),
        "--gt",
        gt.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pred/2007_000032.png") && err.contains("gt/2007_000032.png"),
        "{err}"
    );

    // A missing ground truth names the file.
    std::fs::write(
        small.join("nope.png"),
        map.encode_png(camsam::core::label::LabelFormat::Gray)
            .unwrap(),
    )
    .unwrap();
    std::fs::write(&list, "nope\n").unwrap();
    let out = run(&[
        "--pred",
        small.to_str().unwrap(),
        "--gt",
        gt.to_str().unwrap(),
        "--list",
        list.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.png"), "{err}");
}
