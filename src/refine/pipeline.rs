//! One image through a method: the model's share ([`run_sam`]) and the rest ([`derive`]).

use super::settings::{Method, Settings};
use crate::core::cam::Cam;
use crate::core::label::LabelMap;
use crate::core::masks::BitMask;
use crate::core::sepl;
use crate::refine::amg::{AutomaticMaskGenerator, MaskRecord};
use crate::refine::cpm::cpm_cam;
use crate::refine::crf::crf_label;
use crate::refine::pamr::pamr_label;
use crate::refine::saliency::{saliency_label, Saliency};
use crate::sam::predictor::ImagePredictor;
use crate::{Error, Result};
use image::RgbImage;

/// What one image brings. `name` is used in errors (the CAM file, or the image's name).
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub name: &'a str,
    /// The image (PAMR, CRF, saliency and every SAM method need it).
    pub image: Option<&'a RgbImage>,
    /// The CAM; when given, the pseudo-label is derived from it with the settings.
    pub cam: Option<&'a Cam>,
    /// A pseudo-label file, used when there is no CAM.
    pub pseudo: Option<&'a LabelMap>,
    /// EPS++'s saliency map: the CAM → pseudo-label step becomes EPS++'s.
    pub saliency: Option<&'a Saliency>,
    /// The image-level labels: only these classes' CAM channels compete.
    pub present: Option<&'a [u8]>,
}

impl<'a> Inputs<'a> {
    /// No inputs yet, named `name`.
    pub fn new(name: &'a str) -> Self {
        Inputs {
            name,
            image: None,
            cam: None,
            pseudo: None,
            saliency: None,
            present: None,
        }
    }

    fn image(&self, method: Method) -> Result<&'a RgbImage> {
        self.image.ok_or_else(|| {
            Error::input(
                self.name,
                format!("no image; method {method} needs the image"),
            )
        })
    }

    fn cam(&self, method: Method) -> Result<&'a Cam> {
        self.cam.ok_or_else(|| {
            Error::input(
                self.name,
                format!(
                    "no CAM; method {method} refines a CAM (a pseudo-label file is not enough)"
                ),
            )
        })
    }
}

/// The model's share of a method for one image.
#[derive(Debug, Default)]
pub struct SamOutput {
    /// Segment-everything's masks in the generator's order (empty where it did not run).
    pub records: Vec<MaskRecord>,
    /// CPM's label (methods `cpm` and `cpm+sepl`).
    pub cpm: Option<LabelMap>,
}

/// Runs what `settings.method` needs of MobileSAM on one image: segment-everything when the
/// method merges masks and `everything` is set (no mask files were given), CPM's label when it
/// uses CPM. `image_is_set`: the predictor already holds this image's embedding (the encoder
/// is then skipped for the whole image). `progress(done, total)` is called after each batch of
/// segment-everything prompts; an error from it (e.g. [`Error::Cancelled`]) stops the run.
pub async fn run_sam<P: ImagePredictor>(
    inputs: &Inputs<'_>,
    settings: &Settings,
    predictor: &mut P,
    everything: bool,
    image_is_set: bool,
    progress: &mut dyn FnMut(usize, usize) -> Result<()>,
) -> Result<SamOutput> {
    let method = settings.method;
    let mut out = SamOutput::default();
    if !method.uses_sam() {
        return Ok(out);
    }
    let image = inputs.image(method)?;
    let mut image_is_set = image_is_set;
    if method.uses_masks() && everything {
        let generator = AutomaticMaskGenerator::new(settings.generator.clone())?;
        out.records = generator
            .generate_with_progress(predictor, image, progress)
            .await?;
        // the generator's last image is the whole image unless it used crops
        image_is_set = settings.generator.crop_n_layers == 0;
    }
    if method.uses_cpm() {
        let cam = inputs.cam(method)?;
        if !image_is_set {
            predictor.set_image(image).await?;
        }
        let cpm = cpm_cam(predictor, cam, inputs.present, &settings.cpm, inputs.name).await?;
        out.cpm = Some(cpm.label);
    }
    Ok(out)
}

/// The labels of one image.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The pseudo-label: CAM → label with the settings (or EPS++'s with a saliency map), or
    /// the pseudo-label file. Metrics "before" compare this.
    pub pseudo: LabelMap,
    /// The refined label, before the user's edits.
    pub label: LabelMap,
    /// NaN/Inf CAM values the CAM → label step counted as 0.
    pub non_finite: usize,
}

