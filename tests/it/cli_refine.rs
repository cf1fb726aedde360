//! `camsam refine` end to end on the fixture weights (random MobileSAM) with a small grid:
//! real VOC images, CAM heatmaps made from their ground truth. The refined labels must equal
//! what `camsam merge` makes of the same pseudo-labels and the masks refine saved; a second
//! run resumes (skips finished names); `--shard` splits the names; a bad CAM fails its name
//! with a message naming the file.

use crate::common;

use camsam::core::label::LabelMap;
use std::path::Path;

const NAMES: [&str; 2] = ["2007_000033", "2007_000332"];
/// Heatmap value outside the object: 40/255 ≈ 0.16 < the 0.25 background threshold.
const OUTSIDE: u8 = 40;

use common::{camsam, fixture_weights, voc, SMALL_GRID};

/// `<name>_<class>.png` heatmaps: 255 on the class's ground-truth pixels, OUTSIDE elsewhere.
fn write_heatmaps(name: &str, dir: &Path) -> Vec<u8> {
    let gt = LabelMap::read_png(&voc().join("gt").join(format!("{name}.png"))).expect("gt");
    let classes: Vec<u8> = gt
        .present_ids()
        .into_iter()
        .filter(|&c| c != 0 && c != 255)
        .collect();
    for &c in &classes {
        let values: Vec<u8> = gt
            .data
            .iter()
            .map(|&v| if v == c { 255 } else { OUTSIDE })
            .collect();
        let heat = image::GrayImage::from_raw(gt.width as u32, gt.height as u32, values)
            .expect("heatmap size");
        heat.save(dir.join(format!("{name}_{c}.png")))
            .expect("write heatmap");
    }
    classes
}

/// `SMALL_GRID` with gray label output.
fn small_grid() -> Vec<&'static str> {
    let mut args = SMALL_GRID.to_vec();
    args.extend(["--format", "gray"]);
    args
}

#[test]
fn refine_equals_merge_of_its_masks_and_resumes() {
    let root = common::scratch_dir("cli_refine");
    let (cams, out, pseudo, merged) = (
        root.join("cams"),
        root.join("out"),
        root.join("pseudo"),
        root.join("merged"),
    );
    for d in [&cams, &pseudo] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let mut present = Vec::new();
    for name in NAMES {
        present.push(write_heatmaps(name, &cams));
    }
    let images = voc().join("images");
    let weights = fixture_weights();
    let mut args = vec!["refine", "--save-masks", "--se-map"];
    args.extend(small_grid());
    let paths = [
        ("--weights", weights.as_path()),
        ("--images", images.as_path()),
        ("--cams", cams.as_path()),
        ("--out", out.as_path()),
    ];
    let run = camsam(&args, &paths);
    assert!(
        run.status.success(),
        "refine failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    // The pseudo-labels refine started from (CAM → label with the default threshold).
    for name in NAMES {
        let cam = camsam::core::cam::Cam::read(
            &camsam::core::cam::scan_dir(&cams, None).expect("scan").cams[name],
            &camsam::core::cam::CamOptions::default(),
        )
        .expect("read CAM");
        let label = cam
            .to_label(None, &camsam::core::cam::CamToLabel::default(), name)
            .expect("CAM → label")
            .label;
        let png = label
            .encode_png(camsam::core::label::LabelFormat::Gray)
            .expect("encode");
        std::fs::write(pseudo.join(format!("{name}.png")), png).expect("write pseudo");
    }
    let masks = out.join("masks");
    let merge = camsam(
        &["merge", "--format", "gray"],
        &[
            ("--pseudo", pseudo.as_path()),
            ("--masks", masks.as_path()),
            ("--out", merged.as_path()),
        ],
    );
    assert!(
        merge.status.success(),
        "merge failed: {}",
        String::from_utf8_lossy(&merge.stderr)
    );
    for (name, classes) in NAMES.iter().zip(&present) {
        let refined = LabelMap::read_png(&out.join(format!("{name}.png"))).expect("refined");
        assert_eq!((refined.width, refined.height), (513, 513), "{name}");
        assert!(
            refined.data.iter().all(|v| *v == 0 || classes.contains(v)),
            "{name}: classes outside {{0}} ∪ {classes:?}: {:?}",
            refined.present_ids()
        );
        let expected = LabelMap::read_png(&merged.join(format!("{name}.png"))).expect("merged");
        let differ = refined
            .data
            .iter()
            .zip(&expected.data)
            .position(|(a, b)| a != b);
        assert!(
            differ.is_none(),
            "{name}: refine and everything+merge differ first at pixel {differ:?}"
        );
        let (w, h, se) = common::read_png16(&out.join("se_map").join(format!("{name}.png")));
        let (ew, eh, want) = common::s2c_se_map(&masks.join(name));
        assert_eq!((w, h), (ew, eh), "{name}: SE map size");
        assert!(
            se == want,
            "{name}: SE map differs from S2C's painting of its masks"
        );
        let csv = std::fs::read_to_string(masks.join(name).join("metadata.csv")).expect("csv");
        assert_eq!(
            csv.lines().count(),
            1 + 48,
            "{name}: 16 points × 3 masks, none dropped"
        );
    }

    // Run again: everything is finished, nothing is recomputed.
    let before = std::fs::metadata(out.join(format!("{}.png", NAMES[0])))
        .and_then(|m| m.modified())
        .expect("mtime");
    let again = camsam(&args, &paths);
    assert!(again.status.success());
    let after = std::fs::metadata(out.join(format!("{}.png", NAMES[0])))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after, "a finished name was recomputed");
}

#[test]
fn refine_shards_and_reports_a_bad_cam() {
    let root = common::scratch_dir("cli_refine_shard");
    let (cams, out) = (root.join("cams"), root.join("out"));
    std::fs::create_dir_all(&cams).expect("mkdir");
    write_heatmaps(NAMES[0], &cams);
    // the second name's CAM has the wrong size
    image::GrayImage::new(10, 7)
        .save(cams.join(format!("{}_1.png", NAMES[1])))
        .expect("write");
    let images = voc().join("images");
    let weights = fixture_weights();
    let paths = [
        ("--weights", weights.as_path()),
        ("--images", images.as_path()),
        ("--cams", cams.as_path()),
        ("--out", out.as_path()),
    ];
    let mut args = vec!["refine", "--shard", "0/2"];
    args.extend(small_grid());
    let run = camsam(&args, &paths);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join(format!("{}.png", NAMES[0])).is_file());
    assert!(!out.join(format!("{}.png", NAMES[1])).exists());

    let mut args = vec!["refine"];
    args.extend(small_grid());
    let run = camsam(&args, &paths);
    assert!(!run.status.success(), "a bad CAM must fail the run");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(NAMES[1]) && err.contains("expected the size"),
        "{err}"
    );
    assert!(!out.join(format!("{}.png", NAMES[1])).exists());
}
