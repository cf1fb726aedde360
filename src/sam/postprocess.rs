//! SAM's mask post-processing: low-resolution logits → logits at the original image size.
//!
//! A faithful port of `Sam.postprocess_masks` (official `segment_anything/modeling/sam.py`):
//! ```text
//! masks = F.interpolate(low_res, (1024, 1024), mode="bilinear", align_corners=False)
//! masks = masks[..., :input_h, :input_w]
//! masks = F.interpolate(masks, original_size, mode="bilinear", align_corners=False)
//! ```
//! followed by `masks > mask_threshold` (0.0) for binary masks.
//!
//! Bilinear resizing follows PyTorch's CPU rule for `align_corners=False` with an output size
//! (no scale factor): `ratio = in / out` (f32), source index
//! `src = max(ratio · (dst + 0.5) − 0.5, 0)`, `i0 = min(floor(src), in − 1)`,
//! `i1 = i0 + (i0 < in − 1)`, `λ1 = clamp(src − i0, 0, 1)`, `λ0 = 1 − λ1`; equal sizes copy.
//! Interpolation is separable — along the width first (`x[i0]·λ0 + x[i1]·λ1`), then along the
//! height — which is the order PyTorch's kernel combines the four neighbours in, so the
//! result is the same floats. The 1024×1024 intermediate is only computed inside the
//! crop `[:input_h, :input_w]`: outside values are never read, so the result is unchanged.
//!
//! ```
//! use camsam::sam::postprocess::{postprocess_masks, LOW_RES_SIDE};
//! let low_res = vec![1.0_f32; LOW_RES_SIDE * LOW_RES_SIDE];
//! // a 600×800 image is fed to SAM as 768×1024
//! let logits = postprocess_masks(&low_res, 1, (768, 1024), (600, 800)).unwrap();
//! assert_eq!(logits.len(), 600 * 800);
//! assert!(logits.iter().all(|&v| v == 1.0));
//! ```

use crate::{Error, Result};

/// Side of SAM's low-resolution mask logits.
pub const LOW_RES_SIDE: usize = crate::sam::predictor::LOW_RES;
/// Side of SAM's padded model input (`image_encoder.img_size`).
pub const INPUT_SIDE: usize = 1024;
/// `Sam.mask_threshold`: logits above it are inside the mask.
pub const MASK_THRESHOLD: f32 = 0.0;

/// One output position of a 1-D linear resize: two source taps and their weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tap {
    pub i0: usize,
    pub i1: usize,
    pub w0: f32,
    pub w1: f32,
}

/// The taps of PyTorch's `align_corners=False` linear resize from `in_len` to `out_len`.
pub fn linear_taps(in_len: usize, out_len: usize) -> Vec<Tap> {
    if in_len == out_len {
        return (0..out_len)
            .map(|i| Tap {
                i0: i,
                i1: i,
                w0: 1.0,
                w1: 0.0,
            })
            .collect();
    }
    let ratio = in_len as f32 / out_len as f32;
    (0..out_len)
        .map(|dst| {
            let src = ratio * (dst as f32 + 0.5) - 0.5;
            let src = if src < 0.0 { 0.0 } else { src };
            let i0 = (src.floor() as usize).min(in_len - 1);
            let w1 = (src - i0 as f32).clamp(0.0, 1.0);
            let i1 = i0 + usize::from(i0 < in_len - 1);
            Tap {
                i0,
                i1,
                w0: 1.0 - w1,
                w1,
            }
        })
        .collect()
}

/// A separable bilinear resize plan (rows × columns taps), reusable across many maps.
#[derive(Debug, Clone)]
pub struct Bilinear {
    in_size: (usize, usize),
    rows: Vec<Tap>,
    cols: Vec<Tap>,
}

impl Bilinear {
    /// Plan `F.interpolate(x, out_size, mode="bilinear", align_corners=False)` for an
    /// `in_size = (h, w)` map; only the first `keep = (h, w)` output rows/columns are produced
    /// (`keep = out_size` for the whole output).
    pub fn new(in_size: (usize, usize), out_size: (usize, usize), keep: (usize, usize)) -> Self {
        let mut rows = linear_taps(in_size.0, out_size.0);
        let mut cols = linear_taps(in_size.1, out_size.1);
        rows.truncate(keep.0);
        cols.truncate(keep.1);
        Bilinear {
            in_size,
            rows,
            cols,
        }
    }

    /// `(height, width)` of the produced map.
    pub fn out_size(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }

