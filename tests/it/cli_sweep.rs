//! `camsam sweep` on the SEPL fixtures (real VOC pseudo-labels, simulated SAM masks, ground
//! truth): every cell equals `camsam merge` + `camsam eval` at the same settings; with CAMs the
//! background axis equals `camsam cam2label` first; the heatmap is drawn.

use crate::common;

use common::camsam;
use std::path::{Path, PathBuf};

fn sepl() -> PathBuf {
    common::shared_dir().join("fixtures/sepl")
}

fn ok(args: &[&str], paths: &[(&str, &Path)]) -> std::process::Output {
    let out = camsam(args, paths);
    assert!(
        out.status.success(),
        "camsam {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `camsam eval --json`'s dataset mIoU of `pred` against the fixtures' ground truth.
fn eval_miou(pred: &Path, list: &Path) -> f64 {
    let out = ok(
        &["eval", "--json"],
        &[
            ("--pred", pred),
            ("--gt", &sepl().join("gt")),
            ("--list", list),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("eval --json");
    v["miou"].as_f64().expect("miou")
}

fn list_of(dir: &Path, n: usize) -> (Vec<String>, PathBuf) {
    let all = std::fs::read_to_string(sepl().join("list.txt")).unwrap();
    let names: Vec<String> = all.lines().step_by(29).take(n).map(String::from).collect();
    let list = dir.join("list.txt");
    std::fs::write(&list, names.join("\n") + "\n").unwrap();
    (names, list)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_cell_equals_merge_then_eval() {
    let dir = common::scratch_dir("cli_sweep");
    let (_, list) = list_of(&dir, 8);
    let out = dir.join("sweep");
    let run = ok(
        &["sweep", "--t1", "0.3,0.5", "--t2", "0.75:0.95:0.2"],
        &[
            ("--pseudo", &sepl().join("pseudo")),
            ("--masks", &sepl().join("sam")),
            ("--gt", &sepl().join("gt")),
            ("--list", &list),
            ("--out", &out),
        ],
    );
    eprintln!("{}", String::from_utf8_lossy(&run.stderr));
    let r = read_json(&out.join("sweep.json"));
    assert_eq!(r["preset"], "official-imp2");
    assert_eq!(r["images"], 8);
    assert_eq!(r["t2"], serde_json::json!([0.75, 0.95]));
    let mut best = (f64::NEG_INFINITY, 0.0, 0.0);
    for (i, t1) in ["0.3", "0.5"].iter().enumerate() {
        for (j, t2) in ["0.75", "0.95"].iter().enumerate() {
            let merged = dir.join(format!("merged_{t1}_{t2}"));
            ok(
                &["merge", "--t1", t1, "--t2", t2, "--format", "gray"],
                &[
                    ("--pseudo", &sepl().join("pseudo")),
                    ("--masks", &sepl().join("sam")),
                    ("--list", &list),
                    ("--out", &merged),
                ],
            );
            let want = eval_miou(&merged, &list);
            let got = r["miou"][i][j].as_f64().unwrap();
            assert_eq!(
                got, want,
                "cell t1 {t1} t2 {t2}: sweep {got} vs merge + eval {want}"
            );
            if want > best.0 {
                best = (want, t1.parse().unwrap(), t2.parse().unwrap());
            }
        }
    }
    assert_eq!(r["best"]["miou"].as_f64().unwrap(), best.0);
    assert_eq!(
        (
            r["best"]["t1"].as_f64().unwrap(),
            r["best"]["t2"].as_f64().unwrap()
        ),
        (best.1, best.2)
    );
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    let png = image::open(out.join("sweep.png"))
        .expect("sweep.png")
        .to_rgb8();
    assert!(
        png.width() >= 400,
        "heatmap {}×{}",
        png.width(),
        png.height()
    );
}

/// CAMs made from the fixtures' pseudo-labels: 1.0 on the class's region, a ramp 0..0.6 by
/// column elsewhere, so the background threshold moves the pseudo-label.
fn write_cams(names: &[String], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for n in names {
        let pseudo = camsam::core::label::LabelMap::read_png(
            &sepl().join("pseudo").join(format!("{n}.png")),
        )
        .unwrap();
        let (w, h) = (pseudo.width, pseudo.height);
        let present: Vec<bool> = (0..=20u8).map(|c| pseudo.data.contains(&c)).collect();
        let mut data = Vec::with_capacity(20 * w * h);
        for class in 1..=20u8 {
            for p in 0..w * h {
                let ramp = if present[class as usize] {
                    0.6 * (p % w) as f32 / w as f32
                } else {
                    0.0
                };
                data.push(if pseudo.data[p] == class { 1.0 } else { ramp });
            }
        }
        let a = camsam::core::npy::NpyArray::from_f32(vec![20, h, w], data).unwrap();
        a.write(&dir.join(format!("{n}.npy"))).unwrap();
    }
}

#[test]
fn the_background_axis_equals_cam2label_then_merge_then_eval() {
    let dir = common::scratch_dir("cli_sweep_cams");
    let (names, list) = list_of(&dir, 5);
    let cams = dir.join("cams");
    write_cams(&names, &cams);
    let out = dir.join("sweep");
    ok(
        &["sweep", "--t1", "0.5", "--t2", "0.85", "--bg", "0.2,0.45"],
        &[
            ("--cams", &cams),
            ("--masks", &sepl().join("sam")),
            ("--gt", &sepl().join("gt")),
            ("--list", &list),
            ("--out", &out),
        ],
    );
    let r = read_json(&out.join("sweep.json"));
    assert_eq!(r["bg"], serde_json::json!([0.2, 0.45]));
    let mut seen = Vec::new();
    for (b, bg) in ["0.2", "0.45"].iter().enumerate() {
        let pseudo = dir.join(format!("pseudo_{bg}"));
        ok(
            &["cam2label", "--bg-threshold", bg, "--format", "gray"],
            &[("--cams", &cams), ("--out", &pseudo)],
        );
        let merged = dir.join(format!("merged_{bg}"));
        ok(
            &["merge"],
            &[
                ("--pseudo", &pseudo),
                ("--masks", &sepl().join("sam")),
                ("--list", &list),
                ("--out", &merged),
            ],
        );
        let want = eval_miou(&merged, &list);
        let got = r["miou"][b][0][0].as_f64().unwrap();
        assert_eq!(
            got, want,
            "bg {bg}: sweep {got} vs cam2label + merge + eval {want}"
        );
        seen.push(got);
    }
    assert_ne!(
        seen[0], seen[1],
        "the background threshold changed nothing: a weak test"
    );
    assert!(image::open(out.join("sweep.png")).is_ok());
}
