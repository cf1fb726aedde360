//! Saliency-guided pseudo-labels: EPS (Lee et al., CVPR 2021) and EPS++'s inconsistent-region
//! drop (Lee et al., TPAMI 2023).
//!
//! A saliency map `M_s` (an off-the-shelf salient-object detector's output, `0..=1`) says where
//! objects are; the CAM says which class. EPS++ keeps only the pixels on which the two agree:
//! 1. `M_fg = min(1, Σ_k v_k)` over the present classes' max-normalised CAMs `v_k`;
//! 2. `M_r` = `M_fg` refined with PAMR ([`crate::refine::pamr`], the image-colour affinities);
//! 3. the inconsistent region `N = round(M_r) XOR round(M_s)`, with `round(x)` = `x > 0.5`;
//! 4. consistent salient pixels take the CAM's best present class (ties: the lower id),
//!    consistent non-salient pixels are background, inconsistent pixels are 255 (ignore).
//!
//! The result is a pseudo-label like [`Cam::to_label`]'s: `camsam cam2label --saliency`,
//! `camsam refine --mode saliency`, and the pseudo-label SEPL merges into with
//! `camsam refine --mode sepl --saliency`.
//!
//! Saliency maps are read as `<name>.png`, 8- or 16-bit grayscale (0–255 or 0–65535 → 0–1).

use crate::core::cam::Cam;
use crate::core::label::{LabelMap, IGNORE};
use crate::refine::pamr::{pamr, resize_bilinear_align_corners, PamrSettings};
use crate::{Error, Result};

/// A saliency map, `height × width` values in `0..=1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Saliency {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Saliency {
    /// Decode an 8- or 16-bit grayscale PNG (`name` is used in errors).
    pub fn decode_png(bytes: &[u8], name: &str) -> Result<Self> {
        let (width, height, data) = crate::core::cam::decode_gray_png(bytes, name, "saliency map")?;
        Ok(Saliency {
            width,
            height,
            data,
        })
    }

    /// Read a saliency PNG.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::decode_png(&bytes, &path.display().to_string())
    }
}

/// EPS++'s pseudo-label (see the module docs) of `image` from `cam` (its `present` classes, all
/// when `None`) and `saliency`, both at the image's size or resized to it (bilinear, align
/// corners, as PAMR does). `name` (the CAM file) is used in errors.
pub fn saliency_label(
    image: &image::RgbImage,
    cam: &Cam,
    present: Option<&[u8]>,
    saliency: &Saliency,
    pamr_settings: &PamrSettings,
    name: &str,
) -> Result<LabelMap> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if (saliency.width, saliency.height) != (w, h) {
        return Err(Error::input(
            name,
            format!(
                "a {}×{} saliency map for a {w}×{h} image; expected the image's size",
                saliency.width, saliency.height
            ),
        ));
    }
    let cam = cam.select(present, name)?.normalised();
    let k = cam.classes.len();
    let v = if (cam.width, cam.height) == (w, h) {
        cam.data
    } else {
        resize_bilinear_align_corners(&cam.data, k, cam.width, cam.height, w, h)?
    };
    let n = w * h;
    let fg: Vec<f32> = (0..n)
        .map(|p| (0..k).map(|c| v[c * n + p]).sum::<f32>().min(1.0))
        .collect();
    let refined = pamr(image.as_raw(), 3, w, h, &fg, 1, w, h, pamr_settings)?;
    // Channels by ascending class id, so a tie goes to the lower id.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| cam.classes[c]);
    let label = (0..n)
        .map(|p| {
            let object = refined[p] > 0.5;
            if object != (saliency.data[p] > 0.5) {
                return IGNORE;
            }
            if !object {
                return 0;
            }
            let mut best = (f32::NEG_INFINITY, 0u8);
            for &c in &order {
                if v[c * n + p] > best.0 {
                    best = (v[c * n + p], cam.classes[c]);
                }
            }
            best.1
        })
        .collect();
    LabelMap::new(w, h, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w × 2` image: the left half black, the right half white (PAMR's affinities across
    /// the edge vanish, so each half keeps its own constant map).
    fn halves(w: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, 2, |x, _| {
            if x < w / 2 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        })
    }

    fn label(cam: &Cam, sal: &[f32]) -> Vec<u8> {
        let s = Saliency {
            width: cam.width,
            height: cam.height,
            data: sal.to_vec(),
        };
        let image = halves(cam.width as u32);
        saliency_label(&image, cam, None, &s, &PamrSettings::default(), "t.npy")
            .unwrap()
            .data
    }

    #[test]
    fn consistent_salient_pixels_take_the_best_class_the_rest_background_or_ignore() {
        // 4×2: class 3 = 1.0 on the left half, class 8 = 1.0 on the right half: M_fg = 1 on
        // both halves (each constant), so M_r = 1 > 0.5 everywhere (object).
        let (w, h) = (4, 2);
        let mut data = vec![0.0; 2 * w * h];
        for y in 0..h {
            for x in 0..w {
                data[y * w + x] = if x < 2 { 1.0 } else { 0.5 };
                data[w * h + y * w + x] = if x < 2 { 0.5 } else { 1.0 };
            }
        }
        let cam = Cam::new(vec![3, 8], h, w, data).unwrap();
        // Salient: consistent → the best class; not salient: inconsistent → 255.
        let sal = [0.9, 0.2, 0.9, 0.2, 0.6, 0.6, 0.4, 0.5];
        assert_eq!(label(&cam, &sal), [3, 255, 8, 255, 3, 3, 255, 255]);
    }

    #[test]
    fn weak_cams_are_background_where_not_salient_and_ignored_where_salient() {
        // One class: 1.0 on the left half, 0.2 on the right (constant on each): M_fg = 1 | 0.2.
        let (w, h) = (4, 2);
        let data: Vec<f32> = (0..w * h)
            .map(|p| if p % w < 2 { 1.0 } else { 0.2 })
            .collect();
        let cam = Cam::new(vec![15], h, w, data).unwrap();
        // Right half: M_r = 0.2 (no object); salient there → 255, else background.
        let sal = [0.0, 1.0, 0.0, 1.0, 0.7, 0.7, 0.1, 0.1];
        assert_eq!(label(&cam, &sal), [255, 15, 0, 255, 15, 15, 0, 0]);
    }

    #[test]
    fn ties_go_to_the_lower_class_and_sizes_must_match() {
        let cam = Cam::new(vec![9, 4], 2, 2, vec![1.0; 8]).unwrap();
        let image = halves(2);
        let s = Saliency {
            width: 2,
            height: 2,
            data: vec![1.0; 4],
        };
        let l = saliency_label(&image, &cam, None, &s, &PamrSettings::default(), "t").unwrap();
        assert_eq!(l.data, [4, 4, 4, 4]);
        let small = Saliency {
            width: 1,
            height: 2,
            data: vec![1.0; 2],
        };
        let e = saliency_label(
            &image,
            &cam,
            None,
            &small,
            &PamrSettings::default(),
            "c.npy",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("c.npy") && e.contains("saliency"), "{e}");
    }
}
