//! Label maps: class-id images (pseudo-labels, ground truth, refined labels) and their PNG
//! formats.
//!
//! Reading accepts what WSSS code bases write: 8-bit grayscale PNGs whose values are class ids
//! (`np.array(Image.open(f))` of an `'L'` image) and palette PNGs whose indices are class ids
//! (VOC `SegmentationClass`, `'P'` images), at any palette bit depth. 16-bit, RGB and
//! alpha PNGs are rejected with an error naming the file: their values are not class ids.
//! Writing produces a VOC-palette PNG (the default) or an 8-bit grayscale PNG.
//!
//! ```
//! use camsam::core::label::{LabelMap, LabelFormat};
//! let map = LabelMap::new(2, 1, vec![0, 15]).unwrap();
//! let png = map.encode_png(LabelFormat::Palette).unwrap();
//! assert_eq!(LabelMap::decode_png(&png, "x.png").unwrap(), map);
//! ```

use crate::{Error, Result};
use std::io::Cursor;
use std::path::Path;

/// The "void / ignore" class id of VOC ground truth and of ignore bands.
pub const IGNORE: u8 = 255;

/// A row-major map of class ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// How a label map is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelFormat {
    /// Palette PNG with the VOC colour map (index = class id).
    #[default]
    Palette,
    /// 8-bit grayscale PNG (value = class id).
    Gray,
}

impl LabelFormat {
    /// The format's flag value.
    pub fn name(self) -> &'static str {
        match self {
            LabelFormat::Palette => "palette",
            LabelFormat::Gray => "gray",
        }
    }
}

impl std::str::FromStr for LabelFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "palette" => Ok(LabelFormat::Palette),
            "gray" | "grey" => Ok(LabelFormat::Gray),
            other => Err(format!(
                "unknown label format '{other}': expected palette or gray"
            )),
        }
    }
}

impl LabelMap {
    /// A map of `width × height` ids; `data.len()` must be `width * height`.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        // checked: on wasm32 a usize product of two image sides can wrap to a small number
        if width.checked_mul(height) != Some(data.len()) {
            return Err(Error::input(
                "label map",
                format!(
                    "{} values for a {width}×{height} map (expected {})",
                    data.len(),
                    width as u128 * height as u128
                ),
            ));
        }
        Ok(LabelMap {
            width,
            height,
            data,
        })
    }

    /// A map filled with one id.
    pub fn filled(width: usize, height: usize, id: u8) -> Self {
        LabelMap {
            width,
            height,
            data: vec![id; width * height],
        }
    }

    /// Decode a class-id PNG (8-bit or lower grayscale, or palette). `name` is used in errors.
    pub fn decode_png(bytes: &[u8], name: &str) -> Result<Self> {
        let mut decoder = png::Decoder::new(Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::IDENTITY);
        let mut reader = decoder
            .read_info()
            .map_err(|e| Error::input(name, format!("not a readable PNG ({e})")))?;
        let (color, depth) = {
            let info = reader.info();
            crate::limits::check_pixels(info.width as usize, info.height as usize, name, "label")?;
            (info.color_type, info.bit_depth)
        };
        match color {
            png::ColorType::Grayscale | png::ColorType::Indexed => {}
            other => {
                return Err(Error::input(
                    name,
                    format!(
                        "{} PNG; expected an 8-bit grayscale or palette PNG of class ids",
                        color_name(other)
                    ),
                ))
            }
        }
        let bits = match depth {
            png::BitDepth::One => 1,
            png::BitDepth::Two => 2,
            png::BitDepth::Four => 4,
            png::BitDepth::Eight => 8,
            png::BitDepth::Sixteen => {
                return Err(Error::input(
                    name,
                    "16-bit PNG; expected an 8-bit grayscale or palette PNG of class ids",
                ))
            }
        };
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| Error::input(name, "PNG too large to decode"))?;
        let mut buf = vec![0u8; size];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| Error::input(name, format!("corrupt PNG data ({e})")))?;
        let (width, height) = (frame.width as usize, frame.height as usize);
        let stride = frame.line_size;
        let mut data = Vec::with_capacity(width * height);
        for row in buf[..stride * height].chunks_exact(stride) {
            if bits == 8 {
                data.extend_from_slice(&row[..width]);
            } else {
                let per_byte = 8 / bits;
                let mask = (1u8 << bits) - 1;
                data.extend((0..width).map(|x| {
                    let byte = row[x / per_byte];
                    let shift = 8 - bits * (x % per_byte + 1);
                    (byte >> shift) & mask
                }));
            }
        }
        Ok(LabelMap {
            width,
            height,
            data,
        })
    }

    /// Read a class-id PNG from a file.
    pub fn read_png(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::decode_png(&bytes, &path.display().to_string())
    }

    /// Encode as PNG in the given format.
    pub fn encode_png(&self, format: LabelFormat) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        encoder.set_depth(png::BitDepth::Eight);
        // fdeflate with the "Up" filter: label maps are flat regions, so this is several
        // times faster than the default zlib level with adaptive filtering, for files about
        // as small; dataset runs write one per image.
        encoder.set_compression(png::Compression::Fast);
        encoder.set_filter(png::Filter::Up);
        match format {
            LabelFormat::Gray => encoder.set_color(png::ColorType::Grayscale),
            LabelFormat::Palette => {
                encoder.set_color(png::ColorType::Indexed);
                encoder.set_palette(voc_palette().concat());
            }
        }
        let write = |e: png::EncodingError| Error::encode("PNG", e);
        let mut writer = encoder.write_header().map_err(write)?;
        writer.write_image_data(&self.data).map_err(write)?;
        writer.finish().map_err(write)?;
        Ok(out)
    }

    /// The set of ids present, ascending (the ignore id included when present).
    pub fn present_ids(&self) -> Vec<u8> {
        let mut seen = [false; 256];
        for &v in &self.data {
            seen[v as usize] = true;
        }
        (0..=255u8).filter(|&i| seen[i as usize]).collect()
    }
}

