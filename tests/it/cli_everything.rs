//! `camsam everything` end to end on the fixture weights (random MobileSAM: the masks are
//! meaningless, the files and their agreement are the point) with a small grid.

use crate::common;

use common::camsam;

#[test]
fn everything_writes_masks_and_metadata_in_amg_py_format() {
    let weights = common::fixture_weights();
    let image = common::shared_dir().join("fixtures/sam/predict/camvid_a/image.png");
    let out = common::scratch_dir("cli_everything");
    let se_map = out.with_file_name("cli_everything_se_map.png");
    // a 4×4 grid, quality filters off (NMS on)
    let run = camsam(
        &[
            "everything",
            "--points-per-side",
            "4",
            "--pred-iou-thresh",
            "0",
            "--stability-score-thresh",
            "0",
        ],
        &[
            ("--weights", weights.as_path()),
            ("--image", image.as_path()),
            ("--out", out.as_path()),
            ("--se-map", se_map.as_path()),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The SE map is S2C's painting of exactly these masks.
    let (w, h, got) = common::read_png16(&se_map);
    let (ew, eh, want) = common::s2c_se_map(&out);
    assert_eq!((w, h), (ew, eh), "SE map size");
    let differ = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        differ.is_none(),
        "SE map differs from S2C's painting first at pixel {differ:?}"
    );
    assert!(got.iter().any(|&v| v > 0), "SE map is empty");
    let csv = std::fs::read_to_string(out.join("metadata.csv")).expect("metadata.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(camsam::refine::amg::output::METADATA_HEADER),
        "metadata.csv header"
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert!(!rows.is_empty(), "no masks at all with the filters off");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 14, "row {i}: {row:?}");
        assert_eq!(row[0], i.to_string());
        let png = out.join(format!("{i}.png"));
        let mask = image::open(&png)
            .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
            .to_luma8();
        assert_eq!(mask.dimensions(), (480, 360), "{}", png.display());
        assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        let area = mask.pixels().filter(|p| p.0[0] == 255).count();
        assert_eq!(
            row[1],
            area.to_string(),
            "row {i}: area vs {}",
            png.display()
        );
        // the crop box is the whole image (no crop layers)
        assert_eq!(row[10..], ["0", "0", "480", "360"], "row {i}");
    }
    assert!(!out.join(format!("{}.png", rows.len())).exists());
}

#[test]
fn everything_reports_a_missing_weights_file() {
    let out = common::scratch_dir("cli_everything_missing");
    let missing = out.join("nope.pt");
    let result = camsam(
        &["everything"],
        &[
            ("--weights", missing.as_path()),
            ("--image", std::path::Path::new("image.png")),
            ("--out", out.as_path()),
        ],
    );
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("nope.pt"), "{err}");
}
