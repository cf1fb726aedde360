//! CPM: S2C's CAM-prompted SAM, turning CAMs into pseudo-labels with SAM masks.
//!
//! S2C ("From SAM to CAMs: Exploring Segment Anything Model for Weakly Supervised Semantic
//! Segmentation", Kweon & Yoon, CVPR 2024, Sec. 3.3, CAM-based prompting module; official code
//! `models/model_s2c.py`, "Get masks using SAM" and "Confidence-based aggregation"):
//!
//! 1. For each present class `k`, its [peaks](crate::refine::peaks) on the normalised CAM become
//!    positive point prompts — all together as **one multi-point prompt** (S2C's default,
//!    [`PromptMode::MultiPoint`]) or **one prompt per peak** ([`PromptMode::PerPeak`]). Peak
//!    pixel `(x, y)` goes to the input frame as SAM's `apply_coords` does: `x · new_w / W`,
//!    `y · new_h / H`.
//! 2. SAM answers with three masks (multimask output); CPM takes **mask index 2** (S2C: "
//!    Empirically, 2 is the best", [`MaskChoice::Index`]) or the **best predicted IoU**
//!    ([`MaskChoice::BestIou`]).
//! 3. The mask's low-res logits are up-sampled to the image (SAM's `postprocess_masks`); the
//!    mask is `logit > 0`. The class's **score** inside the mask is `logit × mean CAM_k inside
//!    the mask`; outside it there is no score (S2C: −1e5). With one prompt per peak, a pixel
//!    takes the best score of the class's masks.
//! 4. Per pixel the **best-scoring class** wins (lowest class id on an exact tie, as
//!    `torch.max`); a pixel where the best score is **below 0** (or no mask) is background.
//! 5. Optionally, pixels where the two best classes both have a score and differ by less than
//!    `ignore_margin` become 255 (ignored in training and metrics).
//!
//! The CAMs must be at the image's size and normalised per class (max 1), as
//! `crate::core::cam` produces them.
//!
//! ```
//! use camsam::refine::cpm::scores_to_label;
//! // Two classes (3 and 7) on a 3×1 image: scores per class, −∞ where the class has no mask.
//! let ninf = f32::NEG_INFINITY;
//! let scores = [2.0, 0.5, ninf, /* class 7: */ 1.0, 0.6, -0.1];
//! let label = scores_to_label(&scores, &[3, 7], 3, 1, None).unwrap();
//! assert_eq!(label.data, vec![3, 7, 0]);
//! let banded = scores_to_label(&scores, &[3, 7], 3, 1, Some(0.2)).unwrap();
//! assert_eq!(banded.data, vec![3, 255, 0]);
//! ```

use crate::core::cam::Cam;
use crate::core::label::{LabelMap, IGNORE};
use crate::refine::peaks::{find_peaks, Peak, PeakSettings};
use crate::sam::postprocess::{Postprocessor, MASK_THRESHOLD};
use crate::sam::predictor::{LowResMasks, MaskPredictor, Prompt};
use crate::{Error, Result};

/// How a class's peaks are given to SAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptMode {
    /// All peaks of a class in one prompt (S2C's default).
    MultiPoint,
    /// One prompt per peak; a pixel takes the class's best score over its masks.
    PerPeak,
}

/// Which of SAM's three multimask outputs CPM uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskChoice {
    /// A fixed index of the multimask output (S2C uses 2, the largest-scale mask).
    Index(usize),
    /// The mask with the highest predicted IoU.
    BestIou,
}

/// CPM's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpmSettings {
    /// How peaks are picked.
    pub peaks: PeakSettings,
    /// One multi-point prompt per class, or one prompt per peak.
    pub prompt_mode: PromptMode,
    /// Which multimask output is used.
    pub mask_choice: MaskChoice,
    /// When set, pixels whose two best class scores are closer than this become 255.
    pub ignore_margin: Option<f32>,
}

impl Default for CpmSettings {
    /// S2C's choices: τ = 0.5, 20 px, one multi-point prompt, mask index 2, no ignore band.
    fn default() -> Self {
        CpmSettings {
            peaks: PeakSettings::default(),
            prompt_mode: PromptMode::MultiPoint,
            mask_choice: MaskChoice::Index(2),
            ignore_margin: None,
        }
    }
}

/// The mask CPM used for one prompt of a class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UsedMask {
    /// Index in the multimask output.
    pub index: usize,
    /// Its predicted IoU.
    pub predicted_iou: f32,
    /// Pixels inside (logit > 0) at the image size.
    pub area: usize,
    /// Mean CAM of the class inside the mask (0 for an empty mask).
    pub mean_cam: f32,
}

/// What CPM did for one class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassReport {
    pub class: u8,
    pub peaks: Vec<Peak>,
    pub masks: Vec<UsedMask>,
}

/// CPM's result for one image.
#[derive(Debug, Clone)]
pub struct CpmOutput {
    /// The pseudo-label (0 background, class ids, 255 in the optional ignore band).
    pub label: LabelMap,
    /// `classes × H × W` scores (−∞ where a class has no mask), in the order of `classes`.
    pub scores: Vec<f32>,
    /// Per class: peaks and masks used.
    pub classes: Vec<ClassReport>,
}

