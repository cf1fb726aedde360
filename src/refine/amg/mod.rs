//! SAM's automatic mask generator ("segment everything"), a faithful port of the official
//! `segment_anything/automatic_mask_generator.py` (`SamAutomaticMaskGenerator`) and
//! `segment_anything/utils/amg.py` (Kirillov et al., *Segment Anything*, 2023, §7.1 and
//! appendix A "Automatic mask generation"), generic over [`ImagePredictor`].
//!
//! For the whole image and then each crop (`crop_n_layers`): set the (cropped) image, prompt
//! a regular point grid in batches (three masks per point), keep masks whose predicted IoU is
//! `> pred_iou_thresh` and whose stability score is `>= stability_score_thresh`, drop masks
//! whose box touches an inner crop edge, remove duplicates by box NMS (per crop by predicted
//! IoU, across crops preferring smaller crops), optionally remove small holes and islands
//! and NMS again. Records come out in the official order.
//!
//! ```no_run
//! # async fn f(predictor: &mut impl camsam::sam::predictor::ImagePredictor) -> camsam::Result<()> {
//! use camsam::refine::amg::{AmgConfig, AutomaticMaskGenerator};
//! let image = image::RgbImage::new(640, 480);
//! let generator = AutomaticMaskGenerator::new(AmgConfig::default())?;
//! for m in generator.generate(predictor, &image).await? {
//!     println!("area {} bbox {:?} iou {}", m.area, m.bbox, m.predicted_iou);
//! }
//! # Ok(()) }
//! ```

pub mod crops;
pub mod grid;
pub mod mask_data;
pub mod nms;
pub mod output;
pub mod regions;

use crate::core::masks::BitMask;
use crate::sam::postprocess::{Postprocessor, MASK_THRESHOLD};
use crate::sam::predictor::{ImagePredictor, Prompt, LOW_RES};
use crate::{profile, Error, Result};
use crops::{generate_crop_boxes, is_box_near_crop_edge, uncrop_box, uncrop_point, xyxy_to_xywh};
use mask_data::{mask_to_box, stability_score};
use regions::{remove_small_regions, Mode};

/// `batched_nms` switches to its per-category ("vanilla") path above this many box
/// coordinates on the CPU (torchvision `ops/boxes.py`).
const VANILLA_NMS_NUMEL: usize = 4000;
/// `is_box_near_crop_edge`'s tolerance in pixels.
const CROP_EDGE_ATOL: f64 = 20.0;

/// The generator's parameters, with the official names and defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmgConfig {
    /// Points sampled along one side of the image (`None`: `point_grids` gives them).
    pub points_per_side: Option<usize>,
    /// Points run through the model at once.
    pub points_per_batch: usize,
    /// Keep masks whose predicted IoU is above this (0 disables the filter).
    pub pred_iou_thresh: f64,
    /// Keep masks whose stability score is at least this (0 disables the filter).
    pub stability_score_thresh: f64,
    /// Logit offset of the two cutoffs of the stability score.
    pub stability_score_offset: f64,
    /// Box IoU above which NMS drops a duplicate within a crop.
    pub box_nms_thresh: f64,
    /// Crop layers beyond the whole image (layer `i` has `(2^i)²` crops).
    pub crop_n_layers: usize,
    /// Box IoU above which NMS drops a duplicate across crops.
    pub crop_nms_thresh: f64,
    /// Overlap of neighbouring crops in the first layer, as a fraction of the short side.
    pub crop_overlap_ratio: f64,
    /// Points per side in layer `n` are divided by this to the power `n`.
    pub crop_n_points_downscale_factor: usize,
    /// Explicit point grids in `[0, 1]²`, one per layer (exclusive with `points_per_side`).
    pub point_grids: Option<Vec<Vec<[f64; 2]>>>,
    /// Remove holes and islands smaller than this many pixels (0 disables).
    pub min_mask_region_area: usize,
}

impl Default for AmgConfig {
    fn default() -> Self {
        AmgConfig {
            points_per_side: Some(32),
            points_per_batch: 64,
            pred_iou_thresh: 0.88,
            stability_score_thresh: 0.95,
            stability_score_offset: 1.0,
            box_nms_thresh: 0.7,
            crop_n_layers: 0,
            crop_nms_thresh: 0.7,
            crop_overlap_ratio: 512.0 / 1500.0,
            crop_n_points_downscale_factor: 1,
            point_grids: None,
            min_mask_region_area: 0,
        }
    }
}

