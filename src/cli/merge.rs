//! `camsam merge`: SEPL-merge SAM mask sets into CAM pseudo-labels over a dataset
//! (`PSEUDO/<name>.png` + `MASKS/<name>/<i>.png` → `OUT/<name>.png`), with the batch runner's
//! `--list`, `--shard`, skip-existing and atomic writes, optional overlays and a JSON report.

use super::batch::{self, BatchArgs, Output, RunOptions};
use super::images::ImageFolder;
use camsam::core::label::{LabelFormat, LabelMap};
use camsam::core::masks::{MaskSet, MaskZip};
use camsam::core::overlay::{overlay_rgb, RgbImage};
use camsam::core::sepl::{self, MergeParams};
use camsam::refine::{ImageEntry, Method, Report, Settings};
use camsam::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

    #[command(flatten)]
    pub sepl: super::settings::SeplArgs,

    /// Output PNG format: palette (VOC colours) or gray.
    #[arg(long, default_value = "palette")]
    pub format: LabelFormat,

    /// Number of classes including background (class ids 1..N-1 are merged).
    #[arg(long, default_value_t = super::settings::default_num_classes())]
    pub num_classes: usize,

    /// Also write colour overlays to OUT/overlay/<name>.png.
    #[arg(long)]
    pub overlay: bool,

    /// Images to draw overlays on (default: a gray background): <name>.jpg / .jpeg / .png,
    /// or medical files (DICOM, NIfTI, TIFF) whose slices are named as `camsam convert` names
    /// them.
    #[arg(long, value_name = "DIR", requires = "overlay")]
    pub images: Option<PathBuf>,

    #[command(flatten)]
    pub medical: super::images::MedicalArgs,

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
    pub images: Option<ImageFolder>,
}

/// What the merge did to one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// Width × height of the label (the report entry's own fields).
    #[serde(skip)]
    pub size: (usize, usize),
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
            let found = match &self.images {
                Some(folder) => Some(folder.get(name)?),
                None => None,
            };
            let image = found.as_ref().map(|f| RgbImage {
                width: f.rgb.width() as usize,
                height: f.rgb.height() as usize,
                data: f.rgb.as_raw().clone(),
            });
            let rgb = RgbImage {
                width: merged.label.width,
                height: merged.label.height,
                data: overlay_rgb(&merged.label, image.as_ref()).map_err(|e| match e {
                    Error::Input { message, .. } => Error::input(
                        found
                            .as_ref()
                            .map(|f| f.source.as_str())
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
                size: (pseudo.width, pseudo.height),
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

/// `Job` from the arguments.
pub fn job_from(args: &Args) -> Result<Job> {
    Ok(Job {
        pseudo: args.pseudo.clone(),
        masks: MaskSource::open(&args.masks)?,
        out: args.out.clone(),
        params: settings(args).merge_params(),
        format: args.format,
        overlay: args.overlay,
        images: match &args.images {
            Some(dir) => Some(ImageFolder::open(dir, args.medical.options())?),
            None => None,
        },
    })
}

/// The settings of the merge (method `sepl` on pseudo-label files and mask files).
fn settings(args: &Args) -> Settings {
    let mut s = Settings {
        method: Method::Sepl,
        num_classes: args.num_classes,
        ..Settings::default()
    };
    args.sepl.apply(&mut s);
    s
}

pub fn run(args: Args) -> Result<()> {
    // Checked here once rather than failing every image.
    let settings = settings(&args);
    settings.validate()?;
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

    let mut report = Report::new("merge", &settings, false, false, false);
    let path = |p: &Path| Value::from(p.display().to_string());
    report.inputs = serde_json::Map::from_iter([
        ("pseudo".to_string(), path(&args.pseudo)),
        ("masks".to_string(), path(&args.masks)),
        ("out".to_string(), path(&args.out)),
        (
            "images".to_string(),
            args.images.as_deref().map(path).into(),
        ),
        ("format".to_string(), args.format.name().into()),
        ("overlay".to_string(), args.overlay.into()),
    ]);
    batch::describe(&mut report, &args.batch, &names, &outcome);
    for (name, r, t) in &outcome.done {
        report.images.push(ImageEntry {
            name: name.clone(),
            width: Some(r.size.0),
            height: Some(r.size.1),
            method: Some(Method::Sepl),
            sam_masks: Some(r.masks),
            seconds: Some(t.as_secs_f64()),
            detail: match serde_json::to_value(r) {
                Ok(Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            },
            ..ImageEntry::default()
        });
    }
    let report_name = match args.batch.shard {
        Some(s) => format!("report-shard-{}-of-{}.json", s.index, s.count),
        None => "report.json".to_string(),
    };
    batch::write_atomic(&args.out.join(report_name), &report.to_json()?)?;
    outcome.into_result()
}