/// Run CPM on one image whose image-side work the predictor has done.
///
/// `classes` are the present foreground class ids; `cams` holds their normalised CAMs in the
/// same order, `classes.len() × H × W` with `(H, W) = predictor.original_size()`.
pub async fn cpm<P: MaskPredictor>(
    predictor: &mut P,
    classes: &[u8],
    cams: &[f32],
    settings: &CpmSettings,
) -> Result<CpmOutput> {
    let (h, w) = predictor.original_size();
    let (in_h, in_w) = predictor.input_size();
    let n = h * w;
    if cams.len() != classes.len() * n {
        return Err(Error::input(
            "CPM CAMs",
            format!(
                "hold {} values; expected {} classes × {h}×{w} (the image size)",
                cams.len(),
                classes.len()
            ),
        ));
    }
    if let MaskChoice::Index(i) = settings.mask_choice {
        if i > 2 {
            return Err(Error::input(
                "CPM mask index",
                format!("is {i}; expected 0, 1 or 2 (SAM's three multimask outputs)"),
            ));
        }
    }
    if let Some(c) = classes.iter().find(|&&c| c == 0 || c == IGNORE) {
        return Err(Error::input(
            "CPM classes",
            format!("include {c}; expected foreground class ids 1–254"),
        ));
    }

    // Prompts: per class, one multi-point prompt or one per peak.
    let mut reports = Vec::with_capacity(classes.len());
    let mut prompts = Vec::new();
    let mut owner = Vec::new(); // prompt → class slot
    for (slot, &class) in classes.iter().enumerate() {
        let cam = &cams[slot * n..(slot + 1) * n];
        let peaks = find_peaks(cam, w, h, &settings.peaks)?;
        let to_input = |p: &Peak| {
            (
                p.x as f64 * in_w as f64 / w as f64,
                p.y as f64 * in_h as f64 / h as f64,
            )
        };
        match settings.prompt_mode {
            PromptMode::MultiPoint => {
                if !peaks.is_empty() {
                    prompts.push(Prompt {
                        points: peaks.iter().map(to_input).collect(),
                        labels: vec![1; peaks.len()],
                        ..Prompt::default()
                    });
                    owner.push(slot);
                }
            }
            PromptMode::PerPeak => {
                for p in &peaks {
                    prompts.push(Prompt {
                        points: vec![to_input(p)],
                        labels: vec![1],
                        ..Prompt::default()
                    });
                    owner.push(slot);
                }
            }
        }
        reports.push(ClassReport {
            class,
            peaks,
            masks: Vec::new(),
        });
    }

    let answers = if prompts.is_empty() {
        Vec::new()
    } else {
        predictor.predict_low_res(&prompts, true).await?
    };
    if answers.len() != prompts.len() {
        return Err(Error::Model(format!(
            "predictor answered {} prompts; expected {}",
            answers.len(),
            prompts.len()
        )));
    }

    let mut scores = vec![f32::NEG_INFINITY; classes.len() * n];
    let mut post = Postprocessor::new((in_h, in_w), (h, w))?;
    let mut logits = Vec::new();
    for (answer, &slot) in answers.iter().zip(&owner) {
        let index = pick_mask(answer, settings.mask_choice)?;
        let plane = crate::sam::predictor::LOW_RES * crate::sam::predictor::LOW_RES;
        post.apply_into(
            &answer.logits[index * plane..(index + 1) * plane],
            &mut logits,
        )?;
        let cam = &cams[slot * n..(slot + 1) * n];
        let used = add_class_score(&logits, cam, &mut scores[slot * n..(slot + 1) * n]);
        reports[slot].masks.push(UsedMask {
            index,
            predicted_iou: answer.iou[index],
            area: used.0,
            mean_cam: used.1,
        });
    }
    let label = scores_to_label(&scores, classes, w, h, settings.ignore_margin)?;
    Ok(CpmOutput {
        label,
        scores,
        classes: reports,
    })
}

/// CPM from a [`Cam`] as read from disk: keeps the `present` classes (all channels when
/// `None`), up-samples the CAM to the image when its size differs (bilinear,
/// `align_corners=False`, as S2C's `F.interpolate`), normalises each class to max 1, then
/// runs [`cpm`]. `name` (the CAM file) is used in errors.
pub async fn cpm_cam<P: MaskPredictor>(
    predictor: &mut P,
    cam: &Cam,
    present: Option<&[u8]>,
    settings: &CpmSettings,
    name: &str,
) -> Result<CpmOutput> {
    let (h, w) = predictor.original_size();
    let cam = cam.select(present, name)?.resized(h, w)?.normalised();
    cpm(predictor, &cam.classes, &cam.data, settings).await
}

