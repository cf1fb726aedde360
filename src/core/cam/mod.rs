//! Class Activation Maps (CAMs) and the standard CAM → pseudo-label step of WSSS pipelines.
//!
//! The conversion is the one of IRN's `eval_cam.py` / `cam_to_ir_label.py` (Ahn et al., CVPR
//! 2019; AMN and ReCAM reuse it) and of SEPL §3.1 (arXiv 2305.05803), which takes such
//! pseudo-labels as input:
//! 1. **per-class max normalisation**: each channel is clamped below at 0 (ReLU) and divided by
//!    its maximum, so its peak is 1 (an all-zero channel stays 0);
//! 2. **background threshold**: the background score is the constant `bg_threshold`
//!    (default 0.25), IRN's `cam_eval_thres` padded in front of the class channels;
//! 3. **argmax over background + present classes**; ties go to background, then to the lower
//!    class id (numpy's `argmax` takes the first maximum of `[bg, classes…]`);
//! 4. optional **ignore band**: where the best and second-best scores (background included) differ
//!    by less than `ignore_margin`, the pixel is 255 (ignore). 0 disables it.
//!
//! Non-finite CAM values (NaN, ±Inf) are treated as 0 — "no evidence" — and counted, so the
//! caller can warn; they never reach a label.
//!
//! A [`Cam`] holds foreground channels only: background is never a channel, it is the threshold.
//!
//! Inputs ([`CamFiles`]):
//! - `.npy` float `(C,H,W)` (any numeric dtype is converted to f32). With `K = num_classes`
//!   (21 for VOC): `C == K − 1` → channel c is class c + 1 (foreground only);
//!   `C == K` → channel 0 is a background channel and is dropped, channel c is class c.
//!   Any other C is an error.
//! - `.npz` with `keys` (the present classes) and `high_res` (preferred) or `cam`
//!   `(len(keys),H,W)`. [`Keys::Foreground`] (default): keys are 0-based foreground indices as
//!   IRN, AMN and ReCAM write them (`torch.nonzero(label)`), so key k is class k + 1.
//!   [`Keys::ClassIds`]: keys are dataset class ids; a key 0 is a background channel and is
//!   dropped. A key outside the dataset's classes is an error, which catches the wrong choice
//!   in most files (e.g. key 20 under `Foreground` with 21 classes).
//! - per-class 8- or 16-bit grayscale heatmap PNGs `<name>_<class id>.png` (0–255 read as 0–1,
//!   16-bit as 0–65535 → 0–1); the class id is a dataset class id written without leading
//!   zeros (so VOC's `2007_000033.png` is not a heatmap); a `_0` heatmap is background and is
//!   dropped. A plain `<name>.png` is always a pseudo-label, never a CAM.
//!
//! Image-level labels come from the CAM itself (its channels) or from a list file
//! ([`read_image_labels`]); given both, the list decides which channels compete.
//!
//! ```
//! use camsam::core::cam::{Cam, CamToLabel};
//! // One foreground class (15, person) on a 1×3 image.
//! let cam = Cam::new(vec![15], 1, 3, vec![0.1, 0.5, 1.0]).unwrap();
//! let out = cam.to_label(None, &CamToLabel::default(), "x.npy").unwrap();
//! // Normalised scores 0.1, 0.5, 1.0 against the background threshold 0.25.
//! assert_eq!(out.label.data, vec![0, 15, 15]);
//! ```

mod dict;

use crate::core::label::{LabelMap, IGNORE, VOC_CLASSES};
use crate::core::npy::{NpyArray, Npz};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// How `.npz` `keys` number the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keys {
    /// 0-based foreground indices (IRN, AMN, ReCAM): key k is class k + 1.
    #[default]
    Foreground,
    /// Dataset class ids (0 = background, whose channel is dropped).
    ClassIds,
}

impl std::fmt::Display for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Keys::Foreground => "foreground",
            Keys::ClassIds => "class-ids",
        })
    }
}

impl std::str::FromStr for Keys {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "foreground" | "irn" => Ok(Keys::Foreground),
            "class-ids" | "ids" => Ok(Keys::ClassIds),
            other => Err(format!(
                "unknown keys convention '{other}': expected foreground (IRN/AMN/ReCAM) or class-ids"
            )),
        }
    }
}

