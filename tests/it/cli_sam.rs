//! `camsam embed` and `camsam predict` as outside checks call them, on the fixture checkpoint
//! and image (`../shared/fixtures/sam/predict/portrait_a`), against the official outputs; and
//! `--backend auto`'s fallback to the CPU where WebGPU is missing (`CAMSAM_WEBGPU=off`) or is
//! only a software renderer.

use crate::common;
use crate::common::gpu;

use camsam::core::npy::NpyArray;
use std::process::Command;

/// Embedding: max |Δ| relative to the largest reference magnitude.
const EMBEDDING_REL_TOL: f32 = 1e-3;
/// Predicted IoUs: absolute.
const IOU_TOL: f64 = 1e-3;
/// Masks: IoU with the official PNG.
const MASK_MIN_IOU: f64 = 0.99;

#[test]
fn embed_and_predict_match_official() {
    let sam = common::shared_dir().join("fixtures/sam");
    let dir = sam.join("predict/portrait_a");
    let weights = sam.join("weights/mobile_sam_random.safetensors");
    let out = common::scratch_dir("cli_sam");
    let exe = env!("CARGO_BIN_EXE_camsam");

    let npy = out.join("embedding.npy");
    let status = Command::new(exe)
        .args(["embed", "--backend", "cpu", "--weights"])
        .arg(&weights)
        .arg("--image")
        .arg(dir.join("image.png"))
        .arg("--out")
        .arg(&npy)
        .status()
        .expect("run camsam embed");
    assert!(status.success());
    let ours = NpyArray::read(&npy).expect("embedding.npy");
    let reference = NpyArray::read(&dir.join("embedding.npy")).expect("reference");
    assert_eq!(ours.shape, vec![1, 256, 64, 64]);
    let (a, b) = (ours.to_f32(), reference.to_f32());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (i, d) = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, 0f32), |w, (i, d)| if d > w.1 { (i, d) } else { w });
    assert!(
        d <= EMBEDDING_REL_TOL * scale,
        "embedding element {i}: ours {}, official {} (|Δ| {d} > {EMBEDDING_REL_TOL}·{scale})",
        a[i],
        b[i]
    );

    // `--backend auto` on a machine without WebGPU (simulated with CAMSAM_WEBGPU=off) falls
    // back to the CPU, says so, and writes the same embedding as `--backend cpu`;
    // `--backend webgpu` fails there with a message instead.
    let run_without_webgpu = |backend: &str, npy: &std::path::Path| {
        Command::new(exe)
            .env("CAMSAM_WEBGPU", "off")
            .args(["embed", "--backend", backend, "--weights"])
            .arg(&weights)
            .arg("--image")
            .arg(dir.join("image.png"))
            .arg("--out")
            .arg(npy)
            .output()
            .expect("run camsam embed")
    };
    let auto_npy = out.join("embedding_auto.npy");
    let auto = run_without_webgpu("auto", &auto_npy);
    let err = String::from_utf8_lossy(&auto.stderr);
    assert!(auto.status.success(), "{err}");
    assert!(
        err.contains("falling back to the CPU") && err.contains("backend: cpu"),
        "auto without WebGPU should say it fell back to the CPU; stderr: {err}"
    );
    assert!(
        std::fs::read(&auto_npy).unwrap() == std::fs::read(&npy).unwrap(),
        "auto (fallen back to the CPU) and --backend cpu wrote different embeddings"
    );
    let webgpu = run_without_webgpu("webgpu", &out.join("embedding_webgpu.npy"));
    let err = String::from_utf8_lossy(&webgpu.stderr);
    assert!(
        !webgpu.status.success() && err.contains("no WebGPU adapter"),
        "--backend webgpu without an adapter should fail saying so; stderr: {err}"
    );

    // The `box_point` case: one point and a box, three masks.
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let case = &cases["cases"]["box_point"];
    let p = &case["points"][0];
    let bx: Vec<f64> = case["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let pred = out.join("pred");
    let status = Command::new(exe)
        .arg("predict")
        .arg("--weights")
        .arg(&weights)
        .arg("--image")
        .arg(dir.join("image.png"))
        .arg("--point")
        .arg(format!("{},{},1", p[0], p[1]))
        .arg("--box")
        .arg(format!("{},{},{},{}", bx[0], bx[1], bx[2], bx[3]))
        .arg("--multimask")
        .arg("--out")
        .arg(&pred)
        .status()
        .expect("run camsam predict");
    assert!(status.success());
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pred.join("result.json")).unwrap()).unwrap();
    for m in 0..3 {
        let ours = result["iou_predictions"][m].as_f64().unwrap();
        let official = case["iou_predictions"][m].as_f64().unwrap();
        assert!(
            (ours - official).abs() <= IOU_TOL,
            "IoU prediction {m}: ours {ours}, official {official}"
        );
        let a = image::open(pred.join(format!("mask{m}.png")))
            .unwrap()
            .to_luma8();
        let b = image::open(dir.join(format!("box_point_mask{m}.png")))
            .unwrap()
            .to_luma8();
        assert_eq!(a.dimensions(), b.dimensions());
        let inter = a
            .pixels()
            .zip(b.pixels())
            .filter(|(x, y)| x.0[0] > 127 && y.0[0] > 127)
            .count();
        let union = a
            .pixels()
            .zip(b.pixels())
            .filter(|(x, y)| x.0[0] > 127 || y.0[0] > 127)
            .count();
        let iou = inter as f64 / union.max(1) as f64;
        assert!(
            iou >= MASK_MIN_IOU,
            "mask {m}: IoU {iou} with the official mask"
        );
    }
    let logits = NpyArray::read(&pred.join("low_res_logits.npy")).unwrap();
    assert_eq!(logits.shape, vec![3, 256, 256]);

    // A bad prompt is an error naming the flag, not a panic.
    let output = Command::new(exe)
        .arg("predict")
        .arg("--weights")
        .arg(&weights)
        .arg("--image")
        .arg(dir.join("image.png"))
        .args(["--point", "1,2", "--out"])
        .arg(out.join("bad"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--point"), "{err}");
}

/// `--backend auto` with WebGPU visible: on a GPU it runs WebGPU; when the only adapter is a
/// software renderer on the CPU (lavapipe in CI) it passes over it for the faster CPU
/// backend and says why, while `--backend webgpu` still uses it.
#[test]
fn auto_passes_over_a_software_adapter() {
    let Some(ctx) = gpu::context("auto_passes_over_a_software_adapter") else {
        return;
    };
    let sam = common::shared_dir().join("fixtures/sam");
    let out = common::scratch_dir("cli_sam_auto");
    let embed = |backend: &str| {
        Command::new(env!("CARGO_BIN_EXE_camsam"))
            .env_remove("CAMSAM_WEBGPU")
            .args(["embed", "--backend", backend, "--weights"])
            .arg(sam.join("weights/mobile_sam_random.safetensors"))
            .arg("--image")
            .arg(sam.join("predict/portrait_a/image.png"))
            .arg("--out")
            .arg(out.join(format!("embedding_{backend}.npy")))
            .output()
            .expect("run camsam embed")
    };
    let auto = embed("auto");
    let err = String::from_utf8_lossy(&auto.stderr);
    assert!(auto.status.success(), "{err}");
    if ctx.is_software() {
        assert!(
            err.contains("software renderer")
                && err.contains(&ctx.adapter_name())
                && err.contains("backend: cpu"),
            "auto on {} should fall back to the CPU naming the adapter; stderr: {err}",
            ctx.adapter_name()
        );
        let webgpu = embed("webgpu");
        let err = String::from_utf8_lossy(&webgpu.stderr);
        assert!(
            webgpu.status.success() && err.contains("backend: webgpu"),
            "--backend webgpu should still run on {}; stderr: {err}",
            ctx.adapter_name()
        );
    } else {
        assert!(
            err.contains("backend: webgpu") && !err.contains("falling back"),
            "auto on the GPU {} should run WebGPU; stderr: {err}",
            ctx.adapter_name()
        );
    }
}

/// `camsam bench sam --backend webgpu --against-cpu`: both encoders alternately in one
/// process and their time ratio (issue 4's check on a software adapter); with `--backend cpu`
/// the flag is refused with a message.
#[test]
fn bench_against_cpu_prints_both_encoders_and_the_ratio() {
    let Some(ctx) = gpu::context("bench_against_cpu_prints_both_encoders_and_the_ratio") else {
        return;
    };
    let weights = common::shared_dir().join("fixtures/sam/weights/mobile_sam_random.safetensors");
    let bench = |backend: &str| {
        Command::new(env!("CARGO_BIN_EXE_camsam"))
            .env_remove("CAMSAM_WEBGPU")
            .env_remove("LP_NUM_THREADS")
            .args(["bench", "sam", "--backend", backend, "--repeat", "1"])
            .arg("--weights")
            .arg(&weights)
            .arg("--against-cpu")
            .output()
            .expect("run camsam bench sam")
    };
    let run = bench("webgpu");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "stdout: {out}\nstderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ratio: f64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("webgpu / cpu: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no ratio line in: {out}"));
    assert!(ratio > 0.0 && ratio.is_finite(), "ratio {ratio} in: {out}");
    assert!(
        out.contains("  webgpu: ") && out.contains("  cpu: "),
        "{out}"
    );
    if ctx.is_software() {
        // The CLI asks llvmpipe for two threads per core unless the user set the count.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(
            out.contains(&format!("LP_NUM_THREADS={}", 2 * cores)),
            "{out}"
        );
    }
    let refused = bench("cpu");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && err.contains("--against-cpu")
            && err.contains("--backend webgpu"),
        "stderr: {err}"
    );
}
