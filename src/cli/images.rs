//! How the commands read images: one path → RGB image(s), for plain images and medical files
//! alike, and the `--window` / `--volume` (and `--slice`) flags that say how.
//!
//! - A PNG or JPEG is read as before (`sam::preprocess::decode_rgb`), named by its file stem;
//!   a 16-bit gray PNG is a medical raster instead (windowed, not divided by 257).
//! - A medical file (DICOM, NIfTI, TIFF; DICOM without an extension by its `DICM` magic)
//!   becomes its slices through [`camsam::medical`], each the 8-bit windowed RGB image named
//!   as `camsam convert` names it (`<stem>`, `<stem>_<K>`, `<stem>_v<N>_<K>`).
//!
//! Single-image commands (`embed`, `predict`, `everything`) take [`ImageArgs`]: a single-slice
//! file works as it is, a multi-slice one needs `--slice K`. Dataset commands (`refine`,
//! `merge --images`, `cam2label --images`) open the folder once as an [`ImageFolder`] and look
//! each name up: `<name>.jpg/.jpeg/.png` first (as before), else the medical file whose slice
//! is named `<name>` (a CAM `ct_0003` finds slice 3 of `ct.nii.gz` or `ct.dcm`).

use camsam::medical::{self, MedicalOptions, Window};
use camsam::{Error, Result};
use image::RgbImage;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Plain image extensions looked for in an image folder, in this order.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "JPG", "PNG"];

pub const WINDOW_HELP: &str = "\
How gray values of medical images map onto 0..255:
  file      the DICOM's first WindowCenter/WindowWidth (DICOM's linear VOI function)
  minmax    the file's smallest value → 0, largest → 255
  C,W       a centre and width, e.g. 40,400 (in modality units, e.g. HU)
  ct-lung (-600,1500), ct-soft (40,400), ct-bone (400,1800), ct-brain (40,80)
Default: file when the DICOM has a window, else minmax. Colour images keep their RGB;
plain 8-bit PNG/JPEG images are not windowed.";

/// The flags of every command that reads medical images: the window and the 4-D volume.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MedicalArgs {
    /// Window for gray medical images: file, minmax, C,W or a preset.
    #[arg(long, value_name = "WINDOW", long_help = WINDOW_HELP, allow_hyphen_values = true)]
    pub window: Option<Window>,

    /// The volume of a 4-D NIfTI to slice (0-based).
    #[arg(long, value_name = "N")]
    pub volume: Option<usize>,
}

impl MedicalArgs {
    pub fn options(&self) -> MedicalOptions {
        MedicalOptions {
            window: self.window,
            volume: self.volume,
        }
    }
}

/// `--image FILE [--slice K] [--window …] [--volume N]` of the single-image commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    /// The image: PNG or JPEG, or a medical file (DICOM, NIfTI .nii/.nii.gz, TIFF, 16-bit
    /// gray PNG).
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,

    /// The slice of a multi-slice medical file (0-based K of <stem>_<K>, as `camsam convert`
    /// names them); required when the file has more than one.
    #[arg(long, value_name = "K")]
    pub slice: Option<usize>,

    #[command(flatten)]
    pub medical: MedicalArgs,
}

impl ImageArgs {
    /// The one RGB image these flags pick.
    pub fn read(&self) -> Result<RgbImage> {
        read_one(&self.image, &self.medical.options(), self.slice)
    }
}

/// One image read from a path: its name (file stem or slice name) and 8-bit RGB pixels.
#[derive(Debug, Clone)]
pub struct NamedImage {
    pub name: String,
    pub rgb: RgbImage,
}

/// Whether the file `bytes` (named `name`) goes through [`camsam::medical`]: DICOM, NIfTI,
/// TIFF, and PNGs with 16-bit gray samples.
fn is_medical_bytes(bytes: &[u8], name: &str) -> bool {
    match medical::detect(bytes, name) {
        Some(medical::Format::Dicom | medical::Format::Nifti) => true,
        Some(medical::Format::Raster) if bytes.starts_with(b"\x89PNG\r\n\x1a\n") => {
            image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png)
                .into_decoder()
                .is_ok_and(|d| {
                    use image::ImageDecoder;
                    matches!(
                        d.color_type(),
                        image::ColorType::L16 | image::ColorType::La16
                    )
                })
        }
        Some(medical::Format::Raster) => true,
        None => false,
    }
}

/// Every image of the file `bytes` (named `name`, a path): one for a plain image, one per
/// slice for a medical file.
pub fn decode_all(bytes: &[u8], name: &str, opts: &MedicalOptions) -> Result<Vec<NamedImage>> {
    if is_medical_bytes(bytes, name) {
        Ok(medical::read_slices(bytes, name, opts)?
            .into_iter()
            .map(|s| NamedImage {
                name: s.name,
                rgb: s.rgb,
            })
            .collect())
    } else {
        Ok(vec![NamedImage {
            name: medical::stem(name).to_string(),
            rgb: camsam::sam::preprocess::decode_rgb(bytes, name)?,
        }])
    }
}

