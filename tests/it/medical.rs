//! Medical images against `shared/fixtures/medical`: pydicom 3.0 (+ pylibjpeg) and nibabel 5.4
//! decodings of pydicom's and nibabel's own test files. Every manifest file goes through
//! `camsam::medical::read_slices` as the manifest says; label volumes round-trip through
//! `label_volume` and are read back with the `nifti` crate; the CLI's `convert` and `volume`
//! run end to end.
//!
//! Tolerances: lossless syntaxes must match the reference values exactly and the 8-bit images
//! within ±1 (the allowance; the count of exact pixels is printed). Lossy syntaxes are
//! decoded by other decoders than the reference's (jpeg-decoder vs libjpeg-turbo; the openjp2
//! port vs OpenJPEG), whose IDCT / wavelet rounding differ by a few levels:
//! [`LOSSY_TOLERANCE`] bounds that.

use crate::common;

use camsam::core::label::{LabelFormat, LabelMap};
use camsam::medical::{self, MedicalOptions, Slice, Window};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Largest |Δ| allowed against a lossy reference, in stored levels (for 8-bit JPEG and the
/// 16-bit JPEG 2000 fixture alike), and in 8-bit image levels.
const LOSSY_TOLERANCE: f32 = 2.0;

fn fixtures() -> PathBuf {
    common::shared_dir().join("fixtures/medical")
}

fn manifest() -> serde_json::Map<String, Value> {
    let path = fixtures().join("manifest.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_slice(&text).expect("manifest.json") {
        Value::Object(m) => m,
        other => panic!("manifest.json: expected an object, found {other}"),
    }
}

fn read(file: &str, volume: Option<usize>) -> camsam::Result<Vec<Slice>> {
    let path = fixtures().join("files").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = MedicalOptions {
        window: None,
        volume,
    };
    medical::read_slices(&bytes, file, &opts)
}

/// The reference values of a slice: shape and data.
fn expected_values(slice: &str) -> (Vec<usize>, Vec<f32>) {
    let path = fixtures().join("expected").join(format!("{slice}.npy"));
    let a = camsam::core::npy::NpyArray::read(&path).unwrap_or_else(|e| panic!("{e}"));
    (a.shape.clone(), a.to_f32())
}

/// The reference 8-bit image of a slice, as RGB.
fn expected_image(slice: &str) -> image::RgbImage {
    let path = fixtures().join("expected").join(format!("{slice}.png"));
    image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// The largest |a − b| and its index (`None` when equal everywhere).
fn worst(a: &[f32], b: &[f32]) -> Option<(usize, f32)> {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .filter(|(_, d)| *d > 0.0 || d.is_nan())
        .max_by(|x, y| x.1.total_cmp(&y.1))
}

/// Compare a slice's values with the reference within `tol`; an error names the worst element.
fn check_values(slice: &Slice, tol: f32) -> Result<f32, String> {
    let (shape, want) = expected_values(&slice.name);
    let got_shape = if slice.channels == 1 {
        vec![slice.height, slice.width]
    } else {
        vec![slice.height, slice.width, slice.channels]
    };
    if shape != got_shape {
        return Err(format!(
            "{}: shape {got_shape:?}, expected {shape:?}",
            slice.name
        ));
    }
    match worst(&slice.values, &want) {
        None => Ok(0.0),
        Some((_, d)) if d <= tol => Ok(d),
        Some((i, d)) => {
            let c = slice.channels;
            Err(format!(
                "{}: values differ by {d} (> {tol}) at row {}, column {}, channel {}: got {}, \
                 expected {}",
                slice.name,
                i / c / slice.width,
                i / c % slice.width,
                i % c,
                slice.values[i],
                want[i]
            ))
        }
    }
}

/// Compare a slice's image with the reference: (exact pixels, total, worst |Δ|), or an error
/// naming the worst pixel when it is over `tol`.
fn check_image(slice: &Slice, tol: u8) -> Result<(usize, usize, u8), String> {
    let want = expected_image(&slice.name);
    if want.dimensions() != slice.rgb.dimensions() {
        return Err(format!(
            "{}: image {:?}, expected {:?}",
            slice.name,
            slice.rgb.dimensions(),
            want.dimensions()
        ));
    }
    let mut exact = 0;
    let mut worst = (0u8, 0usize);
    for (i, (a, b)) in slice.rgb.pixels().zip(want.pixels()).enumerate() {
        let d =
            a.0.iter()
                .zip(b.0)
                .map(|(x, y)| x.abs_diff(y))
                .max()
                .unwrap_or(0);
        if d == 0 {
            exact += 1;
        }
        if d > worst.0 {
            worst = (d, i);
        }
    }
    let total = want.pixels().len();
    if worst.0 > tol {
        let (x, y) = (
            worst.1 % want.width() as usize,
            worst.1 / want.width() as usize,
        );
        return Err(format!(
            "{}: image differs by {} (> {tol}) at row {y}, column {x}: got {:?}, expected {:?}",
            slice.name,
            worst.0,
            slice.rgb.get_pixel(x as u32, y as u32).0,
            want.get_pixel(x as u32, y as u32).0
        ));
    }
    Ok((exact, total, worst.0))
}

/// Check every slice of `file` as its manifest `entry` describes; returns a report line.
fn check_file(file: &str, entry: &Value, volume: Option<usize>) -> Result<String, String> {
    let slices = read(file, volume).map_err(|e| format!("{file}: {e}"))?;
    let frames = entry["frames"].as_u64().unwrap_or(1) as usize;
    if slices.len() != frames {
        return Err(format!(
            "{file}: {} slices, expected {frames}",
            slices.len()
        ));
    }
    let lossy = entry["lossy"].as_bool().unwrap_or(false);
    let (value_tol, image_tol) = if lossy {
        (LOSSY_TOLERANCE, LOSSY_TOLERANCE as u8)
    } else {
        (0.0, 1)
    };
    let (mut exact, mut total, mut worst_value, mut worst_level) = (0, 0, 0f32, 0u8);
    for slice in &slices {
        worst_value = worst_value.max(check_values(slice, value_tol)?);
        let (e, t, w) = check_image(slice, image_tol)?;
        exact += e;
        total += t;
        worst_level = worst_level.max(w);
    }
    Ok(format!(
        "{file}: {} slice(s), values max |Δ| {worst_value}, image {exact}/{total} pixels exact \
         (max |Δ| {worst_level}){}",
        slices.len(),
        if lossy { " [lossy]" } else { "" }
    ))
}

#[test]
fn every_manifest_file_reads_as_the_reference_decodes_it() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, entry) in manifest() {
        let result = match entry.get("error").and_then(Value::as_str) {
            Some(why) => match read(&file, None) {
                Ok(s) => Err(format!(
                    "{file}: read {} slices; expected a refusal ({why})",
                    s.len()
                )),
                Err(e) if e.to_string().starts_with(&format!("{file}: ")) => {
                    Ok(format!("{file}: refused: {e}"))
                }
                Err(e) => Err(format!("{file}: the error does not name the file: {e}")),
            },
            None => check_file(&file, &entry, None),
        };
        // A 4-D file refused without --volume reads with --volume 0.
        let result = match (result, entry.get("volume0")) {
            (Ok(line), Some(v0)) => {
                check_file(&file, v0, Some(0)).map(|l| format!("{line}\n    --volume 0: {l}"))
            }
            (r, _) => r,
        };
        checked += 1;
        match result {
            Ok(line) => eprintln!("{line}"),
            Err(e) => failures.push(e),
        }
    }
    assert!(checked >= 16, "only {checked} manifest entries");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_say_what_is_wrong() {
    let msg = |file: &str| read(file, None).unwrap_err().to_string();
    let e = msg("rtplan.dcm");
    assert!(e.contains("no pixel data") && e.contains("RTPLAN"), "{e}");
    let e = msg("MR_truncated.dcm");
    assert!(
        e.contains("8192 bytes but only 8130 remain") && e.contains("truncated"),
        "{e}"
    );
    let e = msg("example4d.nii.gz");
    assert!(
        e.contains("4-D volume (128×96×24×2): pick one with --volume"),
        "{e}"
    );
    // A length inside an item made 4 bytes short (found by fuzzing): dicom-rs would read the
    // misaligned bytes past the item as a 3.7 GB element; the structure check refuses it.
    let mut bytes = std::fs::read(fixtures().join("files/rtplan.dcm")).unwrap();
    assert_eq!(bytes[1874], 0x22);
    bytes[1874] = 0x1E;
    let e = medical::read_slices(&bytes, "rtplan.dcm", &MedicalOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("4 stray byte(s) at byte 1608"), "{e}");
    // Cut files: a truncated DICOM header, a truncated gzip.
    for file in ["CT_small.dcm", "standard.nii.gz", "anatomical.nii"] {
        let bytes = std::fs::read(fixtures().join("files").join(file)).unwrap();
        for cut in [10, 140, bytes.len() / 2, bytes.len() - 1] {
            let r = medical::read_slices(&bytes[..cut], file, &MedicalOptions::default());
            let e = r
                .err()
                .unwrap_or_else(|| panic!("{file} cut at {cut} was read"))
                .to_string();
            assert!(e.starts_with(&format!("{file}: ")), "{e}");
        }
    }
}

#[test]
fn explicit_windows_follow_the_voi_formula() {
    // CT_small through ct-soft (40, 400), computed here from the reference values.
    let bytes = std::fs::read(fixtures().join("files/CT_small.dcm")).unwrap();
    let opts = MedicalOptions {
        window: Some("ct-soft".parse::<Window>().unwrap()),
        volume: None,
    };
    let slice = &medical::read_slices(&bytes, "CT_small.dcm", &opts).unwrap()[0];
    let (_, values) = expected_values("CT_small");
    for (i, (&v, p)) in values.iter().zip(slice.rgb.pixels()).enumerate() {
        let x = f64::from(v);
        let want = if x <= 40.0 - 0.5 - 199.5 {
            0.0
        } else if x > 40.0 - 0.5 + 199.5 {
            255.0
        } else {
            ((x - 39.5) / 399.0 + 0.5) * 255.0
        };
        assert_eq!(p.0[0], want.round() as u8, "pixel {i}: value {v}");
    }
    // The file's own window, asked for explicitly, on a file without one.
    let opts = MedicalOptions {
        window: Some(Window::File),
        volume: None,
    };
    let e = medical::read_slices(&bytes, "CT_small.dcm", &opts)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("CT_small.dcm: no usable WindowCenter"), "{e}");
}

