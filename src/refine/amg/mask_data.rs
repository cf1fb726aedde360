//! Per-mask bookkeeping of the automatic mask generator: mask boxes (`batched_mask_to_box`)
//! and the stability score (`calculate_stability_score`) of the official
//! `segment_anything/utils/amg.py`. Masks themselves are [`crate::core::masks::BitMask`]s.
//!
//! ```
//! use camsam::refine::amg::mask_data::mask_to_box;
//! use camsam::core::masks::BitMask;
//! let mut m = BitMask::empty(4, 3);
//! m.set(1, 2, true);
//! m.set(3, 1, true);
//! assert_eq!(m.count(), 2);
//! // inclusive pixel coordinates [x0, y0, x1, y1]
//! assert_eq!(mask_to_box(&m.to_bools(), 4, 3), [1, 1, 3, 2]);
//! ```

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
}