/// Every image of the file at `path` (see [`decode_all`]).
pub fn read_all(path: &Path, opts: &MedicalOptions) -> Result<Vec<NamedImage>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_all(&bytes, &path.display().to_string(), opts)
}

/// The image at `path` for a single-image command: its only image, or slice `slice` of a
/// multi-slice medical file.
pub fn read_one(path: &Path, opts: &MedicalOptions, slice: Option<usize>) -> Result<RgbImage> {
    let mut images = read_all(path, opts)?;
    let name = path.display().to_string();
    let count = images.len();
    let range = |images: &[NamedImage]| match images {
        [] => String::new(),
        [one] => one.name.clone(),
        [first, .., last] => format!("{} … {}", first.name, last.name),
    };
    match (slice, count) {
        (None | Some(0), 1) => Ok(images.swap_remove(0).rgb),
        (None, _) => Err(Error::input(
            name,
            format!(
                "{count} slices ({}); pick one with --slice K (0 to {})",
                range(&images),
                count - 1
            ),
        )),
        (Some(k), _) if k >= count => Err(Error::input(
            name,
            format!(
                "--slice {k}: the file has {count} slice(s) ({}), 0 to {}",
                range(&images),
                count - 1
            ),
        )),
        (Some(k), _) => Ok(images.swap_remove(k).rgb),
    }
}

/// A cache key: the file and the volume read from it.
type Key = (PathBuf, Option<usize>);

/// A decoded medical file: its slices' names and images.
type Decoded = Arc<Vec<NamedImage>>;

/// A cache slot: decoded once by whichever thread gets there first, the others wait on it.
/// Errors are kept as `(file, message)` (camsam's `Error` is not `Clone`).
type Slot = Arc<OnceLock<std::result::Result<Decoded, (String, String)>>>;

/// The images of a dataset folder (`--images DIR`), looked up by name. The folder is listed
/// once; a medical file is decoded once per run and its slices' 8-bit images (not their
/// values) are kept in a small LRU cache: one file per worker thread, at least two, so the
/// batch runner's threads, each on its own run of consecutive names, do not evict each
/// other's volume. Memory is then about threads × (slices × width × height × 3) bytes, e.g.
/// 240 MB per 300-slice 512×512 CT.
pub struct ImageFolder {
    dir: PathBuf,
    opts: MedicalOptions,
    /// Medical files by slice-name stem (the file name up to its first dot).
    medical: BTreeMap<String, Vec<PathBuf>>,
    cache: Mutex<VecDeque<(Key, Slot)>>,
    capacity: usize,
}

/// An image found for a name: where it came from (for messages) and its pixels.
pub struct Found {
    /// The file, and the slice name for a slice of a multi-slice file.
    pub source: String,
    pub rgb: RgbImage,
}

