//! `camsam refine --mode cpm | pamr | cpm+sepl` end to end: real VOC images, CAM heatmaps made
//! from their ground truth, the fixture weights (random MobileSAM). PAMR must equal the
//! library's CAM → PAMR → label; cpm+sepl must equal `camsam merge` of the cpm run's labels
//! with the masks cpm+sepl saved; every report names its mode and settings.

use crate::common;

use camsam::core::cam::{scan_dir, Cam, CamOptions, CamToLabel};
use camsam::core::label::LabelMap;
use camsam::refine::pamr::{pamr_label, PamrSettings};
use std::path::Path;

const NAME: &str = "2007_000033";

use common::{camsam, fixture_weights, voc, SMALL_GRID};

/// `<name>_<class>.png` heatmaps: a cone on the class's ground truth, 255 at its centroid
/// falling to 128 at its farthest pixel, 40 outside — one main peak per class, as a CAM has.
fn write_heatmaps(dir: &Path) -> Vec<u8> {
    let gt = LabelMap::read_png(&voc().join("gt").join(format!("{NAME}.png"))).expect("gt");
    let classes: Vec<u8> = gt
        .present_ids()
        .into_iter()
        .filter(|&c| c != 0 && c != 255)
        .collect();
    let (w, h) = (gt.width, gt.height);
    for &c in &classes {
        let pixels: Vec<(f64, f64)> = (0..w * h)
            .filter(|&i| gt.data[i] == c)
            .map(|i| ((i % w) as f64, (i / w) as f64))
            .collect();
        let n = pixels.len() as f64;
        let cx = pixels.iter().map(|p| p.0).sum::<f64>() / n;
        let cy = pixels.iter().map(|p| p.1).sum::<f64>() / n;
        let dist = |x: f64, y: f64| ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
        let far = pixels.iter().map(|&(x, y)| dist(x, y)).fold(1.0, f64::max);
        let values: Vec<u8> = (0..w * h)
            .map(|i| {
                if gt.data[i] == c {
                    let d = dist((i % w) as f64, (i / w) as f64);
                    (255.0 - 127.0 * d / far).round() as u8
                } else {
                    40
                }
            })
            .collect();
        let heat = image::GrayImage::from_raw(w as u32, h as u32, values).expect("heatmap size");
        heat.save(dir.join(format!("{NAME}_{c}.png")))
            .expect("write heatmap");
    }
    classes
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report is JSON")
}

