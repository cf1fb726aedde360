//! The SEPL merge (Chen et al., "Segment Anything Model (SAM) Enhanced Pseudo Labels for
//! Weakly Supervised Semantic Segmentation", arXiv 2305.05803, §3.2 "pseudo label
//! enhancement"): class-agnostic SAM masks take the class of the CAM pseudo-label `P` they
//! agree with. Pure logic on bit-packed masks; no I/O.
//!
//! Notation, for a mask `M` and the pseudo-label region `P_k` of class `k`:
//! `O_s = |M ∩ P_k| / |M|` (how much of the mask is class `k`) and
//! `O_p = |M ∩ P_k| / |P_k|` (how much of the class the mask covers).
//!
//! # Presets
//! - [`Preset::OfficialImp2`] (default), [`Preset::OfficialImp`], [`Preset::Official`]:
//!   pixel-identical to the published code's `max_iou_imp2`, `max_iou_imp`, `max_iou`
//!   (checked on all 293 images of `shared/fixtures/sepl`). For each class `k = 1 … K−1` in
//!   ascending order with `|P_k| > 0`:
//!   1. visit every mask not taken by an earlier class, in ascending index; the union `V_k`
//!      of the visited masks is the "running union" (it is reset for each class, and covers
//!      all masks still available when class `k` starts — taken or not);
//!   2. take `M` when `O_s > t1` (the code's `2|M∩P_k| − |M| > 0` for `t1 = 0.5`), or, for
//!      `-imp2`, also when `O_p ≥ t2` (`t2 = 0.85`); a taken mask is unavailable to later
//!      classes;
//!   3. write `k` on the union of the taken masks, and for `-imp`/`-imp2` also on
//!      `P_k \ V_k` ("trust CAM where SAM has no mask"); later classes overwrite earlier ones.
//!
//!   Everything else is 0: the output holds no 255. Pixel values of `P` outside
//!   `1 … K−1` (255 "ignore" included) belong to no class: they count in `|M|` but never in
//!   `|M ∩ P_k|`, and they end up 0 unless a taken mask covers them.
//! - [`Preset::Paper`], the rule as the paper's text states it: each mask goes to the class
//!   whose pseudo-label it overlaps most (largest `|M ∩ P_k|`, ties to the smaller class id;
//!   masks overlapping no class are dropped). A class keeps its masks with `O_s > t1` and
//!   `O_p > t2` (`--combine or`: either). A class that keeps no mask keeps its pseudo-label
//!   `P_k`. Collisions: the fallback pseudo-labels are written first, then the kept masks of
//!   all classes in order of decreasing area (ties: ascending index), so where kept masks of
//!   different classes overlap the smaller — more specific, SAM's nested part masks — wins,
//!   and a kept mask overrides another class's fallback pseudo-label. Everything else is 0.
//!
//! ```
//! use camsam::core::label::LabelMap;
//! use camsam::core::masks::BitMask;
//! use camsam::core::sepl::{merge, MergeParams};
//! // A 4×1 image: the CAM says class 3 on the first two pixels; SAM has one mask on the first three.
//! let pseudo = LabelMap::new(4, 1, vec![3, 3, 0, 0]).unwrap();
//! let mask = BitMask::from_values(4, 1, &[255, 255, 255, 0], |v| v > 0).unwrap();
//! let out = merge(&pseudo, &[&mask], &MergeParams::default()).unwrap();
//! assert_eq!(out.label.data, vec![3, 3, 3, 0]); // O_s = 2/3 > 0.5: the mask takes class 3
//! ```

use crate::core::label::LabelMap;
use crate::core::masks::BitMask;
use crate::{Error, Result};

/// A merge rule; see the module docs for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The published `max_iou_imp2`: take on `O_s > t1` or `O_p ≥ t2`, trust CAM outside SAM.
    #[default]
    OfficialImp2,
    /// The published `max_iou_imp`: take on `O_s > t1`, trust CAM outside SAM.
    OfficialImp,
    /// The published `max_iou`: take on `O_s > t1`; only taken masks are labelled.
    Official,
    /// The paper's text: masks assigned to their best class, kept on `O_s > t1` and/or `O_p > t2`.
    Paper,
}

impl Preset {
    pub const ALL: [Preset; 4] = [
        Preset::OfficialImp2,
        Preset::OfficialImp,
        Preset::Official,
        Preset::Paper,
    ];

