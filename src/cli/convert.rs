//! `camsam convert`: medical files (DICOM, NIfTI, 8/16-bit PNG/TIFF) → per slice
//! `OUT/<slice>.png` (the 8-bit RGB image the model sees) and `OUT/<slice>.npy` (float32
//! modality values). The reading is [`camsam::medical`]'s.

use super::batch::write_atomic;
use camsam::core::npy::NpyArray;
use camsam::medical::{self, MedicalOptions, Slice};
use camsam::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const INPUT_HELP: &str = "\
Medical files, or folders of them:
  .dcm / .dicom (or no extension, with DICM at byte 128)  DICOM, single- or multi-frame
  .nii / .nii.gz                                           NIfTI-1 or NIfTI-2, 2-D to 4-D
  .tif / .tiff, and .png named explicitly                  8- or 16-bit gray or RGB
A folder contributes its DICOM, NIfTI and TIFF files (not its PNGs); the files of a DICOM
series are taken in series order (InstanceNumber, then ImagePositionPatient along the slice
normal), each slice still named by its file's stem.";

/// Convert medical images into slices: OUT/<slice>.png (8-bit RGB, what SAM sees) and
/// OUT/<slice>.npy (float32 modality values: (H, W) gray, (H, W, 3) colour).
///
/// Slices are named <stem>_<K> (K 0-based, 4 digits) for multi-frame DICOMs and 3-D NIfTI,
/// <stem> for a single frame, <stem>_v<N>_<K> for volume N of a 4-D NIfTI; <stem> is the file
/// name up to its first dot. NIfTI slice K is data[:, :, K] with rows from the highest j down.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Medical files or folders.
    #[arg(long, value_name = "FILE|DIR", num_args = 1.., required = true, long_help = INPUT_HELP)]
    pub input: Vec<PathBuf>,

    /// Output folder for <slice>.png and <slice>.npy (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub medical: super::images::MedicalArgs,
}

pub fn run(args: Args) -> Result<()> {
    let files = expand_inputs(&args.input)?;
    let opts = args.medical.options();
    // Slice name → the file it came from, so two files cannot overwrite each other's slices.
    let mut written: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut failures = Vec::new();
    for file in &files {
        let result = convert_file(file, &opts, &args.out, &mut written);
        if let Err(e) = result {
            eprintln!("error: {e}");
            failures.push(file);
        }
    }
    eprintln!(
        "converted {} of {} file(s) into {} slice(s) in {}",
        files.len() - failures.len(),
        files.len(),
        written.len(),
        args.out.display()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::input(
            args.out.display().to_string(),
            format!(
                "{} of {} file(s) could not be converted",
                failures.len(),
                files.len()
            ),
        ))
    }
}

/// The files to convert: each file as given, and the medical files of each folder (by file
/// name, the files of a DICOM series in series order: [`medical::sort_series`]).
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let found = medical::folder_files(input)?;
        if found.is_empty() {
            return Err(Error::input(
                input.display().to_string(),
                "no medical files (.dcm, .dicom, .nii, .nii.gz, .tif, .tiff, or DICOM without \
                 an extension)",
            ));
        }
        files.extend(medical::sort_series(found));
    }
    Ok(files)
}

fn convert_file(
    file: &Path,
    opts: &MedicalOptions,
    out: &Path,
    written: &mut BTreeMap<String, PathBuf>,
) -> Result<()> {
    let name = file.display().to_string();
    let slices = medical::read_file(file, opts)?;
    for slice in &slices {
        if let Some(other) = written.get(&slice.name) {
            return Err(Error::input(
                &name,
                format!(
                    "slice {} was already written from {}; rename one of the files",
                    slice.name,
                    other.display()
                ),
            ));
        }
    }
    for slice in &slices {
        write_slice(slice, out)?;
        written.insert(slice.name.clone(), file.to_path_buf());
    }
    Ok(())
}

/// Write `<slice>.png` and `<slice>.npy` into `out`.
fn write_slice(slice: &Slice, out: &Path) -> Result<()> {
    let png_path = out.join(format!("{}.png", slice.name));
    let mut png = Vec::new();
    slice
        .rgb
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| {
            Error::input(
                png_path.display().to_string(),
                format!("cannot encode ({e})"),
            )
        })?;
    write_atomic(&png_path, &png)?;
    let shape = if slice.channels == 1 {
        vec![slice.height, slice.width]
    } else {
        vec![slice.height, slice.width, slice.channels]
    };
    let npy = NpyArray::from_f32(shape, slice.values.clone())?;
    write_atomic(&out.join(format!("{}.npy", slice.name)), &npy.to_bytes())
}
