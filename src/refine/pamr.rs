//! PAMR: pixel-adaptive mask refinement, a model-free refiner driven by image colour.
//!
//! From Araslanov & Roth, "Single-Stage Semantic Segmentation from Image Labels" (CVPR 2020,
//! Sec. 3.3; official code `visinf/1-stage-wseg`, `models/mods/pamr.py`), and used by EPS++ to
//! refine CAMs. This is a line-by-line reading of the official module:
//!
//! 1. The map (`C × h × w`, e.g. CAMs or class probabilities) is resized to the image with
//!    bilinear interpolation, `align_corners=True`.
//! 2. For every dilation `d` (default 1, 2, 4, 8, 12, 24), the 3×3 neighbourhood at offsets
//!    `{−d, 0, d}²` is read with **replicate padding** (coordinates clamped to the image).
//! 3. Per pixel and channel, σ is the **unbiased** (`n − 1`) standard deviation of the
//!    `9 · #dilations` values of all those neighbourhoods, **centre included** once per
//!    dilation (`LocalStDev`).
//! 4. For the `8 · #dilations` neighbours (**centre excluded**), the affinity is
//!    `−|x_i − x_j| / (1e-8 + 0.1 σ)`, averaged over the image channels, then a softmax over
//!    the neighbours gives the weights `w_ij`.
//! 5. `iterations` times (default 10): `m_i ← Σ_j w_ij m_j` over the same neighbours
//!    (`LocalAffinityCopy`; the centre does not vote for itself).
//!
//! The affinity is invariant to a per-channel affine change of the image (up to the 1e-8), so
//! raw 0–255 RGB gives the same weights as the normalised tensor the official code sees.
//!
//! ```
//! use camsam::refine::pamr::{pamr, PamrSettings};
//! // 4×1 RGB image: two black pixels, two white. A 1-channel map that is high on the left.
//! let image = [0u8, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255];
//! let map = [1.0f32, 0.8, 0.2, 0.0];
//! let s = PamrSettings { iterations: 10, dilations: vec![1] };
//! let out = pamr(&image, 3, 4, 1, &map, 1, 4, 1, &s).unwrap();
//! // Each half settles on one value of its own (8/13·1 + 5/13·0.8 on the left): the colour
//! // edge is not crossed.
//! assert!((out[0] - 12.0 / 13.0).abs() < 1e-4 && (out[3] - 1.0 / 13.0).abs() < 1e-4);
//! ```

use crate::core::cam::{Cam, CamLabel, CamToLabel};
use crate::{Error, Result};

/// The dilations used by EPS++ and the official PAMR configuration.
pub const DEFAULT_DILATIONS: [usize; 6] = [1, 2, 4, 8, 12, 24];

/// PAMR's settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PamrSettings {
    /// Propagation steps (default 10).
    pub iterations: usize,
    /// Neighbourhood dilations (default 1, 2, 4, 8, 12, 24).
    pub dilations: Vec<usize>,
}

impl Default for PamrSettings {
    fn default() -> Self {
        PamrSettings {
            iterations: 10,
            dilations: DEFAULT_DILATIONS.to_vec(),
        }
    }
}

/// The 3×3 kernel's eight neighbours `(dy, dx)`, in the official kernel order.
const NEIGHBOURS: [(i64, i64); 8] = [
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, -1),
    (0, 1),
    (1, -1),
    (1, 0),
    (1, 1),
];

/// PAMR's propagation weights for one image: for each neighbour offset, one weight per pixel.
#[derive(Debug, Clone)]
pub struct Affinity {
    width: usize,
    height: usize,
    /// Neighbour offsets `(dy, dx)`, dilation-major, kernel order within a dilation.
    offsets: Vec<(i64, i64)>,
    /// `offsets.len() × height × width`: the softmax weights, planes per offset.
    weights: Vec<f32>,
}