/// One generated mask, as the official generator's record (`output_mode="binary_mask"`).
#[derive(Debug, Clone, PartialEq)]
pub struct MaskRecord {
    /// The mask at the full image size.
    pub segmentation: BitMask,
    /// Pixels in the mask.
    pub area: usize,
    /// `[x, y, w, h]` of the mask's box (`w = x1 − x0` with inclusive pixel coordinates).
    pub bbox: [i64; 4],
    /// The model's predicted IoU.
    pub predicted_iou: f32,
    /// The prompt point, in image pixels.
    pub point_coords: [f64; 2],
    /// The stability score.
    pub stability_score: f32,
    /// `[x, y, w, h]` of the crop the mask came from.
    pub crop_box: [usize; 4],
}

/// A mask under consideration (the official `MaskData` row).
#[derive(Debug, Clone)]
struct Candidate {
    mask: BitMask,
    /// Image frame, inclusive pixel coordinates.
    bbox: [i64; 4],
    iou: f32,
    point: [f64; 2],
    stability: f32,
    crop_box: [usize; 4],
}

/// The automatic mask generator (`SamAutomaticMaskGenerator`).
#[derive(Debug, Clone)]
pub struct AutomaticMaskGenerator {
    config: AmgConfig,
    point_grids: Vec<Vec<[f64; 2]>>,
}

impl AutomaticMaskGenerator {
    /// Check the parameters and build the point grids.
    pub fn new(config: AmgConfig) -> Result<Self> {
        let bad = |what: String| Err(Error::input("automatic mask generator", what));
        let point_grids = match (&config.points_per_side, &config.point_grids) {
            (Some(n), None) => {
                if *n == 0 {
                    return bad("points_per_side 0; expected at least 1".into());
                }
                if config.crop_n_points_downscale_factor == 0 {
                    return bad("crop_n_points_downscale_factor 0; expected at least 1".into());
                }
                grid::build_all_layer_point_grids(
                    *n,
                    config.crop_n_layers,
                    config.crop_n_points_downscale_factor,
                )
            }
            (None, Some(g)) => g.clone(),
            _ => {
                return bad(
                    "both or neither of points_per_side and point_grids; expected exactly one"
                        .into(),
                )
            }
        };
        if point_grids.len() < config.crop_n_layers + 1 {
            return bad(format!(
                "{} point grids; expected one per layer ({})",
                point_grids.len(),
                config.crop_n_layers + 1
            ));
        }
        if point_grids.iter().any(|g| g.is_empty()) {
            return bad(
                "an empty point grid (too few points per side for the crop layers); expected \
                 at least one point per layer"
                    .into(),
            );
        }
        if config.points_per_batch == 0 {
            return bad("points_per_batch 0; expected at least 1".into());
        }
        if !(0.0..1.0).contains(&config.crop_overlap_ratio) {
            return bad(format!(
                "crop_overlap_ratio {}; expected a value in [0, 1)",
                config.crop_overlap_ratio
            ));
        }
        Ok(AutomaticMaskGenerator {
            config,
            point_grids,
        })
    }

    pub fn config(&self) -> &AmgConfig {
        &self.config
    }

    /// Number of predictor batches [`generate`](Self::generate) runs for an image of
    /// `(height, width)` (for progress reporting).
    pub fn batch_count(&self, image_size: (usize, usize)) -> usize {
        let (_, layers) = generate_crop_boxes(
            image_size,
            self.config.crop_n_layers,
            self.config.crop_overlap_ratio,
        );
        layers
            .iter()
            .map(|&l| {
                self.point_grids[l]
                    .len()
                    .div_ceil(self.config.points_per_batch)
            })
            .sum()
    }

    /// Generate masks for `image`.
    pub async fn generate<P: ImagePredictor>(
        &self,
        predictor: &mut P,
        image: &image::RgbImage,
    ) -> Result<Vec<MaskRecord>> {
        self.generate_with_progress(predictor, image, &mut |_, _| Ok(()))
            .await
    }