    /// The preset's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::OfficialImp2 => "official-imp2",
            Preset::OfficialImp => "official-imp",
            Preset::Official => "official",
            Preset::Paper => "paper",
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown preset '{s}': expected official-imp2, official-imp, official or paper"
                )
            })
    }
}

/// How [`Preset::Paper`] combines its two tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Combine {
    /// Keep a mask when `O_s > t1` and `O_p > t2`.
    #[default]
    And,
    /// Keep a mask when `O_s > t1` or `O_p > t2`.
    Or,
}

impl Combine {
    pub fn name(self) -> &'static str {
        match self {
            Combine::And => "and",
            Combine::Or => "or",
        }
    }
}

impl std::fmt::Display for Combine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Combine {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "and" => Ok(Combine::And),
            "or" => Ok(Combine::Or),
            other => Err(format!("unknown combine '{other}': expected and or or")),
        }
    }
}

/// Merge settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergeParams {
    pub preset: Preset,
    /// Threshold on `O_s = |M ∩ P_k| / |M|` (strict: `O_s > t1`). Default 0.5.
    pub t1: f64,
    /// Threshold on `O_p = |M ∩ P_k| / |P_k|` (`≥` for `official-imp2` as in the code, `>` for
    /// `paper`). Default 0.85. Unused by `official` and `official-imp`.
    pub t2: f64,
    /// Used by `paper` only.
    pub combine: Combine,
    /// Classes are `1 … num_classes − 1` (0 is background). Default 21 (PASCAL VOC).
    pub num_classes: usize,
}

impl Default for MergeParams {
    fn default() -> Self {
        MergeParams {
            preset: Preset::OfficialImp2,
            t1: 0.5,
            t2: 0.85,
            combine: Combine::And,
            num_classes: 21,
        }
    }
}

/// What the merge did for one class present in the pseudo-label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMerge {
    pub class: u8,
    /// `|P_k|`.
    pub pseudo_pixels: usize,
    /// Positions (in the mask slice given to [`merge`]) of the masks this class took.
    pub taken: Vec<usize>,
    /// Pixels of `P_k` labelled `k` from the pseudo-label itself (trust-CAM pixels, or the
    /// whole `P_k` when `paper` keeps no mask), before later classes overwrite any.
    pub kept_pseudo_pixels: usize,
}

/// The merged label and what each class took.
#[derive(Debug, Clone)]
pub struct MergeResult {
    pub label: LabelMap,
    /// One entry per class present in the pseudo-label, ascending.
    pub classes: Vec<ClassMerge>,
}

/// Merge SAM masks (in visiting order) into the pseudo-label `pseudo` with `params`.
/// Every mask must have the label's size.
pub fn merge(pseudo: &LabelMap, masks: &[&BitMask], params: &MergeParams) -> Result<MergeResult> {
    check(pseudo, masks, params)?;
    let counts = histogram(&pseudo.data);
    let last_class = params.num_classes.min(255);
    let present: Vec<u8> = (1..last_class)
        .filter(|&k| counts[k] > 0)
        .map(|k| k as u8)
        .collect();
    let areas: Vec<usize> = masks.iter().map(|m| m.count()).collect();
    match params.preset {
        Preset::Paper => Ok(merge_paper(
            pseudo, masks, &areas, &present, &counts, params,
        )),
        _ => Ok(merge_official(
            pseudo, masks, &areas, &present, &counts, params,
        )),
    }
}

fn check(pseudo: &LabelMap, masks: &[&BitMask], params: &MergeParams) -> Result<()> {
    for (i, m) in masks.iter().enumerate() {
        if (m.width(), m.height()) != (pseudo.width, pseudo.height) {
            return Err(Error::input(
                format!("mask {i}"),
                format!(
                    "{}×{} but the pseudo-label is {}×{}; expected the same size",
                    m.width(),
                    m.height(),
                    pseudo.width,
                    pseudo.height
                ),
            ));
        }
    }
    for (name, t) in [("t1", params.t1), ("t2", params.t2)] {
        if !t.is_finite() {
            return Err(Error::input(name, format!("{t}; expected a finite number")));
        }
    }
    if !(2..=255).contains(&params.num_classes) {
        return Err(Error::input(
            "--num-classes",
            format!(
                "{}; expected 2 to 255 classes (background included; 255 is the ignore id)",
                params.num_classes
            ),
        ));
    }
    Ok(())
}

