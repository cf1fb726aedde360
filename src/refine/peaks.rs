//! CAM peaks: the point prompts of S2C's CAM-prompted SAM (CPM).
//!
//! S2C ("From SAM to CAMs", Kweon & Yoon, CVPR 2024, Sec. 3.3; official code
//! `models/model_s2c.py`, "Sample local peaks") prompts SAM with the peaks of each present
//! class's normalised CAM. Per class, camsam takes:
//!
//! 1. the **global maximum** (first in row-major order on ties, as `torch.argmax`), always;
//! 2. every **local maximum**: a pixel equal to the maximum of its 3×3 window, the window
//!    zero-padded at the border (`scipy.ndimage.maximum_filter(size=3, mode='constant')`),
//!    whose CAM value is **greater than τ** (default 0.5, S2C's `th_multi`);
//! 3. kept **greedily by descending value** (ties in row-major order): a local maximum is
//!    dropped when it lies less than `min_distance` pixels (Euclidean, default 20) from a peak
//!    already kept — the global maximum is kept first, so the local maximum at the same place
//!    (or on the same plateau nearby) never doubles it.
//!
//! Differences from the official code, on purpose: S2C runs skimage's `peak_local_max` on the
//! *max-filtered* CAM, which also excludes peaks within `min_distance` of the image border and
//! measures spacing in the chessboard metric, and then drops the strongest local peak on the
//! assumption that it is the global maximum. The rule above keeps the intent (well-separated
//! confident peaks plus the global maximum) without those artefacts, and is simple to check by
//! hand.
//!
//! ```
//! use camsam::refine::peaks::{find_peaks, PeakSettings};
//! // A 5×1 CAM with two bumps; the weaker one (0.6 > τ) is 3 px from the global maximum.
//! let cam = [0.1, 0.9, 0.2, 0.3, 0.6f32];
//! let settings = PeakSettings { threshold: 0.5, min_distance: 3.0 };
//! let peaks = find_peaks(&cam, 5, 1, &settings).unwrap();
//! let xy: Vec<_> = peaks.iter().map(|p| (p.x, p.y)).collect();
//! assert_eq!(xy, vec![(1, 0), (4, 0)]);
//! ```

use crate::{Error, Result};

/// How peaks are chosen (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeakSettings {
    /// τ: a local maximum is a peak only when its CAM value is greater than this.
    pub threshold: f32,
    /// Minimum Euclidean distance, in pixels, between kept peaks.
    pub min_distance: f64,
}

impl Default for PeakSettings {
    /// S2C's defaults: τ = 0.5, 20 px apart.
    fn default() -> Self {
        PeakSettings {
            threshold: 0.5,
            min_distance: 20.0,
        }
    }
}

/// One peak: a pixel of the CAM and its value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Peak {
    /// Column.
    pub x: usize,
    /// Row.
    pub y: usize,
    /// CAM value at the peak.
    pub value: f32,
}

/// The peaks of one class's normalised CAM (`height × width`, row-major): the global maximum
/// first, then the kept local maxima by descending value. An empty CAM has no peaks.
///
/// Errors when `cam.len() != width * height` or the CAM holds a NaN.
pub fn find_peaks(
    cam: &[f32],
    width: usize,
    height: usize,
    settings: &PeakSettings,
) -> Result<Vec<Peak>> {
    if cam.len() != width * height {
        return Err(Error::input(
            "CAM",
            format!(
                "has {} values; expected {width}×{height} = {}",
                cam.len(),
                width * height
            ),
        ));
    }
    if let Some(i) = cam.iter().position(|v| v.is_nan()) {
        return Err(Error::input(
            "CAM",
            format!(
                "value at x={}, y={} is NaN; expected finite activations",
                i % width,
                i / width
            ),
        ));
    }
    if cam.is_empty() {
        return Ok(Vec::new());
    }

    // Global maximum, first occurrence in row-major order.
    let mut best = 0;
    for (i, &v) in cam.iter().enumerate() {
        if v > cam[best] {
            best = i;
        }
    }
    let peak_at = |i: usize| Peak {
        x: i % width,
        y: i / width,
        value: cam[i],
    };
    let mut peaks = vec![peak_at(best)];

    // Local maxima of the zero-padded 3×3 window above τ.
    let mut candidates: Vec<usize> = (0..cam.len())
        .filter(|&i| cam[i] > settings.threshold && is_local_max(cam, width, height, i))
        .collect();
    // Descending value, ties in row-major order (the sort is stable).
    candidates.sort_by(|&a, &b| cam[b].total_cmp(&cam[a]));

    let min_d2 = settings.min_distance * settings.min_distance;
    for i in candidates {
        let c = peak_at(i);
        let far = peaks.iter().all(|p| {
            let dx = p.x as f64 - c.x as f64;
            let dy = p.y as f64 - c.y as f64;
            (dx != 0.0 || dy != 0.0) && dx * dx + dy * dy >= min_d2
        });
        if far {
            peaks.push(c);
        }
    }
    Ok(peaks)
}