    /// Resize `src` (`in_size`, row-major) into `dst` (`out_size`); `tmp` is scratch space.
    pub fn apply(&self, src: &[f32], dst: &mut Vec<f32>, tmp: &mut Vec<f32>) {
        let (ih, iw) = self.in_size;
        debug_assert_eq!(src.len(), ih * iw);
        let ow = self.cols.len();
        // Along the width: every input row that some output row reads.
        tmp.clear();
        tmp.resize(ih * ow, 0.0);
        for r in 0..ih {
            let row = &src[r * iw..(r + 1) * iw];
            let out = &mut tmp[r * ow..(r + 1) * ow];
            for (o, t) in out.iter_mut().zip(&self.cols) {
                *o = row[t.i0] * t.w0 + row[t.i1] * t.w1;
            }
        }
        // Along the height.
        dst.clear();
        dst.reserve(self.rows.len() * ow);
        for t in &self.rows {
            let a = &tmp[t.i0 * ow..(t.i0 + 1) * ow];
            let b = &tmp[t.i1 * ow..(t.i1 + 1) * ow];
            dst.extend(a.iter().zip(b).map(|(&a, &b)| a * t.w0 + b * t.w1));
        }
    }
}

/// `postprocess_masks` for many masks of one image, with the plans and scratch reused.
#[derive(Debug, Clone)]
pub struct Postprocessor {
    to_input: Bilinear,
    to_original: Bilinear,
    original_size: (usize, usize),
    mid: Vec<f32>,
    tmp: Vec<f32>,
}

impl Postprocessor {
    /// Plan for an image fed at `input_size = (h, w)` (≤ 1024, longest side resized to 1024)
    /// whose original size is `original_size = (h, w)`.
    pub fn new(input_size: (usize, usize), original_size: (usize, usize)) -> Result<Self> {
        let (ih, iw) = input_size;
        let (oh, ow) = original_size;
        if ih == 0 || iw == 0 || ih > INPUT_SIDE || iw > INPUT_SIDE || oh == 0 || ow == 0 {
            return Err(Error::input(
                "postprocess_masks",
                format!(
                    "input size {ih}×{iw} and original size {oh}×{ow}; expected a non-empty \
                     input of at most {INPUT_SIDE}×{INPUT_SIDE} and a non-empty original"
                ),
            ));
        }
        Ok(Postprocessor {
            to_input: Bilinear::new(
                (LOW_RES_SIDE, LOW_RES_SIDE),
                (INPUT_SIDE, INPUT_SIDE),
                input_size,
            ),
            to_original: Bilinear::new(input_size, original_size, original_size),
            original_size,
            mid: Vec::new(),
            tmp: Vec::new(),
        })
    }

    /// `(height, width)` of the produced logits.
    pub fn original_size(&self) -> (usize, usize) {
        self.original_size
    }

    /// One 256×256 logit map → logits at the original size, written into `out`.
    pub fn apply_into(&mut self, low_res: &[f32], out: &mut Vec<f32>) -> Result<()> {
        if low_res.len() != LOW_RES_SIDE * LOW_RES_SIDE {
            return Err(Error::input(
                "postprocess_masks",
                format!(
                    "{} low-resolution logits; expected {LOW_RES_SIDE}×{LOW_RES_SIDE}",
                    low_res.len()
                ),
            ));
        }
        self.to_input.apply(low_res, &mut self.mid, &mut self.tmp);
        self.to_original.apply(&self.mid, out, &mut self.tmp);
        Ok(())
    }

    /// One 256×256 logit map → logits at the original size.
    pub fn apply(&mut self, low_res: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.apply_into(low_res, &mut out)?;
        Ok(out)
    }
}

/// `Sam.postprocess_masks` for `count` low-resolution maps (`count × 256 × 256`, row-major):
/// returns `count × original_h × original_w` logits.
pub fn postprocess_masks(
    low_res: &[f32],
    count: usize,
    input_size: (usize, usize),
    original_size: (usize, usize),
) -> Result<Vec<f32>> {
    let plane = LOW_RES_SIDE * LOW_RES_SIDE;
    if low_res.len() != count * plane {
        return Err(Error::input(
            "postprocess_masks",
            format!(
                "{} low-resolution logits; expected {count}×{LOW_RES_SIDE}×{LOW_RES_SIDE}",
                low_res.len()
            ),
        ));
    }
    let mut pp = Postprocessor::new(input_size, original_size)?;
    let mut all = Vec::with_capacity(count * original_size.0 * original_size.1);
    let mut one = Vec::new();
    for map in low_res.chunks_exact(plane) {
        pp.apply_into(map, &mut one)?;
        all.extend_from_slice(&one);
    }
    Ok(all)
}

