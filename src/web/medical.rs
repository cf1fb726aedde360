//! Bindings of the medical readers (`crate::medical`) for the worker: a file decoded once and
//! kept (its slices' values stay in wasm), each slice drawn under a window by the library's
//! window rule; series order of DICOM files; windows and their presets; labels back to a
//! NIfTI volume on the reference's grid. Conversions only; the logic is in `medical`.

use super::{js_err, js_error, Label};
use crate::core::label::LabelMap;
use crate::core::overlay::RgbImage;
use crate::medical::{self, Decoded, Format, SeriesPosition, Window, PRESETS};
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

/// A window from the page: `file`, `minmax`, a preset name or `C,W`; refused as `bad-input`.
fn parse_window(window: &str) -> Result<Window, JsValue> {
    window
        .parse::<Window>()
        .map_err(|e| js_error("bad-input", &format!("window: {e}")))
}

/// Whether a file is read as a medical image rather than as an ordinary picture: by name
/// (`.dcm`, `.dicom`, `.nii`, `.nii.gz`, `.tif`, `.tiff`), by the DICOM magic (`DICM` at byte
/// 128: series files without an extension), or a 16-bit PNG (its samples are values that an
/// 8-bit reading would squash). `head`: at least the file's first 132 bytes.
#[wasm_bindgen(js_name = isMedical)]
pub fn is_medical(head: &[u8], name: &str) -> bool {
    // A PNG's IHDR is the first chunk: bit depth at byte 24.
    let png16 = head.starts_with(b"\x89PNG\r\n\x1a\n")
        && head.get(12..16) == Some(b"IHDR".as_slice())
        && head.get(24) == Some(&16);
    medical::is_medical(name) || medical::is_dicom_bytes(head) || png16
}

/// The named windows (the library's CT presets) as `[{name, center, width}]`.
#[wasm_bindgen(js_name = windowPresets)]
pub fn window_presets() -> js_sys::Array {
    let out = js_sys::Array::new();
    for (name, center, width) in PRESETS {
        let o = js_sys::Object::new();
        // Setting a property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&o, &"name".into(), &name.into());
        let _ = js_sys::Reflect::set(&o, &"center".into(), &center.into());
        let _ = js_sys::Reflect::set(&o, &"width".into(), &width.into());
        out.push(&o);
    }
    out
}

/// One medical file (DICOM, NIfTI, 8/16-bit PNG/TIFF), decoded once: its slices are drawn
/// under any window without decoding it again.
#[wasm_bindgen]
pub struct MedicalFile {
    inner: Decoded,
    stem: String,
}

#[wasm_bindgen]
impl MedicalFile {
    /// Decode `bytes`; `name` (the file name) names the slices (`<stem>`, `<stem>_<K>`) and
    /// the errors (kind `bad-input` for a file the readers refuse).
    pub fn read(bytes: &[u8], name: &str) -> Result<MedicalFile, JsValue> {
        medical::decode(bytes, name, None)
            .map(|inner| MedicalFile {
                inner,
                stem: medical::stem(name).to_string(),
            })
            .map_err(js_err)
    }

    /// The file name up to its first dot: what the slice names start with, and the name of
    /// its label volume (`<stem>.nii.gz`).
    #[wasm_bindgen(getter)]
    pub fn stem(&self) -> String {
        self.stem.clone()
    }

    /// The slices' names, in slice order.
    pub fn names(&self) -> Vec<String> {
        self.inner.names().to_vec()
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.inner.width()
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.inner.height()
    }

    /// Gray values shown through a window (false: colour, shown as it is).
    #[wasm_bindgen(getter)]
    pub fn gray(&self) -> bool {
        self.inner.is_gray()
    }

    /// A NIfTI file (its labels can go back to a volume on its grid: [`LabelVolume`]).
    #[wasm_bindgen(getter)]
    pub fn nifti(&self) -> bool {
        self.inner.format() == Format::Nifti
    }

    /// The DICOM's own window `[center, width]`, or `undefined`.
    #[wasm_bindgen(js_name = fileWindow)]
    pub fn file_window(&self) -> Option<Vec<f64>> {
        self.inner.file_window().map(|(c, w)| vec![c, w])
    }

    /// The file's smallest and largest finite value `[min, max]`, or `undefined`.
    pub fn range(&self) -> Option<Vec<f64>> {
        self.inner.range().map(|(lo, hi)| vec![lo, hi])
    }

