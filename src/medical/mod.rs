//! Medical images in: DICOM, NIfTI-1/2 and 8/16-bit PNG/TIFF, read as 2-D slices with their
//! modality values (f32) and the 8-bit RGB image SAM and the page see; and label maps back out
//! as a NIfTI volume on the reference's grid ([`label_volume`]).
//!
//! - **Values.** DICOM: stored value × RescaleSlope + RescaleIntercept (the Modality LUT, PS3.3
//!   C.11.1); colour as RGB (YBR converted, PALETTE COLOR through its LUT: the LUT entries as
//!   stored). NIfTI: stored × scl_slope + scl_inter, as nibabel's `get_fdata` (slope 0: none).
//!   PNG/TIFF: the stored samples.
//! - **Image.** Gray values go through a [`Window`] onto 0..255 and are replicated to three
//!   channels; colour keeps its RGB values (16-bit × 255/65535, rounded). The default window is
//!   the DICOM's own (first WindowCenter/WindowWidth) when it has one, else min..max over the
//!   whole file.
//! - **Slices.** A multi-frame DICOM or a 3-D NIfTI becomes slices `<stem>_<K>` (K 0-based, 4
//!   digits); a single frame is `<stem>`, where `<stem>` is the file name up to its first dot.
//!   NIfTI slice K is `data[:, :, K]` with rows from the highest j down and columns = i, what
//!   `imshow(data[:, :, K].T, origin='lower')` shows. A 4-D NIfTI needs
//!   [`MedicalOptions::volume`]; its slices are `<stem>_v<N>_<K>`.
//!
//! [`decode`] keeps a file decoded ([`Decoded`]: names and values) so that its slices can be
//! drawn under another window without decoding it again (the page's window control); its
//! images are [`read_slices`]'s under the same window.
//!
//! Which files are medical: [`is_medical`] decides by name (`.dcm`, `.dicom`, `.nii`,
//! `.nii.gz`, `.tif`, `.tiff`) and [`is_dicom_bytes`] by the `DICM` magic (for DICOM files
//! without an extension). A PNG is an ordinary image unless the caller hands it to
//! [`read_slices`] explicitly, which then reads its 8- or 16-bit samples as values: so a folder
//! of PNG photographs never turns into "medical" input by accident, and a 16-bit PNG named on
//! the command line keeps its full range. [`folder_files`] lists a folder's medical files and
//! [`sort_series`] puts the single-frame files of a DICOM series in series order
//! (InstanceNumber, then ImagePositionPatient along the slice normal; see [`series_order`]);
//! each file stays its own slice, named by its stem.
//!
//! ```no_run
//! use camsam::medical::{read_slices, MedicalOptions, Window};
//! let bytes = std::fs::read("CT_small.dcm").unwrap();
//! let opts = MedicalOptions { window: Some("ct-soft".parse::<Window>().unwrap()), volume: None };
//! for slice in read_slices(&bytes, "CT_small.dcm", &opts).unwrap() {
//!     println!("{}: {}×{}", slice.name, slice.width, slice.height);
//! }
//! ```
//!
//! Every size is checked before a buffer of that size is allocated: a frame against
//! [`crate::limits::check_pixels`], a whole file against [`MAX_FILE_SAMPLES`] and
//! [`MAX_DECODED_BYTES`], compressed pixel data against [`MAX_COMPRESSION_RATIO`].

mod codec;
mod dicom;
mod guard;
mod nifti;
mod raster;
mod rle;
mod scan;
mod series;
mod volume;
mod window;

pub use series::{series_order, series_position, SeriesPosition};
pub use volume::label_volume;
pub use window::{Window, PRESETS};

use crate::{Error, Result};
use image::RgbImage;

/// Most samples (pixels × channels, all frames or slices together) one file may hold:
/// 2^28, e.g. 1024 slices of 512 × 512, so a file's values (f32) stay within 1 GiB.
pub const MAX_FILE_SAMPLES: usize = 1 << 28;