/// How CAM files are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CamOptions {
    /// Number of classes of the dataset, background included (21 for VOC).
    pub num_classes: usize,
    /// How `.npz` keys number the classes.
    pub keys: Keys,
}

impl Default for CamOptions {
    fn default() -> Self {
        CamOptions {
            num_classes: 21,
            keys: Keys::Foreground,
        }
    }
}

/// Foreground class activation maps of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Cam {
    /// The class id of each channel (foreground, 1..=255, distinct).
    pub classes: Vec<u8>,
    pub height: usize,
    pub width: usize,
    /// `classes.len() × height × width` scores, channel-major.
    pub data: Vec<f32>,
    /// The file's own background scores (`height × width`), where its format carries them
    /// (AMN's background channel, a class-id dict's key 0): [`Cam::to_label`] then compares
    /// the classes against these instead of the threshold. `None`: the threshold decides.
    pub background: Option<Vec<f32>>,
}

/// Parameters of the CAM → pseudo-label step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CamToLabel {
    /// The background score, against per-class max-normalised CAMs (0..=1).
    pub bg_threshold: f32,
    /// Pixels whose two best scores differ by less than this become 255 (0 disables).
    pub ignore_margin: f32,
}

impl Default for CamToLabel {
    fn default() -> Self {
        CamToLabel {
            bg_threshold: 0.25,
            ignore_margin: 0.0,
        }
    }
}

impl CamToLabel {
    /// Check both parameters lie in 0..=1.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("--bg-threshold", self.bg_threshold),
            ("--ignore-margin", self.ignore_margin),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::input(
                    what,
                    format!("{v}; expected a number from 0 to 1 (CAMs are max-normalised)"),
                ));
            }
        }
        Ok(())
    }
}

/// A pseudo-label made from a CAM.
#[derive(Debug, Clone, PartialEq)]
pub struct CamLabel {
    pub label: LabelMap,
    /// CAM values that were NaN or infinite (treated as 0).
    pub non_finite: usize,
}

impl Cam {
    /// A CAM of `classes.len()` channels of `height × width`. `classes` must be distinct
    /// foreground ids (no 0) and `data` hold one value per channel and pixel.
    pub fn new(classes: Vec<u8>, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        Self::checked(classes, height, width, data, "CAM")
    }

    fn checked(
        classes: Vec<u8>,
        height: usize,
        width: usize,
        data: Vec<f32>,
        name: &str,
    ) -> Result<Self> {
        check_size(height, width, name)?;
        let mut seen = [false; 256];
        for &c in &classes {
            if c == 0 {
                return Err(Error::input(name, "class 0 (background) as a CAM channel; background is the threshold, not a channel"));
            }
            if std::mem::replace(&mut seen[c as usize], true) {
                return Err(Error::input(
                    name,
                    format!("class {c} has two channels; expected one per class"),
                ));
            }
        }
        if data.len() != classes.len() * height * width {
            return Err(Error::input(
                name,
                format!(
                    "{} values for {} channels of {height}×{width}",
                    data.len(),
                    classes.len()
                ),
            ));
        }
        Ok(Cam {
            classes,
            height,
            width,
            data,
            background: None,
        })
    }

    /// This CAM with the file's own background scores (see [`Cam::background`]).
    pub fn with_background(mut self, background: Vec<f32>, name: &str) -> Result<Self> {
        if background.len() != self.height * self.width {
            return Err(Error::input(
                name,
                format!(
                    "a background map of {} values for a {}×{} CAM",
                    background.len(),
                    self.height,
                    self.width
                ),
            ));
        }
        self.background = Some(background);
        Ok(self)
    }

    /// The scores of channel `i`.
    pub fn channel(&self, i: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[i * n..(i + 1) * n]
    }

