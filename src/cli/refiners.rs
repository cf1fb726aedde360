//! The refiners beside SEPL for `camsam refine --mode`: S2C's CAM-prompted SAM (`cpm`),
//! PAMR (`pamr`, no model) and CPM labels as SEPL's input (`cpm+sepl`). Their flags, the
//! settings they resolve to (named in the JSON report) and one call per image each.

use camsam::cam::Cam;
use camsam::cpm::{cpm_cam, CpmSettings, MaskChoice, PromptMode};
use camsam::crf::CrfSettings;
use camsam::label::LabelMap;
use camsam::pamr::{PamrSettings, DEFAULT_DILATIONS};
use camsam::peaks::PeakSettings;
use camsam::predictor::ImagePredictor;
use camsam::{Error, Result};
use image::RgbImage;

/// How CPM gives a class's peaks to SAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PromptArg {
    /// All peaks of a class in one prompt (S2C).
    MultiPoint,
    /// One prompt per peak; a pixel takes the class's best score.
    PerPeak,
}

/// Which of SAM's three masks CPM uses: `0`, `1`, `2` (S2C) or `best-iou`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskArg(pub MaskChoice);

impl std::str::FromStr for MaskArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "0" | "1" | "2" => Ok(MaskArg(MaskChoice::Index(s.parse().unwrap_or(2)))),
            "best-iou" => Ok(MaskArg(MaskChoice::BestIou)),
            other => Err(format!(
                "unknown mask choice '{other}': expected 0, 1, 2 or best-iou"
            )),
        }
    }
}

/// Flags of the `cpm`, `cpm+sepl`, `pamr` and `crf` modes.
#[derive(clap::Args, Debug, Clone)]
pub struct RefinerArgs {
    /// cpm: a local maximum of the normalised CAM is a peak when its value is above this (τ).
    #[arg(long, default_value_t = 0.5)]
    pub peak_threshold: f32,
    /// cpm: minimum distance between kept peaks, in pixels.
    #[arg(long, default_value_t = 20.0)]
    pub peak_distance: f64,
    /// cpm: one multi-point prompt per class (S2C) or one prompt per peak.
    #[arg(long, value_enum, default_value = "multi-point")]
    pub prompt: PromptArg,
    /// cpm: SAM mask used, 0, 1, 2 (S2C's choice) or best-iou.
    #[arg(long, default_value = "2")]
    pub mask: MaskArg,
    /// cpm: pixels whose two best class scores (logit × mean CAM) differ by less than this
    /// become 255 (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub cpm_margin: f32,
    /// pamr: propagation iterations.
    #[arg(long, default_value_t = 10)]
    pub pamr_iterations: usize,
    /// pamr: neighbourhood dilations, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_DILATIONS.to_vec())]
    pub pamr_dilations: Vec<usize>,
    /// crf: background = (1 − max CAM)^α [default: 4; PSA also used 32].
    #[arg(long, value_name = "ALPHA")]
    pub crf_bg_power: Option<f32>,
    /// crf: mean-field iterations [default: 10].
    #[arg(long)]
    pub crf_iterations: Option<usize>,
    /// crf: Gaussian (smoothness) kernel width in pixels [default: 3].
    #[arg(long)]
    pub crf_gaussian_sxy: Option<f32>,
    /// crf: Gaussian kernel weight [default: 3].
    #[arg(long)]
    pub crf_gaussian_compat: Option<f32>,
    /// crf: bilateral (appearance) kernel width in pixels [default: 80].
    #[arg(long)]
    pub crf_bilateral_sxy: Option<f32>,
    /// crf: bilateral kernel colour width [default: 13].
    #[arg(long)]
    pub crf_bilateral_srgb: Option<f32>,
    /// crf: bilateral kernel weight [default: 10].
    #[arg(long)]
    pub crf_bilateral_compat: Option<f32>,
}

impl RefinerArgs {
    /// CPM's settings, checked.
    pub fn cpm_settings(&self) -> Result<CpmSettings> {
        if !self.peak_threshold.is_finite() {
            return Err(Error::input(
                "--peak-threshold",
                format!("{}; expected a finite number", self.peak_threshold),
            ));
        }
        if !(self.peak_distance.is_finite() && self.peak_distance >= 0.0) {
            return Err(Error::input(
                "--peak-distance",
                format!("{}; expected a distance ≥ 0 in pixels", self.peak_distance),
            ));
        }
        if !(self.cpm_margin.is_finite() && self.cpm_margin >= 0.0) {
            return Err(Error::input(
                "--cpm-margin",
                format!("{}; expected a score difference ≥ 0", self.cpm_margin),
            ));
        }
        Ok(CpmSettings {
            peaks: PeakSettings {
                threshold: self.peak_threshold,
                min_distance: self.peak_distance,
            },
            prompt_mode: match self.prompt {
                PromptArg::MultiPoint => PromptMode::MultiPoint,
                PromptArg::PerPeak => PromptMode::PerPeak,
            },
            mask_choice: self.mask.0,
            ignore_margin: (self.cpm_margin > 0.0).then_some(self.cpm_margin),
        })
    }

    /// The dense CRF's settings: `CrfSettings::default()` with the flags given, checked.
    pub fn crf_settings(&self) -> Result<CrfSettings> {
        let d = CrfSettings::default();
        let s = CrfSettings {
            bg_power: self.crf_bg_power.unwrap_or(d.bg_power),
            iterations: self.crf_iterations.unwrap_or(d.iterations),
            gaussian_sxy: self.crf_gaussian_sxy.unwrap_or(d.gaussian_sxy),
            gaussian_compat: self.crf_gaussian_compat.unwrap_or(d.gaussian_compat),
            bilateral_sxy: self.crf_bilateral_sxy.unwrap_or(d.bilateral_sxy),
            bilateral_srgb: self.crf_bilateral_srgb.unwrap_or(d.bilateral_srgb),
            bilateral_compat: self.crf_bilateral_compat.unwrap_or(d.bilateral_compat),
        };
        s.validate()?;
        Ok(s)
    }

    /// PAMR's settings, checked.
    pub fn pamr_settings(&self) -> Result<PamrSettings> {
        if self.pamr_dilations.is_empty() || self.pamr_dilations.contains(&0) {
            return Err(Error::input(
                "--pamr-dilations",
                format!(
                    "{:?}; expected positive integers such as 1,2,4,8,12,24",
                    self.pamr_dilations
                ),
            ));
        }
        Ok(PamrSettings {
            iterations: self.pamr_iterations,
            dilations: self.pamr_dilations.clone(),
        })
    }
}

/// CPM on one image: the encoder (unless `image_is_set`), then prompts, masks and scores.
pub fn cpm_label<P: ImagePredictor>(
    predictor: &mut P,
    image: &RgbImage,
    image_is_set: bool,
    cam: &Cam,
    present: Option<&[u8]>,
    settings: &CpmSettings,
    cam_name: &str,
) -> Result<LabelMap> {
    if !image_is_set {
        pollster::block_on(predictor.set_image(image))?;
    }
    Ok(pollster::block_on(cpm_cam(predictor, cam, present, settings, cam_name))?.label)
}