impl ImageFolder {
    /// List `dir` once.
    pub fn open(dir: &Path, opts: MedicalOptions) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::input(
                dir.display().to_string(),
                "not a folder; expected a folder of images <name>.jpg/.jpeg/.png or medical files",
            ));
        }
        let mut medical: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for path in medical::folder_files(dir)? {
            let name = path.display().to_string();
            medical
                .entry(medical::stem(&name).to_string())
                .or_default()
                .push(path);
        }
        Ok(ImageFolder {
            dir: dir.to_path_buf(),
            opts,
            medical,
            cache: Mutex::new(VecDeque::new()),
            capacity: rayon::current_num_threads().max(2),
        })
    }

    /// The image named `name`: `DIR/<name>.jpg|.jpeg|.png` (the first that exists), else the
    /// slice `name` of a medical file (`<stem>`, `<stem>_<K>`, `<stem>_v<N>_<K>`; the volume
    /// of a 4-D NIfTI comes from the name, else from --volume).
    pub fn get(&self, name: &str) -> Result<Found> {
        if let Some(path) = IMAGE_EXTENSIONS
            .iter()
            .map(|ext| self.dir.join(format!("{name}.{ext}")))
            .find(|p| p.is_file())
        {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let source = path.display().to_string();
            let mut images = decode_all(&bytes, &source, &self.opts)?;
            // A plain image or a 16-bit gray PNG: one image.
            return Ok(Found {
                source,
                rgb: images.swap_remove(0).rgb,
            });
        }
        for (stem, volume) in candidates(name) {
            let Some(files) = self.medical.get(stem) else {
                continue;
            };
            let file = match files.as_slice() {
                [one] => one,
                many => {
                    return Err(Error::input(
                        self.dir.join(name).display().to_string(),
                        format!(
                            "{} files have the stem {stem} ({}); keep one per stem",
                            many.len(),
                            many.iter()
                                .map(|p| p.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            };
            let volume = volume.or(self.opts.volume);
            let images = self.decoded(file, volume)?;
            if let Some(found) = images.iter().find(|i| i.name == name) {
                return Ok(Found {
                    source: format!("{} (slice {name})", file.display()),
                    rgb: found.rgb.clone(),
                });
            }
            if images.len() == 1 && stem == name {
                return Ok(Found {
                    source: file.display().to_string(),
                    rgb: images[0].rgb.clone(),
                });
            }
            let range = match images.as_slice() {
                [] => String::new(),
                [one] => one.name.clone(),
                [first, .., last] => format!("{} … {}", first.name, last.name),
            };
            return Err(Error::input(
                file.display().to_string(),
                format!(
                    "no slice named {name}: the file has {} slice(s) named {range}",
                    images.len()
                ),
            ));
        }
        Err(Error::input(
            self.dir.join(name).display().to_string(),
            "no image for this name; expected <name>.jpg, .jpeg or .png, or a medical file \
             (.dcm, .nii, .nii.gz, .tif) with a slice named so (<stem>_<K> is slice K of \
             <stem>.nii.gz)",
        ))
    }

    /// The slices of `file` (volume `volume`), from the cache or decoded now.
    fn decoded(&self, file: &Path, volume: Option<usize>) -> Result<Decoded> {
        let key = (file.to_path_buf(), volume);
        let slot: Slot = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    let entry = cache.remove(i).expect("index from position");
                    let slot = entry.1.clone();
                    cache.push_front(entry);
                    slot
                }
                None => {
                    let slot: Slot = Arc::default();
                    cache.push_front((key, slot.clone()));
                    cache.truncate(self.capacity);
                    slot
                }
            }
        };
        let opts = MedicalOptions {
            volume,
            ..self.opts.clone()
        };
        slot.get_or_init(|| match read_all(file, &opts) {
            Ok(images) => Ok(Arc::new(images)),
            Err(Error::Input {
                source_name,
                message,
            }) => Err((source_name, message)),
            Err(e) => Err((file.display().to_string(), e.to_string())),
        })
        .clone()
        .map_err(|(file, message)| Error::input(file, message))
    }
}

/// The (stem, volume) a slice name may come from, most literal first: `name` itself (a
/// single-slice file), `<stem>_<K>`, `<stem>_v<N>_<K>`, `<stem>_v<N>`.
fn candidates(name: &str) -> Vec<(&str, Option<usize>)> {
    /// `text` without a trailing `_<digits>` (with `prefix` before the digits), and the number.
    fn strip<'a>(text: &'a str, prefix: &str) -> Option<(&'a str, usize)> {
        let (head, tail) = text.rsplit_once('_')?;
        let digits = tail.strip_prefix(prefix)?;
        if head.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((head, digits.parse().ok()?))
    }
    let mut out = vec![(name, None)];
    if let Some((stem, _)) = strip(name, "") {
        out.push((stem, None));
        if let Some((stem, v)) = strip(stem, "v") {
            out.push((stem, Some(v)));
        }
    }
    if let Some((stem, v)) = strip(name, "v") {
        out.push((stem, Some(v)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: image::DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
        bytes
    }

    #[test]
    fn sixteen_bit_gray_pngs_are_windowed_and_8_bit_ones_are_not() {
        // A 12-bit CT-like ramp: divided by 257 it would be nearly black (≤ 16).
        let ramp = image::ImageBuffer::from_fn(4, 2, |x, y| {
            image::Luma([1000 + 400 * x as u16 + 1600 * y as u16])
        });
        let bytes = png(image::DynamicImage::ImageLuma16(ramp));
        let images = decode_all(&bytes, "dir/ct.png", &MedicalOptions::default()).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].name, "ct");
        let levels: Vec<u8> = images[0].rgb.pixels().map(|p| p.0[0]).collect();
        assert_eq!((levels[0], levels[7]), (0, 255), "{levels:?}");
        let lung = MedicalOptions {
            window: Some("ct-lung".parse().unwrap()),
            volume: None,
        };
        let windowed = decode_all(&bytes, "ct.png", &lung).unwrap();
        assert_ne!(windowed[0].rgb, images[0].rgb);

        // 8-bit: exactly the plain decoder's RGB, whatever the window.
        let gray =
            image::ImageBuffer::from_fn(4, 2, |x, y| image::Luma([(10 + 30 * x + 7 * y) as u8]));
        let bytes = png(image::DynamicImage::ImageLuma8(gray));
        let plain = camsam::sam::preprocess::decode_rgb(&bytes, "a.png").unwrap();
        let got = decode_all(&bytes, "a.png", &lung).unwrap();
        assert_eq!((got.len(), got[0].rgb.clone()), (1, plain));
    }

    #[test]
    fn slice_names_point_at_their_files() {
        assert_eq!(candidates("cat"), [("cat", None)]);
        assert_eq!(candidates("ct_0003"), [("ct_0003", None), ("ct", None)]);
        assert_eq!(
            candidates("MR_small_0012"),
            [("MR_small_0012", None), ("MR_small", None)]
        );
        assert_eq!(
            candidates("fmri_v1_0012"),
            [("fmri_v1_0012", None), ("fmri_v1", None), ("fmri", Some(1))]
        );
        assert_eq!(
            candidates("fmri_v2"),
            [("fmri_v2", None), ("fmri", Some(2))]
        );
        assert_eq!(candidates("_0003"), [("_0003", None)]);
        assert_eq!(candidates("a_03x"), [("a_03x", None)]);
    }
}
