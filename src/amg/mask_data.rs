//! Per-mask bookkeeping of the automatic mask generator: bit-packed masks, their boxes
//! (`batched_mask_to_box`) and the stability score (`calculate_stability_score`) of the
//! official `segment_anything/utils/amg.py`.
//!
//! ```
//! use camsam::amg::mask_data::{mask_to_box, BitMask};
//! let mut m = BitMask::new(4, 3);
//! m.set(1, 2, true);
//! m.set(3, 1, true);
//! assert_eq!(m.area(), 2);
//! // inclusive pixel coordinates [x0, y0, x1, y1]
//! assert_eq!(mask_to_box(&m.to_bools(), 4, 3), [1, 1, 3, 2]);
//! ```

/// A binary mask, row-major, one bit per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitMask {
    width: usize,
    height: usize,
    words: Vec<u64>,
}

impl BitMask {
    /// An empty (all false) `width × height` mask.
    pub fn new(width: usize, height: usize) -> Self {
        BitMask {
            width,
            height,
            words: vec![0; (width * height).div_ceil(64)],
        }
    }

    /// From row-major booleans (`bools.len() == width · height`).
    pub fn from_bools(width: usize, height: usize, bools: &[bool]) -> Self {
        debug_assert_eq!(bools.len(), width * height);
        let mut m = BitMask::new(width, height);
        for (i, _) in bools.iter().enumerate().filter(|(_, &b)| b) {
            m.words[i / 64] |= 1 << (i % 64);
        }
        m
    }

    /// `bools` (a `w × h` mask) placed at `(x0, y0)` in an empty `width × height` mask
    /// (`uncrop_masks`: zero padding around a crop).
    pub fn uncrop(
        bools: &[bool],
        w: usize,
        x0: usize,
        y0: usize,
        width: usize,
        height: usize,
    ) -> Self {
        let mut m = BitMask::new(width, height);
        for (r, row) in bools.chunks_exact(w.max(1)).enumerate() {
            for (c, _) in row.iter().enumerate().filter(|(_, &b)| b) {
                m.set(x0 + c, y0 + r, true);
            }
        }
        m
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        let i = y * self.width + x;
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    pub fn set(&mut self, x: usize, y: usize, v: bool) {
        let i = y * self.width + x;
        if v {
            self.words[i / 64] |= 1 << (i % 64);
        } else {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Number of pixels in the mask.
    pub fn area(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Row-major booleans.
    pub fn to_bools(&self) -> Vec<bool> {
        (0..self.width * self.height)
            .map(|i| self.words[i / 64] >> (i % 64) & 1 == 1)
            .collect()
    }

    /// The mask as an 8-bit image, 0 outside and 255 inside (SAM's `amg.py` mask files).
    pub fn to_u8(&self) -> Vec<u8> {
        self.to_bools()
            .iter()
            .map(|&b| if b { 255 } else { 0 })
            .collect()
    }
}

/// `batched_mask_to_box` for one `w × h` mask: `[x0, y0, x1, y1]` with inclusive pixel
/// coordinates (the right/bottom-most pixel's index), `[0, 0, 0, 0]` for an empty mask.
pub fn mask_to_box(mask: &[bool], w: usize, h: usize) -> [i64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0usize, 0usize);
    let mut any = false;
    for (r, row) in mask.chunks_exact(w.max(1)).take(h).enumerate() {
        let first = row.iter().position(|&b| b);
        if let Some(f) = first {
            let last = row.iter().rposition(|&b| b).unwrap_or(f);
            any = true;
            x0 = x0.min(f);
            x1 = x1.max(last);
            y0 = y0.min(r);
            y1 = y1.max(r);
        }
    }
    if any {
        [x0 as i64, y0 as i64, x1 as i64, y1 as i64]
    } else {
        [0; 4]
    }
}

/// `calculate_stability_score` for one mask's logits: the IoU between the masks thresholded
/// at `mask_threshold + offset` and `mask_threshold − offset` (f32, as PyTorch compares a
/// float32 tensor with a Python float). `NaN` when the lower mask is empty.
pub fn stability_score(logits: &[f32], mask_threshold: f64, offset: f64) -> f32 {
    let hi = (mask_threshold + offset) as f32;
    let lo = (mask_threshold - offset) as f32;
    let (mut inter, mut union) = (0u32, 0u32);
    for &v in logits {
        inter += u32::from(v > hi);
        union += u32::from(v > lo);
    }
    inter as f32 / union as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_of_empty_and_single_pixel_masks() {
        assert_eq!(mask_to_box(&[false; 6], 3, 2), [0, 0, 0, 0]);
        let mut m = vec![false; 6];
        m[5] = true;
        assert_eq!(mask_to_box(&m, 3, 2), [2, 1, 2, 1]);
    }

    #[test]
    fn stability_counts_logits_strictly_above_each_cutoff() {
        // above +1: 2.0 only; above −1: 2.0, 1.0, 0.0 (1.0 is not > 1.0)
        let s = stability_score(&[2.0, 1.0, 0.0, -1.0, -3.0], 0.0, 1.0);
        assert_eq!(s, 1.0 / 3.0);
        assert!(stability_score(&[-5.0; 4], 0.0, 1.0).is_nan());
    }

    #[test]
    fn bitmask_round_trip_and_uncrop() {
        let bools = [true, false, true, true, false, false];
        let m = BitMask::from_bools(3, 2, &bools);
        assert_eq!(m.to_bools(), bools);
        assert_eq!(m.area(), 3);
        let u = BitMask::uncrop(&bools, 3, 2, 1, 6, 4);
        assert_eq!(u.area(), 3);
        assert!(u.get(2, 1) && u.get(4, 1) && u.get(2, 2) && !u.get(3, 1));
        assert_eq!(u.to_u8().iter().filter(|&&v| v == 255).count(), 3);
    }
}