impl Affinity {
    /// Affinities of an interleaved image (`height × width × channels`, e.g. RGB u8 as f32).
    pub fn from_image(
        image: &[f32],
        channels: usize,
        width: usize,
        height: usize,
        dilations: &[usize],
    ) -> Result<Self> {
        if channels == 0 || image.len() != width * height * channels {
            return Err(Error::input(
                "PAMR image",
                format!(
                    "has {} values; expected {width}×{height}×{channels} with at least one channel",
                    image.len()
                ),
            ));
        }
        if dilations.is_empty() || dilations.contains(&0) {
            return Err(Error::input(
                "PAMR dilations",
                format!("are {dilations:?}; expected one or more positive integers"),
            ));
        }
        if let Some(i) = image.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(
                "PAMR image",
                format!("value {i} is not finite; expected finite colours"),
            ));
        }
        let offsets: Vec<(i64, i64)> = dilations
            .iter()
            .flat_map(|&d| {
                NEIGHBOURS
                    .iter()
                    .map(move |&(dy, dx)| (dy * d as i64, dx * d as i64))
            })
            .collect();
        let n = width * height;
        let p = offsets.len();
        let clamp = |v: i64, hi: usize| v.clamp(0, hi as i64 - 1) as usize;

        // σ per pixel and channel over the 9·#dilations samples (centre once per dilation).
        let samples = 9 * dilations.len();
        let mut sigma = vec![0f32; n * channels];
        let mut vals = vec![0f64; samples];
        for y in 0..height {
            for x in 0..width {
                let i = y * width + x;
                for c in 0..channels {
                    let mut k = 0;
                    for &d in dilations {
                        for dy in -1i64..=1 {
                            for dx in -1i64..=1 {
                                let ny = clamp(y as i64 + dy * d as i64, height);
                                let nx = clamp(x as i64 + dx * d as i64, width);
                                vals[k] = image[(ny * width + nx) * channels + c] as f64;
                                k += 1;
                            }
                        }
                    }
                    let mean = vals.iter().sum::<f64>() / samples as f64;
                    let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
                        / (samples - 1) as f64;
                    sigma[i * channels + c] = var.sqrt() as f32;
                }
            }
        }

        // Channel-mean affinities, then a softmax over the neighbours.
        let mut weights = vec![0f32; p * n];
        let mut aff = vec![0f32; p];
        for y in 0..height {
            for x in 0..width {
                let i = y * width + x;
                for (k, &(dy, dx)) in offsets.iter().enumerate() {
                    let j = clamp(y as i64 + dy, height) * width + clamp(x as i64 + dx, width);
                    let mut a = 0f32;
                    for c in 0..channels {
                        let diff = (image[i * channels + c] - image[j * channels + c]).abs();
                        a += -diff / (1e-8 + 0.1 * sigma[i * channels + c]);
                    }
                    aff[k] = a / channels as f32;
                }
                let max = aff.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for a in aff.iter_mut() {
                    *a = (*a - max).exp();
                    sum += *a;
                }
                for (k, a) in aff.iter().enumerate() {
                    weights[k * n + i] = a / sum;
                }
            }
        }
        Ok(Affinity {
            width,
            height,
            offsets,
            weights,
        })
    }

    /// `(width, height)` of the image.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The weight of neighbour `k` (dilation-major, kernel order) at pixel `(x, y)`.
    pub fn weight(&self, k: usize, x: usize, y: usize) -> f32 {
        self.weights[k * self.width * self.height + y * self.width + x]
    }

    /// Run `iterations` propagation steps on a `classes × height × width` map at image size.
    pub fn propagate(&self, map: &[f32], classes: usize, iterations: usize) -> Result<Vec<f32>> {
        let (w, h) = (self.width, self.height);
        let n = w * h;
        if map.len() != classes * n {
            return Err(Error::input(
                "PAMR map",
                format!(
                    "has {} values; expected {classes}×{h}×{w} = {} (the image size)",
                    map.len(),
                    classes * n
                ),
            ));
        }
        let mut cur = map.to_vec();
        let mut next = vec![0f32; cur.len()];
        let clamp = |v: i64, hi: usize| v.clamp(0, hi as i64 - 1) as usize;
        for _ in 0..iterations {
            next.iter_mut().for_each(|v| *v = 0.0);
            for c in 0..classes {
                let src = &cur[c * n..(c + 1) * n];
                let dst = &mut next[c * n..(c + 1) * n];
                for (k, &(dy, dx)) in self.offsets.iter().enumerate() {
                    let wk = &self.weights[k * n..(k + 1) * n];
                    for y in 0..h {
                        let sy = clamp(y as i64 + dy, h);
                        let src_row = &src[sy * w..(sy + 1) * w];
                        let w_row = &wk[y * w..(y + 1) * w];
                        let dst_row = &mut dst[y * w..(y + 1) * w];
                        for x in 0..w {
                            dst_row[x] += w_row[x] * src_row[clamp(x as i64 + dx, w)];
                        }
                    }
                }
            }
            std::mem::swap(&mut cur, &mut next);
        }
        Ok(cur)
    }
}