fn histogram(data: &[u8]) -> [usize; 256] {
    let mut counts = [0usize; 256];
    for &v in data {
        counts[v as usize] += 1;
    }
    counts
}

/// `max_iou`, `max_iou_imp`, `max_iou_imp2`.
fn merge_official(
    pseudo: &LabelMap,
    masks: &[&BitMask],
    areas: &[usize],
    present: &[u8],
    counts: &[usize; 256],
    params: &MergeParams,
) -> MergeResult {
    let trust_cam = matches!(params.preset, Preset::OfficialImp | Preset::OfficialImp2);
    let cover_test = params.preset == Preset::OfficialImp2;
    let mut out = vec![0u8; pseudo.data.len()];
    let mut available = vec![true; masks.len()];
    let mut classes = Vec::with_capacity(present.len());
    for &k in present {
        let pk = BitMask::of_class(pseudo, k);
        let pk_count = counts[k as usize];
        let mut visited = BitMask::empty(pseudo.width, pseudo.height);
        let mut taken = Vec::new();
        for (j, m) in masks.iter().enumerate() {
            if !available[j] {
                continue;
            }
            if trust_cam {
                visited.union_with(m);
            }
            let inter = m.and_count(&pk);
            // `2|M∩P_k| − |M| > 0` is `inter > 0.5·|M|`, exact in f64 for pixel counts.
            let o_s = inter as f64 > params.t1 * areas[j] as f64;
            // The code's `np.sum(...) / np.sum(pre_cls) >= 0.85`, the same f64 division.
            let o_p = cover_test && inter as f64 / pk_count as f64 >= params.t2;
            if o_s || o_p {
                taken.push(j);
                available[j] = false;
            }
        }
        for &j in &taken {
            masks[j].paint(&mut out, k);
        }
        let mut kept_pseudo_pixels = 0;
        if trust_cam {
            let mut kept = pk;
            kept.subtract(&visited);
            kept_pseudo_pixels = kept.count();
            kept.paint(&mut out, k);
        }
        classes.push(ClassMerge {
            class: k,
            pseudo_pixels: pk_count,
            taken,
            kept_pseudo_pixels,
        });
    }
    MergeResult {
        label: LabelMap {
            width: pseudo.width,
            height: pseudo.height,
            data: out,
        },
        classes,
    }
}