    /// A CAM from a `.npy` `(C,H,W)` array; see the module docs for the channel numbering.
    pub fn from_npy(array: &NpyArray, name: &str, opts: &CamOptions) -> Result<Self> {
        let k = opts.num_classes;
        check_num_classes(k)?;
        let [c, h, w] = chw(array, name, "(C,H,W)")?;
        check_size(h, w, name)?;
        let (skip, first_class) = if c + 1 == k {
            (0, 1)
        } else if c == k {
            (1, 1)
        } else {
            return Err(Error::input(
                name,
                format!(
                    "{c} channels; expected {} (foreground classes 1..{}) or {k} (background first) for {k} classes",
                    k - 1,
                    k - 1
                ),
            ));
        };
        let classes = (first_class..k).map(|id| id as u8).collect();
        let mut data = array.to_f32();
        data.drain(..skip * h * w);
        Self::checked(classes, h, w, data, name)
    }

    /// A CAM from a `.npy` file's bytes: a numeric `(C,H,W)` array ([`Cam::from_npy`]) or a
    /// pickled dict as the WSSS code bases `np.save` them ([`dict`]).
    pub fn from_npy_bytes(bytes: &[u8], name: &str, opts: &CamOptions) -> Result<Self> {
        match crate::core::pickle::load_npy_object(bytes, name)? {
            Some(value) => dict::cam_from_dict(value, name, opts),
            None => Self::from_npy(&NpyArray::from_bytes(bytes, name)?, name, opts),
        }
    }

    /// A CAM from an `.npz` archive's bytes holding `keys` and `high_res` or `cam`.
    pub fn from_npz(bytes: &[u8], name: &str, opts: &CamOptions) -> Result<Self> {
        check_num_classes(opts.num_classes)?;
        let mut npz = Npz::new(bytes, name)?;
        if !npz.contains("keys") {
            return Err(Error::input(
                name,
                format!(
                    "no 'keys' array; expected keys plus high_res or cam (it holds: {})",
                    npz.keys().join(", ")
                ),
            ));
        }
        let scores_key = ["high_res", "cam"]
            .into_iter()
            .find(|k| npz.contains(k))
            .ok_or_else(|| {
                Error::input(
                    name,
                    format!(
                        "no 'high_res' or 'cam' array (it holds: {})",
                        npz.keys().join(", ")
                    ),
                )
            })?;
        let keys_array = npz.read("keys")?;
        let keys_name = format!("{name}[keys]");
        if keys_array.shape.len() != 1 {
            return Err(Error::input(
                &keys_name,
                format!(
                    "shape {:?}; expected a 1-D list of class keys",
                    keys_array.shape
                ),
            ));
        }
        let keys = keys_array.to_i64(&keys_name)?;
        let scores = npz.read(scores_key)?;
        let scores_name = format!("{name}[{scores_key}]");
        let [c, h, w] = chw(&scores, &scores_name, "(len(keys),H,W)")?;
        if c != keys.len() {
            return Err(Error::input(
                &scores_name,
                format!(
                    "{c} channels for {} keys; expected one channel per key",
                    keys.len()
                ),
            ));
        }
        check_size(h, w, name)?;
        let mut classes = Vec::with_capacity(keys.len());
        let mut data = Vec::with_capacity(c * h * w);
        let all = scores.to_f32();
        for (i, &key) in keys.iter().enumerate() {
            let class = class_of_key(key, opts, &keys_name)?;
            if class == 0 {
                continue; // a background channel: background is the threshold
            }
            classes.push(class);
            data.extend_from_slice(&all[i * h * w..(i + 1) * h * w]);
        }
        Self::checked(classes, h, w, data, name)
    }

