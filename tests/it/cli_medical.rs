//! The image-reading commands on medical files (`shared/fixtures/medical`): `refine`, `embed`
//! and `everything` read a DICOM or a NIfTI slice directly exactly as they read the PNG that
//! `camsam convert` writes for it; `--window` changes what they see; `--slice` picks a slice
//! and is required for a multi-slice file; a 4-D NIfTI needs a volume (from `--volume` or the
//! slice name) with a message naming its dimensions; a folder of single-frame DICOM files is
//! ordered by InstanceNumber, then ImagePositionPatient, not by file name.

use crate::common;

use camsam::core::label::LabelMap;
use camsam::core::npy::{self, NpyArray};
use std::path::{Path, PathBuf};
use std::process::Output;

fn files() -> PathBuf {
    common::shared_dir().join("fixtures/medical/files")
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "camsam failed:\n{}{err}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

fn failed(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "camsam should have failed:\n{err}");
    err
}

/// `camsam convert --input FILE --out DIR`.
fn convert(file: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["convert"];
    args.extend_from_slice(extra);
    ok(&common::camsam(&args, &[("--input", file), ("--out", out)]));
}

/// A one-class CAM `(1, h, w)` for `name` in `dir`: a cone off the centre.
fn write_cam(dir: &Path, name: &str, w: usize, h: usize) {
    let cam = common::cone(
        w,
        h,
        w as f64 * 0.4,
        h as f64 * 0.55,
        w.min(h) as f64 * 0.45,
    );
    npy::write_f32(&dir.join(format!("{name}.npy")), &[1, h, w], &cam).unwrap();
}

/// `camsam refine --mode pamr` over `images` and `cams` into `out`.
fn refine_pamr(images: &Path, cams: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["refine", "--mode", "pamr", "--num-classes", "2"];
    args.extend_from_slice(&["--format", "gray"]);
    args.extend_from_slice(extra);
    common::camsam(
        &args,
        &[("--images", images), ("--cams", cams), ("--out", out)],
    )
}

