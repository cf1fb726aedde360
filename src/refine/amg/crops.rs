//! Crop boxes of the automatic mask generator and the moves between crop and image frames:
//! `generate_crop_boxes`, `is_box_near_crop_edge`, `uncrop_*` of the official
//! `segment_anything/utils/amg.py`. Boxes are `[x0, y0, x1, y1]`.
//!
//! ```
//! use camsam::refine::amg::crops::generate_crop_boxes;
//! let (boxes, layers) = generate_crop_boxes((480, 640), 1, 512.0 / 1500.0);
//! assert_eq!(boxes[0], [0, 0, 640, 480]); // the whole image first
//! assert_eq!(boxes[1], [0, 0, 402, 322]);
//! assert_eq!(layers, vec![0, 1, 1, 1, 1]);
//! ```

/// Crop boxes of all layers (the whole image, then `(2^i)²` overlapping crops for layer `i`),
/// and the layer index of each. `im_size` is `(height, width)`.
pub fn generate_crop_boxes(
    im_size: (usize, usize),
    n_layers: usize,
    overlap_ratio: f64,
) -> (Vec<[usize; 4]>, Vec<usize>) {
    let (im_h, im_w) = im_size;
    let short_side = im_h.min(im_w);
    let mut boxes = vec![[0, 0, im_w, im_h]];
    let mut layers = vec![0];
    let crop_len = |orig_len: usize, n_crops: usize, overlap: i64| -> i64 {
        ((overlap * (n_crops as i64 - 1) + orig_len as i64) as f64 / n_crops as f64).ceil() as i64
    };
    for i_layer in 0..n_layers {
        let n_crops_per_side = 1usize << (i_layer + 1);
        let overlap = (overlap_ratio * short_side as f64 * (2.0 / n_crops_per_side as f64)) as i64;
        let crop_w = crop_len(im_w, n_crops_per_side, overlap);
        let crop_h = crop_len(im_h, n_crops_per_side, overlap);
        let x0s: Vec<i64> = (0..n_crops_per_side as i64)
            .map(|i| (crop_w - overlap) * i)
            .collect();
        let y0s: Vec<i64> = (0..n_crops_per_side as i64)
            .map(|i| (crop_h - overlap) * i)
            .collect();
        for &x0 in &x0s {
            for &y0 in &y0s {
                let b = [
                    x0,
                    y0,
                    (x0 + crop_w).min(im_w as i64),
                    (y0 + crop_h).min(im_h as i64),
                ];
                boxes.push(b.map(|v| v.max(0) as usize));
                layers.push(i_layer + 1);
            }
        }
    }
    (boxes, layers)
}

/// Whether a box (crop frame, inclusive pixel coordinates as `batched_mask_to_box` gives)
/// lies within `atol` of an edge of the crop that is not an edge of the original image.
pub fn is_box_near_crop_edge(
    bbox: [i64; 4],
    crop_box: [usize; 4],
    orig_box: [usize; 4],
    atol: f64,
) -> bool {
    let b = uncrop_box(bbox, crop_box);
    (0..4).any(|i| {
        let v = b[i] as f32 as f64;
        let near_crop = (v - crop_box[i] as f32 as f64).abs() <= atol;
        let near_image = (v - orig_box[i] as f32 as f64).abs() <= atol;
        near_crop && !near_image
    })
}

/// A box from the crop frame to the image frame.
pub fn uncrop_box(bbox: [i64; 4], crop_box: [usize; 4]) -> [i64; 4] {
    let (x0, y0) = (crop_box[0] as i64, crop_box[1] as i64);
    [bbox[0] + x0, bbox[1] + y0, bbox[2] + x0, bbox[3] + y0]
}

/// A point from the crop frame to the image frame.
pub fn uncrop_point(p: [f64; 2], crop_box: [usize; 4]) -> [f64; 2] {
    [p[0] + crop_box[0] as f64, p[1] + crop_box[1] as f64]
}

/// `[x0, y0, x1, y1]` → `[x, y, w, h]`.
pub fn xyxy_to_xywh<T: Copy + std::ops::Sub<Output = T>>(b: [T; 4]) -> [T; 4] {
    [b[0], b[1], b[2] - b[0], b[3] - b[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_boxes_of_a_landscape_image() {
        // overlap = int(512/1500 · 480 · 1) = 163; crop_w = ceil((163 + 640) / 2) = 402,
        // crop_h = ceil((163 + 480) / 2) = 322; x0 = 0, 239; y0 = 0, 159
        let (boxes, layers) = generate_crop_boxes((480, 640), 1, 512.0 / 1500.0);
        assert_eq!(
            boxes,
            vec![
                [0, 0, 640, 480],
                [0, 0, 402, 322],
                [0, 159, 402, 480],
                [239, 0, 640, 322],
                [239, 159, 640, 480],
            ]
        );
        assert_eq!(layers, vec![0, 1, 1, 1, 1]);
        let (boxes, _) = generate_crop_boxes((480, 640), 2, 512.0 / 1500.0);
        assert_eq!(boxes.len(), 1 + 4 + 16);
        assert!(boxes.iter().all(|b| b[2] <= 640 && b[3] <= 480));
    }

    #[test]
    fn near_crop_edge_but_not_image_edge() {
        let crop = [239, 159, 640, 480];
        let orig = [0, 0, 640, 480];
        // touches the crop's left edge (x0 = 239 + 5)
        assert!(is_box_near_crop_edge([5, 50, 100, 100], crop, orig, 20.0));
        // touches only the image's right/bottom edges, which are shared with the crop
        assert!(!is_box_near_crop_edge([50, 50, 400, 320], crop, orig, 20.0));
        // 21 px away from the crop's top edge
        assert!(!is_box_near_crop_edge([30, 21, 100, 100], crop, orig, 20.0));
    }

    #[test]
    fn xywh() {
        assert_eq!(xyxy_to_xywh([3, 4, 10, 14]), [3, 4, 7, 10]);
        assert_eq!(uncrop_point([1.5, 2.0], [10, 20, 30, 40]), [11.5, 22.0]);
    }
}
