//! Small-region removal of the automatic mask generator (`remove_small_regions` of the
//! official `segment_anything/utils/amg.py`, which uses OpenCV's
//! `connectedComponentsWithStats(mask, 8)`): fill holes, then drop islands, smaller than
//! `min_mask_region_area` pixels. Components are 8-connected, for the mask and for the
//! background alike, and numbered in raster order of their first pixel.
//!
//! ```
//! use camsam::refine::amg::regions::{remove_small_regions, Mode};
//! // a 3×3 ring with a one-pixel hole
//! let ring = [true, true, true, true, false, true, true, true, true];
//! let (filled, changed) = remove_small_regions(&ring, 3, 3, 2, Mode::Holes);
//! assert!(changed && filled.iter().all(|&b| b));
//! ```

/// What [`remove_small_regions`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fill background components smaller than the threshold.
    Holes,
    /// Drop mask components smaller than the threshold (keep the largest if all are small).
    Islands,
}

/// 8-connected components of the `true` pixels: per pixel its label (0 = not set,
/// 1.. = components in raster order of their first pixel) and the size of each component
/// (`sizes[k]` for label `k + 1`).
pub fn connected_components(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    let mut labels = vec![0u32; w * h];
    let mut parent: Vec<u32> = vec![0];
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            parent[x as usize] = parent[parent[x as usize] as usize];
            x = parent[x as usize];
        }
        x
    }
    for y in 0..h {
        for x in 0..w {
            if !mask[y * w + x] {
                continue;
            }
            let mut neighbours = [0u32; 4];
            if x > 0 {
                neighbours[0] = labels[y * w + x - 1];
            }
            if y > 0 {
                let up = (y - 1) * w;
                if x > 0 {
                    neighbours[1] = labels[up + x - 1];
                }
                neighbours[2] = labels[up + x];
                if x + 1 < w {
                    neighbours[3] = labels[up + x + 1];
                }
            }
            let mut label = 0;
            for &n in neighbours.iter().filter(|&&n| n != 0) {
                let rn = find(&mut parent, n);
                if label == 0 {
                    label = rn;
                } else if rn != label {
                    let (a, b) = (label.min(rn), label.max(rn));
                    parent[b as usize] = a;
                    label = a;
                }
            }
            if label == 0 {
                label = parent.len() as u32;
                parent.push(label);
            }
            labels[y * w + x] = label;
        }
    }
    // Final labels in raster order of first pixel.
    let mut final_of = vec![0u32; parent.len()];
    let mut sizes = Vec::new();
    for l in labels.iter_mut().filter(|l| **l != 0) {
        let root = find(&mut parent, *l) as usize;
        if final_of[root] == 0 {
            sizes.push(0);
            final_of[root] = sizes.len() as u32;
        }
        *l = final_of[root];
        sizes[*l as usize - 1] += 1;
    }
    (labels, sizes)
}

/// Remove small holes or islands of a `w × h` mask; returns the mask and whether it changed
/// (the official function reports a change whenever some region is below the threshold).
pub fn remove_small_regions(
    mask: &[bool],
    w: usize,
    h: usize,
    area_thresh: usize,
    mode: Mode,
) -> (Vec<bool>, bool) {
    let correct_holes = mode == Mode::Holes;
    let working: Vec<bool> = mask.iter().map(|&b| b ^ correct_holes).collect();
    let (labels, sizes) = connected_components(&working, w, h);
    let small: Vec<bool> = sizes.iter().map(|&s| s < area_thresh).collect();
    if !small.iter().any(|&s| s) {
        return (mask.to_vec(), false);
    }
    // fill[k] says whether label k ends up in the mask.
    let mut fill = vec![false; sizes.len() + 1];
    if correct_holes {
        fill[0] = true;
        for (k, &s) in small.iter().enumerate() {
            fill[k + 1] = s;
        }
    } else {
        for (k, &s) in small.iter().enumerate() {
            fill[k + 1] = !s;
        }
        if !fill.iter().any(|&f| f) {
            // every island is small: keep the largest (the first one on ties, as np.argmax)
            let mut best = 0;
            for (k, &s) in sizes.iter().enumerate() {
                if s > sizes[best] {
                    best = k;
                }
            }
            fill[best + 1] = true;
        }
    }
    (labels.iter().map(|&l| fill[l as usize]).collect(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows[0].len();
        let m = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (m, w, rows.len())
    }

    #[test]
    fn components_are_8_connected_in_raster_order() {
        let (m, w, h) = parse(&["#..#", ".#..", "...#", "##.."]);
        let (labels, sizes) = connected_components(&m, w, h);
        // (0,0)-(1,1) diagonal: one; (3,0) alone; (3,2) alone; bottom-left pair
        assert_eq!(sizes, vec![2, 1, 1, 2]);
        assert_eq!(labels[0], 1);
        assert_eq!(labels[3], 2);
        assert_eq!(labels[5], 1);
        assert_eq!(labels[11], 3);
        assert_eq!(labels[12], 4);
    }

    #[test]
    fn u_shape_merges_into_one_component() {
        let (m, w, h) = parse(&["#.#", "#.#", "###"]);
        let (_, sizes) = connected_components(&m, w, h);
        assert_eq!(sizes, vec![7]);
    }

    #[test]
    fn islands_below_threshold_are_dropped() {
        let (m, w, h) = parse(&["##...", "##...", ".....", "....#"]);
        let (out, changed) = remove_small_regions(&m, w, h, 2, Mode::Islands);
        assert!(changed);
        assert_eq!(out.iter().filter(|&&b| b).count(), 4);
        assert!(!out[19]);
        // all islands small: the largest stays
        let (out, changed) = remove_small_regions(&m, w, h, 10, Mode::Islands);
        assert!(changed);
        assert_eq!(out.iter().filter(|&&b| b).count(), 4);
    }

    #[test]
    fn holes_include_small_background_at_the_border() {
        // the background is 8-connected: the corner pixel is a 1-pixel "hole" on its own
        let (m, w, h) = parse(&[".####", "#####", "###.#", "#####"]);
        let (out, changed) = remove_small_regions(&m, w, h, 2, Mode::Holes);
        assert!(changed);
        assert!(out.iter().all(|&b| b));
        let (_, changed) = remove_small_regions(&m, w, h, 1, Mode::Holes);
        assert!(!changed);
    }
}
