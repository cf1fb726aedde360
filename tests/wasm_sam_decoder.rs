//! The MobileSAM decoder compiled to wasm32, run in headless Chromium through
//! `wasm-bindgen-test` on the fixture checkpoint, on both backends (the CPU one, and WebGPU on
//! Chromium's SwiftShader adapter, `--enable-unsafe-webgpu` in `webdriver.json`): the `voc_a`
//! `point_multi` and `box` cases from the official embedding, against the official IoU
//! predictions and low-res logits; and the CPU model's wasm32 matrix kernel
//! (`sam::cpu::simd128`) against a reference. `tests/run.sh` runs this file twice: as built
//! (SIMD128) and with relaxed SIMD (the kernel's fused multiply-add, the page's build where the
//! browser has it).
//!
//! The fixture files are embedded at compile time from `../shared` (the browser has no file
//! system). Run with `CHROMEDRIVER=/usr/bin/chromedriver cargo test --target
//! wasm32-unknown-unknown --test wasm_sam_decoder` (the runner is set in `.cargo/config.toml`).
#![cfg(target_arch = "wasm32")]

use camsam::core::npy::NpyArray;
use camsam::gpu::GpuContext;
use camsam::sam::cpu::kernels::{matmul, MatRef};
use camsam::sam::cpu::simd128::LEVEL;
use camsam::sam::cpu::CpuSam;
use camsam::sam::gpu::GpuSam;
use camsam::sam::predictor::Prompt;
use camsam::sam::preprocess::apply_coords;
use camsam::sam::weights::Weights;
use camsam::sam::SamBackend;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const WEIGHTS: &[u8] =
    include_bytes!("../../shared/fixtures/sam/weights/mobile_sam_random.safetensors");
const EMBEDDING: &[u8] = include_bytes!("../../shared/fixtures/sam/predict/voc_a/embedding.npy");
const CASES: &[u8] = include_bytes!("../../shared/fixtures/sam/predict/voc_a/cases.json");
const POINT_MULTI: &[u8] =
    include_bytes!("../../shared/fixtures/sam/predict/voc_a/point_multi_low_res_logits.npy");
const BOX: &[u8] = include_bytes!("../../shared/fixtures/sam/predict/voc_a/box_low_res_logits.npy");

/// How close a backend must come to the official outputs.
struct Tolerance {
    /// Predicted IoUs: absolute.
    iou: f32,
    /// Low-res logits: max |Δ| relative to the largest reference magnitude.
    logits_rel: f32,
}

/// The CPU backend (as `tests/it/sam_fixtures.rs` natively).
const CPU: Tolerance = Tolerance {
    iou: 1e-3,
    logits_rel: 1e-3,
};
/// WebGPU (issue 4: IoU predictions within 2e-3; the logits likewise relative).
const WEBGPU: Tolerance = Tolerance {
    iou: 2e-3,
    logits_rel: 2e-3,
};

fn weights() -> Weights {
    Weights::from_bytes(WEIGHTS, "mobile_sam_random.safetensors").unwrap()
}

#[wasm_bindgen_test]
async fn decoder_matches_official_in_the_browser() {
    let model = CpuSam::new(&weights()).unwrap();
    decoder_matches_official(&model, CPU).await;
}

#[wasm_bindgen_test]
async fn webgpu_decoder_matches_official_in_the_browser() {
    let ctx = GpuContext::new()
        .await
        .expect("a WebGPU adapter in headless Chromium (webdriver.json: --enable-unsafe-webgpu)");
    let model = GpuSam::new(ctx, &weights()).unwrap();
    decoder_matches_official(&model, WEBGPU).await;
}

