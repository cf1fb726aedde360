//! Bindings of SAM mask sets (folder files or a zip, packed bits for IndexedDB) and colour
//! overlays. Conversions only; the logic is in `masks` and `overlay`.

use super::{js_err, js_error, Label};
use crate::core::masks::{BitMask, MaskSet, MaskZip as CoreMaskZip, SamMask};
use wasm_bindgen::prelude::*;

/// The SAM masks of one image.
#[wasm_bindgen]
pub struct Masks {
    pub(crate) inner: MaskSet,
}

impl Masks {
    /// The masks in visiting order without the user's `rejected` ones (as if SAM had not
    /// proposed them): what every merge of the page uses.
    pub(crate) fn kept(&self, rejected: &[u32]) -> Vec<&BitMask> {
        self.inner
            .masks
            .iter()
            .enumerate()
            .filter(|(i, _)| !rejected.contains(&(*i as u32)))
            .map(|(_, m)| &m.bits)
            .collect()
    }

    fn get(&self, i: usize) -> Result<&SamMask, JsValue> {
        self.inner.masks.get(i).ok_or_else(|| {
            js_error(
                "bad-input",
                &format!(
                    "mask {i}: out of range; the image has {} masks",
                    self.inner.masks.len()
                ),
            )
        })
    }
}

#[wasm_bindgen]
impl Masks {
    /// Number of masks.
    pub fn len(&self) -> usize {
        self.inner.masks.len()
    }

    #[wasm_bindgen(js_name = isEmpty)]
    pub fn is_empty(&self) -> bool {
        self.inner.masks.is_empty()
    }

    /// Mask `i` (in visiting order) as one byte per pixel, 255 inside.
    pub fn mask(&self, i: usize) -> Result<Vec<u8>, JsValue> {
        self.get(i).map(|m| m.bits.to_values())
    }

    /// Pixels inside mask `i` (an error for an index out of range, never a silent 0).
    pub fn area(&self, i: usize) -> Result<usize, JsValue> {
        self.get(i).map(|m| m.bits.count())
    }

    /// The file mask `i` came from (an error for an index out of range).
    pub fn file(&self, i: usize) -> Result<String, JsValue> {
        self.get(i).map(|m| m.file.clone())
    }

    /// Files skipped while reading (non-numeric names).
    pub fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }

    /// Every mask's bits, packed ([`BitMask::to_le_bytes`]) one after another: what the page
    /// keeps in IndexedDB so results survive a reload. [`Masks::from_packed`] reads it back.
    pub fn packed(&self) -> Vec<u8> {
        self.inner
            .masks
            .iter()
            .flat_map(|m| m.bits.to_le_bytes())
            .collect()
    }

    /// Masks from [`Masks::packed`] bytes: `files.len()` masks of `width × height`, named by
    /// `files` (in errors), in visiting order.
    #[wasm_bindgen(js_name = fromPacked)]
    pub fn from_packed(
        width: usize,
        height: usize,
        bytes: &[u8],
        files: Vec<String>,
    ) -> Result<Masks, JsValue> {
        let per = width.saturating_mul(height).div_ceil(64).saturating_mul(8);
        if per.saturating_mul(files.len()) != bytes.len() {
            return Err(js_error(
                "bad-input",
                &format!(
                "stored masks: {} bytes; expected {} masks of {width}×{height} ({per} bytes each)",
                bytes.len(),
                files.len()
            ),
            ));
        }
        let mut masks = Vec::with_capacity(files.len());
        for (i, file) in files.into_iter().enumerate() {
            let bits = BitMask::from_le_bytes(width, height, &bytes[i * per..(i + 1) * per], &file)
                .map_err(js_err)?;
            masks.push(SamMask {
                index: i as u64,
                file,
                bits,
                meta: None,
            });
        }
        Ok(Masks {
            inner: MaskSet {
                masks,
                warnings: Vec::new(),
            },
        })
    }

    /// Append a mask (one byte per pixel, inside when ≥ 128), e.g. from the prompt tool; it
    /// is visited last by the merge. Returns its position.
    pub fn push(&mut self, values: Vec<u8>, width: usize, height: usize) -> Result<usize, JsValue> {
        if let Some(first) = self.inner.masks.first() {
            if (first.bits.width(), first.bits.height()) != (width, height) {
                return Err(js_error(
                    "bad-input",
                    &format!(
                        "a {width}×{height} mask for a set of {}×{} masks",
                        first.bits.width(),
                        first.bits.height()
                    ),
                ));
            }
        }
        let bits = BitMask::from_values(width, height, &values, |v| v >= 128).map_err(js_err)?;
        let index = self
            .inner
            .masks
            .iter()
            .map(|m| m.index + 1)
            .max()
            .unwrap_or(0);
        self.inner.masks.push(SamMask {
            index,
            file: format!("prompt#{index}"),
            bits,
            meta: None,
        });
        Ok(self.inner.masks.len() - 1)
    }
}