/// A label for a reference value: five classes from the value, so every voxel's label is
/// known from the nibabel reference alone.
fn label_of(v: f32) -> u8 {
    (v.abs() as u64 % 5) as u8
}

/// Gunzip (when gzipped) and parse with the `nifti` crate.
fn read_nifti(bytes: &[u8]) -> nifti::InMemNiftiObject {
    use std::io::Read;
    let mut plain = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .expect("gunzip");
    } else {
        plain = bytes.to_vec();
    }
    nifti::InMemNiftiObject::from_reader(&plain[..]).expect("the nifti crate reads it")
}

/// Slices → labels → `label_volume` → the nifti crate: voxels, dims and affine exact.
fn round_trip(file: &str, entry: &Value, volume: Option<usize>) {
    use nifti::NiftiObject;
    let slices = read(file, volume).unwrap();
    let labels: std::collections::HashMap<String, LabelMap> = slices
        .iter()
        .map(|s| {
            let data = s.values.iter().map(|&v| label_of(v)).collect();
            (
                s.name.clone(),
                LabelMap::new(s.width, s.height, data).unwrap(),
            )
        })
        .collect();
    let reference = std::fs::read(fixtures().join("files").join(file)).unwrap();
    let written = medical::label_volume(&reference, file, volume, &mut |name| {
        labels
            .get(name)
            .cloned()
            .ok_or_else(|| camsam::Error::input(name, "missing"))
    })
    .unwrap();
    let out = read_nifti(&written);
    let h = out.header();
    let dims = entry["dims"].as_array().expect("dims");
    let (nx, ny, nz) = (
        dims[0].as_u64().unwrap() as usize,
        dims[1].as_u64().unwrap() as usize,
        dims[2].as_u64().unwrap() as usize,
    );
    assert_eq!(h.dim[0], 3, "{file}: dim[0]");
    assert_eq!(
        &h.dim[1..4],
        &[nx as u16, ny as u16, nz as u16],
        "{file}: dims"
    );
    assert_eq!((h.datatype, h.bitpix), (2, 8), "{file}: uint8");
    assert_eq!((h.scl_slope, h.scl_inter), (1.0, 0.0), "{file}: scaling");
    // The grid is the reference's: qform, sform and pixdim as they were.
    let r = read_nifti(&reference);
    let rh = r.header();
    assert_eq!(&h.pixdim[..4], &rh.pixdim[..4], "{file}: pixdim");
    assert_eq!((h.qform_code, h.sform_code), (rh.qform_code, rh.sform_code));
    assert_eq!(
        [
            h.quatern_b,
            h.quatern_c,
            h.quatern_d,
            h.quatern_x,
            h.quatern_y,
            h.quatern_z
        ],
        [
            rh.quatern_b,
            rh.quatern_c,
            rh.quatern_d,
            rh.quatern_x,
            rh.quatern_y,
            rh.quatern_z
        ]
    );
    assert_eq!(
        [h.srow_x, h.srow_y, h.srow_z],
        [rh.srow_x, rh.srow_y, rh.srow_z]
    );
    // …and the affine nibabel reports (the sform rows, f32 in the file).
    let affine = entry["affine"].as_array().expect("affine");
    for (row, srow) in affine.iter().zip([h.srow_x, h.srow_y, h.srow_z]) {
        for (a, &s) in row.as_array().unwrap().iter().zip(&srow) {
            let a = a.as_f64().unwrap();
            assert!(
                (a - f64::from(s)).abs() <= 1e-5 * a.abs().max(1.0),
                "{file}: affine {a} vs {s}"
            );
        }
    }
    // Voxel (i, j, k) carries the label of reference value data[i, j, k], which nibabel's
    // slice K stores at row ny − 1 − j, column i.
    let voxels = out.volume().raw_data().to_vec();
    assert_eq!(voxels.len(), nx * ny * nz);
    let stem = medical::stem(file);
    for k in 0..nz {
        let slice = medical::slice_name(stem, volume, k, nz);
        let (_, values) = expected_values(&slice);
        for j in 0..ny {
            for i in 0..nx {
                let want = label_of(values[(ny - 1 - j) * nx + i]);
                let got = voxels[i + nx * (j + ny * k)];
                assert_eq!(got, want, "{file}: voxel ({i}, {j}, {k})");
            }
        }
    }
}

