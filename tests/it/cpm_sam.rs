//! CPM end to end on MobileSAM (CPU) with the fixture checkpoint
//! (`../shared/fixtures/sam/weights/mobile_sam_random.pt`, random weights: the masks are
//! meaningless as segmentations, so the checks hold CPM to the predictor's own output).
//!
//! With one class, CPM's label is exactly the class's chosen mask (up-sampled logit > 0):
//! inside it the score is `logit × mean CAM ≥ 0`, outside there is none.

use crate::common;
use common::cone;

use camsam::refine::cpm::{cpm, CpmSettings, MaskChoice, PromptMode};
use camsam::sam::cpu::CpuSam;
use camsam::sam::postprocess::postprocess_masks;
use camsam::sam::predictor::{MaskPredictor, Prompt};
use camsam::sam::weights::Weights;
use camsam::sam::Predictor;
use std::sync::OnceLock;

fn model() -> &'static CpuSam {
    static M: OnceLock<CpuSam> = OnceLock::new();
    M.get_or_init(|| {
        let path = common::shared_dir().join("fixtures/sam/weights/mobile_sam_random.pt");
        let weights = Weights::load(&path).expect("fixture weights");
        CpuSam::new(&weights).expect("model")
    })
}

#[test]
fn cpm_labels_follow_the_predictors_masks() {
    let image = image::open(common::shared_dir().join("fixtures/sam/predict/voc_a/image.png"))
        .expect("voc_a image")
        .to_rgb8();
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut predictor = Predictor::new(model());
    pollster::block_on(predictor.set_image(&image)).expect("encoder");
    let input = predictor.input_size();

    // Class 12 with two separated cones (two peaks), class 4 with one.
    let c12: Vec<f32> = cone(w, h, 120.0, 140.0, 60.0)
        .iter()
        .zip(cone(w, h, 380.0, 300.0, 60.0))
        .map(|(a, b)| a.max(b * 0.8))
        .collect();
    let c4 = cone(w, h, 260.0, 420.0, 50.0);

    for choice in [MaskChoice::Index(2), MaskChoice::BestIou] {
        let settings = CpmSettings {
            mask_choice: choice,
            ..CpmSettings::default()
        };
        // One class: the label is the chosen mask of the multi-point prompt.
        let out = pollster::block_on(cpm(&mut predictor, &[12], &c12, &settings)).expect("cpm");
        let report = &out.classes[0];
        let xy: Vec<(usize, usize)> = report.peaks.iter().map(|p| (p.x, p.y)).collect();
        assert_eq!(xy, vec![(120, 140), (380, 300)]);
        let prompt = Prompt {
            points: xy
                .iter()
                .map(|&(x, y)| {
                    (
                        x as f64 * input.1 as f64 / w as f64,
                        y as f64 * input.0 as f64 / h as f64,
                    )
                })
                .collect(),
            labels: vec![1, 1],
            ..Prompt::default()
        };
        let answer = pollster::block_on(predictor.predict_low_res(&[prompt], true))
            .expect("predict")
            .remove(0);
        let index = match choice {
            MaskChoice::Index(i) => i,
            MaskChoice::BestIou => (0..3)
                .max_by(|&a, &b| answer.iou[a].total_cmp(&answer.iou[b]))
                .unwrap(),
        };
        assert_eq!(report.masks.len(), 1);
        assert_eq!(report.masks[0].index, index);
        let plane = 256 * 256;
        let logits = postprocess_masks(
            &answer.logits[index * plane..(index + 1) * plane],
            1,
            input,
            (h, w),
        )
        .expect("postprocess");
        let mut area = 0;
        for (i, (&l, &got)) in logits.iter().zip(&out.label.data).enumerate() {
            let want = if l > 0.0 { 12 } else { 0 };
            area += usize::from(l > 0.0);
            assert_eq!(
                got,
                want,
                "pixel ({}, {}): label {got}, logit {l}",
                i % w,
                i / w
            );
        }
        assert_eq!(report.masks[0].area, area);
    }

    // Two classes, one prompt per peak: every labelled pixel lies in a mask of its class
    // and the labels are drawn from {0, 4, 12}.
    let settings = CpmSettings {
        prompt_mode: PromptMode::PerPeak,
        ..CpmSettings::default()
    };
    let cams = [c12, c4].concat();
    let out = pollster::block_on(cpm(&mut predictor, &[12, 4], &cams, &settings)).expect("cpm");
    assert_eq!(out.classes[0].masks.len(), 2);
    assert_eq!(out.classes[1].masks.len(), 1);
    let n = w * h;
    for (i, &l) in out.label.data.iter().enumerate() {
        let slot = match l {
            0 => continue,
            12 => 0,
            4 => 1,
            other => panic!("pixel {i}: unexpected label {other}"),
        };
        assert!(
            out.scores[slot * n + i] >= 0.0,
            "pixel {i}: label {l} without a score"
        );
        let other = out.scores[(1 - slot) * n + i];
        assert!(
            out.scores[slot * n + i] >= other,
            "pixel {i}: label {l} is not the best"
        );
    }
}
