//! The wasm-bindgen API used by the browser app (`index.html`, `www/worker/`).
//!
//! Thin by design: every function converts JS values to library types, calls the library and
//! maps `camsam::Error` once to a JS `Error` with a `kind` (`bad-input`, `io`, `model`, `encode`, `gpu`, `cancelled`, `busy`) the page decides on. No product logic lives here. Structured results
//! cross as plain JS objects (serde-wasm-bindgen); pixel data crosses as `Uint8Array`.
//! `console_error_panic_hook` is installed once, when the module starts.
//!
//! ```js
//! import init, { Label } from '../pkg/camsam.js';
//! await init();
//! const label = Label.fromPng(bytes, 'cat.png');   // throws "cat.png: RGB PNG; expected …"
//! const png = label.toPng(false);                  // VOC palette PNG
//! ```

use crate::core::export::ZipBuilder;
use crate::core::label::{LabelFormat, LabelMap};
use wasm_bindgen::prelude::*;

/// Installs the panic hook, so a bug shows as a message in the console, not `unreachable`.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The kind of an error as the page sees it (`err.kind`): `bad-input`, `io`, `model`,
/// `encode`, `gpu` or `cancelled` — the page decides on these, never on message text.
pub(crate) fn kind(e: &crate::Error) -> &'static str {
    use crate::Error;
    match e {
        Error::Input { .. } => "bad-input",
        Error::Io { .. } => "io",
        Error::Model(_) => "model",
        Error::Encode { .. } => "encode",
        Error::Gpu(_) => "gpu",
        Error::Cancelled => "cancelled",
    }
}

/// The one mapping from the library's error to JS: an `Error` with the message and `kind`.
pub(crate) fn js_err(e: crate::Error) -> JsValue {
    js_error(kind(&e), &e.to_string())
}

/// A JS `Error` with `message` and a `kind` property (see [`kind`]).
pub(crate) fn js_error(kind: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("kind"), &JsValue::from_str(kind));
    err.into()
}

/// Test hook of the page's crash recovery (`?wasm-trap-after=K`, tests/e2e/recovery.test.mjs):
/// panics, which in wasm is a trap (`unreachable`) that leaves the module unusable, as any bug
/// would. The page never calls it otherwise.
#[wasm_bindgen(js_name = trapForTest)]
pub fn trap_for_test() {
    panic!("trapForTest: the crash-recovery test hook");
}

/// The crate version, for the page footer and the JSON report.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The SIMD this build computes the CPU model's products with: `simd128`, or
/// `simd128+relaxed-simd` (fused multiply-add), for the bench view.
#[wasm_bindgen(js_name = simdLevel)]
pub fn simd_level() -> String {
    crate::sam::cpu::simd128::LEVEL.to_string()
}

/// The VOC colour map, 256 × RGB.
#[wasm_bindgen(js_name = vocPalette)]
pub fn voc_palette() -> Vec<u8> {
    crate::core::label::voc_palette().concat()
}