    /// A CAM from per-class heatmap PNGs: `(class id, PNG bytes, file name)`.
    pub fn from_heatmaps(maps: &[(u8, Vec<u8>, String)], opts: &CamOptions) -> Result<Self> {
        check_num_classes(opts.num_classes)?;
        let mut sorted: Vec<&(u8, Vec<u8>, String)> = maps.iter().collect();
        sorted.sort_by_key(|m| m.0);
        let mut classes = Vec::new();
        let mut data = Vec::new();
        let mut size: Option<(usize, usize, &str)> = None;
        for (class, bytes, file) in sorted {
            if *class as usize >= opts.num_classes {
                return Err(Error::input(
                    file,
                    format!(
                        "class id {class} in the file name; expected 1..{} for {} classes",
                        opts.num_classes - 1,
                        opts.num_classes
                    ),
                ));
            }
            let (w, h, values) = decode_gray_png(bytes, file, "heatmap")?;
            match size {
                Some((sw, sh, first)) if (sw, sh) != (w, h) => {
                    return Err(Error::input(
                        file,
                        format!("{w}×{h} heatmap; {first} of the same image is {sw}×{sh}"),
                    ))
                }
                _ => size = Some((w, h, file)),
            }
            if *class == 0 {
                continue; // a background heatmap: background is the threshold
            }
            classes.push(*class);
            data.extend(values);
        }
        let (w, h, first) = size.ok_or_else(|| Error::input("heatmaps", "no heatmap given"))?;
        Self::checked(classes, h, w, data, first)
    }

    /// Read the CAM of one image from its files.
    pub fn read(files: &CamFiles, opts: &CamOptions) -> Result<Self> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p, e));
        match files {
            CamFiles::Npy(p) => Self::from_npy_bytes(&read(p)?, &p.display().to_string(), opts),
            CamFiles::Npz(p) => Self::from_npz(&read(p)?, &p.display().to_string(), opts),
            CamFiles::Heatmaps(list) => {
                let maps = list
                    .iter()
                    .map(|(c, p)| Ok((*c, read(p)?, p.display().to_string())))
                    .collect::<Result<Vec<_>>>()?;
                Self::from_heatmaps(&maps, opts)
            }
        }
    }

    /// The pseudo-label of this CAM (see the module docs). `present`: the image-level labels
    /// (class ids; 0 and repeats ignored) — only those channels compete, and each must exist;
    /// `None`: every channel competes. `name` (the CAM file) is used in errors.
    pub fn to_label(
        &self,
        present: Option<&[u8]>,
        params: &CamToLabel,
        name: &str,
    ) -> Result<CamLabel> {
        params.validate()?;
        let channels: Vec<usize> = match present {
            None => (0..self.classes.len()).collect(),
            Some(ids) => self
                .present_channels(ids, name)?
                .into_iter()
                .map(|(_, i)| i)
                .collect(),
        };
        // Visit channels by ascending class id so ties go to the lower id.
        let mut channels = channels;
        channels.sort_by_key(|&i| self.classes[i]);

        let n = self.height * self.width;
        let mut non_finite = 0usize;
        let mut scale = Vec::with_capacity(channels.len());
        for &ch in &channels {
            let mut max = 0.0f32;
            for &v in self.channel(ch) {
                if v.is_finite() {
                    max = max.max(v);
                } else {
                    non_finite += 1;
                }
            }
            scale.push(if max > 0.0 { 1.0 / max } else { 0.0 });
        }
        let mut best = match &self.background {
            Some(bg) => bg
                .iter()
                .map(|&v| if v.is_finite() { v.max(0.0) } else { 0.0 })
                .collect(),
            None => vec![params.bg_threshold; n],
        };
        let mut second = vec![f32::NEG_INFINITY; n];
        let mut label = vec![0u8; n];
        for (&ch, &s) in channels.iter().zip(&scale) {
            let class = self.classes[ch];
            for (p, &v) in self.channel(ch).iter().enumerate() {
                let v = if v.is_finite() { v.max(0.0) * s } else { 0.0 };
                // Guard against rounding past 1 (v·(1/max) can exceed 1 by an ulp).
                let v = v.min(1.0);
                if v > best[p] {
                    second[p] = best[p];
                    best[p] = v;
                    label[p] = class;
                } else if v > second[p] {
                    second[p] = v;
                }
            }
        }
        if params.ignore_margin > 0.0 {
            for p in 0..n {
                if best[p] - second[p] < params.ignore_margin {
                    label[p] = IGNORE;
                }
            }
        }
        Ok(CamLabel {
            label: LabelMap::new(self.width, self.height, label)?,
            non_finite,
        })
    }
}