/// Bilinear resize with `align_corners=True` (PyTorch's `F.interpolate` semantics) of a
/// `channels × in_h × in_w` map to `channels × out_h × out_w`.
pub fn resize_bilinear_align_corners(
    map: &[f32],
    channels: usize,
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
) -> Result<Vec<f32>> {
    if map.len() != channels * in_w * in_h || in_w == 0 || in_h == 0 {
        return Err(Error::input(
            "map to resize",
            format!(
                "has {} values; expected a non-empty {channels}×{in_h}×{in_w} map",
                map.len()
            ),
        ));
    }
    // Source coordinate, lower index, upper index and upper weight for each output index.
    let taps = |inn: usize, out: usize| -> Vec<(usize, usize, f32)> {
        let scale = if out > 1 {
            (inn - 1) as f32 / (out - 1) as f32
        } else {
            0.0
        };
        (0..out)
            .map(|o| {
                let src = scale * o as f32;
                let i0 = (src.floor() as usize).min(inn - 1);
                let i1 = if i0 < inn - 1 { i0 + 1 } else { i0 };
                (i0, i1, src - i0 as f32)
            })
            .collect()
    };
    let tx = taps(in_w, out_w);
    let ty = taps(in_h, out_h);
    let mut out = vec![0f32; channels * out_w * out_h];
    for c in 0..channels {
        let src = &map[c * in_w * in_h..(c + 1) * in_w * in_h];
        let dst = &mut out[c * out_w * out_h..(c + 1) * out_w * out_h];
        for (oy, &(y0, y1, ly)) in ty.iter().enumerate() {
            for (ox, &(x0, x1, lx)) in tx.iter().enumerate() {
                let top = (1.0 - lx) * src[y0 * in_w + x0] + lx * src[y0 * in_w + x1];
                let bottom = (1.0 - lx) * src[y1 * in_w + x0] + lx * src[y1 * in_w + x1];
                dst[oy * out_w + ox] = (1.0 - ly) * top + ly * bottom;
            }
        }
    }
    Ok(out)
}

/// PAMR on an interleaved 8-bit image (`height × width × channels`, e.g. RGB) and a
/// `classes × map_h × map_w` map: resize the map to the image (bilinear, align corners),
/// then propagate it with the image's affinities. Returns `classes × height × width`.
#[allow(clippy::too_many_arguments)]
pub fn pamr(
    image: &[u8],
    channels: usize,
    width: usize,
    height: usize,
    map: &[f32],
    classes: usize,
    map_w: usize,
    map_h: usize,
    settings: &PamrSettings,
) -> Result<Vec<f32>> {
    let image: Vec<f32> = image.iter().map(|&v| v as f32).collect();
    let aff = Affinity::from_image(&image, channels, width, height, &settings.dilations)?;
    let resized = if (map_w, map_h) == (width, height) {
        if map.len() != classes * width * height {
            return Err(Error::input(
                "PAMR map",
                format!(
                    "has {} values; expected {classes}×{map_h}×{map_w}",
                    map.len()
                ),
            ));
        }
        map.to_vec()
    } else {
        resize_bilinear_align_corners(map, classes, map_w, map_h, width, height)?
    };
    aff.propagate(&resized, classes, settings.iterations)
}

