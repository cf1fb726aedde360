//! MobileSAM on the CPU against the official Python implementation's outputs
//! (`../shared/fixtures/sam`): the checkpoint readers, the PIL-exact resize, the image
//! embedding of all four images, and all six prompt cases per image (IoU predictions and
//! low-res logits). The encoder runs once per image.

use crate::common;
use common::{mask_iou, read_mask_png};

use camsam::sam::cpu::CpuSam;
use camsam::sam::predictor::{LowResMasks, Prompt};
use camsam::sam::preprocess::{self, RgbImage};
use camsam::sam::weights::Weights;
use camsam::sam::{Predictor, SamBackend};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const IMAGES: [&str; 4] = ["voc_a", "voc_b", "camvid_a", "portrait_a"];
/// Embedding: max |Δ| relative to the largest reference magnitude.
const EMBEDDING_REL_TOL: f32 = 1e-3;
/// Predicted IoUs: absolute.
const IOU_TOL: f32 = 1e-3;
/// Low-res logits: max |Δ| relative to the largest reference magnitude of the case.
const LOGITS_REL_TOL: f32 = 1e-3;
/// Masks at the original size: IoU with the official PNG.
const MASK_MIN_IOU: f64 = 0.99;

fn sam_dir() -> PathBuf {
    common::shared_dir().join("fixtures/sam")
}

fn weights() -> &'static Weights {
    static W: OnceLock<Weights> = OnceLock::new();
    W.get_or_init(|| {
        Weights::load(&sam_dir().join("weights/mobile_sam_random.pt")).expect("fixture weights")
    })
}

fn model() -> &'static CpuSam {
    static M: OnceLock<CpuSam> = OnceLock::new();
    M.get_or_init(|| CpuSam::new(weights()).expect("model"))
}

/// Minimal reader for the fixtures' little-endian f32 `.npy` files: (shape, data).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).expect("header");
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape: Vec<usize> = shape_str
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("dim"))
        .collect();
    let data: Vec<f32> = bytes[start + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

/// Worst absolute difference: (index, |Δ|, ours, reference).
fn worst(ours: &[f32], reference: &[f32]) -> (usize, f32, f32, f32) {
    assert_eq!(ours.len(), reference.len(), "length differs");
    let mut w = (0, 0f32, 0f32, 0f32);
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        let d = (a - b).abs();
        if d > w.1 || d.is_nan() {
            w = (i, d, *a, *b);
        }
    }
    w
}

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

