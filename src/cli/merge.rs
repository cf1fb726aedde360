//! `camsam merge`: SEPL-merge SAM mask sets into CAM pseudo-labels over a dataset
//! (`PSEUDO/<name>.png` + `MASKS/<name>/<i>.png` → `OUT/<name>.png`), with the batch runner's
//! `--list`, `--shard`, skip-existing and atomic writes, optional overlays and a JSON report.

use super::batch::{self, BatchArgs, Output, RunOptions};
use camsam::label::{LabelFormat, LabelMap};
use camsam::masks::{MaskSet, MaskZip};
use camsam::overlay::{overlay_rgb, RgbImage};
use camsam::sepl::{self, Combine, MergeParams, Preset};
use camsam::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

const PRESET_HELP: &str = "\
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

/// Merge SAM masks into CAM pseudo-labels with SEPL (arXiv 2305.05803).
///
/// Reads PSEUDO/<name>.png (8-bit gray or palette class ids) and MASKS/<name>/<i>.png (SAM
/// amg.py masks, 0/255, visited in ascending numeric order; MASKS may also be a .zip of
/// <name>/<i>.png entries) and writes OUT/<name>.png, optional overlays in OUT/overlay/, and
/// OUT/report.json (OUT/report-shard-I-of-N.json with --shard).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Folder of pseudo-labels <name>.png (class ids; 0 = background).
    #[arg(long, value_name = "DIR")]
    pub pseudo: PathBuf,

    /// Folder of SAM mask folders <name>/<i>.png, or a .zip of them.
    #[arg(long, value_name = "DIR")]
    pub masks: PathBuf,

    /// Output folder (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Merge rule: official-imp2, official-imp, official or paper.
    #[arg(long, default_value = "official-imp2", long_help = PRESET_HELP)]
    pub preset: Preset,

    /// Threshold on O_s = |M∩P_k|/|M| (a mask is taken when O_s > t1).
    #[arg(long, default_value_t = 0.5)]
    pub t1: f64,

    /// Threshold on O_p = |M∩P_k|/|P_k| (official-imp2: O_p >= t2; paper: O_p > t2).
    #[arg(long, default_value_t = 0.85)]
    pub t2: f64,

    /// How the paper preset combines its two tests: and, or.
    #[arg(long, default_value = "and")]
    pub combine: Combine,

    /// Output PNG format: palette (VOC colours) or gray.
    #[arg(long, default_value = "palette")]
    pub format: LabelFormat,

    /// Number of classes including background (class ids 1..N-1 are merged).
    #[arg(long, default_value_t = 21)]
    pub num_classes: usize,

    /// Also write colour overlays to OUT/overlay/<name>.png.
    #[arg(long)]
    pub overlay: bool,

    /// Images <name>.png to draw overlays on (default: a gray background).
    #[arg(long, value_name = "DIR", requires = "overlay")]
    pub images: Option<PathBuf>,

    #[command(flatten)]
    pub batch: BatchArgs,
}

/// Where mask sets come from.
pub enum MaskSource {
    Dir(PathBuf),
    Zip(Box<MaskZip>),
}

impl MaskSource {
    pub fn open(path: &Path) -> Result<Self> {
        let is_zip = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        if is_zip && path.is_file() {
            Ok(MaskSource::Zip(Box::new(MaskZip::read(path)?)))
        } else if path.is_dir() {
            Ok(MaskSource::Dir(path.to_path_buf()))
        } else {
            Err(Error::input(
                path.display().to_string(),
                "not found; expected a folder of <name>/<i>.png mask folders or a .zip of them",
            ))
        }
    }

    pub fn mask_set(&self, name: &str, size: (usize, usize)) -> Result<MaskSet> {
        match self {
            MaskSource::Dir(dir) => MaskSet::read_dir(&dir.join(name), Some(size)),
            MaskSource::Zip(zip) => zip.mask_set(name, Some(size)),
        }
    }
}

