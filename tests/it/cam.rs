//! CAM inputs (`.npy`, `.npz`, heatmap PNGs, image-level label lists) and CAM → pseudo-label
//! on small hand-made cases: threshold, normalisation, absent classes, ignore band, NaN.

use crate::common;

use camsam::core::cam::{
    parse_image_labels, read_image_labels, scan_dir, Cam, CamFiles, CamOptions, CamToLabel, Keys,
};
use camsam::core::label::{LabelFormat, LabelMap};
use camsam::core::npy::{encode_npz, NpyArray, NpyData};

fn label(cam: &Cam, present: Option<&[u8]>, bg: f32, margin: f32) -> Vec<u8> {
    let p = CamToLabel {
        bg_threshold: bg,
        ignore_margin: margin,
    };
    cam.to_label(present, &p, "t.npy").unwrap().label.data
}

#[test]
fn background_threshold_and_max_normalisation() {
    // Raw scores 0..4: normalised 0, .25, .5, .75, 1 (max 4).
    let cam = Cam::new(vec![7], 1, 5, vec![0.0, 1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(label(&cam, None, 0.25, 0.0), [0, 0, 7, 7, 7]); // a tie goes to background
    assert_eq!(label(&cam, None, 0.6, 0.0), [0, 0, 0, 7, 7]);
    assert_eq!(label(&cam, None, 0.0, 0.0), [0, 7, 7, 7, 7]);
    assert_eq!(label(&cam, None, 1.0, 0.0), [0, 0, 0, 0, 0]);
    // Negative scores are clamped to 0 (ReLU) before normalising.
    let cam = Cam::new(vec![3], 1, 3, vec![-5.0, 0.5, 1.0]).unwrap();
    assert_eq!(label(&cam, None, 0.25, 0.0), [0, 3, 3]);
    // An all-zero channel never beats the background.
    let cam = Cam::new(vec![3], 1, 2, vec![0.0, 0.0]).unwrap();
    assert_eq!(label(&cam, None, 0.0, 0.0), [0, 0]);
}

#[test]
fn argmax_over_present_classes_only() {
    // Class 2 peaks at pixel 0, class 15 at pixel 2, both normalised per class.
    let cam = Cam::new(
        vec![2, 15],
        1,
        3,
        vec![
            10.0, 5.0, 1.0, // class 2 → 1, .5, .1
            0.1, 0.4, 0.5, // class 15 → .2, .8, 1
        ],
    )
    .unwrap();
    assert_eq!(label(&cam, None, 0.25, 0.0), [2, 15, 15]);
    // Image-level labels without class 15: its channel does not compete.
    assert_eq!(label(&cam, Some(&[2]), 0.25, 0.0), [2, 2, 0]);
    assert_eq!(label(&cam, Some(&[0, 15, 15]), 0.25, 0.0), [0, 15, 15]);
    assert_eq!(label(&cam, Some(&[]), 0.25, 0.0), [0, 0, 0]);
    // Labels naming a class the CAM has no channel for: an error naming the file.
    let e = cam
        .to_label(Some(&[2, 9]), &CamToLabel::default(), "cams/x.npz")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cams/x.npz") && e.contains("class 9"), "{e}");
    // Equal normalised scores: the lower class id wins.
    let cam = Cam::new(vec![4, 2], 1, 1, vec![3.0, 6.0]).unwrap();
    assert_eq!(label(&cam, None, 0.25, 0.0), [2]);
}

#[test]
fn ignore_band_marks_close_calls() {
    let cam = Cam::new(
        vec![1, 2],
        1,
        4,
        vec![
            1.0, 0.5, 0.3, 0.05, // class 1
            0.0, 0.45, 0.05, 1.0, // class 2
        ],
    )
    .unwrap();
    // Scores: px0 (1, 0) · px1 (.5, .45) · px2 (.3, .05) vs bg .25 · px3 (.05, 1).
    assert_eq!(label(&cam, None, 0.25, 0.0), [1, 1, 1, 2]);
    assert_eq!(label(&cam, None, 0.25, 0.1), [1, 255, 255, 2]);
    assert_eq!(label(&cam, None, 0.25, 0.04), [1, 1, 1, 2]);
    // With one class, the second score is the background.
    let cam = Cam::new(vec![5], 1, 3, vec![0.27, 0.5, 1.0]).unwrap();
    assert_eq!(label(&cam, None, 0.25, 0.1), [255, 5, 5]);
}

#[test]
fn nan_and_inf_are_zero_and_counted() {
    let cam = Cam::new(
        vec![1, 2],
        1,
        4,
        vec![
            f32::NAN,
            2.0,
            f32::INFINITY,
            1.0, // class 1: max over finite values is 2
            0.5,
            f32::NEG_INFINITY,
            1.0,
            f32::NAN, // class 2
        ],
    )
    .unwrap();
    let out = cam.to_label(None, &CamToLabel::default(), "n.npy").unwrap();
    assert_eq!(out.non_finite, 4);
    assert_eq!(out.label.data, [2, 1, 2, 1]);
    // A channel that is all NaN is all background.
    let cam = Cam::new(vec![1], 1, 2, vec![f32::NAN; 2]).unwrap();
    let out = cam.to_label(None, &CamToLabel::default(), "n.npy").unwrap();
    assert_eq!(
        (out.label.data.as_slice(), out.non_finite),
        (&[0u8, 0][..], 2)
    );
}

#[test]
fn parameters_out_of_range_are_errors() {
    let cam = Cam::new(vec![1], 1, 1, vec![1.0]).unwrap();
    for (bg, m) in [(-0.1, 0.0), (1.5, 0.0), (f32::NAN, 0.0), (0.25, 2.0)] {
        let p = CamToLabel {
            bg_threshold: bg,
            ignore_margin: m,
        };
        assert!(cam.to_label(None, &p, "x").is_err(), "{bg} {m}");
    }
    assert!(Cam::new(vec![0], 1, 1, vec![1.0]).is_err());
    assert!(Cam::new(vec![1, 1], 1, 1, vec![1.0, 1.0]).is_err());
    assert!(Cam::new(vec![1], 2, 2, vec![1.0]).is_err());
    let e = Cam::new(vec![], 1 << 14, 1 << 14, vec![])
        .unwrap_err()
        .to_string();
    assert!(e.contains("megapixels"), "{e}");
}

#[test]
fn npy_cams_with_and_without_a_background_channel() {
    let opts = CamOptions::default();
    let (h, w) = (1, 2);
    // 20 foreground channels: channel c is class c + 1; class 15 is strong at pixel 1.
    let mut data = vec![0.0f32; 20 * h * w];
    data[14 * 2 + 1] = 1.0;
    data[2 * 2] = 1.0; // class 3 at pixel 0
    let a = NpyArray::from_f32(vec![20, h, w], data.clone()).unwrap();
    let cam = Cam::from_npy(&a, "f.npy", &opts).unwrap();
    assert_eq!(cam.classes, (1..=20).collect::<Vec<u8>>());
    assert_eq!(label(&cam, None, 0.25, 0.0), [3, 15]);
    // 21 channels: channel 0 is background and is dropped, channel c is class c.
    let mut with_bg = vec![9.0f32; h * w];
    with_bg.extend(&data);
    let a = NpyArray::new(
        vec![21, h, w],
        NpyData::F64(with_bg.iter().map(|&v| v as f64).collect()),
    )
    .unwrap();
    let cam = Cam::from_npy(&a, "b.npy", &opts).unwrap();
    assert_eq!(cam.classes, (1..=20).collect::<Vec<u8>>());
    assert_eq!(label(&cam, None, 0.25, 0.0), [3, 15]);
    // Other channel counts and shapes are errors naming the file.
    let a = NpyArray::from_f32(vec![19, h, w], vec![0.0; 19 * 2]).unwrap();
    let e = Cam::from_npy(&a, "c19.npy", &opts).unwrap_err().to_string();
    assert!(e.contains("c19.npy") && e.contains("19 channels"), "{e}");
    let a = NpyArray::from_f32(vec![20, 2], vec![0.0; 40]).unwrap();
    let e = Cam::from_npy(&a, "2d.npy", &opts).unwrap_err().to_string();
    assert!(e.contains("2d.npy") && e.contains("(C,H,W)"), "{e}");
}

fn cam_npz(keys: NpyData, arrays: &[(&str, &NpyArray)]) -> Vec<u8> {
    let keys = NpyArray::new(vec![keys.len()], keys).unwrap();
    let mut all = vec![("keys", &keys)];
    all.extend_from_slice(arrays);
    encode_npz(&all, true).unwrap()
}

#[test]
fn npz_cams_with_irn_keys_and_class_id_keys() {
    // Two channels: the first peaks at pixel 0, the second at pixel 1.
    let scores = NpyArray::from_f32(vec![2, 1, 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    let low = NpyArray::from_f32(vec![2, 1, 1], vec![1.0, 0.0]).unwrap();
    // IRN/AMN/ReCAM: keys are 0-based foreground (0 = aeroplane, 14 = person).
    let bytes = cam_npz(
        NpyData::I64(vec![0, 14]),
        &[("cam", &low), ("high_res", &scores)],
    );
    let cam = Cam::from_npz(&bytes, "irn.npz", &CamOptions::default()).unwrap();
    assert_eq!(cam.classes, [1, 15]);
    assert_eq!((cam.height, cam.width), (1, 2)); // high_res preferred over cam
    assert_eq!(label(&cam, None, 0.25, 0.0), [1, 15]);
    // Class-id keys, background channel first (dropped).
    let with_bg = NpyArray::from_f32(vec![3, 1, 2], vec![5.0, 5.0, 1.0, 0.0, 0.0, 1.0]).unwrap();
    let bytes = cam_npz(NpyData::U8(vec![0, 1, 15]), &[("high_res", &with_bg)]);
    let opts = CamOptions {
        keys: Keys::ClassIds,
        ..CamOptions::default()
    };
    let cam = Cam::from_npz(&bytes, "ids.npz", &opts).unwrap();
    assert_eq!(cam.classes, [1, 15]);
    assert_eq!(label(&cam, None, 0.25, 0.0), [1, 15]);
    // Only `cam` present: used as is.
    let bytes = cam_npz(NpyData::I32(vec![3, 4]), &[("cam", &low)]);
    let cam = Cam::from_npz(&bytes, "low.npz", &CamOptions::default()).unwrap();
    assert_eq!(cam.classes, [4, 5]);
    // Key 20 cannot be 0-based foreground with 21 classes: an error naming the member.
    let bytes = cam_npz(NpyData::I64(vec![0, 20]), &[("high_res", &scores)]);
    let e = Cam::from_npz(&bytes, "k.npz", &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("k.npz[keys]") && e.contains("--keys"), "{e}");
    // Channel count differing from the keys.
    let bytes = cam_npz(NpyData::I64(vec![0]), &[("high_res", &scores)]);
    let e = Cam::from_npz(&bytes, "n.npz", &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("n.npz[high_res]") && e.contains("1 keys"), "{e}");
    // Missing arrays.
    let bytes = encode_npz(&[("high_res", &scores)], false).unwrap();
    let e = Cam::from_npz(&bytes, "nokeys.npz", &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nokeys.npz") && e.contains("'keys'"), "{e}");
    let bytes = cam_npz(NpyData::I64(vec![0]), &[]);
    let e = Cam::from_npz(&bytes, "nocam.npz", &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nocam.npz") && e.contains("high_res"), "{e}");
    // Fractional keys.
    let bytes = cam_npz(NpyData::F32(vec![0.5, 1.0]), &[("high_res", &scores)]);
    let e = Cam::from_npz(&bytes, "frac.npz", &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("frac.npz[keys]"), "{e}");
}

fn gray_png(w: usize, h: usize, values: &[u8]) -> Vec<u8> {
    LabelMap::new(w, h, values.to_vec())
        .unwrap()
        .encode_png(LabelFormat::Gray)
        .unwrap()
}

#[test]
fn heatmap_folder_scan_and_load() {
    let dir = common::scratch_dir("cam_heatmaps");
    std::fs::write(
        dir.join("2007_000033_1.png"),
        gray_png(3, 1, &[255, 100, 0]),
    )
    .unwrap();
    std::fs::write(
        dir.join("2007_000033_15.png"),
        gray_png(3, 1, &[0, 200, 255]),
    )
    .unwrap();
    // A background heatmap is dropped.
    std::fs::write(
        dir.join("2007_000033_0.png"),
        gray_png(3, 1, &[255, 255, 255]),
    )
    .unwrap();
    // A plain <name>.png is a pseudo-label, never a CAM.
    std::fs::write(dir.join("2007_000033.png"), gray_png(3, 1, &[0, 0, 0])).unwrap();
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    let found = scan_dir(&dir, None).unwrap();
    assert_eq!(found.cams.len(), 1);
    assert_eq!(found.skipped.len(), 2);
    let files = &found.cams["2007_000033"];
    let cam = Cam::read(files, &CamOptions::default()).unwrap();
    assert_eq!(cam.classes, [1, 15]);
    // 100/255 = .39 vs 200/255 = .78 at pixel 1.
    assert_eq!(label(&cam, None, 0.25, 0.0), [1, 15, 15]);

    // Heatmaps of different sizes for one image.
    std::fs::write(dir.join("b_2.png"), gray_png(2, 1, &[1, 2])).unwrap();
    std::fs::write(dir.join("b_3.png"), gray_png(1, 2, &[1, 2])).unwrap();
    let found = scan_dir(&dir, None).unwrap();
    let e = Cam::read(&found.cams["b"], &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("b_3.png") && e.contains("b_2.png"), "{e}");

    // A class id beyond the dataset.
    std::fs::write(dir.join("c_40.png"), gray_png(1, 1, &[1])).unwrap();
    let found = scan_dir(&dir, None).unwrap();
    let e = Cam::read(&found.cams["c"], &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("c_40.png"), "{e}");

    // An RGB heatmap is not a score map.
    let mut rgb = Vec::new();
    let mut enc = png::Encoder::new(&mut rgb, 1, 1);
    enc.set_color(png::ColorType::Rgb);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&[1, 2, 3]).unwrap();
    wr.finish().unwrap();
    std::fs::write(dir.join("d_1.png"), rgb).unwrap();
    let found = scan_dir(&dir, None).unwrap();
    let e = Cam::read(&found.cams["d"], &CamOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("d_1.png") && e.contains("grayscale"), "{e}");

    // A name given in a list wins over the heatmap reading of its stem.
    let names = ["b_2".to_string()].into_iter().collect();
    let found = scan_dir(&dir, Some(&names)).unwrap();
    assert_eq!(
        found.cams["b"],
        CamFiles::Heatmaps(vec![(3, dir.join("b_3.png"))])
    );

    // Two kinds of CAM for one image.
    let a = NpyArray::from_f32(vec![20, 1, 1], vec![0.0; 20]).unwrap();
    a.write(&dir.join("2007_000033.npy")).unwrap();
    let e = scan_dir(&dir, None).unwrap_err().to_string();
    assert!(e.contains("2007_000033"), "{e}");
}

#[test]
fn image_level_labels_from_the_shared_tsv() {
    let tsv = common::shared_dir().join("data/voc_val_crops/labels.tsv");
    let labels = read_image_labels(&tsv, 21).unwrap();
    assert_eq!(labels.len(), 14);
    assert_eq!(labels["2007_000033"], [1]);
    assert_eq!(labels["2008_006874"], [14, 15]);
    assert_eq!(labels["2009_000573"], [2, 5]);
    assert_eq!(labels["2010_000530"], [7, 15]);
    // The same numbers as plain ids.
    let plain = parse_image_labels("2008_006874 14 15\n", "x.txt", 21).unwrap();
    assert_eq!(plain["2008_006874"], labels["2008_006874"]);
}