impl From<MaskSet> for Masks {
    fn from(inner: MaskSet) -> Self {
        Masks { inner }
    }
}

/// Collects one image's mask files (a dropped folder) before decoding them together.
#[wasm_bindgen]
pub struct MaskFiles {
    name: String,
    files: Vec<(String, Vec<u8>)>,
}

#[wasm_bindgen]
impl MaskFiles {
    /// Files of the folder of image `name`.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str) -> MaskFiles {
        MaskFiles {
            name: name.to_string(),
            files: Vec::new(),
        }
    }

    /// Add `file_name` (e.g. `3.png` or `metadata.csv`).
    pub fn add(&mut self, file_name: &str, bytes: Vec<u8>) {
        self.files.push((file_name.to_string(), bytes));
    }

    /// Decode; every mask must be `width × height` (the label's size).
    pub fn decode(self, width: usize, height: usize) -> Result<Masks, JsValue> {
        MaskSet::from_files(&self.name, self.files, Some((width, height)))
            .map(|inner| Masks { inner })
            .map_err(js_err)
    }
}

/// A `.zip` of `<name>/<i>.png` mask folders.
#[wasm_bindgen]
pub struct MaskZip {
    inner: CoreMaskZip,
}

#[wasm_bindgen]
impl MaskZip {
    /// Index the archive (entries are decoded per image, on demand).
    pub fn open(bytes: Vec<u8>, zip_name: &str) -> Result<MaskZip, JsValue> {
        CoreMaskZip::new(bytes, zip_name)
            .map(|inner| MaskZip { inner })
            .map_err(js_err)
    }

    /// The image names it holds masks for.
    pub fn names(&self) -> Vec<String> {
        self.inner.names().map(str::to_string).collect()
    }

    /// The masks of image `name`, each required to be `width × height`.
    pub fn masks(&self, name: &str, width: usize, height: usize) -> Result<Masks, JsValue> {
        self.inner
            .mask_set(name, Some((width, height)))
            .map(|inner| Masks { inner })
            .map_err(js_err)
    }

    /// Entries skipped while indexing.
    pub fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }
}

/// A colour overlay PNG of `label` over the image (PNG/JPEG bytes, optional; mid-gray without).
#[wasm_bindgen(js_name = overlayPng)]
pub fn overlay_png(
    label: &Label,
    image: Option<Vec<u8>>,
    image_name: &str,
) -> Result<Vec<u8>, JsValue> {
    use crate::core::overlay::{overlay_rgb, RgbImage};
    let img = image
        .map(|bytes| RgbImage::decode(&bytes, image_name))
        .transpose()
        .map_err(js_err)?;
    let rgb = overlay_rgb(&label.inner, img.as_ref()).map_err(js_err)?;
    RgbImage {
        width: label.inner.width,
        height: label.inner.height,
        data: rgb,
    }
    .encode_png()
    .map_err(js_err)
}