/// Binary mask from logits: `logit > MASK_THRESHOLD`.
pub fn threshold(logits: &[f32]) -> Vec<bool> {
    logits.iter().map(|&v| v > MASK_THRESHOLD).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tolerance for hand-computed interpolation values.
    const EXACT_ENOUGH: f32 = 1e-6;

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(want)
            .enumerate()
            .max_by(|a, b| (a.1 .0 - a.1 .1).abs().total_cmp(&(b.1 .0 - b.1 .1).abs()));
        if let Some((i, (g, w))) = worst {
            assert!(
                (g - w).abs() <= EXACT_ENOUGH,
                "worst element {i}: got {g}, expected {w}"
            );
        }
    }

    #[test]
    fn taps_follow_pytorch_align_corners_false() {
        // 2 → 4: ratio 0.5, src = 0.5·(d + 0.5) − 0.5 = −0.25, 0.25, 0.75, 1.25
        let t = linear_taps(2, 4);
        assert_eq!((t[0].i0, t[0].i1, t[0].w1), (0, 1, 0.0)); // clamped at 0
        assert_eq!((t[1].i0, t[1].i1, t[1].w1), (0, 1, 0.25));
        assert_eq!((t[2].i0, t[2].i1, t[2].w1), (0, 1, 0.75));
        assert_eq!((t[3].i0, t[3].i1, t[3].w1), (1, 1, 0.25)); // last index repeats
                                                               // 4 → 2: ratio 2, src = 0.5, 2.5
        let t = linear_taps(4, 2);
        assert_eq!((t[0].i0, t[0].i1, t[0].w1), (0, 1, 0.5));
        assert_eq!((t[1].i0, t[1].i1, t[1].w1), (2, 3, 0.5));
        // 3 → 3: a copy
        let t = linear_taps(3, 3);
        assert!(t.iter().enumerate().all(|(i, t)| t.i0 == i && t.w0 == 1.0));
    }

    #[test]
    fn upsample_1d_matches_hand_computed_values() {
        // F.interpolate(torch.tensor([[[[0., 4.]]]]), (1, 4), mode="bilinear") = [0, 1, 3, 4]
        let plan = Bilinear::new((1, 2), (1, 4), (1, 4));
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        plan.apply(&[0.0, 4.0], &mut out, &mut tmp);
        assert_close(&out, &[0.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn bilinear_2d_matches_hand_computed_values() {
        // x = [[0, 4], [8, 12]] → 3×3: ratio 2/3, src = (d+0.5)·2/3 − 0.5 = −1/6→0, 0.5, 7/6
        // rows/cols taps: (0,1,0), (0,1,0.5), (1,1,1/6)
        let plan = Bilinear::new((2, 2), (3, 3), (3, 3));
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        plan.apply(&[0.0, 4.0, 8.0, 12.0], &mut out, &mut tmp);
        #[rustfmt::skip]
        let want = [
            0.0, 2.0, 4.0,
            4.0, 6.0, 8.0,
            8.0, 10.0, 12.0,
        ];
        assert_close(&out, &want);
        // 4×4 → 2×2 (downsampling averages the two middle taps)
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let plan = Bilinear::new((4, 4), (2, 2), (2, 2));
        plan.apply(&x, &mut out, &mut tmp);
        // src = 0.5 and 2.5 on both axes
        assert_close(&out, &[2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn keep_crops_without_changing_values() {
        let x: Vec<f32> = (0..20).map(|v| (v * v) as f32 * 0.1).collect();
        let full = Bilinear::new((4, 5), (9, 11), (9, 11));
        let cropped = Bilinear::new((4, 5), (9, 11), (6, 7));
        let (mut a, mut b, mut tmp) = (Vec::new(), Vec::new(), Vec::new());
        full.apply(&x, &mut a, &mut tmp);
        cropped.apply(&x, &mut b, &mut tmp);
        for r in 0..6 {
            for c in 0..7 {
                assert_eq!(a[r * 11 + c], b[r * 7 + c], "at ({r}, {c})");
            }
        }
    }

    #[test]
    fn postprocess_two_steps_equal_the_official_chain() {
        // The official chain materialises the 1024×1024 map, crops, then resizes.
        let low: Vec<f32> = (0..LOW_RES_SIDE * LOW_RES_SIDE)
            .map(|i| ((i * 7919) % 263) as f32 / 13.0 - 10.0)
            .collect();
        let (input, original) = ((768, 1024), (480, 640));
        let full = Bilinear::new((256, 256), (1024, 1024), (1024, 1024));
        let (mut big, mut tmp) = (Vec::new(), Vec::new());
        full.apply(&low, &mut big, &mut tmp);
        let crop: Vec<f32> = (0..input.0)
            .flat_map(|r| big[r * 1024..r * 1024 + input.1].to_vec())
            .collect();
        let mut want = Vec::new();
        Bilinear::new(input, original, original).apply(&crop, &mut want, &mut tmp);
        let got = postprocess_masks(&low, 1, input, original).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn upsampling_by_four_interpolates_between_low_res_cells() {
        // 256 → 1024 (ratio 0.25): output 4k+2 reads src k + 0.125, weights 0.875/0.125
        let t = linear_taps(256, 1024);
        assert_eq!((t[6].i0, t[6].i1, t[6].w0, t[6].w1), (1, 2, 0.875, 0.125));
        assert_eq!((t[1].i0, t[1].w1), (0, 0.0)); // src = −0.125 → 0
        assert_eq!((t[1023].i0, t[1023].i1), (255, 255));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(postprocess_masks(&[0.0; 10], 1, (1024, 1024), (5, 5)).is_err());
        assert!(Postprocessor::new((2048, 10), (5, 5)).is_err());
        assert!(Postprocessor::new((1024, 768), (0, 5)).is_err());
    }

    #[test]
    fn threshold_is_strictly_positive() {
        assert_eq!(threshold(&[-1.0, 0.0, 0.5]), vec![false, false, true]);
    }
}