/// The class id of a CAM file's key under `opts.keys` (0: a background channel); an error,
/// naming `name`, when it is outside the dataset's classes.
fn class_of_key(key: i64, opts: &CamOptions, name: &str) -> Result<u8> {
    let k = opts.num_classes as i64;
    let class = match opts.keys {
        Keys::Foreground => key.saturating_add(1),
        Keys::ClassIds => key,
    };
    if class < 0 || class >= k {
        let range = match opts.keys {
            Keys::Foreground => format!("0..{} (0-based foreground, IRN style)", k - 2),
            Keys::ClassIds => format!("0..{} (class ids)", k - 1),
        };
        return Err(Error::input(
            name,
            format!("key {key}; expected keys in {range} for {k} classes — check --keys and --num-classes"),
        ));
    }
    Ok(class as u8)
}

fn class_name(c: u8) -> String {
    VOC_CLASSES
        .get(c as usize)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default()
}

fn check_num_classes(k: usize) -> Result<()> {
    if !(2..=255).contains(&k) {
        return Err(Error::input(
            "--num-classes",
            format!("{k}; expected 2 to 255 classes (background included; 255 is the ignore id)"),
        ));
    }
    Ok(())
}

fn check_size(h: usize, w: usize, name: &str) -> Result<()> {
    crate::limits::check_pixels(w, h, name, "CAM")
}

fn chw(array: &NpyArray, name: &str, expected: &str) -> Result<[usize; 3]> {
    match array.shape[..] {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(Error::input(
            name,
            format!(
                "array of shape {:?}; expected a 3-D CAM {expected}",
                array.shape
            ),
        )),
    }
}

/// Decode an 8- or 16-bit grayscale PNG (a CAM heatmap, a saliency map: `what`) to values in
/// 0..=1: `(width, height, values)`.
pub fn decode_gray_png(bytes: &[u8], name: &str, what: &str) -> Result<(usize, usize, Vec<f32>)> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder
        .read_info()
        .map_err(|e| Error::input(name, format!("not a readable PNG ({e})")))?;
    let (color, depth, w, h) = {
        let info = reader.info();
        (
            info.color_type,
            info.bit_depth,
            info.width as usize,
            info.height as usize,
        )
    };
    let wide = match (color, depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => false,
        (png::ColorType::Grayscale, png::BitDepth::Sixteen) => true,
        _ => {
            return Err(Error::input(
                name,
                format!(
                    "{color:?} {}-bit PNG; expected an 8- or 16-bit grayscale {what}",
                    depth as u8
                ),
            ))
        }
    };
    check_size(h, w, name)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::input(name, "PNG too large to decode"))?;
    let mut buf = vec![0u8; size];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| Error::input(name, format!("corrupt PNG data ({e})")))?;
    let stride = frame.line_size;
    let mut values = Vec::with_capacity(w * h);
    for row in buf[..stride * h].chunks_exact(stride) {
        if wide {
            values.extend(
                row[..2 * w]
                    .chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) as f32 / 65535.0),
            );
        } else {
            values.extend(row[..w].iter().map(|&b| b as f32 / 255.0));
        }
    }
    Ok((w, h, values))
}

/// Where one image's CAM lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CamFiles {
    Npy(PathBuf),
    Npz(PathBuf),
    /// `(class id, file)` per heatmap.
    Heatmaps(Vec<(u8, PathBuf)>),
}

/// The CAMs found in a folder, by image name, and what was skipped.
#[derive(Debug, Default)]
pub struct CamDir {
    pub cams: BTreeMap<String, CamFiles>,
    /// Plain `<name>.png` files (pseudo-labels, not CAMs) and other files ignored.
    pub skipped: Vec<PathBuf>,
}

/// Split a heatmap file stem `<name>_<class id>` (id without leading zeros, ≤ 255).
pub fn heatmap_stem(stem: &str) -> Option<(&str, u8)> {
    let (name, id) = stem.rsplit_once('_')?;
    if name.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if id.len() > 1 && id.starts_with('0') {
        return None;
    }
    id.parse::<u8>().ok().map(|c| (name, c))
}

