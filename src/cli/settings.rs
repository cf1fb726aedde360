//! The flags of the refine settings that several commands share, with the library's defaults
//! (`camsam::refine::Settings::default()`: the one place they are written).

use camsam::core::cam::Keys;
use camsam::core::sepl::{Combine, Preset};
use camsam::refine::Settings;

fn defaults() -> Settings {
    Settings::default()
}

pub const PRESET_HELP: &str = "\
The merge rule. For a mask M and the pseudo-label region P_k of class k:
O_s = |M∩P_k| / |M| and O_p = |M∩P_k| / |P_k|.

official-imp2 (default), official-imp, official: pixel-identical to the published SEPL code's
  max_iou_imp2, max_iou_imp, max_iou. For each class k = 1..K-1 present in the pseudo-label,
  in ascending order: visit every mask not taken by an earlier class in ascending number
  (their union is the \"running union\" V_k); take M when O_s > t1 (or, for official-imp2,
  also when O_p >= t2); taken masks are unavailable to later classes. Write k on the taken
  masks, and for -imp/-imp2 also on P_k outside V_k (\"trust CAM\"); later classes overwrite
  earlier ones; everything else is 0 (255 in the pseudo-label belongs to no class).
paper: the rule as the paper's text states it. Each mask goes to the class it overlaps most
  (ties to the smaller id; masks overlapping no class are dropped); a class keeps its masks
  with O_s > t1 and O_p > t2 (--combine or: either). A class keeping no mask keeps its
  pseudo-label. Fallback pseudo-labels are written first, then kept masks by decreasing
  area, so where masks of different classes collide the smaller mask wins.";

/// The SEPL merge's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct SeplArgs {
    /// Merge rule: official-imp2, official-imp, official or paper.
    #[arg(long, default_value_t = defaults().sepl.preset, long_help = PRESET_HELP)]
    pub preset: Preset,
    /// Threshold on O_s = |M∩P_k|/|M| (a mask is taken when O_s > t1).
    #[arg(long, default_value_t = defaults().sepl.t1)]
    pub t1: f64,
    /// Threshold on O_p = |M∩P_k|/|P_k| (official-imp2: O_p >= t2; paper: O_p > t2).
    #[arg(long, default_value_t = defaults().sepl.t2)]
    pub t2: f64,
    /// How the paper preset combines its two tests: and, or.
    #[arg(long, default_value_t = defaults().sepl.combine)]
    pub combine: Combine,
}

impl SeplArgs {
    pub fn apply(&self, s: &mut Settings) {
        s.sepl.preset = self.preset;
        s.sepl.t1 = self.t1;
        s.sepl.t2 = self.t2;
        s.sepl.combine = self.combine;
    }
}

/// The CAM → pseudo-label flags.
#[derive(clap::Args, Debug, Clone)]
pub struct CamArgs {
    /// Background score against the max-normalised CAMs (0 to 1).
    #[arg(long, default_value_t = defaults().cam.bg_threshold)]
    pub bg_threshold: f32,
    /// Pixels whose two best CAM scores differ by less than this become 255 (ignore); 0 = off.
    #[arg(long, default_value_t = defaults().cam.ignore_margin)]
    pub ignore_margin: f32,
    /// How CAM keys (.npz and np.save'd dicts) number classes: foreground (0-based
    /// foreground, IRN/AMN/ReCAM/PSA: key k is class k+1) or class-ids (0 = background).
    #[arg(long, default_value_t = defaults().keys)]
    pub keys: Keys,
}

impl CamArgs {
    pub fn apply(&self, s: &mut Settings) {
        s.cam.bg_threshold = self.bg_threshold;
        s.cam.ignore_margin = self.ignore_margin;
        s.keys = self.keys;
    }
}

/// `--num-classes`'s default.
pub fn default_num_classes() -> usize {
    defaults().num_classes
}
