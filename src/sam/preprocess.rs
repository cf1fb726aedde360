//! SAM's input pipeline, bit-exact with the official code: `ResizeLongestSide(1024)`
//! (`segment_anything/utils/transforms.py`, which calls torchvision's `resize` on a PIL image,
//! i.e. Pillow's `ImagingResample` with the bilinear filter and antialiasing), normalisation with
//! SAM's pixel mean / std, and zero padding bottom/right to 1024×1024 (`Sam.preprocess`).
//! Prompt coordinates are scaled the same way (`apply_coords`).
//!
//! The resize mirrors Pillow's `libImaging/Resample.c`: separable, horizontal pass then
//! vertical, each with fixed-point coefficients (22 fractional bits) and an 8-bit intermediate.
//!
//! ```
//! use camsam::sam::preprocess::{input_size, resize_longest_side, RgbImage};
//! let image = RgbImage::from_pixel(300, 513, image::Rgb([10, 20, 30]));
//! assert_eq!(input_size((513, 300)), (1024, 599));
//! let resized = resize_longest_side(&image, 1024);
//! assert_eq!(resized.dimensions(), (599, 1024));
//! ```

use super::IMAGE_SIZE;
pub use image::RgbImage;

/// SAM's pixel mean (RGB, 0–255 scale).
pub const PIXEL_MEAN: [f32; 3] = [123.675, 116.28, 103.53];
/// SAM's pixel standard deviation (RGB, 0–255 scale).
pub const PIXEL_STD: [f32; 3] = [58.395, 57.12, 57.375];

/// The model input: `3 × 1024 × 1024` normalised, padded pixels (CHW), and the sizes needed
/// to map prompts and masks between frames.
#[derive(Debug, Clone)]
pub struct ModelInput {
    pub pixels: Vec<f32>,
    /// `(height, width)` of the resized, unpadded image.
    pub input_size: (usize, usize),
    /// `(height, width)` of the original image.
    pub original_size: (usize, usize),
}

/// `ResizeLongestSide.get_preprocess_shape`: `(h, w)` scaled so the longer side is `long`,
/// rounded half up.
pub fn preprocess_shape(original: (usize, usize), long: usize) -> (usize, usize) {
    let (h, w) = original;
    let scale = long as f64 / h.max(w).max(1) as f64;
    let newh = (h as f64 * scale + 0.5).floor() as usize;
    let neww = (w as f64 * scale + 0.5).floor() as usize;
    (newh, neww)
}

/// The input size `(h, w)` for an original image of `(h, w)` (longest side 1024).
pub fn input_size(original: (usize, usize)) -> (usize, usize) {
    preprocess_shape(original, IMAGE_SIZE)
}

/// `ResizeLongestSide.apply_coords`: a point in original pixels to the input frame.
pub fn apply_coords(
    (x, y): (f64, f64),
    original: (usize, usize),
    input: (usize, usize),
) -> (f64, f64) {
    let (oh, ow) = original;
    let (nh, nw) = input;
    (x * (nw as f64 / ow as f64), y * (nh as f64 / oh as f64))
}

/// `ResizeLongestSide(long).apply_image`: Pillow bilinear resize with antialias.
pub fn resize_longest_side(image: &RgbImage, long: usize) -> RgbImage {
    let (w, h) = image.dimensions();
    let (nh, nw) = preprocess_shape((h as usize, w as usize), long);
    pil_bilinear_resize(image, nw, nh)
}

/// Pillow's `Image.resize(size, Image.BILINEAR)` for an RGB image (`ImagingResample`).
pub fn pil_bilinear_resize(image: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    if (in_w, in_h) == (out_w, out_h) || in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        return if (in_w, in_h) == (out_w, out_h) {
            image.clone()
        } else {
            RgbImage::new(out_w as u32, out_h as u32)
        };
    }
    let horiz = Coeffs::new(in_w, out_w);
    let vert = Coeffs::new(in_h, out_h);
    let src = image.as_raw();
    // Horizontal pass over the rows the vertical pass reads (all of them for a full-image box).
    let tmp: Vec<u8> = if in_w != out_w {
        let mut tmp = vec![0u8; out_w * in_h * 3];
        for y in 0..in_h {
            let row = &src[y * in_w * 3..(y + 1) * in_w * 3];
            let out = &mut tmp[y * out_w * 3..(y + 1) * out_w * 3];
            for xx in 0..out_w {
                let (xmin, k) = horiz.taps(xx);
                let mut ss = [HALF; 3];
                for (i, &kv) in k.iter().enumerate() {
                    let p = &row[(xmin + i) * 3..(xmin + i) * 3 + 3];
                    for c in 0..3 {
                        ss[c] += p[c] as i32 * kv;
                    }
                }
                for c in 0..3 {
                    out[xx * 3 + c] = clip8(ss[c]);
                }
            }
        }
        tmp
    } else {
        src.to_vec()
    };
    let out_pixels = if in_h != out_h {
        let mut out = vec![0u8; out_w * out_h * 3];
        for yy in 0..out_h {
            let (ymin, k) = vert.taps(yy);
            let orow = &mut out[yy * out_w * 3..(yy + 1) * out_w * 3];
            for (xc, o) in orow.iter_mut().enumerate() {
                let mut ss = HALF;
                for (i, &kv) in k.iter().enumerate() {
                    ss += tmp[(ymin + i) * out_w * 3 + xc] as i32 * kv;
                }
                *o = clip8(ss);
            }
        }
        out
    } else {
        tmp
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, out_pixels)
        .unwrap_or_else(|| RgbImage::new(out_w as u32, out_h as u32))
}