    /// The window the file opens with: `file` when the DICOM has one, else `minmax`.
    #[wasm_bindgen(js_name = defaultWindow)]
    pub fn default_window(&self) -> String {
        let w = if self.inner.file_window().is_some() {
            Window::File
        } else {
            Window::MinMax
        };
        w.to_string()
    }

    /// `window` (`file`, `minmax`, a preset or `C,W`) checked and written as the library
    /// writes it (`file`, `minmax` or `C,W`); refused (`bad-input`) when it does not parse or
    /// is `file` for a file without a window.
    #[wasm_bindgen(js_name = checkWindow)]
    pub fn check_window(&self, window: &str) -> Result<String, JsValue> {
        let w = parse_window(window)?;
        if w == Window::File && self.inner.file_window().is_none() {
            return Err(js_error(
                "bad-input",
                "window file: this file has no WindowCenter/WindowWidth; use minmax, C,W or a preset",
            ));
        }
        Ok(w.to_string())
    }

    /// Slice `index` under `window` as RGBA bytes (`width × height × 4`, opaque): the live
    /// preview while the window is dragged.
    pub fn rgba(&self, index: usize, window: &str) -> Result<Vec<u8>, JsValue> {
        let img = self
            .inner
            .image(index, Some(&parse_window(window)?))
            .map_err(js_err)?;
        Ok(img.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect())
    }

    /// Slice `index` under `window` as an 8-bit RGB PNG: the image the model, the canvas and
    /// the overlays see.
    pub fn png(&self, index: usize, window: &str) -> Result<Vec<u8>, JsValue> {
        let img = self
            .inner
            .image(index, Some(&parse_window(window)?))
            .map_err(js_err)?;
        RgbImage {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.into_raw(),
        }
        .encode_png()
        .map_err(js_err)
    }
}

/// DICOM files in series order: `add` each file (its name and bytes), then `order()`.
#[wasm_bindgen]
#[derive(Default)]
pub struct Series {
    files: Vec<(String, Option<SeriesPosition>)>,
}

#[wasm_bindgen]
impl Series {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Series {
        Series::default()
    }

    /// A file of the drop. Only DICOM headers are read; a file that is not DICOM, or whose
    /// header is unreadable (its error comes when it is decoded), keeps its place by name.
    pub fn add(&mut self, name: &str, bytes: &[u8]) {
        let position = (medical::detect(bytes, name) == Some(Format::Dicom))
            .then(|| medical::series_position(bytes, name).ok())
            .flatten();
        self.files.push((name.to_string(), position));
    }

    /// The files' indices (in the order they were added) in series order: InstanceNumber, then
    /// ImagePositionPatient along the slice normal, then name ([`medical::series_order`]).
    pub fn order(&self) -> Vec<u32> {
        let keys: Vec<(&str, Option<&SeriesPosition>)> = self
            .files
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_ref()))
            .collect();
        medical::series_order(&keys)
            .into_iter()
            .map(|i| i as u32)
            .collect()
    }
}

/// The page's labels of a NIfTI file's slices back into a `.nii.gz` on its grid
/// ([`medical::label_volume`]): `set` each labelled slice, then `finish`. A slice not set is
/// background (0).
#[wasm_bindgen]
pub struct LabelVolume {
    reference: Vec<u8>,
    name: String,
    width: usize,
    height: usize,
    labels: HashMap<String, LabelMap>,
}

#[wasm_bindgen]
impl LabelVolume {
    /// The reference NIfTI file (`bytes`, its file `name`) whose slices are `width × height`.
    #[wasm_bindgen(constructor)]
    pub fn new(reference: Vec<u8>, name: &str, width: usize, height: usize) -> LabelVolume {
        LabelVolume {
            reference,
            name: name.to_string(),
            width,
            height,
            labels: HashMap::new(),
        }
    }

    /// The label of slice `slice` (named as the slices are: `<stem>_<K>`).
    pub fn set(&mut self, slice: &str, label: &Label) {
        self.labels.insert(slice.to_string(), label.inner.clone());
    }

    /// How many slices were set.
    #[wasm_bindgen(getter)]
    pub fn count(&self) -> usize {
        self.labels.len()
    }

    /// The gzipped NIfTI label volume (uint8, the reference's header and grid). A label of the
    /// wrong size is refused naming its slice.
    pub fn finish(&self) -> Result<Vec<u8>, JsValue> {
        let (w, h) = (self.width, self.height);
        medical::label_volume(&self.reference, &self.name, None, &mut |slice| match self
            .labels
            .get(slice)
        {
            Some(map) => Ok(map.clone()),
            None => LabelMap::new(w, h, vec![0; w.saturating_mul(h)]),
        })
        .map_err(js_err)
    }
}
