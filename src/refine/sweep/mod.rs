//! Threshold sweeps: SEPL's `t1` × `t2` (and the CAM background threshold) scored on a labelled
//! subset, instead of the paper's "by visual evaluation" choice.
//!
//! Each image's inputs (its pseudo-label or CAM, its SAM masks, its ground truth) are decoded
//! once; every grid cell then merges ([`crate::core::sepl::merge`]) and counts into its own dataset
//! confusion matrix ([`Confusion`]), so a cell's mIoU is exactly `camsam merge` + `camsam eval`
//! at the same settings. [`heatmap`] draws the result.

pub mod heatmap;

use crate::core::cam::{Cam, CamToLabel};
use crate::core::label::LabelMap;
use crate::core::masks::BitMask;
use crate::core::metrics::Confusion;
use crate::core::sepl::{self, MergeParams};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest number of grid cells accepted (each holds a confusion matrix and costs a merge per
/// image).
pub const MAX_CELLS: usize = 10_000;

/// Values `A:B:STEP` (both ends included, within a rounding tolerance), a comma list `a,b,c`, or
/// one value. `flag` names the option in errors.
pub fn parse_range(spec: &str, flag: &str) -> Result<Vec<f64>> {
    let bad = |what: &str| {
        Error::input(
            flag,
            format!("'{spec}': {what}; expected A:B:STEP (B included), a,b,c or one value"),
        )
    };
    let num = |s: &str| -> Result<f64> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(&format!("'{s}' is not a number")))
    };
    let values = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').collect();
        let [a, b, step] = parts[..] else {
            return Err(bad("a range has three parts"));
        };
        let (a, b, step) = (num(a)?, num(b)?, num(step)?);
        if step <= 0.0 || b < a {
            return Err(bad("the step must be positive and B ≥ A"));
        }
        let n = ((b - a) / step + 1e-9).floor() as usize + 1;
        if n > MAX_CELLS {
            return Err(bad(&format!("{n} values")));
        }
        // Round to 1e-9 so 0.1 + 2·0.1 prints and compares as 0.3.
        (0..n)
            .map(|i| ((a + i as f64 * step) * 1e9).round() / 1e9)
            .collect()
    } else {
        spec.split(',').map(num).collect::<Result<Vec<_>>>()?
    };
    if values.is_empty() {
        return Err(bad("no values"));
    }
    Ok(values)
}

/// The grid: merge settings other than `t1`/`t2`, the axes, and for CAM inputs the background
/// thresholds (with the CAM → label step's other settings).
#[derive(Debug, Clone)]
pub struct Grid {
    pub merge: MergeParams,
    pub t1: Vec<f64>,
    pub t2: Vec<f64>,
    /// Background thresholds (CAM inputs only; `None`: the inputs are pseudo-labels).
    pub bg: Option<Vec<f64>>,
    /// The CAM → label step's other settings (its `bg_threshold` is the axis's).
    pub cam_to_label: CamToLabel,
}

impl Grid {
    fn cells(&self) -> usize {
        self.bg.as_ref().map_or(1, Vec::len) * self.t1.len() * self.t2.len()
    }
}

/// One image's inputs, decoded once for the whole grid.
pub enum Pseudo<'a> {
    /// A pseudo-label.
    Label(&'a LabelMap),
    /// A CAM (with its image-level labels), labelled at each background threshold.
    Cam(&'a Cam, Option<&'a [u8]>),
}

/// The grid's dataset confusion matrices, filled one image at a time.
#[derive(Debug, Clone)]
pub struct Sweep {
    grid: Grid,
    /// `[bg][t1][t2]`, flattened.
    cells: Vec<Confusion>,
    images: usize,
}