/// The paper's text: best class per mask, then `O_s`/`O_p` tests, fallback to `P_k`.
fn merge_paper(
    pseudo: &LabelMap,
    masks: &[&BitMask],
    areas: &[usize],
    present: &[u8],
    counts: &[usize; 256],
    params: &MergeParams,
) -> MergeResult {
    let planes: Vec<BitMask> = present
        .iter()
        .map(|&k| BitMask::of_class(pseudo, k))
        .collect();
    let mut kept_by_class: Vec<Vec<usize>> = vec![Vec::new(); present.len()];
    for (j, m) in masks.iter().enumerate() {
        // Best class: the largest overlap; `>` keeps the smaller class id on ties.
        let mut best: Option<(usize, usize)> = None;
        for (c, plane) in planes.iter().enumerate() {
            let inter = m.and_count(plane);
            if inter > 0 && best.is_none_or(|(_, b)| inter > b) {
                best = Some((c, inter));
            }
        }
        let Some((c, inter)) = best else {
            continue; // overlaps no class: dropped
        };
        let o_s = inter as f64 > params.t1 * areas[j] as f64;
        let o_p = inter as f64 / counts[present[c] as usize] as f64 > params.t2;
        let keep = match params.combine {
            Combine::And => o_s && o_p,
            Combine::Or => o_s || o_p,
        };
        if keep {
            kept_by_class[c].push(j);
        }
    }
    let mut out = vec![0u8; pseudo.data.len()];
    let mut classes = Vec::with_capacity(present.len());
    for (c, &k) in present.iter().enumerate() {
        let fallback = kept_by_class[c].is_empty();
        if fallback {
            planes[c].paint(&mut out, k);
        }
        classes.push(ClassMerge {
            class: k,
            pseudo_pixels: counts[k as usize],
            taken: kept_by_class[c].clone(),
            kept_pseudo_pixels: if fallback { counts[k as usize] } else { 0 },
        });
    }
    let mut kept: Vec<(usize, u8)> = kept_by_class
        .iter()
        .zip(present)
        .flat_map(|(js, &k)| js.iter().map(move |&j| (j, k)))
        .collect();
    kept.sort_by(|a, b| areas[b.0].cmp(&areas[a.0]).then(a.0.cmp(&b.0)));
    for (j, k) in kept {
        masks[j].paint(&mut out, k);
    }
    MergeResult {
        label: LabelMap {
            width: pseudo.width,
            height: pseudo.height,
            data: out,
        },
        classes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: usize, h: usize, px: &[u8]) -> BitMask {
        BitMask::from_values(w, h, px, |v| v > 0).unwrap()
    }

    fn run(preset: Preset, pseudo: &LabelMap, masks: &[BitMask]) -> Vec<u8> {
        let refs: Vec<&BitMask> = masks.iter().collect();
        let params = MergeParams {
            preset,
            ..MergeParams::default()
        };
        merge(pseudo, &refs, &params).unwrap().label.data
    }

    #[test]
    fn no_masks_official_gives_background_and_imp_keeps_the_cam() {
        let pseudo = LabelMap::new(3, 1, vec![0, 5, 255]).unwrap();
        assert_eq!(run(Preset::Official, &pseudo, &[]), vec![0, 0, 0]);
        assert_eq!(run(Preset::OfficialImp, &pseudo, &[]), vec![0, 5, 0]);
        assert_eq!(run(Preset::OfficialImp2, &pseudo, &[]), vec![0, 5, 0]);
        assert_eq!(run(Preset::Paper, &pseudo, &[]), vec![0, 5, 0]);
    }

    #[test]
    fn half_overlap_is_not_taken_but_more_is() {
        // O_s = 2/4 exactly: `2·2 − 4 > 0` is false.
        let pseudo = LabelMap::new(4, 1, vec![1, 1, 0, 0]).unwrap();
        let m = mask(4, 1, &[1, 1, 1, 1]);
        assert_eq!(
            run(Preset::Official, &pseudo, std::slice::from_ref(&m)),
            vec![0; 4]
        );
        // imp: P_1 is inside the visited union, so nothing is kept either.
        assert_eq!(
            run(Preset::OfficialImp, &pseudo, std::slice::from_ref(&m)),
            vec![0; 4]
        );
        // imp2: O_p = 2/2 ≥ 0.85 takes it.
        assert_eq!(run(Preset::OfficialImp2, &pseudo, &[m]), vec![1; 4]);
        let m = mask(4, 1, &[1, 1, 1, 0]);
        assert_eq!(run(Preset::Official, &pseudo, &[m]), vec![1, 1, 1, 0]);
    }

    #[test]
    fn taken_masks_are_unavailable_to_later_classes_and_later_classes_overwrite() {
        // Class 1 takes mask 0; class 2 would also qualify for it but it is gone.
        let pseudo = LabelMap::new(4, 1, vec![1, 1, 2, 2]).unwrap();
        let masks = [mask(4, 1, &[1, 1, 1, 0]), mask(4, 1, &[0, 1, 1, 1])];
        let refs: Vec<&BitMask> = masks.iter().collect();
        let out = merge(
            &pseudo,
            &refs,
            &MergeParams {
                preset: Preset::Official,
                ..MergeParams::default()
            },
        )
        .unwrap();
        assert_eq!(out.classes[0].taken, vec![0]);
        assert_eq!(out.classes[1].taken, vec![1]);
        // Class 2 is written after class 1 and wins where the masks overlap.
        assert_eq!(out.label.data, vec![1, 2, 2, 2]);
    }

    #[test]
    fn running_union_covers_all_available_masks_not_only_taken_ones() {
        // Mask 0 is visited by class 1 but not taken; it hides P_1's pixel 0 from trust-CAM.
        let pseudo = LabelMap::new(4, 1, vec![1, 1, 0, 0]).unwrap();
        let masks = [mask(4, 1, &[1, 0, 1, 1]), mask(4, 1, &[0, 0, 0, 0])];
        assert_eq!(run(Preset::OfficialImp, &pseudo, &masks), vec![0, 1, 0, 0]);
    }

    #[test]
    fn a_class_named_by_labels_but_without_pixels_is_skipped() {
        let pseudo = LabelMap::new(2, 1, vec![0, 0]).unwrap();
        let masks = [mask(2, 1, &[1, 1])];
        for p in Preset::ALL {
            assert_eq!(run(p, &pseudo, &masks), vec![0, 0], "{p}");
        }
        let refs: Vec<&BitMask> = masks.iter().collect();
        let out = merge(&pseudo, &refs, &MergeParams::default()).unwrap();
        assert!(out.classes.is_empty());
    }

    #[test]
    fn ignore_pixels_count_in_the_mask_area_only() {
        let pseudo = LabelMap::new(4, 1, vec![3, 255, 255, 0]).unwrap();
        let masks = [mask(4, 1, &[1, 1, 0, 0])];
        // O_s = 1/2: not taken; output never holds 255.
        assert_eq!(run(Preset::Official, &pseudo, &masks), vec![0, 0, 0, 0]);
        assert_eq!(run(Preset::OfficialImp, &pseudo, &masks), vec![0, 0, 0, 0]);
    }

    #[test]
    fn classes_at_or_past_num_classes_are_ignored() {
        let pseudo = LabelMap::new(2, 1, vec![21, 20]).unwrap();
        assert_eq!(run(Preset::OfficialImp, &pseudo, &[]), vec![0, 20]);
    }

    #[test]
    fn paper_assigns_each_mask_to_its_best_class_and_smaller_masks_win() {
        // 6×1: P = [1 1 1 2 2 0].
        let pseudo = LabelMap::new(6, 1, vec![1, 1, 1, 2, 2, 0]).unwrap();
        // Mask 0 covers everything: best class 1 (3 px) but O_s = 3/6, dropped by t1.
        // Mask 1 = [1 1 1 1 0 0]: class 1, O_s = 3/4, O_p = 1: kept.
        // Mask 2 = [0 0 0 1 1 0]: class 2, O_s = 1, O_p = 1: kept, smaller, wins pixel 3.
        let masks = [
            mask(6, 1, &[1; 6]),
            mask(6, 1, &[1, 1, 1, 1, 0, 0]),
            mask(6, 1, &[0, 0, 0, 1, 1, 0]),
        ];
        assert_eq!(run(Preset::Paper, &pseudo, &masks), vec![1, 1, 1, 2, 2, 0]);
        let refs: Vec<&BitMask> = masks.iter().collect();
        let out = merge(&pseudo, &refs, &MergeParams::default().with(Preset::Paper)).unwrap();
        assert_eq!(out.classes[0].taken, vec![1]);
        assert_eq!(out.classes[1].taken, vec![2]);
    }

    #[test]
    fn paper_ties_go_to_the_smaller_class_and_and_or_differ() {
        let pseudo = LabelMap::new(4, 1, vec![2, 1, 1, 2]).unwrap();
        // Overlaps classes 1 and 2 by 1 pixel each: class 1. O_s = 1/2 fails t1; O_p = 1/2.
        let masks = [mask(4, 1, &[0, 1, 0, 1])];
        let refs: Vec<&BitMask> = masks.iter().collect();
        let mut params = MergeParams::default().with(Preset::Paper);
        params.t1 = 0.4;
        params.t2 = 0.4;
        let out = merge(&pseudo, &refs, &params).unwrap();
        assert_eq!(out.classes[0].taken, vec![0]);
        assert_eq!(out.label.data, vec![2, 1, 0, 1]);
        // Needs O_p > 0.6 too with `and`: not kept, both classes keep their pseudo-labels.
        params.t2 = 0.6;
        assert_eq!(
            merge(&pseudo, &refs, &params).unwrap().label.data,
            pseudo.data
        );
        params.combine = Combine::Or;
        assert_eq!(
            merge(&pseudo, &refs, &params).unwrap().label.data,
            vec![2, 1, 0, 1]
        );
    }

    #[test]
    fn bad_settings_and_sizes_are_errors() {
        let pseudo = LabelMap::new(2, 1, vec![1, 0]).unwrap();
        let m = mask(1, 2, &[1, 1]);
        assert!(merge(&pseudo, &[&m], &MergeParams::default()).is_err());
        let p = MergeParams {
            t1: f64::NAN,
            ..MergeParams::default()
        };
        assert!(merge(&pseudo, &[], &p).is_err());
        let p = MergeParams {
            num_classes: 1,
            ..MergeParams::default()
        };
        assert!(merge(&pseudo, &[], &p).is_err());
    }

    #[test]
    fn preset_names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        assert!("max_iou".parse::<Preset>().is_err());
    }

    impl MergeParams {
        fn with(mut self, preset: Preset) -> Self {
            self.preset = preset;
            self
        }
    }
}