/// Fractional bits of Pillow's 8-bit fixed-point coefficients (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

fn clip8(v: i32) -> u8 {
    if v >= 1 << PRECISION_BITS << 8 {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    kk: Vec<i32>,
}

impl Coeffs {
    fn new(in_size: usize, out_size: usize) -> Self {
        const SUPPORT: f64 = 1.0;
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut kk = vec![0i32; out_size * ksize];
        let mut k = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin).min(ksize);
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(n) {
                let t = ((x + xmin) as f64 - center + 0.5) * ss;
                let w = if t.abs() < 1.0 { 1.0 - t.abs() } else { 0.0 };
                *kx = w;
                ww += w;
            }
            for (x, kx) in k.iter().enumerate().take(n) {
                let v = if ww != 0.0 { kx / ww } else { *kx };
                let scaled = v * (1u32 << PRECISION_BITS) as f64;
                kk[xx * ksize + x] = if v < 0.0 {
                    (-0.5 + scaled) as i32
                } else {
                    (0.5 + scaled) as i32
                };
            }
            bounds.push((xmin, n));
        }
        Coeffs { ksize, bounds, kk }
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (min, n) = self.bounds[i];
        (min, &self.kk[i * self.ksize..i * self.ksize + n])
    }
}

/// Normalises and pads a resized image (at most 1024×1024) into the model input.
pub fn normalize_and_pad(resized: &RgbImage, original_size: (usize, usize)) -> ModelInput {
    let (w, h) = (resized.width() as usize, resized.height() as usize);
    let (w, h) = (w.min(IMAGE_SIZE), h.min(IMAGE_SIZE));
    let plane = IMAGE_SIZE * IMAGE_SIZE;
    let mut pixels = vec![0f32; 3 * plane];
    let raw = resized.as_raw();
    let row_len = resized.width() as usize * 3;
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let v = raw[y * row_len + x * 3 + c] as f32;
                pixels[c * plane + y * IMAGE_SIZE + x] = (v - PIXEL_MEAN[c]) / PIXEL_STD[c];
            }
        }
    }
    ModelInput {
        pixels,
        input_size: (h, w),
        original_size,
    }
}

/// The whole official pipeline: resize (longest side 1024), normalise, pad.
pub fn prepare(image: &RgbImage) -> ModelInput {
    let original = (image.height() as usize, image.width() as usize);
    let resized = resize_longest_side(image, IMAGE_SIZE);
    normalize_and_pad(&resized, original)
}

/// Reads an image file (PNG or JPEG) as 8-bit RGB.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_rgb(path: &std::path::Path) -> crate::Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
    decode_rgb(&bytes, &path.display().to_string())
}

/// Decodes an image (PNG or JPEG) held in memory as 8-bit RGB; `source` names it in errors.
/// Images over [`crate::limits::MAX_PIXELS`] are refused from their header, before decoding.
pub fn decode_rgb(bytes: &[u8], source: &str) -> crate::Result<RgbImage> {
    let bad = |e: image::ImageError| {
        crate::Error::input(
            source,
            format!("cannot decode the image ({e}); expected a PNG or JPEG file"),
        )
    };
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(e.into()))
    };
    let (width, height) = reader()?.into_dimensions().map_err(bad)?;
    crate::limits::check_pixels(width as usize, height as usize, source, "image")?;
    Ok(reader()?.decode().map_err(bad)?.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_images_decode_as_rgb() {
        // VOC ships JPEGImages: a JPEG must decode (lossy, so compare loosely).
        let mut rgb = image::RgbImage::new(16, 8);
        for (x, _, p) in rgb.enumerate_pixels_mut() {
            *p = image::Rgb([if x < 8 { 200 } else { 20 }, 100, 50]);
        }
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(rgb)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let decoded = decode_rgb(&jpeg, "photo.jpg").unwrap();
        assert_eq!((decoded.width(), decoded.height()), (16, 8));
        let left = decoded.get_pixel(2, 4)[0] as i32;
        let right = decoded.get_pixel(13, 4)[0] as i32;
        assert!(
            (left - 200).abs() < 12 && (right - 20).abs() < 12,
            "{left} {right}"
        );
        let err = decode_rgb(b"garbage", "photo.jpg").unwrap_err().to_string();
        assert!(
            err.contains("photo.jpg") && err.contains("PNG or JPEG"),
            "{err}"
        );
    }

    #[test]
    fn shape_rounds_half_up() {
        assert_eq!(preprocess_shape((513, 513), 1024), (1024, 1024));
        assert_eq!(preprocess_shape((360, 480), 1024), (768, 1024));
        assert_eq!(preprocess_shape((513, 300), 1024), (1024, 599));
    }

    #[test]
    fn coefficients_sum_to_one_in_fixed_point() {
        for (i, o) in [(513, 1024), (300, 599), (1024, 300), (7, 3)] {
            let c = Coeffs::new(i, o);
            for j in 0..o {
                let (_, k) = c.taps(j);
                let s: i32 = k.iter().sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= k.len() as i32,
                    "{i}->{o} tap {j}: {s}"
                );
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 3, 77]));
        let r = pil_bilinear_resize(&img, 64, 40);
        assert!(r.pixels().all(|p| p.0 == [200, 3, 77]));
    }
}