/// The multimask output to use for one answer.
fn pick_mask(answer: &LowResMasks, choice: MaskChoice) -> Result<usize> {
    let plane = crate::sam::predictor::LOW_RES * crate::sam::predictor::LOW_RES;
    if answer.count == 0
        || answer.iou.len() != answer.count
        || answer.logits.len() != answer.count * plane
    {
        return Err(Error::Model(format!(
            "predictor answer holds {} masks, {} IoUs and {} logits; expected matching sizes",
            answer.count,
            answer.iou.len(),
            answer.logits.len()
        )));
    }
    match choice {
        MaskChoice::Index(i) if i < answer.count => Ok(i),
        MaskChoice::Index(i) => Err(Error::Model(format!(
            "predictor returned {} masks; mask index {i} needs multimask output",
            answer.count
        ))),
        MaskChoice::BestIou => {
            let mut best = 0;
            for (i, &v) in answer.iou.iter().enumerate() {
                if v > answer.iou[best] {
                    best = i;
                }
            }
            Ok(best)
        }
    }
}

/// Fold one mask into a class's score map: inside the mask (`logit > 0`), the score is
/// `logit × mean CAM inside the mask`, kept when it beats the score already there. Returns
/// the mask's area and its mean CAM.
pub fn add_class_score(logits: &[f32], cam: &[f32], scores: &mut [f32]) -> (usize, f32) {
    let (mut area, mut sum) = (0usize, 0f64);
    for (&l, &c) in logits.iter().zip(cam) {
        if l > MASK_THRESHOLD {
            area += 1;
            sum += c as f64;
        }
    }
    if area == 0 {
        return (0, 0.0);
    }
    let mean = (sum / area as f64) as f32;
    for (s, &l) in scores.iter_mut().zip(logits) {
        if l > MASK_THRESHOLD {
            let v = l * mean;
            if v > *s {
                *s = v;
            }
        }
    }
    (area, mean)
}

/// Per pixel the best-scoring class of `classes` (`scores` is `classes.len() × H × W`);
/// background (0) where the best score is below 0 or absent; with `ignore_margin`, 255 where
/// the two best scores (both present) differ by less than the margin.
pub fn scores_to_label(
    scores: &[f32],
    classes: &[u8],
    width: usize,
    height: usize,
    ignore_margin: Option<f32>,
) -> Result<LabelMap> {
    let n = width * height;
    if scores.len() != classes.len() * n {
        return Err(Error::input(
            "CPM scores",
            format!(
                "hold {} values; expected {} classes × {height}×{width}",
                scores.len(),
                classes.len()
            ),
        ));
    }
    let mut data = vec![0u8; n];
    for (i, d) in data.iter_mut().enumerate() {
        let (mut best, mut best_k, mut second) = (f32::NEG_INFINITY, None, f32::NEG_INFINITY);
        for k in 0..classes.len() {
            let s = scores[k * n + i];
            if s > best {
                second = best;
                best = s;
                best_k = Some(k);
            } else if s > second {
                second = s;
            }
        }
        let Some(k) = best_k else { continue };
        if best < 0.0 {
            continue;
        }
        *d = match ignore_margin {
            Some(m) if second > f32::NEG_INFINITY && best - second < m => IGNORE,
            _ => classes[k],
        };
    }
    LabelMap::new(width, height, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_score_is_logit_times_mean_cam_inside_the_mask() {
        // 4 pixels; mask = logits > 0 = pixels 0, 1, 3; mean CAM inside = (0.2+0.4+0.9)/3 = 0.5.
        let logits = [2.0f32, 4.0, -1.0, 1.0];
        let cam = [0.2f32, 0.4, 1.0, 0.9];
        let mut scores = [f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY, f32::NEG_INFINITY];
        let (area, mean) = add_class_score(&logits, &cam, &mut scores);
        assert_eq!(area, 3);
        assert!((mean - 0.5).abs() < 1e-6);
        // Pixel 1 keeps the earlier, better score 3.0 > 4·0.5.
        assert_eq!(scores, [1.0, 3.0, f32::NEG_INFINITY, 0.5]);
        // An empty mask changes nothing.
        let before = scores;
        assert_eq!(add_class_score(&[-1.0; 4], &cam, &mut scores), (0, 0.0));
        assert_eq!(scores, before);
    }

    #[test]
    fn label_rules_by_hand() {
        let ninf = f32::NEG_INFINITY;
        // 5 pixels, classes 2 and 9.
        #[rustfmt::skip]
        let scores = [
            1.0, ninf, -0.5, 0.0, 3.0,   // class 2
            0.5, 2.0,  ninf, ninf, 3.0,  // class 9
        ];
        let l = scores_to_label(&scores, &[2, 9], 5, 1, None).unwrap();
        // px 3: score exactly 0 is not below 0 → class 2; px 4: tie → lower slot (class 2).
        assert_eq!(l.data, vec![2, 9, 0, 2, 2]);
        let l = scores_to_label(&scores, &[2, 9], 5, 1, Some(0.6)).unwrap();
        // px 0: 1.0 − 0.5 < 0.6 → 255; px 4: tie → 255; px 1 and 3: no competitor.
        assert_eq!(l.data, vec![255, 9, 0, 2, 255]);
        assert!(scores_to_label(&scores, &[2], 5, 1, None).is_err());
    }
}
