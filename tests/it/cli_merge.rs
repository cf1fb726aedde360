//! `camsam merge` end to end: the built binary on a subset of `shared/fixtures/sepl`, compared
//! with the published code's outputs; shards, skip-existing, `--overwrite`, per-name failures,
//! zipped masks and overlays.

use crate::common;

use camsam::core::label::LabelMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    common::shared_dir().join("fixtures/sepl")
}

/// Every 15th name of the DEV list (20 names), written to `dir/list.txt`.
fn subset(dir: &Path) -> (PathBuf, Vec<String>) {
    let list = std::fs::read_to_string(fixtures().join("list.txt")).expect("list.txt");
    let names: Vec<String> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .step_by(15)
        .map(String::from)
        .collect();
    let path = dir.join("list.txt");
    std::fs::write(&path, names.join("\n")).expect("write list");
    (path, names)
}

fn camsam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camsam"))
        .args(args)
        .output()
        .expect("run camsam")
}

fn merge(out: &Path, list: &Path, extra: &[&str]) -> Output {
    let f = fixtures();
    let mut args = vec![
        "merge".to_string(),
        "--pseudo".into(),
        f.join("pseudo").display().to_string(),
        "--masks".into(),
        f.join("sam").display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--list".into(),
        list.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    camsam(&refs)
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "camsam failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn assert_matches_expected(out: &Path, names: &[String], method: &str) {
    for name in names {
        let got =
            LabelMap::read_png(&out.join(format!("{name}.png"))).unwrap_or_else(|e| panic!("{e}"));
        let want = LabelMap::read_png(&fixtures().join(format!("expected/{method}/{name}.png")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((got.width, got.height), (want.width, want.height), "{name}");
        if let Some(i) = got.data.iter().zip(&want.data).position(|(a, b)| a != b) {
            panic!(
                "{name} ({method}): first differing pixel (x {}, y {}): got {}, expected {}",
                i % got.width,
                i / got.width,
                got.data[i],
                want.data[i]
            );
        }
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read report")).expect("report is JSON")
}

#[test]
fn merge_cli_reproduces_the_published_methods_on_a_subset() {
    let dir = common::scratch_dir("cli_merge_methods");
    let (list, names) = subset(&dir);
    for (preset, method, format) in [
        ("official-imp2", "max_iou_imp2", "palette"),
        ("official-imp", "max_iou_imp", "gray"),
        ("official", "max_iou", "palette"),
    ] {
        let out = dir.join(method);
        let o = merge(&out, &list, &["--preset", preset, "--format", format]);
        assert_ok(&o);
        assert_matches_expected(&out, &names, method);
        let r = report(&out.join("report.json"));
        assert_eq!(r["settings"]["sepl"]["preset"], preset);
        assert_eq!(r["images"].as_array().map(Vec::len), Some(names.len()));
        assert!(r["seconds"].as_f64().is_some());
        // Every report entry counts masks taken per class.
        let first = &r["images"][0];
        assert!(first["masks"].as_u64().unwrap_or(0) > 0, "{first}");
        assert!(first["classes"][0]["masks_taken"].is_u64(), "{first}");
        assert!(
            first["width"].is_u64() && first["height"].is_u64(),
            "{first}"
        );
        // One `name` key per image entry (the merge's own details carry none).
        let text = std::fs::read_to_string(out.join("report.json")).expect("report");
        assert_eq!(text.matches("\"name\"").count(), names.len(), "{text}");
        // No temp files: only the outputs and the report.
        let mut want: Vec<String> = names.iter().map(|n| format!("{n}.png")).collect();
        want.push("report.json".into());
        want.sort();
        assert_eq!(files_in(&out), want);
    }
    // The default preset is official-imp2 and the default format a VOC palette PNG.
    let out = dir.join("default");
    assert_ok(&merge(&out, &list, &[]));
    assert_matches_expected(&out, &names, "max_iou_imp2");
    let bytes = std::fs::read(out.join(format!("{}.png", names[0]))).expect("output");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("png");
    assert_eq!(reader.info().color_type, png::ColorType::Indexed);
}

#[test]
fn shards_cover_every_name_once_and_reruns_skip_unless_overwrite() {
    let dir = common::scratch_dir("cli_merge_shards");
    let (list, names) = subset(&dir);
    let out = dir.join("out");
    let mut seen = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        assert_ok(&merge(&out, &list, &["--shard", &shard]));
        let r = report(&out.join(format!("report-shard-{i}-of-3.json")));
        for img in r["images"].as_array().expect("images") {
            seen.push(img["name"].as_str().expect("name").to_string());
        }
    }
    seen.sort();
    assert_eq!(
        seen, names,
        "the three shards together cover each name exactly once"
    );
    assert_matches_expected(&out, &names, "max_iou_imp2");

    // A re-run skips everything; a changed output stays as it is.
    let victim = out.join(format!("{}.png", names[3]));
    std::fs::write(&victim, b"stale").expect("write");
    assert_ok(&merge(&out, &list, &[]));
    let r = report(&out.join("report.json"));
    assert_eq!(r["skipped"].as_array().map(Vec::len), Some(names.len()));
    assert_eq!(std::fs::read(&victim).expect("read"), b"stale");
    // --overwrite redoes it.
    assert_ok(&merge(&out, &list, &["--overwrite"]));
    assert_matches_expected(&out, &names, "max_iou_imp2");
    assert!(
        files_in(&out).iter().all(|f| !f.starts_with('.')),
        "temp files left: {:?}",
        files_in(&out)
    );
}

#[test]
fn a_failing_name_is_reported_and_the_rest_are_written() {
    let dir = common::scratch_dir("cli_merge_fail");
    let (list, names) = subset(&dir);
    let mut with_missing = names[..3].to_vec();
    with_missing.push("no_such_image".into());
    std::fs::write(&list, with_missing.join("\n")).expect("write list");
    let out = dir.join("out");
    let o = merge(&out, &list, &[]);
    assert!(!o.status.success(), "a missing name must fail the run");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("no_such_image"), "{stderr}");
    assert_matches_expected(&out, &names[..3], "max_iou_imp2");
    let r = report(&out.join("report.json"));
    assert_eq!(r["failed"][0]["name"], "no_such_image");
}

#[test]
fn zipped_masks_and_overlays() {
    let dir = common::scratch_dir("cli_merge_zip");
    let (list, names) = subset(&dir);
    let names = &names[..4];
    std::fs::write(&list, names.join("\n")).expect("write list");
    let zip_path = dir.join("masks.zip");
    {
        let file = std::fs::File::create(&zip_path).expect("create zip");
        let mut w = zip::ZipWriter::new(file);
        for name in names {
            let folder = fixtures().join("sam").join(name);
            for f in files_in(&folder) {
                w.start_file(
                    format!("sam/{name}/{f}"),
                    zip::write::SimpleFileOptions::default(),
                )
                .expect("start");
                let bytes = std::fs::read(folder.join(&f)).expect("read mask");
                std::io::Write::write_all(&mut w, &bytes).expect("write");
            }
        }
        w.finish().expect("finish zip");
    }
    let out = dir.join("out");
    let f = fixtures();
    let o = camsam(&[
        "merge",
        "--pseudo",
        &f.join("pseudo").display().to_string(),
        "--masks",
        &zip_path.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--list",
        &list.display().to_string(),
        "--overlay",
    ]);
    assert_ok(&o);
    assert_matches_expected(&out, names, "max_iou_imp2");
    for name in names {
        let bytes = std::fs::read(out.join(format!("overlay/{name}.png"))).expect("overlay");
        let reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("png");
        assert_eq!(reader.info().color_type, png::ColorType::Rgb);
    }
}

#[test]
fn bad_input_is_an_error_naming_the_file() {
    let dir = common::scratch_dir("cli_merge_bad");
    let pseudo = dir.join("pseudo");
    let masks = dir.join("masks/img");
    std::fs::create_dir_all(&pseudo).expect("mkdir");
    std::fs::create_dir_all(&masks).expect("mkdir");
    LabelMap::new(2, 2, vec![0, 1, 1, 0])
        .and_then(|m| m.encode_png(camsam::core::label::LabelFormat::Gray))
        .map(|png| std::fs::write(pseudo.join("img.png"), png))
        .expect("encode")
        .expect("write");
    // A 3×1 mask for a 2×2 label.
    let mask = LabelMap::new(3, 1, vec![255, 0, 255])
        .and_then(|m| m.encode_png(camsam::core::label::LabelFormat::Gray))
        .expect("encode");
    std::fs::write(masks.join("0.png"), mask).expect("write");
    let out = dir.join("out");
    let o = camsam(&[
        "merge",
        "--pseudo",
        &pseudo.display().to_string(),
        "--masks",
        &dir.join("masks").display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("0.png") && stderr.contains("3×1"),
        "{stderr}"
    );
    assert!(!out.join("img.png").exists());
}

#[test]
fn help_documents_every_preset() {
    let o = camsam(&["merge", "--help"]);
    assert_ok(&o);
    let help = String::from_utf8_lossy(&o.stdout);
    for word in [
        "official-imp2",
        "official-imp",
        "official",
        "paper",
        "--shard",
        "--overwrite",
    ] {
        assert!(help.contains(word), "merge --help lacks {word}:\n{help}");
    }
    assert_ok(&camsam(&["bench", "merge", "--help"]));
}

/// `merge --overlay --images` takes JPEG images (VOC's own format): the overlay's background
/// pixels are the decoded JPEG's.
#[test]
fn overlays_over_jpeg_images() {
    let dir = common::scratch_dir("cli_merge_jpeg");
    let (pseudo, masks, images) = (dir.join("pseudo"), dir.join("masks"), dir.join("images"));
    let name = "2007_000033";
    for d in [&pseudo, &masks.join(name), &images] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let voc = common::voc();
    let gt = LabelMap::read_png(&voc.join("gt").join(format!("{name}.png"))).expect("gt");
    gt.encode_png(camsam::core::label::LabelFormat::Gray)
        .map(|png| std::fs::write(pseudo.join(format!("{name}.png")), png))
        .expect("encode")
        .expect("write");
    let fg: Vec<u8> = gt
        .data
        .iter()
        .map(|&v| if v != 0 && v != 255 { 255 } else { 0 })
        .collect();
    image::GrayImage::from_raw(gt.width as u32, gt.height as u32, fg)
        .expect("mask")
        .save(masks.join(name).join("0.png"))
        .expect("write mask");
    let photo = image::open(voc.join("images").join(format!("{name}.png")))
        .expect("photo")
        .to_rgb8();
    let jpg = images.join(format!("{name}.jpg"));
    photo.save(&jpg).expect("write jpeg");
    let decoded = image::open(&jpg).expect("jpeg").to_rgb8();
    let out = dir.join("out");
    let o = camsam(&[
        "merge",
        "--pseudo",
        &pseudo.display().to_string(),
        "--masks",
        &masks.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--overlay",
        "--images",
        &images.display().to_string(),
        "--format",
        "gray",
    ]);
    assert_ok(&o);
    let label = LabelMap::read_png(&out.join(format!("{name}.png"))).expect("label");
    let overlay = image::open(out.join(format!("overlay/{name}.png")))
        .expect("overlay")
        .to_rgb8();
    let background: Vec<usize> = (0..label.data.len())
        .filter(|&i| label.data[i] == 0)
        .collect();
    assert!(background.len() > 1000);
    for &i in &background {
        let (x, y) = ((i % label.width) as u32, (i / label.width) as u32);
        assert_eq!(
            overlay.get_pixel(x, y),
            decoded.get_pixel(x, y),
            "background pixel {i}"
        );
    }
}
