//! The dense CRF against pydensecrf (`shared/fixtures/crf`): four VOC images with IRN CAMs,
//! the PSA / IRN / EPS recipe at α = 4 and α = 32. The labels must agree on ≥ 99.5 % of the
//! pixels of each image, and the marginals `Q` (stored as float16) within [`Q_TOLERANCE`].
//! `cargo test --release --test it crf:: -- --nocapture --test-threads=1` prints the figures and
//! the time per image.

use crate::common;

use camsam::core::cam::{Cam, CamOptions};
use camsam::core::label::LabelMap;
use camsam::core::npy::NpyArray;
use camsam::refine::crf::{crf_marginals, CrfSettings};
use std::path::Path;
use std::time::Instant;

const CASES: [&str; 4] = ["2007_000033", "2008_006874", "2009_000573", "2010_000530"];

/// Least share of pixels whose label must match pydensecrf's.
const MIN_LABEL_AGREEMENT: f64 = 0.995;

/// How close `Q` must be to pydensecrf's. The reference is stored as float16, whose rounding
/// alone reaches 2^-12 ≈ 2.44e-4 just below 1; beyond it, the two differ only in the last bits
/// of `f32` (libm vs Eigen `exp`, summation order). So: every element within the float16
/// rounding plus a little, the mean far below it, and rounding ours to float16 must give the
/// stored value for all but a few elements (those within an `f32` hair of a float16 tie).
struct Tolerance {
    max_abs: f32,
    mean_abs: f64,
    /// Share of elements allowed to differ once ours is rounded to float16.
    max_f16_mismatch: f64,
}

const Q_TOLERANCE: Tolerance = Tolerance {
    max_abs: 3e-4,
    mean_abs: 3e-5,
    max_f16_mismatch: 1e-4,
};

/// `x` rounded to the nearest float16 value (ties to even), as numpy's `astype(float16)`
/// stored the reference (no overflow: marginals are at most 1).
fn round_to_f16(x: f32) -> f32 {
    let exponent = ((x.abs().to_bits() >> 23) as i32 - 127).max(-14);
    let spacing = 2f32.powi(exponent - 10);
    (x / spacing).round_ties_even() * spacing
}

struct Case {
    image: image::RgbImage,
    cam: Cam,
    dir: std::path::PathBuf,
}

