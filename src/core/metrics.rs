//! Segmentation metrics: the dataset-level confusion matrix and the mean IoU that WSSS papers
//! report for pseudo-labels (SEPL arXiv 2305.05803 Table 1; IRN's `eval_cam.py`, which sums
//! chainercv's `calc_semantic_segmentation_confusion` over the split).
//!
//! - Rows are ground-truth classes `0..K`, columns predicted classes `0..K` plus one column for
//!   predicted 255 (an ignore band in a pseudo-label). GT 255 (void) pixels are skipped.
//! - A predicted 255 on a valid GT pixel is a miss: it counts against that GT class's recall
//!   and IoU (a false negative) and is no class's false positive.
//! - IoU_c = TP / (TP + FP + FN); mIoU is the mean over classes that occur in the GT or the
//!   prediction of the whole set (numpy's `nanmean`: a class absent from both is excluded,
//!   reported as `None`/`null`). Precision TP/(TP+FP) and recall TP/(TP+FN) are `None` when
//!   their denominator is 0.
//! - Per-image mIoU is the same mean on that image's own matrix (classes in its GT or its
//!   prediction), used to list the worst images first.
//! - Ids ≥ K other than 255 in either map, or maps of different sizes, are errors naming the
//!   files.
//!
//! ```
//! use camsam::core::label::LabelMap;
//! use camsam::core::metrics::Confusion;
//! let gt = LabelMap::new(4, 1, vec![0, 0, 1, 255]).unwrap();
//! let pred = LabelMap::new(4, 1, vec![0, 1, 1, 1]).unwrap();
//! let mut conf = Confusion::new(21).unwrap();
//! conf.add(&gt, &pred, "gt.png", "pred.png").unwrap();
//! // background: TP 1, FN 1 → 1/2; class 1: TP 1, FP 1 → 1/2; other classes absent.
//! assert_eq!(conf.miou(), Some(0.5));
//! ```

use crate::core::label::{LabelMap, IGNORE};
use crate::{Error, Result};
use serde::Serialize;

/// A `K × (K + 1)` confusion matrix: GT class × (predicted class or "predicted 255").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    num_classes: usize,
    counts: Vec<u64>,
}