/// Whether pixel `i` equals the maximum of its 3×3 window, with zeros outside the image.
fn is_local_max(cam: &[f32], width: usize, height: usize, i: usize) -> bool {
    let (x, y) = (i % width, i / width);
    let v = cam[i];
    for dy in -1i64..=1 {
        for dx in -1i64..=1 {
            let (nx, ny) = (x as i64 + dx, y as i64 + dy);
            let n = if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                0.0
            } else {
                cam[ny as usize * width + nx as usize]
            };
            if n > v {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xy(peaks: &[Peak]) -> Vec<(usize, usize)> {
        peaks.iter().map(|p| (p.x, p.y)).collect()
    }

    /// A 7×5 CAM drawn by hand: global max 1.0 at (1,1); local maxima 0.8 at (5,1),
    /// 0.7 at (5,3), 0.4 at (2,3) (below τ); (0,4) holds 0.6 but its neighbour (1,4) has 0.65.
    #[rustfmt::skip]
    const CAM: [f32; 35] = [
        0.2, 0.5, 0.1, 0.0, 0.3, 0.5, 0.2,
        0.3, 1.0, 0.3, 0.0, 0.2, 0.8, 0.1,
        0.1, 0.2, 0.2, 0.0, 0.1, 0.3, 0.0,
        0.0, 0.1, 0.4, 0.0, 0.3, 0.7, 0.1,
        0.6, 0.65, 0.1, 0.0, 0.0, 0.1, 0.0,
    ];

    #[test]
    fn hand_computed_peaks_with_spacing() {
        let s = PeakSettings {
            threshold: 0.5,
            min_distance: 1.0,
        };
        let p = find_peaks(&CAM, 7, 5, &s).unwrap();
        // Global max, then 0.8, 0.7, 0.65 (local max of its window: 0.6 < 0.65).
        assert_eq!(xy(&p), vec![(1, 1), (5, 1), (5, 3), (1, 4)]);
        assert_eq!(p[0].value, 1.0);

        // 3 px apart: (5,3) is 2 px below (5,1) and goes; (1,4) is 3 px below (1,1) and stays.
        let s = PeakSettings {
            threshold: 0.5,
            min_distance: 3.0,
        };
        let p = find_peaks(&CAM, 7, 5, &s).unwrap();
        assert_eq!(xy(&p), vec![(1, 1), (5, 1), (1, 4)]);

        // τ = 0.75: only 0.8 survives beside the global maximum.
        let s = PeakSettings {
            threshold: 0.75,
            min_distance: 1.0,
        };
        assert_eq!(
            xy(&find_peaks(&CAM, 7, 5, &s).unwrap()),
            vec![(1, 1), (5, 1)]
        );
    }

    #[test]
    fn global_maximum_kept_even_below_threshold() {
        let cam = [0.1f32, 0.3, 0.2, 0.3];
        let p = find_peaks(&cam, 2, 2, &PeakSettings::default()).unwrap();
        // First of the two 0.3s in row-major order; nothing passes τ.
        assert_eq!(xy(&p), vec![(1, 0)]);
    }

    #[test]
    fn zero_padding_makes_negative_border_values_non_peaks() {
        // All values negative: the zero padding beats every border pixel, and this 3×1 map
        // has only border pixels; the global maximum is still returned.
        let cam = [-0.5f32, -0.1, -0.7];
        let s = PeakSettings {
            threshold: -1.0,
            min_distance: 0.0,
        };
        assert_eq!(xy(&find_peaks(&cam, 3, 1, &s).unwrap()), vec![(1, 0)]);
    }

    #[test]
    fn plateau_yields_one_peak_per_spacing() {
        // A 6×1 plateau of 0.9: every pixel is a local maximum; greedy spacing 2 keeps
        // x = 0 (global max, first), 2, 4.
        let cam = [0.9f32; 6];
        let s = PeakSettings {
            threshold: 0.5,
            min_distance: 2.0,
        };
        assert_eq!(
            xy(&find_peaks(&cam, 6, 1, &s).unwrap()),
            vec![(0, 0), (2, 0), (4, 0)]
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let s = PeakSettings::default();
        assert!(find_peaks(&[0.0; 5], 2, 2, &s).is_err());
        assert!(find_peaks(&[0.0, f32::NAN, 0.0, 0.0], 2, 2, &s).is_err());
        assert!(find_peaks(&[], 0, 0, &s).unwrap().is_empty());
    }
}