async fn decoder_matches_official<B: SamBackend>(model: &B, tol: Tolerance) {
    let backend = model.name();
    let embedding = NpyArray::from_bytes(EMBEDDING, "embedding.npy")
        .unwrap()
        .to_f32();
    let emb = model.upload_embedding(&embedding).await.unwrap();
    let cases: serde_json::Value = serde_json::from_slice(CASES).unwrap();
    let original = (513, 513);
    let input = (1024, 1024);
    for (name, logits_npy) in [("point_multi", POINT_MULTI), ("box", BOX)] {
        let case = &cases["cases"][name];
        let mut prompt = Prompt::default();
        if let Some(points) = case["points"].as_array() {
            for (p, l) in points.iter().zip(case["labels"].as_array().unwrap()) {
                let xy = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
                prompt.points.push(apply_coords(xy, original, input));
                prompt.labels.push(l.as_i64().unwrap() as i32);
            }
        }
        if let Some(b) = case["box"].as_array() {
            let v: Vec<f64> = b.iter().map(|x| x.as_f64().unwrap()).collect();
            let (x0, y0) = apply_coords((v[0], v[1]), original, input);
            let (x1, y1) = apply_coords((v[2], v[3]), original, input);
            prompt.bbox = Some([x0, y0, x1, y1]);
        }
        let multimask = case["multimask"].as_bool().unwrap();
        let out = model.decode(&emb, &[prompt], multimask).await.unwrap();
        let out = &out[0];
        for (m, official) in case["iou_predictions"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let official = official.as_f64().unwrap() as f32;
            assert!(
                (out.iou[m] - official).abs() <= tol.iou,
                "{backend} {name}: IoU prediction {m} is {}, official {official}",
                out.iou[m]
            );
        }
        let reference = NpyArray::from_bytes(logits_npy, name).unwrap().to_f32();
        let scale = reference.iter().fold(0f32, |a, v| a.max(v.abs()));
        let (mut worst, mut at) = (0f32, 0usize);
        for (i, (a, b)) in out.logits.iter().zip(&reference).enumerate() {
            if (a - b).abs() > worst {
                (worst, at) = ((a - b).abs(), i);
            }
        }
        assert!(
            worst <= tol.logits_rel * scale,
            "{backend} {name}: logit {at} is {}, official {} (|Δ| {worst})",
            out.logits[at],
            reference[at]
        );
    }
}

/// The wasm32 matrix kernel against an f64 reference: shapes with remainders of its 4-row and
/// 8-column tiles (a row-major B read in place but for its last partial panel), strided operands (a transposed weight, a head's columns of a qkv matrix), an
/// output row stride wider than the product, and accumulation.
#[wasm_bindgen_test]
fn cpu_matmul_matches_reference() {
    let value = |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 1013) as f32 / 1013.0 - 0.5;
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 7),
        (4, 8, 8),
        (49, 32, 49),
        (130, 17, 9),
        (5, 3, 21),
        (64, 160, 640),
    ] {
        for &(a_t, b_t, accumulate) in &[
            (false, false, false),
            (true, true, false),
            (false, true, true),
        ] {
            let a_data: Vec<f32> = (0..m * k + 3).map(|i| value(i, 1)).collect();
            let b_data: Vec<f32> = (0..k * n + 5).map(|i| value(i, 2)).collect();
            let a = if a_t {
                MatRef::transposed(&a_data, k, m)
            } else {
                MatRef::rows(&a_data, m, k)
            };
            let b = if b_t {
                MatRef::transposed(&b_data, n, k)
            } else {
                MatRef::rows(&b_data, k, n)
            };
            let c_rs = n + 3;
            let c0: Vec<f32> = (0..m * c_rs).map(|i| value(i, 3)).collect();
            let mut c = c0.clone();
            matmul(&mut c, c_rs, accumulate, a, b);
            let (mut worst, mut at) = (0f64, (0, 0));
            for i in 0..m {
                for j in 0..n {
                    let mut sum: f64 = (0..k)
                        .map(|kk| {
                            a.data[i * a.rs + kk * a.cs] as f64
                                * b.data[kk * b.rs + j * b.cs] as f64
                        })
                        .sum();
                    if accumulate {
                        sum += c0[i * c_rs + j] as f64;
                    }
                    let d = (c[i * c_rs + j] as f64 - sum).abs();
                    if d > worst {
                        (worst, at) = (d, (i, j));
                    }
                }
                // The padding past column n is untouched.
                assert_eq!(
                    &c[i * c_rs + n..(i + 1) * c_rs],
                    &c0[i * c_rs + n..(i + 1) * c_rs],
                    "{LEVEL} {m}×{k}×{n}: row {i} written past column {n}"
                );
            }
            // f32 sums of k products of values in [-0.5, 0.5]: a few ulp of k/4 per element.
            let tol = 1e-6 * (k as f64 + 1.0);
            assert!(
                worst <= tol,
                "{LEVEL} {m}×{k}×{n} (A transposed {a_t}, B transposed {b_t}, accumulate {accumulate}): worst |Δ| {worst:e} at {at:?}, tolerance {tol:e}"
            );
        }
    }
}