/// Everything one merge job needs.
pub struct Job {
    pub pseudo: PathBuf,
    pub masks: MaskSource,
    pub out: PathBuf,
    pub params: MergeParams,
    pub format: LabelFormat,
    pub overlay: bool,
    pub images: Option<PathBuf>,
}

/// What the merge did to one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub name: String,
    pub masks: usize,
    pub classes: Vec<ClassReport>,
    pub warnings: Vec<String>,
    pub ms: StageTimes,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    pub class: u8,
    pub pseudo_pixels: usize,
    pub masks_taken: usize,
    /// The numbers of the mask files taken (`7` for `7.png`).
    pub taken: Vec<u64>,
    pub kept_pseudo_pixels: usize,
}

/// Milliseconds spent per stage of one image.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimes {
    pub decode: f64,
    pub merge: f64,
    pub encode: f64,
}

impl Job {
    pub fn output_path(&self, name: &str) -> PathBuf {
        self.out.join(format!("{name}.png"))
    }

    /// Merge one image; returns the files to write and its report.
    pub fn run(&self, name: &str) -> Result<(Vec<Output>, ImageReport)> {
        let t0 = Instant::now();
        let pseudo = LabelMap::read_png(&self.pseudo.join(format!("{name}.png")))?;
        let set = self.masks.mask_set(name, (pseudo.width, pseudo.height))?;
        let t1 = Instant::now();
        let refs = set.bit_masks();
        let merged = sepl::merge(&pseudo, &refs, &self.params)?;
        let t2 = Instant::now();
        let mut outputs = vec![Output::new(
            self.output_path(name),
            merged.label.encode_png(self.format)?,
        )];
        if self.overlay {
            let image = match &self.images {
                Some(dir) => Some(read_image(dir, name)?),
                None => None,
            };
            let rgb = RgbImage {
                width: merged.label.width,
                height: merged.label.height,
                data: overlay_rgb(&merged.label, image.as_ref()).map_err(|e| match e {
                    Error::Input { message, .. } => Error::input(
                        self.images
                            .as_ref()
                            .map(|d| d.join(format!("{name}.png")).display().to_string())
                            .unwrap_or_default(),
                        message,
                    ),
                    other => other,
                })?,
            };
            outputs.push(Output::new(
                self.out.join("overlay").join(format!("{name}.png")),
                rgb.encode_png()?,
            ));
        }
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        let classes = merged
            .classes
            .iter()
            .map(|c| ClassReport {
                class: c.class,
                pseudo_pixels: c.pseudo_pixels,
                masks_taken: c.taken.len(),
                taken: c.taken.iter().map(|&j| set.masks[j].index).collect(),
                kept_pseudo_pixels: c.kept_pseudo_pixels,
            })
            .collect();
        Ok((
            outputs,
            ImageReport {
                name: name.to_string(),
                masks: set.masks.len(),
                classes,
                warnings: set.warnings,
                ms: StageTimes {
                    decode: ms(t0, t1),
                    merge: ms(t1, t2),
                    // Encoding; the batch runner's write follows and is in the total.
                    encode: ms(t2, t3),
                },
            },
        ))
    }
}

/// `DIR/<name>.jpg|.jpeg|.png` (as `camsam refine` finds images), decoded to RGB.
fn read_image(dir: &Path, name: &str) -> Result<RgbImage> {
    let path = super::refine::find_image(dir, name)?;
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    RgbImage::decode(&bytes, &path.display().to_string())
}

#[derive(Serialize)]
struct Report<'a> {
    command: &'static str,
    settings: Settings,
    images: Vec<&'a ImageReport>,
    skipped: &'a [String],
    failed: Vec<Failure>,
    timing: Timing,
}

#[derive(Serialize)]
struct Settings {
    pseudo: String,
    masks: String,
    out: String,
    preset: String,
    t1: f64,
    t2: f64,
    combine: String,
    num_classes: usize,
    format: &'static str,
    overlay: bool,
    images: Option<String>,
    list: Option<String>,
    shard: Option<String>,
    overwrite: bool,
    names: usize,
}

#[derive(Serialize)]
struct Failure {
    name: String,
    error: String,
}

