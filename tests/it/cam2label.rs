//! `camsam cam2label` end to end: every CAM kind in one folder, image-level labels, the
//! ignore band, NaN warnings, skip-existing / --overwrite / --shard, errors; and a round trip
//! through `camsam eval`: indicator CAMs built from real VOC ground truth give back the GT.

use crate::common;

use camsam::core::label::{LabelFormat, LabelMap};
use camsam::core::npy::{encode_npz, NpyArray, NpyData};
use std::path::Path;
use std::process::{Command, Output};

fn camsam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camsam"))
        .args(args)
        .output()
        .expect("run camsam")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "camsam failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn gray(w: usize, h: usize, v: &[u8]) -> Vec<u8> {
    LabelMap::new(w, h, v.to_vec())
        .unwrap()
        .encode_png(LabelFormat::Gray)
        .unwrap()
}

/// A folder with one CAM of each kind, 1×3 pixels each, and a plain pseudo-label PNG.
fn make_cams(dir: &Path) {
    // a.npy: 20 foreground channels; class 1 strong at pixel 0, class 15 at pixel 2.
    let mut data = vec![0.0f32; 20 * 3];
    data[0] = 1.0;
    data[14 * 3 + 2] = 1.0;
    data[14 * 3 + 1] = 0.1;
    NpyArray::from_f32(vec![20, 1, 3], data)
        .unwrap()
        .write(&dir.join("a.npy"))
        .unwrap();
    // b.npz: IRN keys [6] (class 7, car), a NaN at pixel 1.
    let keys = NpyArray::new(vec![1], NpyData::I64(vec![6])).unwrap();
    let cam = NpyArray::from_f32(vec![1, 1, 3], vec![0.2, f32::NAN, 0.8]).unwrap();
    std::fs::write(
        dir.join("b.npz"),
        encode_npz(&[("keys", &keys), ("high_res", &cam)], true).unwrap(),
    )
    .unwrap();
    // c_12.png / c_8.png heatmaps: dog at pixel 0, cat at pixel 1 and (close call) pixel 2.
    std::fs::write(dir.join("c_12.png"), gray(3, 1, &[255, 0, 200])).unwrap();
    std::fs::write(dir.join("c_8.png"), gray(3, 1, &[0, 255, 210])).unwrap();
    // A pseudo-label: ignored.
    std::fs::write(dir.join("c.png"), gray(3, 1, &[0, 0, 0])).unwrap();
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    LabelMap::read_png(&dir.join(format!("{name}.png")))
        .unwrap()
        .data
}

#[test]
fn every_cam_kind_becomes_a_label() {
    let dir = common::scratch_dir("cam2label_kinds");
    let cams = dir.join("cams");
    let out = dir.join("out");
    std::fs::create_dir_all(&cams).unwrap();
    make_cams(&cams);
    let err = ok(&camsam(&[
        "cam2label",
        "--cams",
        s(&cams),
        "--out",
        s(&out),
    ]));
    assert!(err.contains("NaN/Inf") && err.contains("b (1)"), "{err}");
    assert!(err.contains("1 plain"), "{err}");
    assert_eq!(read(&out, "a"), [1, 0, 15]);
    assert_eq!(read(&out, "b"), [0, 0, 7]);
    assert_eq!(read(&out, "c"), [12, 8, 8]);
    // Palette PNGs by default.
    let bytes = std::fs::read(out.join("a.png")).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    assert_eq!(reader.info().color_type, png::ColorType::Indexed);

    // A finished output is skipped; --overwrite redoes it with the new settings.
    let args = |extra: &[&str]| {
        let mut v = vec!["cam2label", "--cams", s(&cams), "--out", s(&out)];
        v.extend_from_slice(extra);
        v.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        camsam(&a)
    };
    let err = ok(&run(args(&["--ignore-margin", "0.1", "--format", "gray"])));
    assert!(err.contains("3 skipped"), "{err}");
    assert_eq!(read(&out, "c"), [12, 8, 8]);
    ok(&run(args(&[
        "--ignore-margin",
        "0.1",
        "--format",
        "gray",
        "--overwrite",
    ])));
    assert_eq!(read(&out, "c"), [12, 8, 255]);
    // Background threshold 0.9: only the peaks survive.
    ok(&run(args(&["--bg-threshold", "0.9", "--overwrite"])));
    assert_eq!(read(&out, "b"), [0, 0, 7]);
    assert_eq!(read(&out, "a"), [1, 0, 15]);
    assert_eq!(read(&out, "c"), [12, 8, 0]);

    // Shards split the three names.
    let sharded = dir.join("sharded");
    for i in 0..2 {
        let shard = format!("{i}/2");
        ok(&camsam(&[
            "cam2label",
            "--cams",
            s(&cams),
            "--out",
            s(&sharded),
            "--shard",
            &shard,
        ]));
        let n = std::fs::read_dir(&sharded).unwrap().count();
        assert_eq!(n, if i == 0 { 2 } else { 3 });
    }

    // Image-level labels restrict the competing classes.
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "a aeroplane\nb car\nc 12\n").unwrap();
    ok(&run(args(&["--labels", s(&labels), "--overwrite"])));
    assert_eq!(read(&out, "a"), [1, 0, 0]);
    assert_eq!(read(&out, "c"), [12, 0, 12]);
}