#[test]
fn nifti_labels_round_trip_exactly() {
    let m = manifest();
    round_trip("anatomical.nii", &m["anatomical.nii"], None);
    round_trip(
        "example4d.nii.gz",
        &m["example4d.nii.gz"]["volume0"],
        Some(0),
    );
}

fn assert_ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "camsam failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Compare a written `<slice>.npy` and `<slice>.png` with the references.
fn check_written(dir: &Path, slice: &str) {
    let got = camsam::core::npy::NpyArray::read(&dir.join(format!("{slice}.npy"))).unwrap();
    let (shape, want) = expected_values(slice);
    assert_eq!(got.shape, shape, "{slice}.npy shape");
    if let Some((i, d)) = worst(&got.to_f32(), &want) {
        panic!("{slice}.npy differs by {d} at element {i}");
    }
    let png = image::open(dir.join(format!("{slice}.png")))
        .unwrap()
        .to_rgb8();
    let want = expected_image(slice);
    assert_eq!(png.dimensions(), want.dimensions(), "{slice}.png size");
    for (i, (a, b)) in png.pixels().zip(want.pixels()).enumerate() {
        let d =
            a.0.iter()
                .zip(b.0)
                .map(|(x, y)| x.abs_diff(y))
                .max()
                .unwrap();
        assert!(d <= 1, "{slice}.png pixel {i}: {:?} vs {:?}", a.0, b.0);
    }
}