fn load(name: &str) -> Case {
    let dir = common::shared_dir().join("fixtures/crf").join(name);
    let image = image::open(dir.join("image.png"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("image.png").display()))
        .to_rgb8();
    let npz = dir.join("cam.npz");
    let bytes = std::fs::read(&npz).unwrap_or_else(|e| panic!("{}: {e}", npz.display()));
    let cam = Cam::from_npz(&bytes, &npz.display().to_string(), &CamOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    Case { image, cam, dir }
}

fn read_q(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let q = NpyArray::read(path).unwrap_or_else(|e| panic!("{e}"));
    (q.shape.clone(), q.to_f32())
}

/// Run one case at one α and hold labels and marginals to pydensecrf's; prints the agreement,
/// the worst and mean |ΔQ| and the time.
fn check(name: &str, alpha: u32) {
    let case = load(name);
    let settings = CrfSettings {
        bg_power: alpha as f32,
        ..CrfSettings::default()
    };
    let start = Instant::now();
    let (ids, q) = crf_marginals(&case.image, &case.cam, None, &settings, name)
        .unwrap_or_else(|e| panic!("{e}"));
    let seconds = start.elapsed().as_secs_f64();

    let (w, h) = case.image.dimensions();
    let n = (w * h) as usize;
    let mut expected_ids = vec![0u8];
    expected_ids.extend_from_slice(&case.cam.classes);
    assert_eq!(
        ids, expected_ids,
        "{name}: label order is background, then the keys"
    );

    // Labels.
    let reference = LabelMap::read_png(&case.dir.join(format!("alpha{alpha}.png")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (reference.width, reference.height),
        (w as usize, h as usize)
    );
    let ours: Vec<u8> = (0..n)
        .map(|i| {
            let best =
                (0..ids.len()).fold(0, |b, l| if q[l * n + i] > q[b * n + i] { l } else { b });
            ids[best]
        })
        .collect();
    let same = ours
        .iter()
        .zip(&reference.data)
        .filter(|(a, b)| a == b)
        .count();
    let agreement = same as f64 / n as f64;

    // Marginals.
    let (shape, q_ref) = read_q(&case.dir.join(format!("q_alpha{alpha}.npy")));
    assert_eq!(
        shape,
        vec![ids.len(), h as usize, w as usize],
        "{name}: Q shape"
    );
    let (mut worst, mut worst_at, mut total, mut f16_differ) = (0f32, 0usize, 0f64, 0usize);
    for (i, (a, b)) in q.iter().zip(&q_ref).enumerate() {
        let d = (a - b).abs();
        total += d as f64;
        if d > worst {
            (worst, worst_at) = (d, i);
        }
        f16_differ += usize::from(round_to_f16(*a) != *b);
    }
    let mean = total / q.len() as f64;
    let (l, p) = (worst_at / n, worst_at % n);
    eprintln!(
        "{name} α={alpha}: {} labels, labels agree on {:.4} % ({} of {n} differ), \
         max |ΔQ| {worst:.2e} (label {l} at x={}, y={}: ours {} vs {}), mean |ΔQ| {mean:.2e}, \
         {f16_differ} of {} elements differ after rounding ours to float16, {seconds:.2} s",
        ids.len(),
        100.0 * agreement,
        n - same,
        p % w as usize,
        p / w as usize,
        q[worst_at],
        q_ref[worst_at],
        q.len(),
    );
    assert!(
        agreement >= MIN_LABEL_AGREEMENT,
        "{name} α={alpha}: labels agree on {:.4} % of pixels; expected ≥ {} %",
        100.0 * agreement,
        100.0 * MIN_LABEL_AGREEMENT
    );
    let mismatch = f16_differ as f64 / q.len() as f64;
    assert!(
        worst <= Q_TOLERANCE.max_abs
            && mean <= Q_TOLERANCE.mean_abs
            && mismatch <= Q_TOLERANCE.max_f16_mismatch,
        "{name} α={alpha}: Q differs by up to {worst} (label {l}, pixel x={}, y={}: ours {} vs \
         pydensecrf {}), mean {mean}, {f16_differ} elements differ as float16; expected ≤ {}, \
         mean ≤ {}, at most a share {} differing as float16",
        p % w as usize,
        p / w as usize,
        q[worst_at],
        q_ref[worst_at],
        Q_TOLERANCE.max_abs,
        Q_TOLERANCE.mean_abs,
        Q_TOLERANCE.max_f16_mismatch,
    );
}

#[test]
fn crf_matches_pydensecrf_at_alpha_4() {
    for name in CASES {
        check(name, 4);
    }
}

#[test]
fn crf_matches_pydensecrf_at_alpha_32() {
    for name in CASES {
        check(name, 32);
    }
}

#[test]
fn crf_refuses_a_cam_of_another_size() {
    let case = load(CASES[0]);
    let small = image::imageops::crop_imm(&case.image, 0, 0, 100, 80).to_image();
    let e = crf_marginals(
        &small,
        &case.cam,
        None,
        &CrfSettings::default(),
        "cams/2007_000033.npz",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cams/2007_000033.npz") && e.contains("100×80"),
        "{e}"
    );
}

#[test]
fn crf_keeps_only_the_present_classes() {
    let case = load("2008_006874");
    let first = case.cam.classes[0];
    let (ids, q) = crf_marginals(
        &case.image,
        &case.cam,
        Some(&[first]),
        &CrfSettings::default(),
        "cam.npz",
    )
    .unwrap();
    assert_eq!(ids, vec![0, first]);
    let n = (case.image.width() * case.image.height()) as usize;
    assert_eq!(q.len(), 2 * n);
}

/// The CRF's cost at its largest: a 500×375 VOC-sized image with all 20 foreground classes
/// (21 labels), ten iterations. Prints the time; checks only that Q stays a distribution.
#[test]
fn crf_with_all_twenty_foreground_classes() {
    let case = load("2008_006874");
    let (w, h) = (500usize, 375usize);
    let image = image::imageops::crop_imm(&case.image, 0, 0, w as u32, h as u32).to_image();
    let mut data = Vec::with_capacity(20 * w * h);
    for c in 0..20 {
        let (cx, cy) = ((c % 5) as f64 * 110.0 + 30.0, (c / 5) as f64 * 90.0 + 40.0);
        data.extend(common::cone(w, h, cx, cy, 120.0));
    }
    let cam = Cam::new((1..=20).collect(), h, w, data).unwrap();
    let start = Instant::now();
    let (ids, q) = crf_marginals(&image, &cam, None, &CrfSettings::default(), "cones").unwrap();
    eprintln!(
        "500×375, 21 labels, 10 iterations: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(ids.len(), 21);
    let n = w * h;
    for i in (0..n).step_by(97) {
        let total: f32 = (0..21).map(|l| q[l * n + i]).sum();
        assert!((total - 1.0).abs() < 1e-4, "pixel {i}: Σ Q = {total}");
    }
}

/// `camsam refine --mode crf` over the fixture folder (images + IRN `.npz` CAMs, no weights)
/// writes pydensecrf's labels at α = 4 and, with `--crf-bg-power 32`, at α = 32; the report
/// records the CRF settings.
#[test]
fn refine_mode_crf_writes_the_reference_labels() {
    let dir = common::scratch_dir("refine_crf");
    let (images, cams) = (dir.join("images"), dir.join("cams"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&cams).unwrap();
    let root = common::shared_dir().join("fixtures/crf");
    for name in CASES {
        std::fs::copy(
            root.join(name).join("image.png"),
            images.join(format!("{name}.png")),
        )
        .unwrap();
        std::fs::copy(
            root.join(name).join("cam.npz"),
            cams.join(format!("{name}.npz")),
        )
        .unwrap();
    }
    for (alpha, extra) in [(4, vec![]), (32, vec!["--crf-bg-power", "32"])] {
        let out = dir.join(format!("out{alpha}"));
        let mut args = vec!["refine", "--mode", "crf", "--format", "gray"];
        args.extend(extra);
        let run = common::camsam(
            &args,
            &[("--images", &images), ("--cams", &cams), ("--out", &out)],
        );
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        for name in CASES {
            let got = LabelMap::read_png(&out.join(format!("{name}.png"))).unwrap();
            let want =
                LabelMap::read_png(&root.join(name).join(format!("alpha{alpha}.png"))).unwrap();
            let same = got
                .data
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| a == b)
                .count();
            let agree = same as f64 / want.data.len() as f64;
            assert!(
                agree >= MIN_LABEL_AGREEMENT,
                "{name} α {alpha}: {:.3} % agree",
                100.0 * agree
            );
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["method"], "crf");
        assert_eq!(report["settings"]["crf"]["bg_power"], alpha as f64);
    }
}
