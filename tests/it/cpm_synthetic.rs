//! CPM driven by the synthetic predictor of `../shared/README.md`, on images whose expected
//! labels follow by hand from the predictor's definition.
//!
//! The image is 256×256, so SAM's input is 1024×1024 (s = 4) and low-res cell (r, c) reads
//! image pixel (c, r): the synthetic mask 2 of a point is exactly its colour region on the
//! 256 grid. The regions are full-height vertical stripes, so a boundary cell keeps six of
//! its nine box-mean neighbours (logit ±10/3) and the up-sampling 256 → 1024 → 256
//! (`0.875·v[d] + 0.0625·(v[d−1] + v[d+1])`) keeps every sign: mask 2 up-sampled is the
//! stripe, pixel for pixel.

use crate::common;
use common::cone;

use camsam::refine::cpm::{cpm, CpmSettings, MaskChoice, PromptMode};
use camsam::sam::predictor::ImagePredictor;
use common::synthetic::SyntheticPredictor;
use image::{Rgb, RgbImage};

const RED: Rgb<u8> = Rgb([200, 30, 30]);
const GREEN: Rgb<u8> = Rgb([30, 200, 30]);
const BLUE: Rgb<u8> = Rgb([30, 30, 200]);

/// 256×256: red columns 0..100, green 100..180, blue 180..256.
fn stripes() -> RgbImage {
    RgbImage::from_fn(256, 256, |x, _| match x {
        0..100 => RED,
        100..180 => GREEN,
        _ => BLUE,
    })
}

fn stripe_of(x: usize) -> usize {
    match x {
        0..100 => 0,
        100..180 => 1,
        _ => 2,
    }
}

fn predictor(image: &RgbImage) -> SyntheticPredictor {
    let mut p = SyntheticPredictor::new();
    pollster::block_on(p.set_image(image)).expect("set image");
    p
}

/// Label at every pixel, as a function of the stripe, compared with a readable message.
fn assert_label_by_stripe(label: &camsam::core::label::LabelMap, want: [u8; 3]) {
    for y in 0..label.height {
        for x in 0..label.width {
            let got = label.data[y * label.width + x];
            let expected = want[stripe_of(x)];
            assert_eq!(
                got, expected,
                "pixel ({x}, {y}): got {got}, expected {expected}"
            );
        }
    }
}

#[test]
fn one_peak_per_class_labels_its_colour_region() {
    let image = stripes();
    let mut p = predictor(&image);
    // Class 3 peaks in the red stripe, class 8 in the blue one; green has no CAM.
    let cams = [
        cone(256, 256, 50.0, 128.0, 30.0),
        cone(256, 256, 218.0, 128.0, 30.0),
    ]
    .concat();
    for mode in [PromptMode::MultiPoint, PromptMode::PerPeak] {
        let settings = CpmSettings {
            prompt_mode: mode,
            ..CpmSettings::default()
        };
        let out = pollster::block_on(cpm(&mut p, &[3, 8], &cams, &settings)).expect("cpm");
        assert_label_by_stripe(&out.label, [3, 0, 8]);
        // One peak each (the cones have a single maximum), mask index 2, region areas.
        for (report, area) in out.classes.iter().zip([100 * 256, 76 * 256]) {
            assert_eq!(report.peaks.len(), 1, "class {}", report.class);
            assert_eq!(report.masks.len(), 1);
            assert_eq!(report.masks[0].index, 2);
            assert_eq!(report.masks[0].area, area, "class {}", report.class);
        }
        // Peak (50, 128): x0 = 50, y0 = 128 → IoU 0.86 − 0.01·((50 + 256) mod 7).
        let want_iou = 0.86 - 0.01 * ((50 + 2 * 128) % 7) as f32;
        assert!((out.classes[0].masks[0].predicted_iou - want_iou).abs() < 1e-6);
    }
}

#[test]
fn higher_mean_cam_wins_a_shared_region_and_margin_ignores_it() {
    let image = stripes();
    let mut p = predictor(&image);
    // Class 5: a small cone in green (mean over the green stripe ≈ 0.05).
    // Class 6: 0.9 over the whole green stripe plus a peak of 1 at (140, 200): mean ≈ 0.9.
    // Class 3: a cone in red, the only competitor there.
    let c5 = cone(256, 256, 140.0, 60.0, 30.0);
    let mut c6 = vec![0f32; 256 * 256];
    for y in 0..256 {
        for x in 100..180 {
            c6[y * 256 + x] = 0.9;
        }
    }
    c6[200 * 256 + 140] = 1.0;
    let c3 = cone(256, 256, 50.0, 128.0, 30.0);
    let cams = [c5, c6, c3].concat();
    let settings = CpmSettings {
        prompt_mode: PromptMode::PerPeak,
        ..CpmSettings::default()
    };
    let out = pollster::block_on(cpm(&mut p, &[5, 6, 3], &cams, &settings)).expect("cpm");
    // Every mask of 5 and 6 is the green stripe; the ratio of their scores is the ratio of
    // their mean CAMs, so 6 wins all of it.
    assert_label_by_stripe(&out.label, [3, 6, 0]);
    // The 0.9 plateau gives many spaced peaks, each one prompt, all the same mask.
    assert!(out.classes[1].peaks.len() > 1);
    assert!(out.classes[1].masks.iter().all(|m| m.area == 80 * 256));

    // A margin larger than any score difference: green (two competitors) becomes 255,
    // red (one competitor) stays 3.
    let banded = CpmSettings {
        ignore_margin: Some(1e3),
        ..settings
    };
    let out = pollster::block_on(cpm(&mut p, &[5, 6, 3], &cams, &banded)).expect("cpm");
    assert_label_by_stripe(&out.label, [3, 255, 0]);
}

