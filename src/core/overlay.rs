//! Colour overlays of label maps, for looking at results: each labelled pixel takes its VOC
//! palette colour blended over the image (or over mid-gray when there is no image);
//! background (0) shows the image (or black) unchanged, and 255 ("ignore") its palette colour.
//!
//! ```
//! use camsam::core::label::LabelMap;
//! use camsam::core::overlay::overlay_rgb;
//! let label = LabelMap::new(2, 1, vec![0, 1]).unwrap();
//! let rgb = overlay_rgb(&label, None).unwrap();
//! assert_eq!(rgb, vec![0, 0, 0, 128, 64, 64]); // black; VOC class 1 (128,0,0) over gray
//! ```

use crate::core::label::{voc_palette, LabelMap};
use crate::{Error, Result};

/// How much of the label colour shows over the image.
pub const OVERLAY_ALPHA: f32 = 0.5;

/// An RGB image, 8 bits per channel, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Decode a PNG or JPEG (any colour type; converted to RGB, at most 64 megapixels).
    /// `name` is used in errors.
    pub fn decode(bytes: &[u8], name: &str) -> Result<Self> {
        let img = crate::sam::preprocess::decode_rgb(bytes, name)?;
        Ok(RgbImage {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.into_raw(),
        })
    }

    /// Encode as an 8-bit RGB PNG.
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let fail = |e: png::EncodingError| Error::encode("PNG", e);
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&self.data).map_err(fail)?;
        writer.finish().map_err(fail)?;
        Ok(out)
    }
}

/// The overlay of `label` on `image` (same size) or on mid-gray, as RGB bytes.
pub fn overlay_rgb(label: &LabelMap, image: Option<&RgbImage>) -> Result<Vec<u8>> {
    if let Some(img) = image {
        if (img.width, img.height) != (label.width, label.height)
            || img.data.len() != label.data.len() * 3
        {
            return Err(Error::input(
                "overlay image",
                format!(
                    "{}×{} image for a {}×{} label; expected the same size",
                    img.width, img.height, label.width, label.height
                ),
            ));
        }
    }
    let palette = voc_palette();
    let a = OVERLAY_ALPHA;
    let mut out = vec![0u8; label.data.len() * 3];
    for (i, &id) in label.data.iter().enumerate() {
        let base = image.map(|img| [img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2]]);
        let px = match (id, base) {
            (0, Some(b)) => b,
            (0, None) => [0, 0, 0],
            (_, b) => {
                let b = b.unwrap_or([128, 128, 128]);
                let c = palette[id as usize];
                [0, 1, 2].map(|k| (a * c[k] as f32 + (1.0 - a) * b[k] as f32).round() as u8)
            }
        };
        out[3 * i..3 * i + 3].copy_from_slice(&px);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_blends_over_the_image_and_checks_its_size() {
        let label = LabelMap::new(2, 1, vec![0, 15]).unwrap();
        let img = RgbImage {
            width: 2,
            height: 1,
            data: vec![10, 20, 30, 0, 0, 0],
        };
        let rgb = overlay_rgb(&label, Some(&img)).unwrap();
        assert_eq!(rgb, vec![10, 20, 30, 96, 64, 64]);
        let png = RgbImage {
            width: 2,
            height: 1,
            data: rgb,
        }
        .encode_png()
        .unwrap();
        assert_eq!(
            RgbImage::decode(&png, "o.png").unwrap().data[..3],
            [10, 20, 30]
        );
        let small = RgbImage {
            width: 1,
            height: 1,
            data: vec![0; 3],
        };
        assert!(overlay_rgb(&label, Some(&small)).is_err());
    }
}