fn color_name(c: png::ColorType) -> &'static str {
    match c {
        png::ColorType::Grayscale => "grayscale",
        png::ColorType::Rgb => "RGB",
        png::ColorType::Indexed => "palette",
        png::ColorType::GrayscaleAlpha => "grayscale+alpha",
        png::ColorType::Rgba => "RGBA",
    }
}

/// The PASCAL VOC colour map (256 entries; 255, the void id, is (224, 224, 192)).
pub fn voc_palette() -> Vec<[u8; 3]> {
    (0..256u32)
        .map(|i| {
            let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
            let mut c = i;
            for j in 0..8 {
                r |= ((c & 1) as u8) << (7 - j);
                g |= (((c >> 1) & 1) as u8) << (7 - j);
                b |= (((c >> 2) & 1) as u8) << (7 - j);
                c >>= 3;
            }
            [r, g, b]
        })
        .collect()
}

/// The 21 PASCAL VOC class names, background first.
pub const VOC_CLASSES: [&str; 21] = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

#[cfg(test)]
mod size_tests {
    use super::LabelMap;

    #[test]
    fn sizes_whose_product_overflows_are_refused() {
        let e = LabelMap::new(usize::MAX, 2, Vec::new()).unwrap_err();
        assert!(e.to_string().contains("0 values"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_palette_has_known_colours() {
        let p = voc_palette();
        assert_eq!(p[0], [0, 0, 0]);
        assert_eq!(p[1], [128, 0, 0]);
        assert_eq!(p[15], [192, 128, 128]);
        assert_eq!(p[255], [224, 224, 192]);
    }

    #[test]
    fn palette_and_gray_round_trip() {
        let map = LabelMap::new(3, 2, vec![0, 1, 20, 255, 7, 0]).unwrap();
        for f in [LabelFormat::Palette, LabelFormat::Gray] {
            let png = map.encode_png(f).unwrap();
            assert_eq!(LabelMap::decode_png(&png, "t.png").unwrap(), map);
        }
    }

    #[test]
    fn rgb_and_16_bit_are_rejected_with_the_file_name() {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 1, 1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[1, 2, 3]).unwrap();
        w.finish().unwrap();
        let err = LabelMap::decode_png(&out, "cat.png")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cat.png") && err.contains("RGB"), "{err}");

        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 1, 1);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Sixteen);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0, 3]).unwrap();
        w.finish().unwrap();
        let err = LabelMap::decode_png(&out, "dog.png")
            .unwrap_err()
            .to_string();
        assert!(err.contains("dog.png") && err.contains("16-bit"), "{err}");
    }

    #[test]
    fn low_bit_depth_palette_is_unpacked() {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 3, 1);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Two);
        enc.set_palette(vec![0u8; 12]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0b0001_1011]).unwrap();
        w.finish().unwrap();
        let map = LabelMap::decode_png(&out, "p.png").unwrap();
        assert_eq!(map.data, vec![0, 1, 2]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = LabelMap::decode_png(b"not a png", "x.png").unwrap_err();
        assert!(err.to_string().contains("x.png"));
    }
}
