//! The user's corrections of a refined label, replayed in order on the derived label.

use super::settings::{Method, Settings};
use crate::core::label::LabelMap;
use crate::core::masks::BitMask;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// One correction. Masks are named by their position in the image's mask set (visiting
/// order, prompt-tool masks appended last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Edit {
    /// Leave mask `mask` out of the merge, as if SAM had not proposed it.
    Reject { mask: usize },
    /// Paint mask `mask` with class `cls`.
    Assign { mask: usize, cls: u8 },
    /// Paint discs of `radius` pixels around `points` (`[x, y]`) with class `cls`.
    Brush {
        points: Vec<[f64; 2]>,
        radius: f64,
        cls: u8,
    },
}

/// The masks the edits reject, in order: the merge leaves them out.
pub fn rejected(edits: &[Edit]) -> Vec<usize> {
    edits
        .iter()
        .filter_map(|e| match e {
            Edit::Reject { mask } => Some(*mask),
            _ => None,
        })
        .collect()
}

/// Replays the painting edits (assign, brush) on `label` in order; `masks` is the image's whole
/// mask set. A mask index out of range is an error naming it.
pub fn replay(label: &mut LabelMap, masks: &[&BitMask], edits: &[Edit]) -> Result<()> {
    let (w, h) = (label.width, label.height);
    for (n, edit) in edits.iter().enumerate() {
        match edit {
            Edit::Reject { mask } => {
                mask_of(masks, *mask, n)?;
            }
            Edit::Assign { mask, cls } => {
                let m = mask_of(masks, *mask, n)?;
                if (m.width(), m.height()) != (w, h) {
                    return Err(Error::input(
                        format!("edit {n}"),
                        format!(
                            "mask {mask} is {}×{}, the label {w}×{h}",
                            m.width(),
                            m.height()
                        ),
                    ));
                }
                for y in 0..h {
                    for x in 0..w {
                        if m.get(x, y) {
                            label.data[y * w + x] = *cls;
                        }
                    }
                }
            }
            Edit::Brush {
                points,
                radius,
                cls,
            } => {
                if !(radius.is_finite() && *radius >= 0.0) {
                    return Err(Error::input(
                        format!("edit {n}"),
                        format!("brush radius {radius}; expected a number ≥ 0"),
                    ));
                }
                let r2 = radius * radius;
                for &[cx, cy] in points {
                    if !(cx.is_finite() && cy.is_finite()) {
                        continue;
                    }
                    let y0 = (cy - radius).floor().max(0.0) as usize;
                    let y1 = (cy + radius).ceil().min(h as f64 - 1.0);
                    let x0 = (cx - radius).floor().max(0.0) as usize;
                    let x1 = (cx + radius).ceil().min(w as f64 - 1.0);
                    if y1 < 0.0 || x1 < 0.0 {
                        continue;
                    }
                    for y in y0..=y1 as usize {
                        for x in x0..=x1 as usize {
                            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                            if dx * dx + dy * dy <= r2 {
                                label.data[y * w + x] = *cls;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The label a user sees: for the methods that merge SAM masks, the SEPL merge again without
/// the rejected masks (into the pseudo-label, or CPM's label for `cpm+sepl`), else the method's
/// label `base`; then the painting edits in order. `masks` is the image's whole mask set.
pub fn edited(
    settings: &Settings,
    pseudo: &LabelMap,
    cpm: Option<&LabelMap>,
    base: &LabelMap,
    masks: &[&BitMask],
    edits: &[Edit],
) -> Result<LabelMap> {
    let mut label = if settings.method.uses_masks() {
        let out = rejected(edits);
        for &i in &out {
            mask_of(masks, i, 0)?;
        }
        let kept: Vec<&BitMask> = masks
            .iter()
            .enumerate()
            .filter(|(i, _)| !out.contains(i))
            .map(|(_, m)| *m)
            .collect();
        let into = match (settings.method, cpm) {
            (Method::CpmSepl, Some(c)) => c,
            (Method::CpmSepl, None) => {
                return Err(Error::Model(
                    "method cpm+sepl needs CPM's label; the model did not run".into(),
                ))
            }
            _ => pseudo,
        };
        crate::core::sepl::merge(into, &kept, &settings.merge_params())?.label
    } else {
        base.clone()
    };
    replay(&mut label, masks, edits)?;
    Ok(label)
}

fn mask_of<'a>(masks: &[&'a BitMask], i: usize, n: usize) -> Result<&'a BitMask> {
    masks.get(i).copied().ok_or_else(|| {
        Error::input(
            format!("edit {n}"),
            format!(
                "mask {i}: out of range; the image has {} masks",
                masks.len()
            ),
        )
    })
}

/// The smallest mask holding pixel `(x, y)` (nested parts win over whole objects; the first
/// of equal areas), or `None`.
pub fn hit_test(masks: &[&BitMask], x: usize, y: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, m) in masks.iter().enumerate() {
        if x < m.width() && y < m.height() && m.get(x, y) {
            let area = m.count();
            if best.is_none_or(|(_, a)| area < a) {
                best = Some((i, area));
            }
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: usize, h: usize, on: &[usize]) -> BitMask {
        let v: Vec<u8> = (0..w * h).map(|i| on.contains(&i) as u8).collect();
        BitMask::from_values(w, h, &v, |v| v > 0).unwrap()
    }

    #[test]
    fn edits_replay_in_order_and_the_brush_paints_discs() {
        let mut label = LabelMap::new(5, 5, vec![0; 25]).unwrap();
        let big = mask(5, 5, &[0, 1, 2, 5, 6, 7]);
        let small = mask(5, 5, &[6]);
        let edits: Vec<Edit> = serde_json::from_str(
            r#"[{"op":"assign","mask":0,"cls":3},{"op":"brush","points":[[4,4]],"radius":1,"cls":7},{"op":"reject","mask":1}]"#,
        )
        .unwrap();
        replay(&mut label, &[&big, &small], &edits).unwrap();
        assert_eq!(&label.data[0..3], &[3, 3, 3]);
        assert_eq!(label.data[24], 7);
        assert_eq!((label.data[19], label.data[23], label.data[18]), (7, 7, 0));
        assert_eq!(rejected(&edits), vec![1]);
        assert_eq!(hit_test(&[&big, &small], 1, 1), Some(1));
        assert_eq!(hit_test(&[&big, &small], 4, 4), None);
        let bad = [Edit::Assign { mask: 2, cls: 1 }];
        let e = replay(&mut label, &[&big, &small], &bad).unwrap_err();
        assert!(e.to_string().contains("mask 2: out of range"), "{e}");
    }
}