#[derive(Serialize)]
struct Timing {
    seconds: f64,
    threads: usize,
    images_done: usize,
    ms_per_image: Option<f64>,
    stage_ms_total: StageTimes,
}

/// `Job` from the arguments.
pub fn job_from(args: &Args) -> Result<Job> {
    Ok(Job {
        pseudo: args.pseudo.clone(),
        masks: MaskSource::open(&args.masks)?,
        out: args.out.clone(),
        params: MergeParams {
            preset: args.preset,
            t1: args.t1,
            t2: args.t2,
            combine: args.combine,
            num_classes: args.num_classes,
        },
        format: args.format,
        overlay: args.overlay,
        images: args.images.clone(),
    })
}

pub fn run(args: Args) -> Result<()> {
    // Checked here once rather than failing every image.
    sepl::merge(
        &LabelMap::filled(1, 1, 0),
        &[],
        &MergeParams {
            preset: args.preset,
            t1: args.t1,
            t2: args.t2,
            combine: args.combine,
            num_classes: args.num_classes,
        },
    )
    .map_err(|e| Error::input("merge", format!("bad settings: {e}")))?;
    if !args.pseudo.is_dir() {
        return Err(Error::input(
            args.pseudo.display().to_string(),
            "not a folder; expected --pseudo DIR of <name>.png pseudo-labels",
        ));
    }
    let job = job_from(&args)?;
    let all = batch::names_with_extension(&args.pseudo, "png")?;
    let names = batch::select(all, &args.batch)?;
    let outcome = batch::run(
        &names,
        &RunOptions::new("merge", args.batch.overwrite),
        |name| job.output_path(name),
        |name| job.run(name),
    );
    outcome.print_summary();
    let mut warnings: Vec<&String> = outcome
        .done
        .iter()
        .flat_map(|(_, r, _)| &r.warnings)
        .collect();
    let extra = warnings.len().saturating_sub(20);
    warnings.truncate(20);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if extra > 0 {
        eprintln!("warning: … and {extra} more (see the report)");
    }

    let images: Vec<&ImageReport> = outcome.done.iter().map(|(_, r, _)| r).collect();
    let mut stage = StageTimes::default();
    for r in &images {
        stage.decode += r.ms.decode;
        stage.merge += r.ms.merge;
        stage.encode += r.ms.encode;
    }
    let report = Report {
        command: "merge",
        settings: Settings {
            pseudo: args.pseudo.display().to_string(),
            masks: args.masks.display().to_string(),
            out: args.out.display().to_string(),
            preset: args.preset.to_string(),
            t1: args.t1,
            t2: args.t2,
            combine: args.combine.to_string(),
            num_classes: args.num_classes,
            format: match args.format {
                LabelFormat::Palette => "palette",
                LabelFormat::Gray => "gray",
            },
            overlay: args.overlay,
            images: args.images.as_ref().map(|p| p.display().to_string()),
            list: args.batch.list.as_ref().map(|p| p.display().to_string()),
            shard: args.batch.shard.map(|s| s.to_string()),
            overwrite: args.batch.overwrite,
            names: names.len(),
        },
        images,
        skipped: &outcome.skipped,
        failed: outcome
            .failed
            .iter()
            .map(|(n, e)| Failure {
                name: n.clone(),
                error: e.to_string(),
            })
            .collect(),
        timing: Timing {
            seconds: outcome.elapsed.as_secs_f64(),
            threads: outcome.threads,
            images_done: outcome.done.len(),
            ms_per_image: (!outcome.done.is_empty())
                .then(|| outcome.elapsed.as_secs_f64() * 1e3 / outcome.done.len() as f64),
            stage_ms_total: stage,
        },
    };
    let report_name = match args.batch.shard {
        Some(s) => format!("report-shard-{}-of-{}.json", s.index, s.count),
        None => "report.json".to_string(),
    };
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| Error::input("report", format!("could not serialise: {e}")))?;
    batch::write_atomic(&args.out.join(report_name), &json)?;
    outcome.into_result()
}