/// Most bytes a compressed file (`.nii.gz`, a deflated DICOM) may inflate to: 1 GiB, enough
/// for [`MAX_FILE_SAMPLES`] 32-bit samples plus headers; a file that inflates past it is
/// refused as a decompression bomb.
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Most a compressed DICOM's pixel data may expand: decoded bytes at most this many times
/// the compressed bytes (real JPEG, JPEG 2000 and RLE frames stay far below; a blank frame can
/// reach a few hundred), unless the whole decode fits [`SMALL_DECODE_BYTES`]. A lying
/// codestream cannot turn a few kilobytes into gigabytes.
pub const MAX_COMPRESSION_RATIO: usize = 1000;

/// Decoded pixel data always accepted, whatever the ratio: 64 MiB.
pub const SMALL_DECODE_BYTES: usize = 1 << 26;

/// How a medical file is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MedicalOptions {
    /// The window onto 0..255 for gray images; `None` is the default: the DICOM's own window
    /// when it has one, else [`Window::MinMax`].
    pub window: Option<Window>,
    /// The volume of a 4-D NIfTI (0-based); required for 4-D files, ignored by other files
    /// when 0, refused when past their single volume.
    pub volume: Option<usize>,
}

/// One 2-D slice of a medical file.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// `<stem>`, `<stem>_<K>` or `<stem>_v<N>_<K>` (see the module docs).
    pub name: String,
    pub width: usize,
    pub height: usize,
    /// 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Modality values, row-major, `channels` interleaved: `height × width × channels`.
    pub values: Vec<f32>,
    /// The 8-bit image under the window (gray replicated to three channels).
    pub rgb: RgbImage,
}

/// The file formats [`read_slices`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dicom,
    Nifti,
    /// PNG or TIFF (8- or 16-bit gray or RGB).
    Raster,
}