    /// Generate masks for `image`, calling `progress(done, total)` after every predictor
    /// batch; an error from `progress` (e.g. [`Error::Cancelled`]) stops the generation.
    pub async fn generate_with_progress<P: ImagePredictor>(
        &self,
        predictor: &mut P,
        image: &image::RgbImage,
        progress: &mut dyn FnMut(usize, usize) -> Result<()>,
    ) -> Result<Vec<MaskRecord>> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        if w == 0 || h == 0 {
            return Err(Error::input(
                "automatic mask generator",
                "an empty image; expected at least 1×1 pixels",
            ));
        }
        let total = self.batch_count((h, w));
        let mut done = 0;
        let (crop_boxes, layer_idxs) = generate_crop_boxes(
            (h, w),
            self.config.crop_n_layers,
            self.config.crop_overlap_ratio,
        );
        let mut data = Vec::new();
        for (&crop_box, &layer) in crop_boxes.iter().zip(&layer_idxs) {
            let crop = self
                .process_crop(predictor, image, crop_box, layer, &mut |n| {
                    done += n;
                    progress(done, total)
                })
                .await?;
            data.extend(crop);
        }
        if crop_boxes.len() > 1 {
            // Prefer masks from smaller crops.
            let scores: Vec<f32> = data
                .iter()
                .map(|c| {
                    let b = c.crop_box;
                    1.0 / ((b[2] - b[0]) * (b[3] - b[1])) as f32
                })
                .collect();
            let boxes: Vec<[f32; 4]> = data.iter().map(|c| c.bbox.map(|v| v as f32)).collect();
            let keep = batched_nms(&boxes, &scores, self.config.crop_nms_thresh);
            data = select(data, &keep);
        }
        if self.config.min_mask_region_area > 0 {
            data = postprocess_small_regions(
                data,
                self.config.min_mask_region_area,
                self.config.box_nms_thresh.max(self.config.crop_nms_thresh),
            )?;
        }
        Ok(data
            .into_iter()
            .map(|c| MaskRecord {
                area: c.mask.count(),
                segmentation: c.mask,
                bbox: xyxy_to_xywh(c.bbox),
                predicted_iou: c.iou,
                point_coords: c.point,
                stability_score: c.stability,
                crop_box: xyxy_to_xywh(c.crop_box),
            })
            .collect())
    }

    /// `_process_crop` + `_process_batch`: masks of one crop, in the image frame.
    async fn process_crop<P: ImagePredictor>(
        &self,
        predictor: &mut P,
        image: &image::RgbImage,
        crop_box: [usize; 4],
        layer: usize,
        batch_done: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<Vec<Candidate>> {
        let cfg = &self.config;
        let [x0, y0, x1, y1] = crop_box;
        let (orig_h, orig_w) = (image.height() as usize, image.width() as usize);
        let (cw, ch) = (x1 - x0, y1 - y0);
        if (x0, y0, cw, ch) == (0, 0, orig_w, orig_h) {
            predictor.set_image(image).await?;
        } else {
            let cropped =
                image::imageops::crop_imm(image, x0 as u32, y0 as u32, cw as u32, ch as u32)
                    .to_image();
            predictor.set_image(&cropped).await?;
        }
        if predictor.original_size() != (ch, cw) {
            return Err(Error::Model(format!(
                "the predictor reports an image of {:?} (h, w) after set_image of a {ch}×{cw} crop",
                predictor.original_size()
            )));
        }
        let (in_h, in_w) = predictor.input_size();
        let post = Postprocessor::new((in_h, in_w), (ch, cw))?;
        // ResizeLongestSide.apply_coords: x · (new_w / old_w), y · (new_h / old_h), in f64.
        let (sx, sy) = (in_w as f64 / cw as f64, in_h as f64 / ch as f64);
        let points: Vec<[f64; 2]> = self.point_grids[layer]
            .iter()
            .map(|p| [p[0] * cw as f64, p[1] * ch as f64])
            .collect();
        let plane = LOW_RES * LOW_RES;
        let mut data = Vec::new();
        for batch in points.chunks(cfg.points_per_batch) {
            let prompts: Vec<Prompt> = batch
                .iter()
                .map(|p| Prompt {
                    points: vec![(p[0] * sx, p[1] * sy)],
                    labels: vec![1],
                    ..Prompt::default()
                })
                .collect();
            let out = predictor.predict_low_res(&prompts, true).await?;
            if out.len() != prompts.len() {
                return Err(Error::Model(format!(
                    "{} predictions for {} prompts",
                    out.len(),
                    prompts.len()
                )));
            }
            // The masks whose predicted IoU passes, in the official order.
            let mut passed = Vec::new();
            for (point, res) in batch.iter().zip(&out) {
                if res.iou.len() != res.count || res.logits.len() != res.count * plane {
                    return Err(Error::Model(format!(
                        "a prediction of {} masks with {} IoUs and {} logits; expected \
                         {} logits per mask",
                        res.count,
                        res.iou.len(),
                        res.logits.len(),
                        plane
                    )));
                }
                for (j, &iou) in res.iou.iter().enumerate() {
                    // float32 tensor vs Python float: compared in float32 (NaN fails)
                    let iou_ok = iou > cfg.pred_iou_thresh as f32;
                    if cfg.pred_iou_thresh > 0.0 && !iou_ok {
                        continue;
                    }
                    passed.push((*point, iou, &res.logits[j * plane..(j + 1) * plane]));
                }
            }
            let kept = par_map(&passed, &post, |post, logits, &(point, iou, low_res)| {
                self.postprocess(
                    post,
                    logits,
                    low_res,
                    point,
                    iou,
                    crop_box,
                    (orig_w, orig_h),
                )
            });
            for c in kept {
                data.extend(c?);
            }
            batch_done(1)?;
        }
        // Remove duplicates within this crop (boxes still in the crop frame).
        let boxes: Vec<[f32; 4]> = data.iter().map(|c| c.bbox.map(|v| v as f32)).collect();
        let scores: Vec<f32> = data.iter().map(|c| c.iou).collect();
        let keep = profile::time("generator › box NMS", 0.0, || {
            batched_nms(&boxes, &scores, cfg.box_nms_thresh)
        });
        let mut data = select(data, &keep);
        for c in &mut data {
            c.bbox = uncrop_box(c.bbox, crop_box);
            c.point = uncrop_point(c.point, crop_box);
        }
        Ok(data)
    }
}