fn read_png_rgb(path: &Path) -> RgbImage {
    preprocess::read_rgb(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn pt_and_safetensors_hold_the_same_tensors() {
    let pt = weights();
    let st = Weights::load(&sam_dir().join("weights/mobile_sam_random.safetensors"))
        .expect("safetensors");
    assert_eq!(pt.names(), st.names());
    for name in pt.names() {
        assert_eq!(pt.get(name).unwrap(), st.get(name).unwrap(), "{name}");
    }
}

#[test]
fn wrong_files_are_rejected_with_what_was_found() {
    let bytes = std::fs::read(sam_dir().join("weights/mobile_sam_random.safetensors")).unwrap();
    let err = Weights::from_bytes(&bytes[..bytes.len() / 2], "half.safetensors").unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let pt = std::fs::read(sam_dir().join("weights/mobile_sam_random.pt")).unwrap();
    let err = Weights::from_bytes(&pt[..pt.len() / 2], "half.pt").unwrap_err();
    assert!(err.to_string().contains("half.pt"), "{err}");

    // A SAM ViT-B-like state dict.
    let header = r#"{"image_encoder.pos_embed":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"image_encoder.blocks.11.attn.qkv.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut vitb = (header.len() as u64).to_le_bytes().to_vec();
    vitb.extend_from_slice(header.as_bytes());
    vitb.extend_from_slice(&[0u8; 8]);
    let err = Weights::from_bytes(&vitb, "sam_vit_b.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SAM ViT-B") && err.contains("MobileSAM"),
        "{err}"
    );

    // A MobileSAM file with one tensor of the wrong shape.
    let text = String::from_utf8_lossy(
        &bytes[8..8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize],
    )
    .to_string();
    let bad = text.replace(
        r#""mask_decoder.iou_token.weight":{"dtype":"F32","shape":[1,256]"#,
        r#""mask_decoder.iou_token.weight":{"dtype":"F32","shape":[256,1]"#,
    );
    assert_ne!(bad, text, "fixture header layout changed");
    let mut file = (bad.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(bad.as_bytes());
    file.extend_from_slice(&bytes[8 + text.len()..]);
    let err = Weights::from_bytes(&file, "reshaped.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mask_decoder.iou_token.weight") && err.contains("[256, 1]"),
        "{err}"
    );
}

#[test]
fn resize_longest_side_matches_pil() {
    for name in IMAGES {
        let dir = sam_dir().join("predict").join(name);
        let image = read_png_rgb(&dir.join("image.png"));
        let expected = read_png_rgb(&dir.join("resized.png"));
        let ours = preprocess::resize_longest_side(&image, 1024);
        assert_eq!(ours.dimensions(), expected.dimensions(), "{name}");
        let (mut n_diff, mut max_diff, mut at) = (0usize, 0i32, 0usize);
        for (i, (a, b)) in ours.as_raw().iter().zip(expected.as_raw()).enumerate() {
            let d = (*a as i32 - *b as i32).abs();
            if d > 0 {
                n_diff += 1;
            }
            if d > max_diff {
                (max_diff, at) = (d, i);
            }
        }
        assert_eq!(
            n_diff, 0,
            "{name}: {n_diff} channel values differ, worst by {max_diff} at byte {at} (ours {}, PIL {})",
            ours.as_raw()[at],
            expected.as_raw()[at]
        );
    }
}

/// A case's prompt, in original-image pixels.
fn case_prompt(case: &serde_json::Value) -> Prompt {
    let mut p = Prompt::default();
    if let Some(points) = case["points"].as_array() {
        for (pt, l) in points.iter().zip(case["labels"].as_array().unwrap()) {
            p.points
                .push((pt[0].as_f64().unwrap(), pt[1].as_f64().unwrap()));
            p.labels.push(l.as_i64().unwrap() as i32);
        }
    }
    if let Some(b) = case["box"].as_array() {
        let v: Vec<f64> = b.iter().map(|x| x.as_f64().unwrap()).collect();
        p.bbox = Some([v[0], v[1], v[2], v[3]]);
    }
    p
}

/// Checks every prompt case of `name` with the predictor's current embedding.
fn check_cases(name: &str, predictor: &mut Predictor<&CpuSam>, what: &str) -> Vec<String> {
    let dir = sam_dir().join("predict").join(name);
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    for (case_name, case) in cases["cases"].as_object().unwrap() {
        let mut prompt = case_prompt(case);
        if let Some(src) = case["mask_input"].as_str() {
            let (_, logits) = read_npy(&dir.join(format!("{src}_low_res_logits.npy")));
            let ious: Vec<f64> = cases["cases"][src]["iou_predictions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let best = (0..ious.len())
                .max_by(|&a, &b| ious[a].total_cmp(&ious[b]))
                .unwrap();
            prompt.mask_input = Some(logits[best * 65536..(best + 1) * 65536].to_vec());
        }
        let multimask = case["multimask"].as_bool().unwrap();
        let prediction = pollster::block_on(predictor.predict(&prompt, multimask)).unwrap();
        let out: &LowResMasks = &prediction.low_res;
        for (m, ours) in prediction.masks.iter().enumerate() {
            let reference = read_mask_png(&dir.join(format!("{case_name}_mask{m}.png")));
            let iou = mask_iou(ours, &reference);
            let area = ours.iter().filter(|v| **v).count();
            let ref_area = case["mask_area"][m].as_u64().unwrap();
            eprintln!("{name}/{case_name} ({what}): mask {m} IoU {iou:.5}, area {area} (official {ref_area})");
            if iou < MASK_MIN_IOU {
                failures.push(format!(
                    "{name}/{case_name} ({what}): mask {m} has IoU {iou:.4} with the official mask (< {MASK_MIN_IOU})"
                ));
            }
        }
        let iou_ref: Vec<f32> = case["iou_predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let (i, d, a, b) = worst(&out.iou, &iou_ref);
        eprintln!("{name}/{case_name} ({what}): IoU max |Δ| {d:.2e}");
        if d > IOU_TOL {
            failures.push(format!("{name}/{case_name} ({what}): IoU prediction {i} is {a}, official {b} (|Δ| {d:.2e} > {IOU_TOL})"));
        }
        let (shape, logits_ref) = read_npy(&dir.join(format!("{case_name}_low_res_logits.npy")));
        assert_eq!(shape, vec![out.count, 256, 256], "{name}/{case_name}");
        let (i, d, a, b) = worst(&out.logits, &logits_ref);
        let scale = max_abs(&logits_ref);
        eprintln!(
            "{name}/{case_name} ({what}): logits max |Δ| {d:.3e} (max |x| {scale:.1}, rel {:.2e})",
            d / scale
        );
        if d > LOGITS_REL_TOL * scale {
            failures.push(format!(
                "{name}/{case_name} ({what}): low-res logit at (mask {}, row {}, col {}) is {a}, official {b} (|Δ| {d:.3e} > {LOGITS_REL_TOL}·{scale:.1})",
                i / 65536, (i / 256) % 256, i % 256
            ));
        }
    }
    failures
}

#[test]
fn embeddings_and_prompt_cases_match_official() {
    let model = model();
    let mut failures = Vec::new();
    for name in IMAGES {
        let dir = sam_dir().join("predict").join(name);
        let (shape, reference) = read_npy(&dir.join("embedding.npy"));
        assert_eq!(shape, vec![1, 256, 64, 64]);
        let image = read_png_rgb(&dir.join("image.png"));
        let original = (image.height() as usize, image.width() as usize);

        // The decoder alone, from the official embedding.
        let mut predictor = Predictor::new(model);
        pollster::block_on(predictor.set_embedding(&reference, original)).unwrap();
        failures.extend(check_cases(name, &mut predictor, "official embedding"));

        // The whole pipeline from image.png: resize, encoder, decoder.
        let start = std::time::Instant::now();
        pollster::block_on(predictor.set_image(&image)).unwrap();
        let ours = pollster::block_on(predictor.embedding()).unwrap();
        let (i, d, a, b) = worst(&ours, &reference);
        let scale = max_abs(&reference);
        eprintln!(
            "{name}: embedding max |Δ| {d:.3e} (rel {:.2e}), encoder {:.1?}",
            d / scale,
            start.elapsed()
        );
        if d > EMBEDDING_REL_TOL * scale {
            failures.push(format!(
                "{name}: embedding at (channel {}, row {}, col {}) is {a}, official {b} (|Δ| {d:.3e} > {EMBEDDING_REL_TOL}·{scale:.3})",
                i / 4096, (i / 64) % 64, i % 64
            ));
        }
        failures.extend(check_cases(name, &mut predictor, "our embedding"));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn batched_prompts_match_one_at_a_time() {
    let model = model();
    let dir = sam_dir().join("predict/voc_a");
    let (_, reference) = read_npy(&dir.join("embedding.npy"));
    let emb = pollster::block_on(model.upload_embedding(&reference)).unwrap();
    let prompts: Vec<Prompt> = (0..5)
        .map(|i| Prompt {
            points: vec![(100.0 + 150.0 * i as f64, 700.0 - 90.0 * i as f64)],
            labels: vec![1],
            ..Default::default()
        })
        .chain(std::iter::once(Prompt {
            bbox: Some([10.0, 20.0, 600.0, 800.0]),
            ..Default::default()
        }))
        .collect();
    let batched = pollster::block_on(model.decode(&emb, &prompts, true)).unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let single = pollster::block_on(model.decode(&emb, std::slice::from_ref(p), true)).unwrap();
        let (j, d, a, b) = worst(&batched[i].logits, &single[0].logits);
        assert!(
            d <= 1e-4 * max_abs(&single[0].logits),
            "prompt {i}: logit {j} batched {a}, alone {b}"
        );
        assert_eq!(batched[i].count, 3);
    }
}