fn run_ok(args: &[&str], paths: &[(&str, &Path)]) {
    let run = camsam(args, paths);
    assert!(
        run.status.success(),
        "camsam {args:?} failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn refine_modes_cpm_pamr_cpm_sepl() {
    let root = common::scratch_dir("cli_refine_modes");
    let cams = root.join("cams");
    std::fs::create_dir_all(&cams).expect("mkdir");
    let classes = write_heatmaps(&cams);
    let images = voc().join("images");
    let weights = fixture_weights();

    // pamr: no weights needed; equals the library's CAM → PAMR → label.
    let out = root.join("pamr");
    let refused = camsam(
        &["refine", "--mode", "pamr", "--se-map"],
        &[
            ("--images", images.as_path()),
            ("--cams", cams.as_path()),
            ("--out", out.as_path()),
        ],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("--se-map") && stderr.contains("sepl"),
        "pamr has no everything-mode masks, --se-map must be refused: {stderr}"
    );
    run_ok(
        &["refine", "--mode", "pamr", "--format", "gray"],
        &[
            ("--images", images.as_path()),
            ("--cams", cams.as_path()),
            ("--out", out.as_path()),
        ],
    );
    let got = LabelMap::read_png(&out.join(format!("{NAME}.png"))).expect("pamr label");
    let cam = Cam::read(
        &scan_dir(&cams, None).expect("scan").cams[NAME],
        &CamOptions::default(),
    )
    .expect("cam");
    let image = image::open(images.join(format!("{NAME}.jpg")))
        .or_else(|_| image::open(images.join(format!("{NAME}.png"))))
        .expect("image")
        .to_rgb8();
    let want = pamr_label(
        &image,
        &cam,
        None,
        &PamrSettings::default(),
        &CamToLabel::default(),
        NAME,
    )
    .expect("library pamr")
    .label;
    assert_eq!(got.data, want.data, "pamr CLI differs from the library");
    let r = report(&out);
    assert_eq!(r["method"], "pamr");
    assert_eq!(r["settings"]["pamr"]["iterations"], 10);
    assert_eq!(
        r["settings"]["pamr"]["dilations"],
        serde_json::json!([1, 2, 4, 8, 12, 24])
    );
    assert_eq!(r["settings"]["cam"]["bg_threshold"], 0.25);

    // cpm without weights: an error naming the flag.
    let run = camsam(
        &["refine", "--mode", "cpm"],
        &[
            ("--images", images.as_path()),
            ("--cams", cams.as_path()),
            ("--out", root.join("nope").as_path()),
        ],
    );
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--weights"));

    // cpm, one multi-point prompt per class (S2C) and the best-IoU mask.
    let cpm_out = root.join("cpm");
    run_ok(
        &[
            "refine", "--mode", "cpm", "--format", "gray", "--mask", "best-iou",
        ],
        &[
            ("--weights", weights.as_path()),
            ("--images", images.as_path()),
            ("--cams", cams.as_path()),
            ("--out", cpm_out.as_path()),
        ],
    );
    let cpm = LabelMap::read_png(&cpm_out.join(format!("{NAME}.png"))).expect("cpm label");
    assert_eq!(
        (cpm.width, cpm.height),
        (image.width() as usize, image.height() as usize)
    );
    assert!(
        cpm.data.iter().all(|v| *v == 0 || classes.contains(v)),
        "cpm labels outside {{0}} ∪ {classes:?}: {:?}",
        cpm.present_ids()
    );
    let r = report(&cpm_out);
    assert_eq!(r["method"], "cpm");
    assert_eq!(r["settings"]["cpm"]["prompt_mode"], "multi-point");
    assert_eq!(r["settings"]["cpm"]["mask_choice"], "best-iou");
    assert_eq!(r["settings"]["cpm"]["peaks"]["threshold"], 0.5);
    assert_eq!(r["settings"]["cpm"]["peaks"]["min_distance"], 20.0);
    assert!(r["settings"]["sepl"].is_null());

    // cpm+sepl with the same CPM settings and a small grid: equals merging the cpm labels
    // with the masks it saved.
    let both = root.join("cpm_sepl");
    run_ok(
        &[
            "refine",
            "--mode",
            "cpm+sepl",
            "--format",
            "gray",
            "--mask",
            "best-iou",
            "--save-masks",
        ]
        .into_iter()
        .chain(SMALL_GRID)
        .collect::<Vec<_>>(),
        &[
            ("--weights", weights.as_path()),
            ("--images", images.as_path()),
            ("--cams", cams.as_path()),
            ("--out", both.as_path()),
        ],
    );
    let merged = root.join("merged");
    run_ok(
        &["merge", "--format", "gray"],
        &[
            ("--pseudo", cpm_out.as_path()),
            ("--masks", both.join("masks").as_path()),
            ("--out", merged.as_path()),
        ],
    );
    let got = LabelMap::read_png(&both.join(format!("{NAME}.png"))).expect("cpm+sepl label");
    let want = LabelMap::read_png(&merged.join(format!("{NAME}.png"))).expect("merged");
    assert_eq!(
        got.data, want.data,
        "cpm+sepl differs from merge(cpm labels, its masks)"
    );
    let r = report(&both);
    assert_eq!(r["method"], "cpm+sepl");
    assert_eq!(r["settings"]["sepl"]["preset"], "official-imp2");
    assert_eq!(r["settings"]["generator"]["points_per_side"], 4);
    assert_eq!(r["settings"]["cpm"]["mask_choice"], "best-iou");
}

/// `refine --mode saliency` and `cam2label --saliency` give the library's EPS++ label; the
/// saliency map (the ground truth's objects, shifted by 8 px so part of it disagrees with the
/// CAM) leaves an ignored band where the two disagree; the report names the saliency folder.
#[test]
fn saliency_mode_and_cam2label_saliency() {
    let dir = common::scratch_dir("refine_saliency");
    let (images, cams, sal, out, out2) = (
        dir.join("images"),
        dir.join("cams"),
        dir.join("saliency"),
        dir.join("out"),
        dir.join("out2"),
    );
    for d in [&images, &cams, &sal] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(
        voc().join("images").join(format!("{NAME}.png")),
        images.join(format!("{NAME}.png")),
    )
    .unwrap();
    write_heatmaps(&cams);
    let gt = LabelMap::read_png(&voc().join("gt").join(format!("{NAME}.png"))).unwrap();
    let (w, h) = (gt.width, gt.height);
    let shifted: Vec<u16> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let src = y * w + x.saturating_sub(8);
            if gt.data[src] != 0 && gt.data[src] != 255 {
                60000
            } else {
                1000
            }
        })
        .collect();
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w as u32, h as u32, shifted)
        .unwrap()
        .save(sal.join(format!("{NAME}.png")))
        .unwrap();

    run_ok(
        &["refine", "--mode", "saliency"],
        &[
            ("--images", &images),
            ("--cams", &cams),
            ("--saliency", &sal),
            ("--out", &out),
        ],
    );
    run_ok(
        &["cam2label", "--format", "palette"],
        &[
            ("--images", &images),
            ("--cams", &cams),
            ("--saliency", &sal),
            ("--out", &out2),
        ],
    );
    let files = &scan_dir(&cams, None).unwrap().cams[NAME];
    let cam = Cam::read(files, &CamOptions::default()).unwrap();
    let image = image::open(images.join(format!("{NAME}.png")))
        .unwrap()
        .to_rgb8();
    let map = camsam::refine::saliency::Saliency::read(&sal.join(format!("{NAME}.png"))).unwrap();
    let want = camsam::refine::saliency::saliency_label(
        &image,
        &cam,
        None,
        &map,
        &PamrSettings::default(),
        NAME,
    )
    .unwrap();
    for o in [&out, &out2] {
        let got = LabelMap::read_png(&o.join(format!("{NAME}.png"))).unwrap();
        assert!(
            got.data == want.data,
            "{}: differs from the library's EPS++ label",
            o.display()
        );
    }
    let ignored = want.data.iter().filter(|&&v| v == 255).count();
    let objects = want.data.iter().filter(|&&v| v != 0 && v != 255).count();
    assert!(
        ignored > 0 && objects > 0,
        "ignored {ignored}, objects {objects}"
    );
    let r = report(&out);
    assert_eq!(r["method"], "saliency");
    assert!(r["inputs"]["saliency"]
        .as_str()
        .unwrap()
        .ends_with("saliency"));
    assert!(
        r["settings"]["pamr"].is_object(),
        "EPS++'s PAMR step is recorded"
    );

    // --mode saliency without maps, and --saliency with a mode that takes no pseudo-label.
    let e = camsam(
        &["refine", "--mode", "saliency"],
        &[("--images", &images), ("--cams", &cams), ("--out", &out)],
    );
    assert!(String::from_utf8_lossy(&e.stderr).contains("needs --saliency"));
    let e = camsam(
        &["refine", "--mode", "pamr"],
        &[
            ("--images", &images),
            ("--cams", &cams),
            ("--saliency", &sal),
            ("--out", &out),
        ],
    );
    assert!(String::from_utf8_lossy(&e.stderr).contains("takes no pseudo-label"));
}