impl AutomaticMaskGenerator {
    /// One mask whose predicted IoU passed: its logits at the crop's size (`postprocess_masks`),
    /// the stability filter, the binary mask, its box and the crop-edge filter; `None` where a
    /// filter drops it. `logits` is scratch space.
    #[allow(clippy::too_many_arguments)]
    fn postprocess(
        &self,
        post: &mut Postprocessor,
        logits: &mut Vec<f32>,
        low_res: &[f32],
        point: [f64; 2],
        iou: f32,
        crop_box: [usize; 4],
        (orig_w, orig_h): (usize, usize),
    ) -> Result<Option<Candidate>> {
        let cfg = &self.config;
        let (ch, cw) = post.original_size();
        profile::time("generator › upsample", 0.0, || {
            post.apply_into(low_res, logits)
        })?;
        let stability = profile::time("generator › stability", 0.0, || {
            stability_score(logits, MASK_THRESHOLD as f64, cfg.stability_score_offset)
        });
        let stable_ok = stability >= cfg.stability_score_thresh as f32;
        if cfg.stability_score_thresh > 0.0 && !stable_ok {
            return Ok(None);
        }
        let (mask, bbox) = profile::time("generator › threshold + box", 0.0, || {
            let mask: Vec<bool> = logits.iter().map(|&v| v > MASK_THRESHOLD).collect();
            let bbox = mask_to_box(&mask, cw, ch);
            (mask, bbox)
        });
        if is_box_near_crop_edge(bbox, crop_box, [0, 0, orig_w, orig_h], CROP_EDGE_ATOL) {
            return Ok(None);
        }
        let [x0, y0, ..] = crop_box;
        let mask = profile::time("generator › pack + uncrop", 0.0, || {
            BitMask::uncrop(&mask, cw, x0, y0, orig_w, orig_h)
        });
        Ok(Some(Candidate {
            mask,
            bbox,
            iou,
            point,
            stability,
            crop_box,
        }))
    }
}