/// Whether `name` (a file name or path) is a medical file by its extension: `.dcm`, `.dicom`,
/// `.nii`, `.nii.gz`, `.tif`, `.tiff` (any case). PNGs are not (see the module docs); DICOM
/// files without an extension are found by [`is_dicom_bytes`].
pub fn is_medical(name: &str) -> bool {
    let lower = file_name(name).to_ascii_lowercase();
    [".dcm", ".dicom", ".nii", ".nii.gz", ".tif", ".tiff"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Whether `bytes` start like a DICOM file (Part 10): `DICM` at byte 128, after the preamble.
pub fn is_dicom_bytes(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM".as_slice())
}

/// The format of a file, from its first bytes (magic numbers) and else its name; `None` when
/// it is none of DICOM, NIfTI (plain or gzipped), PNG or TIFF.
pub fn detect(bytes: &[u8], name: &str) -> Option<Format> {
    let lower = file_name(name).to_ascii_lowercase();
    if is_dicom_bytes(bytes) || bytes.starts_with(b"DICM") {
        Some(Format::Dicom)
    } else if bytes.starts_with(&[0x1f, 0x8b]) || nifti::is_nifti_header(bytes) {
        Some(Format::Nifti)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        Some(Format::Raster)
    } else if lower.ends_with(".dcm") || lower.ends_with(".dicom") {
        Some(Format::Dicom)
    } else {
        None
    }
}

/// Read every slice of a medical file held in memory; `name` (its file name or path) names
/// the slices and the errors. Gray PNG/TIFF files are read too when handed over explicitly.
pub fn read_slices(bytes: &[u8], name: &str, opts: &MedicalOptions) -> Result<Vec<Slice>> {
    decode(bytes, name, opts.volume)?.into_slices(opts.window.as_ref())
}

/// A medical file decoded once and kept whole: its slices' names and modality values, each
/// slice shown as the 8-bit image of any window without decoding the file again (the page's
/// window control). [`Decoded::image`] with a window is slice for slice the `rgb` of
/// [`read_slices`] with that window: the same window rule ([`window`]'s mapping, min-max over
/// the whole file).
#[derive(Debug)]
pub struct Decoded {
    frames: Frames,
    names: Vec<String>,
    range: Option<(f64, f64)>,
    name: String,
    format: Format,
}

/// Decode the medical file `bytes` (`name`: its file name, for the slice names and errors;
/// `volume`: the volume of a 4-D NIfTI, as [`MedicalOptions::volume`]) into a [`Decoded`].
pub fn decode(bytes: &[u8], name: &str, volume: Option<usize>) -> Result<Decoded> {
    let stem = stem(name);
    let format = detect(bytes, name).ok_or_else(|| {
        Error::input(
            name,
            "not a medical image: expected a DICOM file (DICM at byte 128), a NIfTI-1/2 file \
             (.nii or .nii.gz), or a PNG/TIFF",
        )
    })?;
    let (frames, volume) = match format {
        Format::Dicom => (dicom::read(bytes, name)?, None),
        Format::Nifti => nifti::read(bytes, name, volume)?,
        Format::Raster => (raster::read(bytes, name)?, None),
    };
    let count = frames.frames.len();
    let names = (0..count)
        .map(|k| slice_name(stem, volume, k, count))
        .collect();
    let range = window::finite_range(frames.frames.iter().flatten());
    Ok(Decoded {
        frames,
        names,
        range,
        name: name.to_string(),
        format,
    })
}

impl Decoded {
    /// The slices' names, in slice order (as [`read_slices`] names them).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    pub fn width(&self) -> usize {
        self.frames.width
    }

    pub fn height(&self) -> usize {
        self.frames.height
    }

    /// 1 (gray: shown through a window) or 3 (RGB: shown as it is).
    pub fn channels(&self) -> usize {
        self.frames.channels
    }

    /// Whether the slices are gray values shown through a window (else colour, which no
    /// window changes).
    pub fn is_gray(&self) -> bool {
        matches!(self.frames.display, Display::Gray { .. })
    }

    /// The DICOM's own first (WindowCenter, WindowWidth), when it has a usable one.
    pub fn file_window(&self) -> Option<(f64, f64)> {
        match self.frames.display {
            Display::Gray { file_window, .. } => file_window,
            Display::Rgb { .. } => None,
        }
    }

    /// The smallest and largest finite value over the whole file (what min-max maps).
    pub fn range(&self) -> Option<(f64, f64)> {
        self.range
    }

    /// The modality values of slice `index` (`height × width × channels`).
    pub fn values(&self, index: usize) -> Option<&[f32]> {
        self.frames.frames.get(index).map(Vec::as_slice)
    }

    /// Slice `index` as the 8-bit RGB image under `window` (`None`: the default, as in
    /// [`MedicalOptions::window`]); gray is replicated to three channels.
    pub fn image(&self, index: usize, window: Option<&Window>) -> Result<RgbImage> {
        let values = self.values(index).ok_or_else(|| {
            Error::input(
                &self.name,
                format!(
                    "slice {index}: out of range; the file has {} slice(s)",
                    self.names.len()
                ),
            )
        })?;
        let to_u8 = window::mapping(self.frames.display, self.range, window, &self.name)?;
        self.rgb(values, &to_u8)
    }

    /// Every slice with its values and its image under `window` (as [`Decoded::image`]).
    pub fn into_slices(mut self, window: Option<&Window>) -> Result<Vec<Slice>> {
        let to_u8 = window::mapping(self.frames.display, self.range, window, &self.name)?;
        let mut slices = Vec::with_capacity(self.names.len());
        let frames = std::mem::take(&mut self.frames.frames);
        for (values, name) in frames.into_iter().zip(std::mem::take(&mut self.names)) {
            slices.push(Slice {
                name,
                width: self.frames.width,
                height: self.frames.height,
                channels: self.frames.channels,
                rgb: self.rgb(&values, &to_u8)?,
                values,
            });
        }
        Ok(slices)
    }

    /// One slice's values through `to_u8` as an RGB image (gray replicated to three channels).
    fn rgb(&self, values: &[f32], to_u8: &impl Fn(f32) -> u8) -> Result<RgbImage> {
        let rgb: Vec<u8> = if self.frames.channels == 3 {
            values.iter().map(|&v| to_u8(v)).collect()
        } else {
            values.iter().flat_map(|&v| [to_u8(v); 3]).collect()
        };
        RgbImage::from_raw(self.frames.width as u32, self.frames.height as u32, rgb)
            .ok_or_else(|| Error::input(&self.name, "internal: slice buffer size mismatch"))
    }
}

/// Read every slice of the medical file at `path` (see [`read_slices`]); errors name the path.
/// For commands that take image files: `read_file(path, &opts)?` and each slice's `rgb`.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: &std::path::Path, opts: &MedicalOptions) -> Result<Vec<Slice>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_slices(&bytes, &path.display().to_string(), opts)
}