impl Confusion {
    /// An empty matrix for `num_classes` classes (background included), 1 to 255.
    pub fn new(num_classes: usize) -> Result<Self> {
        if !(1..=255).contains(&num_classes) {
            return Err(Error::input(
                "--num-classes",
                format!(
                    "{num_classes}; expected 1 to 255 classes (background included; 255 is void)"
                ),
            ));
        }
        Ok(Confusion {
            num_classes,
            counts: vec![0; num_classes * (num_classes + 1)],
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Pixels with GT class `gt` predicted as `pred` (`pred == num_classes`: predicted 255).
    pub fn count(&self, gt: usize, pred: usize) -> u64 {
        self.counts[gt * (self.num_classes + 1) + pred]
    }

    /// Add one image. `gt_name` and `pred_name` (the files) are used in errors.
    pub fn add(
        &mut self,
        gt: &LabelMap,
        pred: &LabelMap,
        gt_name: &str,
        pred_name: &str,
    ) -> Result<()> {
        if (gt.width, gt.height) != (pred.width, pred.height) {
            return Err(Error::input(
                pred_name,
                format!(
                    "prediction is {}×{} but the ground truth {gt_name} is {}×{}; expected the same size",
                    pred.width, pred.height, gt.width, gt.height
                ),
            ));
        }
        let k = self.num_classes;
        // Map every byte to a column (or reject it) once, then count without branches.
        let mut col = [usize::MAX; 256];
        for (v, c) in col.iter_mut().enumerate().take(k) {
            *c = v;
        }
        col[IGNORE as usize] = k;
        let mut local = vec![0u64; k * (k + 1)];
        for (&g, &p) in gt.data.iter().zip(&pred.data) {
            if g == IGNORE {
                continue;
            }
            let (g, c) = (g as usize, col[p as usize]);
            if g >= k {
                return Err(Error::input(
                    gt_name,
                    format!("ground-truth id {g}; expected 0..{} or 255 (void)", k - 1),
                ));
            }
            if c == usize::MAX {
                return Err(Error::input(
                    pred_name,
                    format!("predicted id {p}; expected 0..{} or 255 (ignore)", k - 1),
                ));
            }
            local[g * (k + 1) + c] += 1;
        }
        for (a, b) in self.counts.iter_mut().zip(local) {
            *a += b;
        }
        Ok(())
    }

    /// Add another matrix of the same size (summing images evaluated apart).
    pub fn merge(&mut self, other: &Confusion) -> Result<()> {
        if other.num_classes != self.num_classes {
            return Err(Error::input(
                "confusion matrix",
                format!(
                    "{} classes merged into {}; expected the same",
                    other.num_classes, self.num_classes
                ),
            ));
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }

    /// True positives of class `c`.
    pub fn tp(&self, c: usize) -> u64 {
        self.count(c, c)
    }

    /// False positives of class `c`: other GT classes predicted as `c`.
    pub fn fp(&self, c: usize) -> u64 {
        (0..self.num_classes).map(|g| self.count(g, c)).sum::<u64>() - self.tp(c)
    }

    /// False negatives of class `c`: its GT pixels predicted as anything else, 255 included.
    pub fn fn_(&self, c: usize) -> u64 {
        (0..=self.num_classes)
            .map(|p| self.count(c, p))
            .sum::<u64>()
            - self.tp(c)
    }

    /// IoU per class; `None` for a class absent from both GT and prediction.
    pub fn iou(&self) -> Vec<Option<f64>> {
        (0..self.num_classes)
            .map(|c| ratio(self.tp(c), self.tp(c) + self.fp(c) + self.fn_(c)))
            .collect()
    }

    /// Precision per class; `None` where nothing was predicted as the class.
    pub fn precision(&self) -> Vec<Option<f64>> {
        (0..self.num_classes)
            .map(|c| ratio(self.tp(c), self.tp(c) + self.fp(c)))
            .collect()
    }

    /// Recall per class; `None` where the class has no GT pixels.
    pub fn recall(&self) -> Vec<Option<f64>> {
        (0..self.num_classes)
            .map(|c| ratio(self.tp(c), self.tp(c) + self.fn_(c)))
            .collect()
    }

    /// Mean IoU over the classes present (in GT or prediction); `None` when none is.
    pub fn miou(&self) -> Option<f64> {
        nan_mean(&self.iou())
    }

    /// Correctly labelled pixels / evaluated (non-void) pixels.
    pub fn pixel_accuracy(&self) -> Option<f64> {
        let tp: u64 = (0..self.num_classes).map(|c| self.tp(c)).sum();
        ratio(tp, self.evaluated_pixels())
    }

    /// Pixels with a valid GT class.
    pub fn evaluated_pixels(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Valid GT pixels the prediction marked 255 (ignore).
    pub fn predicted_ignore(&self) -> u64 {
        (0..self.num_classes)
            .map(|g| self.count(g, self.num_classes))
            .sum()
    }

    /// The dataset-level summary of this matrix.
    pub fn summary(&self) -> Summary {
        Summary {
            miou: self.miou(),
            per_class_iou: self.iou(),
            precision: self.precision(),
            recall: self.recall(),
            pixel_accuracy: self.pixel_accuracy(),
            evaluated_pixels: self.evaluated_pixels(),
            predicted_ignore_pixels: self.predicted_ignore(),
        }
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Mean of the values present; `None` when there are none.
pub fn nan_mean(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// Dataset-level figures of one set of predictions (all fractions in 0..=1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub miou: Option<f64>,
    /// Per class, `null` for classes absent from GT and prediction.
    pub per_class_iou: Vec<Option<f64>>,
    pub precision: Vec<Option<f64>>,
    pub recall: Vec<Option<f64>>,
    pub pixel_accuracy: Option<f64>,
    pub evaluated_pixels: u64,
    pub predicted_ignore_pixels: u64,
}

/// One image's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageScore {
    pub name: String,
    /// mIoU over the classes in this image's GT or prediction.
    pub miou: Option<f64>,
    /// The same for the `--before` predictions, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_miou: Option<f64>,
    /// `miou − before_miou`, when both exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
}

/// Change from `before` to `after` (both fractions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    pub miou: Option<f64>,
    pub per_class_iou: Vec<Option<f64>>,
}

/// What `camsam eval` reports: the predictions' summary, per-image scores worst first, and the
/// comparison with earlier predictions when given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub num_classes: usize,
    pub num_images: usize,
    pub class_names: Vec<String>,
    #[serde(flatten)]
    pub summary: Summary,
    /// Worst first (lowest mIoU; images with no class at all last).
    pub images: Vec<ImageScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
}

/// One evaluated image: its name and confusion matrices (predictions, and `--before` ones).
pub struct ImageConfusion {
    pub name: String,
    pub after: Confusion,
    pub before: Option<Confusion>,
}

impl Report {
    /// Sum per-image matrices into a report. `class_names` may be shorter than the class count
    /// (ids stand in for missing names).
    pub fn new(
        num_classes: usize,
        images: &[ImageConfusion],
        class_names: &[&str],
    ) -> Result<Self> {
        let mut after = Confusion::new(num_classes)?;
        let mut before: Option<Confusion> = None;
        let mut scores = Vec::with_capacity(images.len());
        for img in images {
            after.merge(&img.after)?;
            let before_miou = match &img.before {
                Some(b) => {
                    before
                        .get_or_insert(Confusion::new(num_classes)?)
                        .merge(b)?;
                    b.miou()
                }
                None => None,
            };
            let miou = img.after.miou();
            scores.push(ImageScore {
                name: img.name.clone(),
                miou,
                before_miou,
                delta: miou.zip(before_miou).map(|(a, b)| a - b),
            });
        }
        scores.sort_by(|a, b| match (a.miou, b.miou) {
            (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.name.cmp(&b.name)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        });
        let summary = after.summary();
        let before = before.map(|b| b.summary());
        let delta = before.as_ref().map(|b| Delta {
            miou: summary.miou.zip(b.miou).map(|(a, b)| a - b),
            per_class_iou: summary
                .per_class_iou
                .iter()
                .zip(&b.per_class_iou)
                .map(|(a, b)| a.zip(*b).map(|(a, b)| a - b))
                .collect(),
        });
        Ok(Report {
            num_classes,
            num_images: images.len(),
            class_names: (0..num_classes)
                .map(|c| {
                    class_names
                        .get(c)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| format!("class {c}"))
                })
                .collect(),
            summary,
            images: scores,
            before,
            delta,
        })
    }

    /// A human-readable table: per class IoU / precision / recall (and before, Δ), mIoU, and
    /// the `worst` lowest-scoring images.
    pub fn to_table(&self, worst: usize) -> String {
        use std::fmt::Write;
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{:.2}", 100.0 * x));
        let signed = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{:+.2}", 100.0 * x));
        let mut s = String::new();
        let _ = write!(
            s,
            "{:>3}  {:<14}{:>8}{:>8}{:>8}",
            "id", "class", "IoU", "prec", "recall"
        );
        if self.before.is_some() {
            let _ = write!(s, "{:>9}{:>8}", "before", "Δ");
        }
        s.push('\n');
        for c in 0..self.num_classes {
            let _ = write!(
                s,
                "{c:>3}  {:<14}{:>8}{:>8}{:>8}",
                self.class_names[c],
                pct(self.summary.per_class_iou[c]),
                pct(self.summary.precision[c]),
                pct(self.summary.recall[c]),
            );
            if let (Some(b), Some(d)) = (&self.before, &self.delta) {
                let _ = write!(
                    s,
                    "{:>9}{:>8}",
                    pct(b.per_class_iou[c]),
                    signed(d.per_class_iou[c])
                );
            }
            s.push('\n');
        }
        let _ = write!(
            s,
            "mIoU {} % over {} images ({} pixels evaluated, pixel accuracy {} %)",
            pct(self.summary.miou),
            self.num_images,
            self.summary.evaluated_pixels,
            pct(self.summary.pixel_accuracy)
        );
        if let (Some(b), Some(d)) = (&self.before, &self.delta) {
            let _ = write!(s, "; before {} %, Δ {}", pct(b.miou), signed(d.miou));
        }
        s.push('\n');
        if self.summary.predicted_ignore_pixels > 0 {
            let _ = writeln!(
                s,
                "{} valid pixels predicted 255 (ignore) count as misses",
                self.summary.predicted_ignore_pixels
            );
        }
        let shown = worst.min(self.images.len());
        if shown > 0 {
            let _ = writeln!(s, "worst {shown} images by mIoU:");
            for img in &self.images[..shown] {
                let _ = write!(s, "  {:<24}{:>8}", img.name, pct(img.miou));
                if img.before_miou.is_some() {
                    let _ = write!(
                        s,
                        "  before {:>6}  Δ {}",
                        pct(img.before_miou),
                        signed(img.delta)
                    );
                }
                s.push('\n');
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(data: &[u8]) -> LabelMap {
        LabelMap::new(data.len(), 1, data.to_vec()).unwrap()
    }

    #[test]
    fn predicted_ignore_is_a_miss_not_a_false_positive() {
        let mut c = Confusion::new(3).unwrap();
        c.add(&map(&[1, 1, 2, 255]), &map(&[1, 255, 2, 2]), "g", "p")
            .unwrap();
        assert_eq!(c.tp(1), 1);
        assert_eq!(c.fn_(1), 1);
        assert_eq!(c.fp(2), 0);
        assert_eq!(c.iou(), vec![None, Some(0.5), Some(1.0)]);
        assert_eq!(c.miou(), Some(0.75));
        assert_eq!(c.predicted_ignore(), 1);
    }

    #[test]
    fn out_of_range_ids_and_size_mismatch_name_the_files() {
        let mut c = Confusion::new(21).unwrap();
        let e = c.add(&map(&[0, 21]), &map(&[0, 0]), "gt/a.png", "pred/a.png");
        assert!(e.unwrap_err().to_string().contains("gt/a.png"));
        let e = c.add(&map(&[0, 1]), &map(&[0, 30]), "gt/a.png", "pred/a.png");
        assert!(e.unwrap_err().to_string().contains("pred/a.png"));
        let e = c
            .add(&map(&[0, 1]), &map(&[0, 1, 1]), "gt/a.png", "pred/a.png")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gt/a.png") && e.contains("pred/a.png"), "{e}");
    }

    #[test]
    fn report_sorts_worst_first_and_computes_deltas() {
        let img = |name: &str, gt: &[u8], after: &[u8], before: &[u8]| {
            let mut a = Confusion::new(3).unwrap();
            a.add(&map(gt), &map(after), "g", "p").unwrap();
            let mut b = Confusion::new(3).unwrap();
            b.add(&map(gt), &map(before), "g", "p").unwrap();
            ImageConfusion {
                name: name.into(),
                after: a,
                before: Some(b),
            }
        };
        let images = [
            img("good", &[0, 1], &[0, 1], &[0, 0]),
            img("bad", &[0, 2], &[2, 0], &[0, 2]),
            img("void", &[255, 255], &[0, 1], &[0, 1]),
        ];
        let r = Report::new(3, &images, &[]).unwrap();
        let names: Vec<&str> = r.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["bad", "good", "void"]);
        assert_eq!(r.images[0].delta, Some(-1.0));
        assert!(r.delta.as_ref().unwrap().miou.is_some());
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["miou"].is_number() && json["before"]["miou"].is_number());
        assert!(r.to_table(5).contains("worst 3 images"));
    }
}