/// `f(state, scratch, item)` over `items`, in order; natively in parallel (each thread with
/// its own copy of `state` and scratch vector), sequentially on wasm32.
fn par_map<T: Sync, S: Clone + Send + Sync, U: Send>(
    items: &[T],
    state: &S,
    f: impl Fn(&mut S, &mut Vec<f32>, &T) -> U + Sync + Send,
) -> Vec<U> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items
            .par_iter()
            .map_init(|| (state.clone(), Vec::new()), |(s, v), item| f(s, v, item))
            .collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        let (mut s, mut v) = (state.clone(), Vec::new());
        items.iter().map(|item| f(&mut s, &mut v, item)).collect()
    }
}

/// `torchvision.ops.batched_nms` with every box in one category: plain NMS, whose output is
/// ordered by decreasing score; above [`VANILLA_NMS_NUMEL`] coordinates torchvision
/// re-sorts the kept indices by score with PyTorch's unstable sort ([`nms::torch_sort_desc`]).
fn batched_nms(boxes: &[[f32; 4]], scores: &[f32], iou_threshold: f64) -> Vec<usize> {
    let keep = nms::nms(boxes, scores, iou_threshold);
    if boxes.len() * 4 > VANILLA_NMS_NUMEL {
        let mut kept = keep;
        kept.sort_unstable();
        let kept_scores: Vec<f32> = kept.iter().map(|&i| scores[i]).collect();
        nms::torch_sort_desc(&kept_scores)
            .into_iter()
            .map(|i| kept[i])
            .collect()
    } else {
        keep
    }
}

fn select(data: Vec<Candidate>, keep: &[usize]) -> Vec<Candidate> {
    let mut slots: Vec<Option<Candidate>> = data.into_iter().map(Some).collect();
    keep.iter()
        .filter_map(|&i| slots.get_mut(i)?.take())
        .collect()
}