/// Find the CAMs in `dir`: `<name>.npy`, `<name>.npz`, `<name>_<class id>.png`. A plain
/// `<name>.png` is a pseudo-label and is skipped; so is a `<name>_<id>.png` whose whole stem
/// is in `names` (when given). Two kinds of CAM for one name is an error.
pub fn scan_dir(dir: &Path, names: Option<&std::collections::HashSet<String>>) -> Result<CamDir> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = CamDir::default();
    let mut heatmaps: BTreeMap<String, Vec<(u8, PathBuf)>> = BTreeMap::new();
    let mut single: BTreeMap<String, CamFiles> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            out.skipped.push(path);
            continue;
        };
        let stem = stem.to_string();
        match ext {
            "npy" | "npz" => {
                let files = if ext == "npy" {
                    CamFiles::Npy(path.clone())
                } else {
                    CamFiles::Npz(path.clone())
                };
                if let Some(prev) = single.insert(stem.clone(), files) {
                    return Err(two_cams(&stem, &prev, &path));
                }
            }
            "png" => match heatmap_stem(&stem) {
                Some(_) if names.is_some_and(|n| n.contains(&stem)) => out.skipped.push(path),
                Some((name, class)) => heatmaps
                    .entry(name.to_string())
                    .or_default()
                    .push((class, path)),
                None => out.skipped.push(path),
            },
            _ => out.skipped.push(path),
        }
    }
    for (name, mut list) in heatmaps {
        list.sort();
        if let Some(prev) = single.get(&name) {
            return Err(two_cams(&name, prev, &list[0].1));
        }
        single.insert(name, CamFiles::Heatmaps(list));
    }
    out.cams = single;
    out.skipped.sort();
    Ok(out)
}

fn two_cams(name: &str, prev: &CamFiles, path: &Path) -> Error {
    let prev = match prev {
        CamFiles::Npy(p) | CamFiles::Npz(p) => p.display().to_string(),
        CamFiles::Heatmaps(l) => l
            .first()
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_default(),
    };
    Error::input(
        path.display().to_string(),
        format!("a second CAM for image '{name}' (also {prev}); expected one .npy, .npz or set of heatmaps per image"),
    )
}

/// Read image-level labels: image name → present foreground class ids (ascending).
///
/// Accepted layouts (blank lines and `#` comments skipped):
/// - a TSV whose first line is a header with a `classes` (or `labels`) column: the image
///   name is the first column, classes the named column, e.g. `voc_id⇥source_file⇥classes` /
///   `2008_006874⇥…⇥motorbike,person`;
/// - otherwise one image per line: `<name> <class> <class> …`, classes separated by spaces,
///   commas or tabs, an optional `:` after the name.
///
/// A class is a number (a class id; 0 = background, ignored) or a VOC class name
/// (case-insensitive, with 21 classes). Unknown names, ids ≥ `num_classes` and repeated images
/// are errors naming the file and line.
pub fn read_image_labels(path: &Path, num_classes: usize) -> Result<BTreeMap<String, Vec<u8>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_image_labels(&text, &path.display().to_string(), num_classes)
}