impl Sweep {
    pub fn new(grid: Grid) -> Result<Self> {
        let n = grid.cells();
        if n == 0 || n > MAX_CELLS {
            return Err(Error::input(
                "sweep grid",
                format!("{n} cells; expected 1 to {MAX_CELLS}"),
            ));
        }
        for &t in grid.t1.iter().chain(&grid.t2) {
            if !(0.0..=1.0).contains(&t) {
                return Err(Error::input(
                    "sweep grid",
                    format!("threshold {t}; expected values in 0..=1"),
                ));
            }
        }
        let cells = (0..n)
            .map(|_| Confusion::new(grid.merge.num_classes))
            .collect::<Result<_>>()?;
        Ok(Sweep {
            grid,
            cells,
            images: 0,
        })
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Add one image: merge `masks` into its pseudo-label at every cell and count against `gt`.
    /// `name` is used in errors.
    pub fn add(
        &mut self,
        pseudo: &Pseudo,
        masks: &[&BitMask],
        gt: &LabelMap,
        name: &str,
    ) -> Result<()> {
        let bgs: Vec<Option<f64>> = match &self.grid.bg {
            Some(v) => v.iter().map(|&b| Some(b)).collect(),
            None => vec![None],
        };
        let (n1, n2) = (self.grid.t1.len(), self.grid.t2.len());
        for (ib, bg) in bgs.into_iter().enumerate() {
            let owned;
            let label = match (pseudo, bg) {
                (Pseudo::Label(l), None) => *l,
                (Pseudo::Cam(cam, present), Some(bg)) => {
                    let params = CamToLabel {
                        bg_threshold: bg as f32,
                        ..self.grid.cam_to_label
                    };
                    owned = cam.to_label(*present, &params, name)?.label;
                    &owned
                }
                _ => {
                    return Err(Error::input(
                        name,
                        "a pseudo-label with a background axis, or a CAM without one",
                    ))
                }
            };
            for i1 in 0..n1 {
                for i2 in 0..n2 {
                    let params = MergeParams {
                        t1: self.grid.t1[i1],
                        t2: self.grid.t2[i2],
                        ..self.grid.merge
                    };
                    let merged = sepl::merge(label, masks, &params)?.label;
                    self.cells[(ib * n1 + i1) * n2 + i2].add(gt, &merged, name, name)?;
                }
            }
        }
        self.images += 1;
        Ok(())
    }

    /// Add another sweep of the same grid (images scored apart, e.g. on other threads).
    pub fn merge(&mut self, other: &Sweep) -> Result<()> {
        if other.cells.len() != self.cells.len() {
            return Err(Error::input("sweep", "merging sweeps of different grids"));
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.merge(b)?;
        }
        self.images += other.images;
        Ok(())
    }

    /// The mIoU of every cell and the best cell.
    pub fn result(&self) -> SweepResult {
        let g = &self.grid;
        let (n1, n2) = (g.t1.len(), g.t2.len());
        let nb = g.bg.as_ref().map_or(1, Vec::len);
        let miou: Vec<Vec<Vec<Option<f64>>>> = (0..nb)
            .map(|b| {
                (0..n1)
                    .map(|i| {
                        (0..n2)
                            .map(|j| self.cells[(b * n1 + i) * n2 + j].miou())
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let mut best: Option<Best> = None;
        for (b, plane) in miou.iter().enumerate() {
            for (i, row) in plane.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    // The first maximum in [bg][t1][t2] order wins ties.
                    if let Some(v) = *v {
                        if best.as_ref().is_none_or(|x| v > x.miou) {
                            best = Some(Best {
                                bg: g.bg.as_ref().map(|x| x[b]),
                                t1: g.t1[i],
                                t2: g.t2[j],
                                miou: v,
                            });
                        }
                    }
                }
            }
        }
        SweepResult {
            preset: g.merge.preset.name().to_string(),
            images: self.images,
            bg: g.bg.clone(),
            t1: g.t1.clone(),
            t2: g.t2.clone(),
            miou: match g.bg {
                Some(_) => Miou::ByBackground(miou),
                None => Miou::Plane(miou.into_iter().next().unwrap_or_default()),
            },
            best,
        }
    }
}

/// A sweep's scores (`sweep.json`): mIoU as fractions (like `camsam eval --json`'s `miou`),
/// `null` where no class was scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub preset: String,
    pub images: usize,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bg: Option<Vec<f64>>,
    pub t1: Vec<f64>,
    pub t2: Vec<f64>,
    /// `[t1][t2]`, or `[bg][t1][t2]` with a background axis.
    pub miou: Miou,
    pub best: Option<Best>,
}

/// The mIoU grid: one plane, or one per background threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Miou {
    Plane(Vec<Vec<Option<f64>>>),
    ByBackground(Vec<Vec<Vec<Option<f64>>>>),
}

impl Miou {
    /// The planes, `[bg][t1][t2]` (one plane without a background axis).
    pub fn planes(&self) -> Vec<&Vec<Vec<Option<f64>>>> {
        match self {
            Miou::Plane(p) => vec![p],
            Miou::ByBackground(v) => v.iter().collect(),
        }
    }
}

/// The best cell (the first maximum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bg: Option<f64>,
    pub t1: f64,
    pub t2: f64,
    pub miou: f64,
}

