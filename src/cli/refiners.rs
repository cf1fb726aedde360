//! The refiners beside SEPL for `camsam refine --mode`: S2C's CAM-prompted SAM (`cpm`),
//! PAMR (`pamr`, no model), the dense CRF (`crf`) and CPM labels as SEPL's input
//! (`cpm+sepl`): their flags, with the library's defaults, onto `camsam::refine::Settings`.

use camsam::refine::cpm::{CpmSettings, MaskChoice, PromptMode};
use camsam::refine::pamr::PamrSettings;
use camsam::refine::peaks::PeakSettings;
use camsam::refine::Settings;

fn defaults() -> Settings {
    Settings::default()
}

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
    #[arg(long, default_value_t = defaults().cpm.peaks.threshold)]
    pub peak_threshold: f32,
    /// cpm: minimum distance between kept peaks, in pixels.
    #[arg(long, default_value_t = defaults().cpm.peaks.min_distance)]
    pub peak_distance: f64,
    /// cpm: one multi-point prompt per class (S2C) or one prompt per peak.
    #[arg(long, value_enum, default_value = "multi-point")]
    pub prompt: PromptArg,
    /// cpm: SAM mask used, 0, 1, 2 (S2C's choice) or best-iou.
    #[arg(long, default_value = "2")]
    pub mask: MaskArg,
    /// cpm: pixels whose two best class scores (logit × mean CAM) differ by less than this
    /// become 255 (0: off).
    #[arg(long, default_value_t = defaults().cpm.ignore_margin.unwrap_or(0.0))]
    pub cpm_margin: f32,
    /// pamr: propagation iterations.
    #[arg(long, default_value_t = defaults().pamr.iterations)]
    pub pamr_iterations: usize,
    /// pamr: neighbourhood dilations, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = defaults().pamr.dilations)]
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
    /// Sets the CPM, PAMR and CRF settings from the flags; [`Settings::validate`] checks them.
    pub fn apply(&self, s: &mut Settings) {
        s.cpm = CpmSettings {
            peaks: PeakSettings {
                threshold: self.peak_threshold,
                min_distance: self.peak_distance,
            },
            prompt_mode: match self.prompt {
                PromptArg::MultiPoint => PromptMode::MultiPoint,
                PromptArg::PerPeak => PromptMode::PerPeak,
            },
            mask_choice: self.mask.0,
            ignore_margin: (self.cpm_margin != 0.0).then_some(self.cpm_margin),
        };
        s.pamr = PamrSettings {
            iterations: self.pamr_iterations,
            dilations: self.pamr_dilations.clone(),
        };
        let c = &mut s.crf;
        let set = |v: &mut f32, flag: Option<f32>| *v = flag.unwrap_or(*v);
        set(&mut c.bg_power, self.crf_bg_power);
        c.iterations = self.crf_iterations.unwrap_or(c.iterations);
        set(&mut c.gaussian_sxy, self.crf_gaussian_sxy);
        set(&mut c.gaussian_compat, self.crf_gaussian_compat);
        set(&mut c.bilateral_sxy, self.crf_bilateral_sxy);
        set(&mut c.bilateral_srgb, self.crf_bilateral_srgb);
        set(&mut c.bilateral_compat, self.crf_bilateral_compat);
    }
}