/// The medical files of the folder `dir`, in file-name order: DICOM, NIfTI and TIFF files by
/// [`is_medical`], and files without an extension that start like a DICOM file (`DICM` at
/// byte 128). PNGs are not included (see the module docs), nor hidden files.
#[cfg(not(target_arch = "wasm32"))]
pub fn folder_files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name.filter(|n| !n.starts_with('.')) else {
            continue;
        };
        // By name first: a folder of photographs costs no reads.
        let medical = is_medical(&name);
        if (medical || !name.contains('.')) && path.is_file() && (medical || sniff_dicom(&path)) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Whether the file at `path` starts like a DICOM file (`DICM` at byte 128).
#[cfg(not(target_arch = "wasm32"))]
fn sniff_dicom(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| is_dicom_bytes(&head))
}

/// `files` in series order ([`series_order`]): the DICOM files' headers are read to order
/// each series by InstanceNumber, then ImagePositionPatient; other files, and DICOM files
/// whose header cannot be read (their error comes when they are read), keep their place by
/// file name.
#[cfg(not(target_arch = "wasm32"))]
pub fn sort_series(files: Vec<std::path::PathBuf>) -> Vec<std::path::PathBuf> {
    let names: Vec<String> = files
        .iter()
        .map(|p| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .collect();
    let positions: Vec<Option<SeriesPosition>> = files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).ok()?;
            if detect(&bytes, &path.display().to_string()) != Some(Format::Dicom) {
                return None;
            }
            series_position(&bytes, &path.display().to_string()).ok()
        })
        .collect();
    let keys: Vec<(&str, Option<&SeriesPosition>)> = names
        .iter()
        .zip(&positions)
        .map(|(n, p)| (n.as_str(), p.as_ref()))
        .collect();
    let order = series_order(&keys);
    let mut slots: Vec<Option<std::path::PathBuf>> = files.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The slice-name stem of a file: its name (without folders) up to the first dot.
pub fn stem(name: &str) -> &str {
    let file = file_name(name);
    file.split('.').next().unwrap_or(file)
}

/// The name of slice `index` of `count` from the file with `stem` (and 4-D `volume`).
pub fn slice_name(stem: &str, volume: Option<usize>, index: usize, count: usize) -> String {
    match (volume, count) {
        (None, 1) => stem.to_string(),
        (None, _) => format!("{stem}_{index:04}"),
        (Some(v), 1) => format!("{stem}_v{v}"),
        (Some(v), _) => format!("{stem}_v{v}_{index:04}"),
    }
}

/// The last path component of `name`.
fn file_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// How a file's values are shown.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Display {
    /// Gray values through a window; MONOCHROME1 is inverted after the window.
    Gray {
        monochrome1: bool,
        /// The file's first (WindowCenter, WindowWidth), when it has a usable one.
        file_window: Option<(f64, f64)>,
    },
    /// RGB values whose full scale is `max` (255 or 65535).
    Rgb { max: f64 },
}