impl SweepResult {
    /// `sweep.csv`: one row per cell, `bg,t1,t2,miou` (`bg` empty without that axis; mIoU as
    /// a fraction, empty where none).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("bg,t1,t2,miou\n");
        for (b, plane) in self.miou.planes().iter().enumerate() {
            let bg = self
                .bg
                .as_ref()
                .map(|v| v[b].to_string())
                .unwrap_or_default();
            for (i, row) in plane.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    let v = v.map(|v| format!("{v:.6}")).unwrap_or_default();
                    out.push_str(&format!("{bg},{},{},{v}\n", self.t1[i], self.t2[j]));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_include_both_ends() {
        assert_eq!(parse_range("0.3:0.9:0.3", "--t1").unwrap(), [0.3, 0.6, 0.9]);
        assert_eq!(parse_range("0.5", "--t1").unwrap(), [0.5]);
        assert_eq!(parse_range("0.1,0.7", "--t1").unwrap(), [0.1, 0.7]);
        assert_eq!(parse_range("0:1:0.1", "--t1").unwrap().len(), 11);
        for bad in ["0.9:0.1:0.1", "0:1:0", "a:1:0.1", "0:1", ""] {
            let e = parse_range(bad, "--t2").unwrap_err().to_string();
            assert!(e.starts_with("--t2: "), "{e}");
        }
    }

    #[test]
    fn a_mask_taken_or_not_moves_the_cell_score() {
        // 4×1: the pseudo-label marks pixel 0 as class 1; the mask covers pixels 0..2; GT
        // says 0..2 is class 1. O_s = 1/2: taken when t1 < 0.5 (strict), then all 3 pixels.
        let pseudo = LabelMap::new(4, 1, vec![1, 0, 0, 0]).unwrap();
        let gt = LabelMap::new(4, 1, vec![1, 1, 1, 0]).unwrap();
        let mask = BitMask::from_bools(4, 1, &[true, true, false, false]).unwrap();
        let grid = Grid {
            merge: MergeParams {
                preset: sepl::Preset::Official,
                ..Default::default()
            },
            t1: vec![0.4, 0.6],
            t2: vec![0.85],
            bg: None,
            cam_to_label: CamToLabel::default(),
        };
        let mut sweep = Sweep::new(grid).unwrap();
        sweep
            .add(&Pseudo::Label(&pseudo), &[&mask], &gt, "x")
            .unwrap();
        let r = sweep.result();
        let Miou::Plane(p) = &r.miou else {
            panic!("one plane")
        };
        // t1 = 0.4: label [1,1,0,0] → IoU class 1 = 2/3, background 1/2; t1 = 0.6: official
        // writes only taken masks → [0,0,0,0]: class 1 IoU 0, background 1/4.
        assert!((p[0][0].unwrap() - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
        assert!((p[1][0].unwrap() - (0.0 + 0.25) / 2.0).abs() < 1e-12);
        assert_eq!(r.best.as_ref().map(|b| b.t1), Some(0.4));
        assert!(r
            .to_csv()
            .starts_with("bg,t1,t2,miou\n,0.4,0.85,0.583333\n"));
    }
}