/// The 21 VOC class names, background first.
#[wasm_bindgen(js_name = vocClasses)]
pub fn voc_classes() -> Vec<String> {
    crate::core::label::VOC_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A map of class ids (pseudo-label, ground truth or refined label).
#[wasm_bindgen]
pub struct Label {
    pub(crate) inner: LabelMap,
}

#[wasm_bindgen]
impl Label {
    /// Decode a class-id PNG (grayscale or palette); `name` appears in errors.
    #[wasm_bindgen(js_name = fromPng)]
    pub fn from_png(bytes: &[u8], name: &str) -> Result<Label, JsValue> {
        LabelMap::decode_png(bytes, name)
            .map(|inner| Label { inner })
            .map_err(js_err)
    }

    /// A label from raw ids (`width * height` bytes), e.g. after edits in the page.
    #[wasm_bindgen(js_name = fromIds)]
    pub fn from_ids(width: usize, height: usize, ids: Vec<u8>) -> Result<Label, JsValue> {
        LabelMap::new(width, height, ids)
            .map(|inner| Label { inner })
            .map_err(js_err)
    }

    /// An all-background label (every id 0) of `width × height`: where an image with no CAM
    /// and no pseudo-label starts (labelling from scratch).
    pub fn background(width: usize, height: usize) -> Result<Label, JsValue> {
        crate::limits::check_pixels(width, height, "label", "label")
            .and_then(|()| LabelMap::new(width, height, vec![0; width * height]))
            .map(|inner| Label { inner })
            .map_err(js_err)
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.inner.width
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.inner.height
    }

    /// The ids, row-major.
    pub fn ids(&self) -> Vec<u8> {
        self.inner.data.clone()
    }

    /// The ids present, ascending.
    pub fn present(&self) -> Vec<u8> {
        self.inner.present_ids()
    }

    /// Encode as a VOC-palette PNG, or grayscale when `gray`.
    #[wasm_bindgen(js_name = toPng)]
    pub fn to_png(&self, gray: bool) -> Result<Vec<u8>, JsValue> {
        let format = if gray {
            LabelFormat::Gray
        } else {
            LabelFormat::Palette
        };
        self.inner.encode_png(format).map_err(js_err)
    }
}

/// A zip archive being built (the export download).
#[wasm_bindgen]
pub struct Zip {
    inner: ZipBuilder,
}

impl Default for Zip {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Zip {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Zip {
        Zip {
            inner: ZipBuilder::new(),
        }
    }

    /// Add a file at `name` (a relative path inside the archive).
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), JsValue> {
        self.inner.add(name, bytes).map_err(js_err)
    }

    /// The archive's bytes; the builder is consumed.
    pub fn finish(self) -> Result<Vec<u8>, JsValue> {
        self.inner.finish().map_err(js_err)
    }
}

/// The size `[width, height]` of a PNG or JPEG image from its header (nothing decoded).
#[wasm_bindgen(js_name = imageSize)]
pub fn image_size(bytes: &[u8], name: &str) -> Result<Vec<u32>, JsValue> {
    let bad = |e: image::ImageError| {
        js_error(
            "bad-input",
            &format!("{name}: cannot read the image header ({e}); expected a PNG or JPEG file"),
        )
    };
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.into()))?
        .into_dimensions()
        .map_err(bad)?;
    Ok(vec![w, h])
}

/// The bundled demo as `[{path, bytes}]` (see [`crate::demo`]).
#[wasm_bindgen(js_name = demoFiles)]
pub fn demo_files() -> Result<js_sys::Array, JsValue> {
    let files = crate::demo::files().map_err(js_err)?;
    let out = js_sys::Array::new();
    for f in files {
        let entry = js_sys::Object::new();
        js_sys::Reflect::set(&entry, &"path".into(), &f.path.into())
            .map_err(|_| js_error("bad-input", "demo: could not build the file list"))?;
        let bytes = js_sys::Uint8Array::from(f.bytes.as_slice());
        js_sys::Reflect::set(&entry, &"bytes".into(), &bytes)
            .map_err(|_| js_error("bad-input", "demo: could not build the file list"))?;
        out.push(&entry);
    }
    Ok(out)
}

mod helpers;
mod masks;
mod measure;
mod medical;
mod model;
mod pipeline;
mod sweep;
pub use masks::*;
pub use measure::*;
pub use medical::*;
pub use model::*;
pub use pipeline::*;
pub use sweep::*;

/// Starts recording the CPU model's stage times (`crate::profile`; the bench view's `?profile`).
#[wasm_bindgen(js_name = profileStart)]
pub fn profile_start() {
    crate::profile::start();
}

/// Ends the recording: its stages as the lines of a table, times per `unit` (`units` of them).
#[wasm_bindgen(js_name = profileTake)]
pub fn profile_take(units: usize, unit: String) -> Vec<String> {
    crate::profile::table(&crate::profile::take(), units, &unit)
}