/// [`read_image_labels`] on text; `file` is used in errors.
pub fn parse_image_labels(
    text: &str,
    file: &str,
    num_classes: usize,
) -> Result<BTreeMap<String, Vec<u8>>> {
    check_num_classes(num_classes)?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .peekable();
    let mut column = None;
    if let Some((_, first)) = lines.peek() {
        let cols: Vec<&str> = first.split('\t').map(str::trim).collect();
        if let Some(i) = cols
            .iter()
            .position(|c| c.eq_ignore_ascii_case("classes") || c.eq_ignore_ascii_case("labels"))
        {
            if i > 0 {
                column = Some(i);
                lines.next();
            }
        }
    }
    let mut out = BTreeMap::new();
    for (line_no, line) in lines {
        let at = format!("{file}:{line_no}");
        let (name, classes) = match column {
            Some(i) => {
                let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
                let name = cols.first().copied().unwrap_or("");
                (name, cols.get(i).copied().unwrap_or(""))
            }
            None => {
                let line = line.trim();
                let end = line
                    .find(|c: char| c.is_whitespace() || c == ':' || c == ',')
                    .unwrap_or(line.len());
                let rest = line[end..].trim_start();
                (
                    &line[..end],
                    rest.strip_prefix(':').unwrap_or(rest).trim_start(),
                )
            }
        };
        if name.is_empty() {
            return Err(Error::input(
                &at,
                "no image name; expected `<name> <classes…>`",
            ));
        }
        let mut ids = Vec::new();
        for token in classes
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '|')
            .filter(|t| !t.is_empty())
        {
            let id = parse_class(token, num_classes).map_err(|m| Error::input(&at, m))?;
            if id != 0 {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        if out.insert(name.to_string(), ids).is_some() {
            return Err(Error::input(
                &at,
                format!("image '{name}' listed twice; expected one line per image"),
            ));
        }
    }
    Ok(out)
}

fn parse_class(token: &str, num_classes: usize) -> std::result::Result<u8, String> {
    if token.bytes().all(|b| b.is_ascii_digit()) {
        return match token.parse::<usize>() {
            Ok(id) if id < num_classes => Ok(id as u8),
            _ => Err(format!(
                "class id {token}; expected 0..{} for {num_classes} classes",
                num_classes - 1
            )),
        };
    }
    if num_classes == VOC_CLASSES.len() {
        let t = token.to_ascii_lowercase();
        if let Some(i) = VOC_CLASSES.iter().position(|n| *n == t) {
            return Ok(i as u8);
        }
    }
    Err(format!(
        "unknown class '{token}'; expected a class id{}",
        if num_classes == VOC_CLASSES.len() {
            " or a VOC class name (aeroplane, bicycle, …, tvmonitor)"
        } else {
            " (class names are known for the 21 VOC classes only)"
        }
    ))
}

/// CAM operations the SAM-based refiners share (CPM, PAMR).
impl Cam {
    /// `(class id, channel)` of each class in `ids` (0 and repeats ignored), by ascending id;
    /// an error naming `name` when a class has no channel.
    fn present_channels(&self, ids: &[u8], name: &str) -> Result<Vec<(u8, usize)>> {
        let mut wanted: Vec<u8> = ids.iter().copied().filter(|&c| c != 0).collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted
            .into_iter()
            .map(|c| {
                let i = self.classes.iter().position(|&k| k == c).ok_or_else(|| {
                    Error::input(
                        name,
                        format!(
                            "the image-level labels list class {c}{} but the CAM has no channel for it (channels: {:?})",
                            class_name(c),
                            self.classes
                        ),
                    )
                })?;
                Ok((c, i))
            })
            .collect()
    }

    /// Only the channels of `present` (class ids; 0 and repeats ignored), in ascending class
    /// order; `None` keeps every channel. Errors, naming `name`, when a present class has no
    /// channel.
    pub fn select(&self, present: Option<&[u8]>, name: &str) -> Result<Cam> {
        let Some(ids) = present else {
            return Ok(self.clone());
        };
        let present = self.present_channels(ids, name)?;
        let n = self.height * self.width;
        let mut data = Vec::with_capacity(present.len() * n);
        for &(_, i) in &present {
            data.extend_from_slice(self.channel(i));
        }
        let wanted = present.into_iter().map(|(c, _)| c).collect();
        let cam = Cam::new(wanted, self.height, self.width, data)?;
        match &self.background {
            Some(bg) => cam.with_background(bg.clone(), name),
            None => Ok(cam),
        }
    }

    /// Per-class max normalisation (step 1 of the module docs): each channel clamped below at
    /// 0 and divided by its maximum; non-finite values become 0; an all-zero channel stays 0.
    pub fn normalised(&self) -> Cam {
        let n = self.height * self.width;
        let mut data = Vec::with_capacity(self.data.len());
        for ch in 0..self.classes.len() {
            let channel = &self.data[ch * n..(ch + 1) * n];
            let clean = |v: f32| if v.is_finite() { v.max(0.0) } else { 0.0 };
            let max = channel.iter().map(|&v| clean(v)).fold(0.0f32, f32::max);
            let scale = if max > 0.0 { 1.0 / max } else { 0.0 };
            data.extend(channel.iter().map(|&v| clean(v) * scale));
        }
        Cam {
            classes: self.classes.clone(),
            height: self.height,
            width: self.width,
            data,
            background: self.background.clone(),
        }
    }

    /// Bilinear resize of every channel to `height × width` (PyTorch's `F.interpolate`,
    /// `align_corners=False`, as WSSS code up-samples CAMs); a copy when the size matches.
    pub fn resized(&self, height: usize, width: usize) -> Result<Cam> {
        if (height, width) == (self.height, self.width) {
            return Ok(self.clone());
        }
        check_size(height, width, "resized CAM")?;
        let plan = crate::sam::postprocess::Bilinear::new(
            (self.height, self.width),
            (height, width),
            (height, width),
        );
        let n = self.height * self.width;
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        let mut data = Vec::with_capacity(self.classes.len() * height * width);
        for ch in 0..self.classes.len() {
            plan.apply(&self.data[ch * n..(ch + 1) * n], &mut out, &mut tmp);
            data.extend_from_slice(&out);
        }
        let cam = Cam::new(self.classes.clone(), height, width, data)?;
        match &self.background {
            Some(bg) => {
                plan.apply(bg, &mut out, &mut tmp);
                cam.with_background(out, "resized CAM")
            }
            None => Ok(cam),
        }
    }
}

#[cfg(test)]
mod refiner_helper_tests {
    use super::*;

    #[test]
    fn select_normalise_resize() {
        let cam = Cam::new(vec![4, 2], 1, 2, vec![2.0, -1.0, f32::NAN, 0.5]).unwrap();
        let sel = cam.select(Some(&[0, 2, 4, 2]), "c.npy").unwrap();
        assert_eq!(sel.classes, vec![2, 4]);
        assert_eq!(sel.channel(1), &[2.0, -1.0]);
        assert!(cam
            .select(Some(&[7]), "c.npy")
            .unwrap_err()
            .to_string()
            .contains("c.npy"));
        let norm = cam.normalised();
        assert_eq!(norm.data, vec![1.0, 0.0, 0.0, 1.0]);
        // 1×2 → 1×4, align_corners=False: sources −0.25→0, 0.25, 0.75, 1.25→1.
        let big = norm.resized(1, 4).unwrap();
        assert_eq!(big.channel(0), &[1.0, 0.75, 0.25, 0.0]);
        assert_eq!(big.channel(1), &[0.0, 0.25, 0.75, 1.0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_stems() {
        assert_eq!(heatmap_stem("2007_000033_15"), Some(("2007_000033", 15)));
        assert_eq!(heatmap_stem("2007_000033"), None); // leading zeros: not a class id
        assert_eq!(heatmap_stem("img_0"), Some(("img", 0)));
        assert_eq!(heatmap_stem("img_256"), None);
        assert_eq!(heatmap_stem("_3"), None);
        assert_eq!(heatmap_stem("plain"), None);
    }

    #[test]
    fn labels_tsv_with_header_and_plain_lists() {
        let tsv = "voc_id\tsource_file\tclasses\n2007_000033\ts/0.png\taeroplane\n2008_006874\ts/1.png\tmotorbike,person\n";
        let m = parse_image_labels(tsv, "l.tsv", 21).unwrap();
        assert_eq!(m["2007_000033"], vec![1]);
        assert_eq!(m["2008_006874"], vec![14, 15]);
        let plain = "# comment\na 15 1\nb: Person, dog\nc\n";
        let m = parse_image_labels(plain, "l.txt", 21).unwrap();
        assert_eq!(m["a"], vec![1, 15]);
        assert_eq!(m["b"], vec![12, 15]);
        assert_eq!(m["c"], Vec::<u8>::new());
        let e = parse_image_labels("a unicorn\n", "l.txt", 21).unwrap_err();
        assert!(
            e.to_string().contains("l.txt:1") && e.to_string().contains("unicorn"),
            "{e}"
        );
        let e = parse_image_labels("a 21\n", "l.txt", 21).unwrap_err();
        assert!(e.to_string().contains("l.txt:1"), "{e}");
        let e = parse_image_labels("a 1\na 2\n", "l.txt", 21).unwrap_err();
        assert!(e.to_string().contains("l.txt:2"), "{e}");
    }
}