/// Every frame (or slice) of a file, decoded: one `height × width × channels` vector of
/// values per frame, so each becomes its slice without a copy.
#[derive(Debug)]
struct Frames {
    width: usize,
    height: usize,
    channels: usize,
    frames: Vec<Vec<f32>>,
    display: Display,
}

/// `Ok` when `count` frames of `width × height × channels` fit [`crate::limits::MAX_PIXELS`]
/// per frame and [`MAX_FILE_SAMPLES`] in all; returns the total sample count.
fn check_size(
    width: usize,
    height: usize,
    channels: usize,
    count: usize,
    name: &str,
) -> Result<usize> {
    crate::limits::check_pixels(width, height, name, "frame")?;
    let total = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .and_then(|n| n.checked_mul(count))
        .filter(|&n| n <= MAX_FILE_SAMPLES);
    total.ok_or_else(|| {
        Error::input(
            name,
            format!(
                "{count} frame(s) of {width}×{height}×{channels} samples; at most \
                 {MAX_FILE_SAMPLES} samples per file are accepted"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_stem_rule() {
        assert_eq!(stem("a/b/MR_small.dcm"), "MR_small");
        assert_eq!(stem("standard.nii.gz"), "standard");
        assert_eq!(stem("IM0001"), "IM0001");
        assert_eq!(slice_name("ct", None, 3, 1), "ct");
        assert_eq!(slice_name("ct", None, 3, 25), "ct_0003");
        assert_eq!(slice_name("fmri", Some(1), 12, 24), "fmri_v1_0012");
    }

    #[test]
    fn medical_files_are_known_by_extension_or_magic() {
        for name in [
            "x.dcm",
            "X.DICOM",
            "a.nii",
            "dir/a.nii.gz",
            "s.tif",
            "s.TIFF",
        ] {
            assert!(is_medical(name), "{name}");
        }
        for name in ["x.png", "x.jpg", "nii", "a.gz"] {
            assert!(!is_medical(name), "{name}");
        }
        let mut dicom = vec![0u8; 132];
        dicom[128..].copy_from_slice(b"DICM");
        assert!(is_dicom_bytes(&dicom));
        assert_eq!(detect(&dicom, "IM0001"), Some(Format::Dicom));
        assert_eq!(detect(b"hello", "x.txt"), None);
    }

    #[test]
    fn decoded_slices_equal_read_slices_under_every_window() {
        // A 16-bit gray PNG 3×2 with values spread over 0..4000.
        let values: Vec<u16> = vec![0, 500, 1000, 1500, 2500, 4000];
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(3, 2, values).unwrap();
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let decoded = decode(&png, "dir/scan.png", None).unwrap();
        assert_eq!(decoded.names(), ["scan"]);
        assert!(decoded.is_gray());
        assert_eq!(decoded.range(), Some((0.0, 4000.0)));
        for window in [
            None,
            Some(Window::MinMax),
            Some(Window::CenterWidth(1000.0, 800.0)),
        ] {
            let opts = MedicalOptions {
                window,
                volume: None,
            };
            let slices = read_slices(&png, "dir/scan.png", &opts).unwrap();
            assert_eq!(
                decoded.image(0, window.as_ref()).unwrap(),
                slices[0].rgb,
                "{window:?}"
            );
        }
        assert!(decoded.image(1, None).is_err());
        assert!(decode(b"nope", "x.bin", None)
            .unwrap_err()
            .to_string()
            .starts_with("x.bin: not a medical image"));
    }

    #[test]
    fn unknown_bytes_are_refused_with_the_file_name() {
        let e = read_slices(b"not an image", "x.bin", &MedicalOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.bin: not a medical image"), "{e}");
    }
}