#[test]
fn cli_converts_and_writes_label_volumes() {
    let dir = common::scratch_dir("medical_cli");
    let files = fixtures().join("files");
    let out = dir.join("slices");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_camsam"))
        .arg("convert")
        .arg("--input")
        .args([files.join("MR_small.dcm"), files.join("anatomical.nii")])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run camsam");
    assert_ok(&o);
    check_written(&out, "MR_small");
    for k in [0, 12, 24] {
        check_written(&out, &format!("anatomical_{k:04}"));
    }

    // Labels for every anatomical slice, then one missing.
    let labels = dir.join("labels");
    std::fs::create_dir_all(&labels).unwrap();
    for k in 0..25 {
        let slice = format!("anatomical_{k:04}");
        let values = camsam::core::npy::NpyArray::read(&out.join(format!("{slice}.npy")))
            .unwrap()
            .to_f32();
        let map = LabelMap::new(33, 41, values.iter().map(|&v| label_of(v)).collect()).unwrap();
        let png = map.encode_png(LabelFormat::Palette).unwrap();
        std::fs::write(labels.join(format!("{slice}.png")), png).unwrap();
    }
    let volume = dir.join("labels.nii.gz");
    let o = common::camsam(
        &["volume"],
        &[
            ("--labels", &labels),
            ("--reference", &files.join("anatomical.nii")),
            ("--out", &volume),
        ],
    );
    assert_ok(&o);
    let written = read_nifti(&std::fs::read(&volume).unwrap());
    {
        use nifti::NiftiObject;
        let voxels = written.volume().raw_data();
        let (_, values) = expected_values("anatomical_0007");
        // Voxel (i, j, 7) ← row 40 − j, column i of slice 7.
        for j in 0..41 {
            for i in 0..33 {
                assert_eq!(
                    voxels[i + 33 * (j + 41 * 7)],
                    label_of(values[(40 - j) * 33 + i]),
                    "voxel ({i}, {j}, 7)"
                );
            }
        }
    }
    std::fs::remove_file(labels.join("anatomical_0013.png")).unwrap();
    let o = common::camsam(
        &["volume"],
        &[
            ("--labels", &labels),
            ("--reference", &files.join("anatomical.nii")),
            ("--out", &dir.join("partial.nii.gz")),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("anatomical_0013"), "{err}");
    assert!(!dir.join("partial.nii.gz").exists());
}

/// A small deterministic generator (xorshift64*) for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Every fixture, mutated (bytes overwritten, lengths set to extremes, cut), reads or is
/// refused naming the file, and nothing panics, not even inside a guarded decoder (the panic
/// hook counts). The fuzz targets (`tests/fuzz`, `dicom`, `nifti`) explore further.
#[test]
fn mutated_files_never_panic() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for file in manifest().keys() {
        let original = std::fs::read(fixtures().join("files").join(file)).unwrap();
        for _ in 0..150 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(4) {
                    0 => bytes[at] = rng.next() as u8,
                    1 => {
                        let end = (at + 4).min(bytes.len());
                        bytes[at..end].fill(0xFF);
                    }
                    2 => {
                        let end = (at + 2).min(bytes.len());
                        bytes[at..end].fill(0);
                    }
                    _ => bytes.truncate(at.max(1)),
                }
            }
            let opts = MedicalOptions {
                window: None,
                volume: Some(0),
            };
            if let Err(e) = medical::read_slices(&bytes, file, &opts) {
                assert!(e.to_string().starts_with(&format!("{file}: ")), "{e}");
            }
        }
    }
    let _ = std::panic::take_hook();
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a reader panicked (see above)"
    );
}
