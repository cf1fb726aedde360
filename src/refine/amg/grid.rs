//! Point grids of the automatic mask generator: `build_point_grid` and
//! `build_all_layer_point_grids` of the official `segment_anything/utils/amg.py`.
//!
//! ```
//! use camsam::refine::amg::grid::build_point_grid;
//! // 2 per side: linspace(1/4, 3/4, 2), x varying fastest
//! assert_eq!(build_point_grid(2), vec![[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]);
//! ```

/// `np.linspace(start, stop, n)`: `i · step + start`, the last element exactly `stop`.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (stop - start) / (n - 1) as f64;
            let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step + start).collect();
            v[n - 1] = stop;
            v
        }
    }
}

/// An `n × n` grid of points evenly spaced in `[0, 1]²` (cell centres), `(x, y)` with `x`
/// varying fastest.
pub fn build_point_grid(n_per_side: usize) -> Vec<[f64; 2]> {
    let offset = 1.0 / (2 * n_per_side) as f64;
    let side = linspace(offset, 1.0 - offset, n_per_side);
    side.iter()
        .flat_map(|&y| side.iter().map(move |&x| [x, y]))
        .collect()
}

/// One grid per crop layer: layer `i` has `int(n_per_side / scale_per_layer^i)` points per side.
pub fn build_all_layer_point_grids(
    n_per_side: usize,
    n_layers: usize,
    scale_per_layer: usize,
) -> Vec<Vec<[f64; 2]>> {
    (0..=n_layers)
        .map(|i| {
            let n = (n_per_side as f64 / (scale_per_layer as f64).powi(i as i32)) as usize;
            build_point_grid(n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_matches_numpy() {
        // offset 1/64, linspace(1/64, 63/64, 32): step 1/32
        let g = build_point_grid(32);
        assert_eq!(g.len(), 1024);
        assert_eq!(g[0], [0.015625, 0.015625]);
        assert_eq!(g[1], [0.046875, 0.015625]);
        assert_eq!(g[32], [0.015625, 0.046875]);
        assert_eq!(g[1023], [0.984375, 0.984375]);
        assert_eq!(build_point_grid(1), vec![[0.5, 0.5]]);
    }

    #[test]
    fn layers_downscale_points() {
        let g = build_all_layer_point_grids(16, 2, 2);
        let sides: Vec<usize> = g.iter().map(|g| g.len()).collect();
        assert_eq!(sides, vec![256, 64, 16]);
        // int(5 / 2) = 2
        assert_eq!(build_all_layer_point_grids(5, 1, 2)[1].len(), 4);
    }
}