/// `postprocess_small_regions`: fill small holes, drop small islands, re-run NMS preferring
/// masks that did not change.
fn postprocess_small_regions(
    data: Vec<Candidate>,
    min_area: usize,
    nms_thresh: f64,
) -> Result<Vec<Candidate>> {
    if data.is_empty() {
        return Ok(data);
    }
    let mut new_masks = Vec::with_capacity(data.len());
    let mut scores = Vec::with_capacity(data.len());
    for c in &data {
        let (w, h) = (c.mask.width(), c.mask.height());
        let mask = c.mask.to_bools();
        let (mask, changed_holes) = remove_small_regions(&mask, w, h, min_area, Mode::Holes);
        let (mask, changed_islands) = remove_small_regions(&mask, w, h, min_area, Mode::Islands);
        let unchanged = !changed_holes && !changed_islands;
        let bbox = mask_to_box(&mask, w, h);
        new_masks.push((BitMask::from_bools(w, h, &mask)?, bbox));
        scores.push(if unchanged { 1.0f32 } else { 0.0 });
    }
    let boxes: Vec<[f32; 4]> = new_masks.iter().map(|(_, b)| b.map(|v| v as f32)).collect();
    let keep = batched_nms(&boxes, &scores, nms_thresh);
    let mut data = data;
    for &i in &keep {
        if scores[i] == 0.0 {
            let (mask, bbox) = &new_masks[i];
            data[i].mask = mask.clone();
            data[i].bbox = *bbox;
        }
    }
    Ok(select(data, &keep))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::sam::predictor::{LowResMasks, MaskPredictor};

    /// A predictor whose every mask is the whole image (logits +5) with IoU 0.99; it can be
    /// told to answer with too few predictions.
    struct Uniform {
        size: (usize, usize),
        short_answer: bool,
    }

    impl MaskPredictor for Uniform {
        fn original_size(&self) -> (usize, usize) {
            self.size
        }
        fn input_size(&self) -> (usize, usize) {
            let s = 1024.0 / self.size.0.max(self.size.1) as f64;
            (
                (self.size.0 as f64 * s + 0.5) as usize,
                (self.size.1 as f64 * s + 0.5) as usize,
            )
        }
        async fn predict_low_res(
            &mut self,
            prompts: &[Prompt],
            _multimask: bool,
        ) -> Result<Vec<LowResMasks>> {
            let n = prompts.len() - usize::from(self.short_answer);
            Ok(vec![
                LowResMasks {
                    count: 3,
                    logits: vec![5.0; 3 * LOW_RES * LOW_RES],
                    iou: vec![0.99; 3],
                };
                n
            ])
        }
    }

    impl ImagePredictor for Uniform {
        async fn set_image(&mut self, image: &image::RgbImage) -> Result<()> {
            self.size = (image.height() as usize, image.width() as usize);
            Ok(())
        }
    }

    fn config(points: usize) -> AmgConfig {
        AmgConfig {
            points_per_side: Some(points),
            ..AmgConfig::default()
        }
    }

    #[test]
    fn uniform_masks_collapse_to_one_whole_image_mask() {
        let generator = AutomaticMaskGenerator::new(config(4)).unwrap();
        let image = image::RgbImage::new(40, 30);
        let mut p = Uniform {
            size: (0, 0),
            short_answer: false,
        };
        let masks = pollster::block_on(generator.generate(&mut p, &image)).unwrap();
        assert_eq!(masks.len(), 1);
        let m = &masks[0];
        assert_eq!(m.area, 40 * 30);
        assert_eq!(m.bbox, [0, 0, 39, 29]);
        assert_eq!(m.crop_box, [0, 0, 40, 30]);
        // all scores tie: the first point of the grid (1/8 of each side) is kept
        assert_eq!(m.point_coords, [5.0, 3.75]);
        assert_eq!(m.stability_score, 1.0);
        assert_eq!(m.predicted_iou, 0.99);
    }

    #[test]
    fn a_predictor_answering_too_few_prompts_is_an_error() {
        let generator = AutomaticMaskGenerator::new(config(2)).unwrap();
        let image = image::RgbImage::new(8, 8);
        let mut p = Uniform {
            size: (0, 0),
            short_answer: true,
        };
        let err = pollster::block_on(generator.generate(&mut p, &image)).unwrap_err();
        assert!(
            err.to_string().contains("3 predictions for 4 prompts"),
            "{err}"
        );
    }

    #[test]
    fn progress_can_cancel() {
        let generator = AutomaticMaskGenerator::new(AmgConfig {
            points_per_batch: 4,
            ..config(4)
        })
        .unwrap();
        assert_eq!(generator.batch_count((30, 40)), 4);
        let image = image::RgbImage::new(40, 30);
        let mut p = Uniform {
            size: (0, 0),
            short_answer: false,
        };
        let mut seen = Vec::new();
        let result = pollster::block_on(generator.generate_with_progress(
            &mut p,
            &image,
            &mut |done, total| {
                seen.push((done, total));
                if done == 2 {
                    Err(Error::Cancelled)
                } else {
                    Ok(())
                }
            },
        ));
        assert!(matches!(result, Err(Error::Cancelled)));
        assert_eq!(seen, vec![(1, 4), (2, 4)]);
        let err = pollster::block_on(generator.generate(&mut p, &image::RgbImage::new(0, 5)));
        assert!(err.is_err());
    }

    #[test]
    fn bad_parameters_are_errors() {
        let both = AmgConfig {
            point_grids: Some(vec![vec![[0.5, 0.5]]]),
            ..AmgConfig::default()
        };
        let neither = AmgConfig {
            points_per_side: None,
            ..AmgConfig::default()
        };
        let too_few_layers = AmgConfig {
            crop_n_layers: 3,
            crop_n_points_downscale_factor: 4,
            ..config(8)
        };
        for bad in [
            both,
            neither,
            config(0),
            too_few_layers,
            AmgConfig {
                points_per_batch: 0,
                ..config(4)
            },
            AmgConfig {
                crop_overlap_ratio: 1.5,
                ..config(4)
            },
        ] {
            assert!(AutomaticMaskGenerator::new(bad.clone()).is_err(), "{bad:?}");
        }
        let grids = AmgConfig {
            points_per_side: None,
            point_grids: Some(vec![vec![[0.5, 0.5]]]),
            ..AmgConfig::default()
        };
        assert!(AutomaticMaskGenerator::new(grids).is_ok());
    }
}