#[test]
fn failures_name_the_file_and_keep_the_other_outputs() {
    let dir = common::scratch_dir("cam2label_errors");
    let cams = dir.join("cams");
    let out = dir.join("out");
    std::fs::create_dir_all(&cams).unwrap();
    make_cams(&cams);
    std::fs::write(cams.join("d.npy"), b"\x93NUMPY garbage").unwrap();
    let o = camsam(&["cam2label", "--cams", s(&cams), "--out", s(&out)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("d.npy") && err.contains("1 of 4"), "{err}");
    assert!(out.join("a.png").is_file() && !out.join("d.png").exists());

    // Labels naming a class the CAM lacks, and an image missing from the labels.
    std::fs::remove_file(cams.join("d.npy")).unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "a 1\nb 3\n").unwrap();
    let o = camsam(&[
        "cam2label",
        "--cams",
        s(&cams),
        "--out",
        s(&out),
        "--labels",
        s(&labels),
        "--overwrite",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("b.npz") && err.contains("class 3"), "{err}");
    assert!(err.contains("labels.txt") && err.contains("'c'"), "{err}");

    // Bad settings fail before any work.
    for (flag, value) in [("--bg-threshold", "1.5"), ("--ignore-margin", "-1")] {
        let arg = format!("{flag}={value}");
        let o = camsam(&["cam2label", "--cams", s(&cams), "--out", s(&out), &arg]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag) && err.contains("from 0 to 1"), "{err}");
    }
    let o = camsam(&[
        "cam2label",
        "--cams",
        s(&dir.join("nope")),
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
}

/// CAMs that are exactly the GT class indicators (void → 0), with IRN keys from the shared
/// `labels.tsv`, must give back the GT on every non-void pixel: `camsam eval` mIoU = 1.
#[test]
fn indicator_cams_of_real_gt_round_trip_through_eval() {
    let voc = common::shared_dir().join("data/voc_val_crops");
    let labels = camsam::core::cam::read_image_labels(&voc.join("labels.tsv"), 21).unwrap();
    let dir = common::scratch_dir("cam2label_gt");
    let cams = dir.join("cams");
    let out = dir.join("out");
    std::fs::create_dir_all(&cams).unwrap();
    for (name, classes) in &labels {
        let gt = LabelMap::read_png(&voc.join(format!("gt/{name}.png"))).unwrap();
        let n = gt.width * gt.height;
        let mut data = Vec::with_capacity(classes.len() * n);
        for &c in classes {
            data.extend(gt.data.iter().map(|&g| if g == c { 0.9f32 } else { 0.05 }));
        }
        let keys: Vec<i64> = classes.iter().map(|&c| c as i64 - 1).collect();
        let keys = NpyArray::new(vec![keys.len()], NpyData::I64(keys)).unwrap();
        let cam = NpyArray::from_f32(vec![classes.len(), gt.height, gt.width], data).unwrap();
        std::fs::write(
            cams.join(format!("{name}.npz")),
            encode_npz(&[("keys", &keys), ("high_res", &cam)], false).unwrap(),
        )
        .unwrap();
    }
    ok(&camsam(&[
        "cam2label",
        "--cams",
        s(&cams),
        "--out",
        s(&out),
        "--labels",
        s(&voc.join("labels.tsv")),
    ]));
    let o = camsam(&[
        "eval",
        "--pred",
        s(&out),
        "--gt",
        s(&voc.join("gt")),
        "--json",
    ]);
    ok(&o);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["num_images"], 14);
    assert_eq!(
        json["miou"].as_f64(),
        Some(1.0),
        "{}",
        json["per_class_iou"]
    );
}