#[test]
fn best_iou_choice_uses_the_256_px_disc() {
    let image = stripes();
    let mut p = predictor(&image);
    let cams = cone(256, 256, 50.0, 128.0, 30.0);
    let settings = CpmSettings {
        mask_choice: MaskChoice::BestIou,
        ..CpmSettings::default()
    };
    let out = pollster::block_on(cpm(&mut p, &[3], &cams, &settings)).expect("cpm");
    // Mask 1 (base IoU 0.95) is the best: the red stripe within 256 input px = 64 image px
    // of the peak.
    assert_eq!(out.classes[0].masks[0].index, 1);
    let l = &out.label;
    assert_eq!(l.data[128 * 256 + 50], 3);
    assert_eq!(l.data[128 * 256 + 10], 3);
    // 108 px above the peak: outside the disc (index 2 would label it).
    assert_eq!(l.data[20 * 256 + 50], 0);
    for y in 0..256 {
        for x in 0..256 {
            let d = ((x as f64 - 50.0).powi(2) + (y as f64 - 128.0).powi(2)).sqrt();
            let v = l.data[y * 256 + x];
            if stripe_of(x) != 0 || d > 66.0 {
                assert_eq!(
                    v, 0,
                    "pixel ({x}, {y}) is outside the disc but labelled {v}"
                );
            } else if d < 62.0 && x > 1 && x < 98 {
                assert_eq!(v, 3, "pixel ({x}, {y}) is inside the disc but labelled {v}");
            }
        }
    }
}

#[test]
fn non_square_image_maps_peaks_to_the_input_frame() {
    // 400 wide × 200 high: s = 2.56, input 512×1024. Left half red, right half blue.
    let image = RgbImage::from_fn(400, 200, |x, _| if x < 200 { RED } else { BLUE });
    let mut p = predictor(&image);
    let cams = [
        cone(400, 200, 300.0, 100.0, 40.0),
        cone(400, 200, 100.0, 50.0, 40.0),
    ]
    .concat();
    let out =
        pollster::block_on(cpm(&mut p, &[1, 2], &cams, &CpmSettings::default())).expect("cpm");
    // Class 1 peaks in blue, class 2 in red; away from the seam the halves are exact.
    for y in 0..200 {
        for x in (0..196).chain(204..400) {
            let want = if x < 200 { 2 } else { 1 };
            let got = out.label.data[y * 400 + x];
            assert_eq!(got, want, "pixel ({x}, {y}): got {got}, expected {want}");
        }
    }
}

#[test]
fn cams_of_the_wrong_size_are_an_error() {
    let image = stripes();
    let mut p = predictor(&image);
    let err = pollster::block_on(cpm(&mut p, &[3], &[0.0; 100], &CpmSettings::default()));
    assert!(err.is_err());
    let err = pollster::block_on(cpm(
        &mut p,
        &[0],
        &vec![0.0; 256 * 256],
        &CpmSettings::default(),
    ));
    assert!(err.is_err(), "class 0 (background) cannot be prompted");
}

#[test]
fn cam_at_half_size_with_image_labels() {
    use camsam::core::cam::Cam;
    use camsam::refine::cpm::cpm_cam;
    let image = stripes();
    let mut p = predictor(&image);
    // A 128×128 CAM (half size, unnormalised) for classes 3, 8, 11; the image-level labels
    // say 3 and 8 only, so 11's cone in the green stripe is ignored.
    let data = [
        cone(128, 128, 25.0, 64.0, 15.0)
            .iter()
            .map(|v| v * 7.0)
            .collect::<Vec<_>>(),
        cone(128, 128, 109.0, 64.0, 15.0),
        cone(128, 128, 70.0, 64.0, 15.0),
    ]
    .concat();
    let cam = Cam::new(vec![3, 8, 11], 128, 128, data).expect("cam");
    let out = pollster::block_on(cpm_cam(
        &mut p,
        &cam,
        Some(&[3, 8]),
        &CpmSettings::default(),
        "x.npy",
    ))
    .expect("cpm");
    assert_label_by_stripe(&out.label, [3, 0, 8]);
    assert_eq!(out.classes.len(), 2);
    // Normalised before the peaks: the global maximum is 1 for both classes.
    assert!(out
        .classes
        .iter()
        .all(|c| (c.peaks[0].value - 1.0).abs() < 1e-6));
}
