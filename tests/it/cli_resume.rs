//! Crash-safe batches (issue 7): `camsam merge` (SEPL fixtures, with overlays) and
//! `camsam refine --mode pamr` (no model) are SIGKILLed mid-run, checked for half-written
//! outputs (only temp names may be incomplete), started again, and compared byte for byte
//! with an uninterrupted run into another folder. The re-run also removes the killed run's
//! temp files. `report.json` holds timings and what each run did, so it is not compared.

use crate::common;

use camsam::core::label::LabelMap;
use camsam::core::npy::NpyArray;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every file under `dir` (relative path → bytes), `report*.json` left out.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("read output dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let rel = path.strip_prefix(root).expect("under root");
            let rel = rel.to_string_lossy().into_owned();
            if !(rel.starts_with("report") && rel.ends_with(".json")) {
                out.push((rel, std::fs::read(&path).expect("read output")));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn is_temp(rel: &str) -> bool {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    file.starts_with('.') && file.contains(".tmp-")
}

fn command(args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_camsam"));
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("RAYON_NUM_THREADS", "1");
    cmd
}

fn run_to_end(args: &[String]) {
    let out = command(args).output().expect("run camsam");
    assert!(
        out.status.success(),
        "camsam {:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start the command, SIGKILL it once `at_least` primary outputs (`*.png` in `out`) exist.
/// Returns how many existed after the kill.
fn kill_mid_run(args: &[String], out: &Path, at_least: usize, total: usize) -> usize {
    let count = || {
        std::fs::read_dir(out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    let mut child = command(args).spawn().expect("start camsam");
    let start = Instant::now();
    while count() < at_least {
        if let Some(status) = child.try_wait().expect("poll camsam") {
            panic!("camsam exited ({status}) before {at_least} outputs existed");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL camsam");
    child.wait().expect("reap camsam");
    let done = count();
    assert!(
        done < total,
        "the run finished all {total} names before it was killed; nothing to resume"
    );
    done
}

/// Kill, check the survivors, resume, compare with `reference`.
fn check_kill_and_resume(args: &[String], out: &Path, reference: &Path, total: usize) {
    let done = kill_mid_run(args, out, 2, total);
    let want = files(reference);
    let after_kill = files(out);
    for (rel, bytes) in &after_kill {
        if is_temp(rel) {
            continue;
        }
        let expected = want.iter().find(|(r, _)| r == rel);
        assert!(
            expected.is_some_and(|(_, b)| b == bytes),
            "{rel} after the kill is not the finished file of the uninterrupted run"
        );
    }
    eprintln!(
        "killed with {done} of {total} names finished, {} temp files left",
        after_kill.iter().filter(|(r, _)| is_temp(r)).count()
    );
    run_to_end(args);
    let resumed = files(out);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&resumed),
        names(&want),
        "resumed outputs differ in their files"
    );
    for ((rel, a), (_, b)) in resumed.iter().zip(&want) {
        assert!(a == b, "{rel} differs from the uninterrupted run");
    }
}

fn with_out(base: &[String], out: &Path) -> Vec<String> {
    let mut args = base.to_vec();
    args.push("--out".into());
    args.push(out.display().to_string());
    args
}

#[test]
fn a_killed_merge_resumes_to_the_same_outputs() {
    let dir = common::scratch_dir("resume_merge");
    let sepl = common::shared_dir().join("fixtures/sepl");
    let list = std::fs::read_to_string(sepl.join("list.txt")).expect("list.txt");
    let names: Vec<&str> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(60)
        .collect();
    let list_path = dir.join("list.txt");
    std::fs::write(&list_path, names.join("\n")).expect("write list");
    let base: Vec<String> = [
        "merge",
        "--pseudo",
        &sepl.join("pseudo").display().to_string(),
        "--masks",
        &sepl.join("sam").display().to_string(),
        "--list",
        &list_path.display().to_string(),
        "--overlay",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let reference = dir.join("reference");
    run_to_end(&with_out(&base, &reference));
    assert_eq!(
        files(&reference).len(),
        2 * names.len(),
        "labels + overlays"
    );
    let out = dir.join("killed");
    check_kill_and_resume(&with_out(&base, &out), &out, &reference, names.len());
}

/// 20 images cut from the VOC crops (64×64 at different offsets) with CAMs made from their
/// ground truth: a smooth bump per class present.
fn pamr_dataset(dir: &Path) -> (PathBuf, PathBuf, usize) {
    let voc = common::shared_dir().join("data/voc_val_crops");
    let (images, cams) = (dir.join("images"), dir.join("cams"));
    std::fs::create_dir_all(&images).expect("mkdir");
    std::fs::create_dir_all(&cams).expect("mkdir");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(voc.join("images"))
        .expect("voc images")
        .map(|e| e.expect("entry").path())
        .collect();
    sources.sort();
    let side = 64u32;
    let mut n = 0;
    for (k, src) in sources.iter().take(10).enumerate() {
        let stem = src
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let image = image::open(src).expect("voc image").to_rgb8();
        let gt = LabelMap::read_png(&voc.join("gt").join(format!("{stem}.png"))).expect("gt");
        for (j, (x0, y0)) in [(150u32, 150u32), (250, 250)].into_iter().enumerate() {
            let name = format!("img{k:02}_{j}");
            image::imageops::crop_imm(&image, x0, y0, side, side)
                .to_image()
                .save(images.join(format!("{name}.png")))
                .expect("write image");
            let s = side as usize;
            let mut cam = vec![0f32; 20 * s * s];
            for y in 0..s {
                for x in 0..s {
                    let c = gt.data[(y0 as usize + y) * gt.width + x0 as usize + x];
                    if (1..=20).contains(&c) {
                        cam[(c as usize - 1) * s * s + y * s + x] =
                            1.0 - (x as f32 / s as f32) * 0.5;
                    }
                }
            }
            NpyArray::from_f32(vec![20, s, s], cam)
                .expect("cam")
                .write(&cams.join(format!("{name}.npy")))
                .expect("write cam");
            n += 1;
        }
    }
    (images, cams, n)
}

#[test]
fn a_killed_pamr_refine_resumes_to_the_same_outputs() {
    let dir = common::scratch_dir("resume_refine");
    let (images, cams, total) = pamr_dataset(&dir);
    assert!(total >= 20);
    let base: Vec<String> = [
        "refine",
        "--mode",
        "pamr",
        "--images",
        &images.display().to_string(),
        "--cams",
        &cams.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let reference = dir.join("reference");
    run_to_end(&with_out(&base, &reference));
    assert_eq!(files(&reference).len(), total);
    let out = dir.join("killed");
    check_kill_and_resume(&with_out(&base, &out), &out, &reference, total);
}