/// PAMR as a model-free refiner of a [`Cam`]: the CAM (its `present` classes, all when
/// `None`) is normalised per class (max 1), resized to the image and propagated; the result
/// is a CAM at the image size. Turn it into a pseudo-label with [`Cam::to_label`] (background
/// threshold, argmax, optional ignore band) — the same step as `camsam cam2label`.
pub fn pamr_cam(
    image: &image::RgbImage,
    cam: &Cam,
    present: Option<&[u8]>,
    settings: &PamrSettings,
    name: &str,
) -> Result<Cam> {
    let cam = cam.select(present, name)?.normalised();
    let (w, h) = (image.width() as usize, image.height() as usize);
    let data = pamr(
        image.as_raw(),
        3,
        w,
        h,
        &cam.data,
        cam.classes.len(),
        cam.width,
        cam.height,
        settings,
    )?;
    Cam::new(cam.classes, h, w, data)
}

/// CAM → PAMR → pseudo-label in one call (see [`pamr_cam`] and [`Cam::to_label`]).
pub fn pamr_label(
    image: &image::RgbImage,
    cam: &Cam,
    present: Option<&[u8]>,
    settings: &PamrSettings,
    to_label: &CamToLabel,
    name: &str,
) -> Result<CamLabel> {
    let refined = pamr_cam(image, cam, present, settings, name)?;
    refined.to_label(None, to_label, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Named tolerance for f32 results computed by hand in f64.
    const TOL: f32 = 1e-5;

    fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len());
        let (i, d) = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .enumerate()
            .fold((0, 0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
        assert!(
            d <= tol,
            "worst element {i}: got {} want {} (|Δ| = {d} > {tol})",
            got[i],
            want[i]
        );
    }

    #[test]
    fn resize_align_corners_matches_hand_values() {
        // 2×2 → 3×3: corners kept, midpoints averaged.
        let map = [0.0f32, 1.0, 2.0, 3.0];
        let out = resize_bilinear_align_corners(&map, 1, 2, 2, 3, 3).unwrap();
        assert_close(&out, &[0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.5, 3.0], TOL);
        // 3×1 → 1×1 takes the first element (scale 0 when the output has one pixel).
        let out = resize_bilinear_align_corners(&[5.0, 6.0, 7.0], 1, 3, 1, 1, 1).unwrap();
        assert_close(&out, &[5.0], TOL);
    }

    /// 3×1 gray image [0, 0, 10], dilation 1, by hand. Replicate padding:
    /// pixel 0 sees rows of [0, 0, 0] × 3 → 9 samples {0×9}: σ = 0, neighbours all 0 except
    /// the three at dx = +1 (value 0, same) → every affinity is 0 → uniform weights 1/8.
    /// Pixel 2 (value 10) sees [0, 10, 10] per row → samples {0×3, 10×6}: mean 20/3,
    /// unbiased var = (3·(20/3)² + 6·(10/3)²)/8 = 25, σ = 5; the neighbours at dx = −1 differ
    /// by 10 → affinity −10 / 0.5 = −20; the other five are 0.
    #[test]
    fn affinity_weights_match_hand_computation() {
        let aff = Affinity::from_image(&[0.0, 0.0, 10.0], 1, 3, 1, &[1]).unwrap();
        for k in 0..8 {
            assert!((aff.weight(k, 0, 0) - 0.125).abs() < TOL);
        }
        let e = (-20f64).exp();
        let far = (e / (5.0 + 3.0 * e)) as f32;
        let near = (1.0 / (5.0 + 3.0 * e)) as f32;
        for (k, &(_, dx)) in NEIGHBOURS.iter().enumerate() {
            let want = if dx == -1 { far } else { near };
            let got = aff.weight(k, 2, 0);
            assert!((got - want).abs() < TOL, "neighbour {k}: {got} vs {want}");
        }
        // Pixel 1 (value 0): samples [0,0,10]×3 → σ = 5 as well; dx = +1 differs by 10.
        for (k, &(_, dx)) in NEIGHBOURS.iter().enumerate() {
            let want = if dx == 1 { far } else { near };
            assert!((aff.weight(k, 1, 0) - want).abs() < TOL);
        }
    }

    #[test]
    fn propagation_matches_hand_computation() {
        // Same image; map [1, 0, 0]. One step:
        //   m0 = Σ 1/8 · m[clamp(0+dx)] = (3·m0 + 2·m0 + 3·m1)/8 = 5/8
        //   (dx=−1 → clamp to 0; dx=0 → 0; dx=+1 → 1);
        //   m1 = 3·far·m2 + near·(3·m0 + 2·m1) = 3·near;
        //   m2 = 3·far·m1 + near·(2·m2 + 3·m2) = 0.
        let aff = Affinity::from_image(&[0.0, 0.0, 10.0], 1, 3, 1, &[1]).unwrap();
        let e = (-20f64).exp();
        let near = 1.0 / (5.0 + 3.0 * e);
        let out = aff.propagate(&[1.0, 0.0, 0.0], 1, 1).unwrap();
        assert_close(&out, &[0.625, (3.0 * near) as f32, 0.0], TOL);
        // Two steps, by the same rule.
        let (m0, m1) = (0.625, 3.0 * near);
        let far = e * near;
        let want = [
            (5.0 * m0 + 3.0 * m1) / 8.0,
            near * (3.0 * m0 + 2.0 * m1),
            3.0 * far * m1,
        ];
        let out = aff.propagate(&[1.0, 0.0, 0.0], 1, 2).unwrap();
        assert_close(&out, &want.map(|v| v as f32), TOL);
    }

    #[test]
    fn constant_image_averages_over_neighbours_without_centre() {
        // 5×5 constant image: uniform weights 1/8 (σ = 0 and every |Δ| = 0). One step at the
        // centre pixel of a delta map: the centre itself does not vote, so it becomes 0 and
        // its eight neighbours receive 1/8 each.
        let image = vec![7u8; 25];
        let mut map = vec![0f32; 25];
        map[12] = 1.0;
        let s = PamrSettings {
            iterations: 1,
            dilations: vec![1],
        };
        let out = pamr(&image, 1, 5, 5, &map, 1, 5, 5, &s).unwrap();
        assert!(out[12].abs() < TOL);
        for (dy, dx) in NEIGHBOURS {
            let j = ((2 + dy) * 5 + 2 + dx) as usize;
            assert!((out[j] - 0.125).abs() < TOL);
        }
        // Mass is conserved away from the border for a symmetric kernel.
        assert!((out.iter().sum::<f32>() - 1.0).abs() < TOL);
    }

    #[test]
    fn multi_dilation_std_uses_all_samples() {
        // 5×1 image [0,0,0,0,9], dilations 1 and 2, at pixel 4 (value 9):
        // d=1 rows: [0,9,9] ×3; d=2 rows: [0,9,9] (x=2, 4, clamp 6→4) ×3 → 18 samples,
        // 6 zeros and 12 nines: mean 6, var = (6·36 + 12·9)/17 = 324/17.
        // Neighbours at dx = −d differ by 9, others 0.
        let aff = Affinity::from_image(&[0.0, 0.0, 0.0, 0.0, 9.0], 1, 5, 1, &[1, 2]).unwrap();
        let sigma = (324.0f64 / 17.0).sqrt();
        let a = (-9.0 / (1e-8 + 0.1 * sigma)).exp();
        let z = 10.0 + 6.0 * a;
        for k in 0..16 {
            let dx = NEIGHBOURS[k % 8].1;
            let want = if dx == -1 { a / z } else { 1.0 / z };
            assert!((aff.weight(k, 4, 0) as f64 - want).abs() < 1e-5);
        }
    }

    /// 4×1 image black, black, white, white; dilation 1. The edge weight is e^−20 (σ = 127.5,
    /// |Δ| = 255): each half evolves alone. On the left, pixel 0 (σ = 0) averages uniformly:
    /// m0 ← (5 m0 + 3 m1)/8, and pixel 1: m1 ← (3 m0 + 2 m1)/5. The fixed point is the left
    /// eigenvector (8/13, 5/13) applied to the start; the second eigenvalue 1/40 makes ten
    /// steps converge: left 8/13 + 5/13·0.8 = 12/13, right 5/13·0.2 = 1/13.
    #[test]
    fn colour_edge_is_not_crossed() {
        let image = [0u8, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255];
        let s = PamrSettings {
            iterations: 10,
            dilations: vec![1],
        };
        let out = pamr(&image, 3, 4, 1, &[1.0, 0.8, 0.2, 0.0], 1, 4, 1, &s).unwrap();
        assert_close(
            &out,
            &[12.0 / 13.0, 12.0 / 13.0, 1.0 / 13.0, 1.0 / 13.0],
            1e-4,
        );
    }

    /// CAM → PAMR → label on a 4×1 image (black, black, white, white) with a 2×1 CAM of one
    /// class (id 9) = [0.8, 0.1]. Normalised: [1, 0.125]; resized with align corners to
    /// [1, 0.7083, 0.4167, 0.125]; PAMR converges each half to its fixed point (8/13, 5/13
    /// weights): left 8/13 + 5/13·0.7083 = 0.8878, right 5/13·0.4167 + 8/13·0.125 = 0.2372.
    /// `to_label` re-normalises by the max (0.8878): right = 0.2672 ≥ 0.25 → class 9
    /// everywhere at the default threshold, background on the right at 0.3.
    #[test]
    fn cam_to_label_through_pamr() {
        let image = image::RgbImage::from_fn(4, 1, |x, _| {
            if x < 2 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let cam = Cam::new(vec![9], 1, 2, vec![0.8, 0.1]).unwrap();
        let s = PamrSettings {
            iterations: 10,
            dilations: vec![1],
        };
        let refined = pamr_cam(&image, &cam, None, &s, "c.npy").unwrap();
        // Resized CAM at x = 1, 2 (align corners: sources 1/3, 2/3).
        let l1 = 1.0 - 0.875 / 3.0;
        let l2 = 1.0 - 2.0 * 0.875 / 3.0;
        let left = (8.0 + 5.0 * l1) / 13.0;
        let right = (5.0 * l2 + 8.0 * 0.125) / 13.0;
        assert_close(&refined.data, &[left, left, right, right], 1e-4);
        let label = pamr_label(&image, &cam, None, &s, &CamToLabel::default(), "c.npy").unwrap();
        assert_eq!(label.label.data, vec![9, 9, 9, 9]);
        let strict = CamToLabel {
            bg_threshold: 0.3,
            ..CamToLabel::default()
        };
        let label = pamr_label(&image, &cam, Some(&[9]), &s, &strict, "c.npy").unwrap();
        assert_eq!(label.label.data, vec![9, 9, 0, 0]);
        // A present class without a channel is an error naming the file.
        let err = pamr_cam(&image, &cam, Some(&[3]), &s, "c.npy").unwrap_err();
        assert!(err.to_string().contains("c.npy"));
    }

    #[test]
    fn bad_shapes_are_errors() {
        let s = PamrSettings::default();
        assert!(pamr(&[0; 5], 3, 2, 1, &[0.0; 2], 1, 2, 1, &s).is_err());
        assert!(pamr(&[0; 6], 3, 2, 1, &[0.0; 3], 1, 2, 1, &s).is_err());
        let bad = PamrSettings {
            iterations: 1,
            dilations: vec![0],
        };
        assert!(pamr(&[0; 6], 3, 2, 1, &[0.0; 2], 1, 2, 1, &bad).is_err());
        assert!(resize_bilinear_align_corners(&[], 1, 0, 0, 2, 2).is_err());
    }
}