fn label(path: &Path) -> LabelMap {
    LabelMap::read_png(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn refine_reads_nifti_slices_as_their_converted_pngs() {
    let dir = common::scratch_dir("cli_medical_refine");
    let (nifti, pngs, cams) = (dir.join("nifti"), dir.join("pngs"), dir.join("cams"));
    for d in [&nifti, &cams] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(files().join("anatomical.nii"), nifti.join("anatomical.nii")).unwrap();
    convert(&files().join("anatomical.nii"), &pngs, &[]);
    // 33 × 41 slices; two CAMs, so the volume's cache serves two names.
    let slices = ["anatomical_0007", "anatomical_0012"];
    for name in slices {
        write_cam(&cams, name, 33, 41);
    }

    let (direct, converted) = (dir.join("direct"), dir.join("converted"));
    ok(&refine_pamr(&nifti, &cams, &direct, &[]));
    ok(&refine_pamr(&pngs, &cams, &converted, &[]));
    for name in slices {
        let a = label(&direct.join(format!("{name}.png")));
        let b = label(&converted.join(format!("{name}.png")));
        assert_eq!((a.width, a.height), (33, 41), "{name}");
        assert_eq!(
            a.data, b.data,
            "{name}: the NIfTI slice and its PNG label differently"
        );
        assert!(
            a.data.contains(&0) && a.data.contains(&1),
            "{name}: a one-class label says nothing"
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(direct.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["inputs"]["window"], serde_json::Value::Null);

    // A CAM whose name is no slice of the file: the error names the file and its slices.
    write_cam(&cams, "anatomical_0099", 33, 41);
    let err = failed(&refine_pamr(&nifti, &cams, &dir.join("missing"), &[]));
    assert!(
        err.contains("anatomical.nii")
            && err.contains("no slice named anatomical_0099")
            && err.contains("anatomical_0000 … anatomical_0024"),
        "{err}"
    );
}

#[test]
fn a_4d_nifti_needs_a_volume_named_by_dims() {
    let dir = common::scratch_dir("cli_medical_4d");
    let (images, cams) = (dir.join("images"), dir.join("cams"));
    for d in [&images, &cams] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(
        files().join("example4d.nii.gz"),
        images.join("example4d.nii.gz"),
    )
    .unwrap();
    // Slices are 128 wide, 96 high.
    write_cam(&cams, "example4d_0003", 128, 96);
    let err = failed(&refine_pamr(&images, &cams, &dir.join("out"), &[]));
    assert!(
        err.contains("example4d.nii.gz") && err.contains("128×96×24×2") && err.contains("--volume"),
        "{err}"
    );

    // The volume in the slice name picks it, as `convert --volume 1` names the slices.
    std::fs::remove_file(cams.join("example4d_0003.npy")).unwrap();
    write_cam(&cams, "example4d_v1_0003", 128, 96);
    let named = dir.join("named");
    ok(&refine_pamr(&images, &cams, &named, &[]));
    let pngs = dir.join("pngs");
    convert(&files().join("example4d.nii.gz"), &pngs, &["--volume", "1"]);
    let converted = dir.join("converted");
    ok(&refine_pamr(&pngs, &cams, &converted, &[]));
    assert_eq!(
        label(&named.join("example4d_v1_0003.png")).data,
        label(&converted.join("example4d_v1_0003.png")).data
    );

    // Single-image commands refuse it too, naming the dimensions.
    let err = failed(&common::camsam(
        &["embed"],
        &[
            ("--weights", &common::fixture_weights()),
            ("--image", &files().join("example4d.nii.gz")),
            ("--out", &dir.join("e.npy")),
        ],
    ));
    assert!(
        err.contains("example4d.nii.gz") && err.contains("128×96×24×2"),
        "{err}"
    );
}

/// `camsam embed --backend cpu` on `image` (+ flags) → the embedding.
fn embed(image: &Path, out: &Path, extra: &[&str]) -> Vec<f32> {
    let mut args = vec!["embed", "--backend", "cpu"];
    args.extend_from_slice(extra);
    ok(&common::camsam(
        &args,
        &[
            ("--weights", &common::fixture_weights()),
            ("--image", image),
            ("--out", out),
        ],
    ));
    NpyArray::read(out).unwrap().to_f32()
}

/// `camsam everything --backend cpu --points-per-side 4` (filters off) on `image` → the
/// files it wrote, by name.
fn everything(image: &Path, out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut args = vec!["everything", "--backend", "cpu"];
    args.extend_from_slice(&common::SMALL_GRID);
    ok(&common::camsam(
        &args,
        &[
            ("--weights", &common::fixture_weights()),
            ("--image", image),
            ("--out", out),
        ],
    ));
    let mut written: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    written.sort();
    written
}

#[test]
fn embed_and_everything_read_a_dicom_as_its_converted_png() {
    let dir = common::scratch_dir("cli_medical_sam");
    let dcm = files().join("CT_small.dcm");
    let pngs = dir.join("pngs");
    convert(&dcm, &pngs, &[]);
    let png = pngs.join("CT_small.png");

    let direct = embed(&dcm, &dir.join("direct.npy"), &[]);
    let converted = embed(&png, &dir.join("converted.npy"), &[]);
    assert_eq!(
        direct, converted,
        "embedding of the DICOM ≠ of its converted PNG"
    );
    let lung = embed(&dcm, &dir.join("lung.npy"), &["--window", "ct-lung"]);
    assert_ne!(
        direct, lung,
        "--window ct-lung should change what the model sees"
    );

    let a = everything(&dcm, &dir.join("everything_direct"));
    let b = everything(&png, &dir.join("everything_converted"));
    assert!(
        a.len() > 1,
        "no masks: {:?}",
        a.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(
        a, b,
        "segment-everything on the DICOM ≠ on its converted PNG"
    );
}

#[test]
fn slice_picks_one_slice_of_a_multi_slice_file() {
    let dir = common::scratch_dir("cli_medical_slice");
    let nii = files().join("anatomical.nii");
    let err = failed(&common::camsam(
        &["embed"],
        &[
            ("--weights", &common::fixture_weights()),
            ("--image", &nii),
            ("--out", &dir.join("x.npy")),
        ],
    ));
    assert!(
        err.contains("anatomical.nii")
            && err.contains("25 slices (anatomical_0000 … anatomical_0024)")
            && err.contains("--slice"),
        "{err}"
    );
    let err = failed(&common::camsam(
        &["embed", "--slice", "25"],
        &[
            ("--weights", &common::fixture_weights()),
            ("--image", &nii),
            ("--out", &dir.join("x.npy")),
        ],
    ));
    assert!(
        err.contains("--slice 25") && err.contains("0 to 24"),
        "{err}"
    );

    let pngs = dir.join("pngs");
    convert(&nii, &pngs, &[]);
    let direct = embed(&nii, &dir.join("direct.npy"), &["--slice", "7"]);
    let converted = embed(&pngs.join("anatomical_0007.png"), &dir.join("png.npy"), &[]);
    assert_eq!(
        direct, converted,
        "--slice 7 ≠ the converted anatomical_0007.png"
    );
}

/// A copy of CT_small.dcm at `path` with InstanceNumber `instance`, and, when given,
/// ImageOrientationPatient `orientation` and ImagePositionPatient `position`.
fn write_instance(path: &Path, instance: &str, orientation: Option<&str>, position: Option<&str>) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let mut obj = dicom_object::open_file(files().join("CT_small.dcm")).unwrap();
    obj.put(DataElement::new(
        tags::INSTANCE_NUMBER,
        VR::IS,
        PrimitiveValue::from(instance),
    ));
    if let Some(o) = orientation {
        obj.put(DataElement::new(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            PrimitiveValue::from(o),
        ));
    }
    if let Some(p) = position {
        obj.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            PrimitiveValue::from(p),
        ));
    }
    obj.write_to_file(path).unwrap();
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_dicom_series_folder_is_in_instance_then_position_order() {
    use camsam::medical::{folder_files, sort_series};
    let dir = common::scratch_dir("cli_medical_series");

    // InstanceNumber decides, not the file names.
    let by_instance = dir.join("by_instance");
    std::fs::create_dir_all(&by_instance).unwrap();
    for (file, instance) in [
        ("a.dcm", "3"),
        ("b.dcm", "1"),
        ("c.dcm", "2"),
        ("IM9", "10"),
    ] {
        write_instance(&by_instance.join(file), instance, None, None);
    }
    let listed = folder_files(&by_instance).unwrap();
    assert_eq!(names(&listed), ["IM9", "a.dcm", "b.dcm", "c.dcm"]);
    assert_eq!(
        names(&sort_series(listed)),
        ["b.dcm", "c.dcm", "a.dcm", "IM9"]
    );

    // Equal InstanceNumbers: the position along the slice normal decides. A sagittal
    // orientation (rows along y, columns along −z) has normal −x, so x = 5, 1, −3 stack as
    // p, r, q; their z components are equal, so a z-only order would keep the names' order.
    let by_position = dir.join("by_position");
    std::fs::create_dir_all(&by_position).unwrap();
    let sagittal = "0\\1\\0\\0\\0\\-1";
    for (file, position) in [
        ("p.dcm", "5\\0\\0"),
        ("q.dcm", "-3\\0\\0"),
        ("r.dcm", "1\\0\\0"),
    ] {
        write_instance(&by_position.join(file), "1", Some(sagittal), Some(position));
    }
    let positions: Vec<_> = folder_files(&by_position)
        .unwrap()
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            camsam::medical::series_position(&bytes, &p.display().to_string())
                .unwrap()
                .position
        })
        .collect();
    assert_eq!(positions, [Some(-5.0), Some(3.0), Some(-1.0)]);
    assert_eq!(
        names(&sort_series(folder_files(&by_position).unwrap())),
        ["p.dcm", "r.dcm", "q.dcm"]
    );

    // `convert` takes the folder (each file one slice, named by its stem) and so do the
    // dataset commands: a CAM named after a file's stem finds it.
    let out = dir.join("slices");
    convert(&by_instance, &out, &[]);
    for stem in ["a", "b", "c", "IM9"] {
        assert!(out.join(format!("{stem}.png")).is_file(), "{stem}.png");
    }
    let cams = dir.join("cams");
    std::fs::create_dir_all(&cams).unwrap();
    write_cam(&cams, "b", 128, 128);
    ok(&refine_pamr(&by_instance, &cams, &dir.join("refined"), &[]));
    assert!(dir.join("refined/b.png").is_file());
}