/// The labels of one image from its inputs, the model's output and the settings: the CAM →
/// pseudo-label step, then the method (SEPL merges `masks`, in visiting order, into the
/// pseudo-label — `cpm+sepl` into CPM's label `cpm`; `cpm` is `cpm`; `pamr`, `crf` and
/// `saliency` run here). Cheap next to the model, so a front end calls it again whenever
/// the settings change.
pub fn derive(
    inputs: &Inputs<'_>,
    settings: &Settings,
    masks: &[&BitMask],
    cpm: Option<&LabelMap>,
) -> Result<Derived> {
    settings.validate()?;
    let method = settings.method;
    let mut non_finite = 0;
    let pseudo = match (inputs.cam, inputs.saliency, inputs.pseudo) {
        (Some(cam), Some(map), _) => saliency_label(
            inputs.image(method)?,
            cam,
            inputs.present,
            map,
            &settings.pamr,
            inputs.name,
        )?,
        (Some(cam), None, _) => {
            let out = cam.to_label(inputs.present, &settings.cam, inputs.name)?;
            non_finite = out.non_finite;
            out.label
        }
        (None, _, Some(label)) => label.clone(),
        (None, _, None) => {
            return Err(Error::input(
                inputs.name,
                "no CAM and no pseudo-label; expected one of them",
            ))
        }
    };
    if let Some(image) = inputs.image {
        let (w, h) = (image.width() as usize, image.height() as usize);
        if (pseudo.width, pseudo.height) != (w, h) {
            return Err(Error::input(
                inputs.name,
                format!(
                    "the CAM / pseudo-label is {}×{}, the image {w}×{h}; expected the same size",
                    pseudo.width, pseudo.height
                ),
            ));
        }
    }
    let need_cpm = || {
        cpm.ok_or_else(|| {
            Error::Model(format!(
                "{}: method {method} needs CPM's label; the model did not run",
                inputs.name
            ))
        })
    };
    let merge = |into: &LabelMap| -> Result<LabelMap> {
        Ok(sepl::merge(into, masks, &settings.merge_params())?.label)
    };
    let label = match method {
        Method::Sepl => merge(&pseudo)?,
        Method::CpmSepl => merge(need_cpm()?)?,
        Method::Cpm => need_cpm()?.clone(),
        Method::Saliency => {
            if inputs.saliency.is_none() {
                return Err(Error::input(
                    inputs.name,
                    "method saliency needs a saliency map (--saliency DIR)",
                ));
            }
            pseudo.clone()
        }
        Method::Pamr => {
            pamr_label(
                inputs.image(method)?,
                inputs.cam(method)?,
                inputs.present,
                &settings.pamr,
                &settings.cam,
                inputs.name,
            )?
            .label
        }
        Method::Crf => crf_label(
            inputs.image(method)?,
            inputs.cam(method)?,
            inputs.present,
            &settings.crf,
            inputs.name,
        )?,
    };
    Ok(Derived {
        pseudo,
        label,
        non_finite,
    })
}

/// One image in one call: [`run_sam`] (when the method uses SAM; `masks` are mask files read
/// for it, else segment-everything runs) then [`derive`]. `predictor` may be `None` for the
/// methods without SAM and for SEPL with mask files.
pub async fn refine_image<P: ImagePredictor>(
    inputs: &Inputs<'_>,
    settings: &Settings,
    masks: Option<&[BitMask]>,
    predictor: Option<&mut P>,
    progress: &mut dyn FnMut(usize, usize) -> Result<()>,
) -> Result<(Derived, SamOutput)> {
    settings.validate()?;
    let method = settings.method;
    let needs_model = method.uses_cpm() || (method.uses_masks() && masks.is_none());
    let sam = match predictor {
        Some(p) if needs_model => {
            run_sam(inputs, settings, p, masks.is_none(), false, progress).await?
        }
        None if needs_model => {
            return Err(Error::input(
                "weights",
                format!(
                    "missing; method {method} runs MobileSAM and needs its weights (mobile_sam.pt)"
                ),
            ))
        }
        _ => SamOutput::default(),
    };
    let refs: Vec<&BitMask> = match masks {
        Some(m) => m.iter().collect(),
        None => sam.records.iter().map(|r| &r.segmentation).collect(),
    };
    let derived = derive(inputs, settings, &refs, sam.cpm.as_ref())?;
    Ok((derived, sam))
}
