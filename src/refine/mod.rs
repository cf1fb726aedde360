//! The refine pipeline, one image at a time, for every front end: `camsam refine`, `merge` and
//! `cam2label` and the page's worker all call these functions, so a label is made one way.
//!
//! - [`Settings`] (`settings`): the method and every setting that shapes a label, one serde
//!   struct; its `Default` is the one place the defaults are composed (each part's own defaults
//!   live with its concept: `sepl`, `cam`, `amg`, `cpm`, `pamr`, `crf`).
//! - [`run_sam`] (`pipeline`): the model's share of a method — segment everything (SEPL) and
//!   CPM's label — once per image; [`derive`]: the cheap rest — CAM → pseudo-label, the
//!   method's label, the SEPL merge — rerun whenever the settings change (the page's sliders).
//!   [`refine_image`] is both in one call.
//! - [`Edit`] (`edit`): the user's corrections (reject a mask, assign a mask a class, brush),
//!   replayed on the refined label.
//! - [`Report`] (`report`): `report.json`, with the same fields from the CLI and the page.
//!
//! ```
//! use camsam::core::label::LabelMap;
//! use camsam::refine::{derive, Inputs, Method, Settings};
//! let pseudo = LabelMap::new(2, 1, vec![0, 1]).unwrap();
//! let settings = Settings { method: Method::Sepl, ..Settings::default() };
//! let inputs = Inputs { pseudo: Some(&pseudo), ..Inputs::new("a") };
//! let out = derive(&inputs, &settings, &[], None).unwrap();
//! assert_eq!(out.label.data, vec![0, 1]); // no SAM masks: the pseudo-label stands
//! ```

pub mod amg;
pub mod cpm;
pub mod crf;
mod edit;
pub mod pamr;
pub mod peaks;
mod pipeline;
mod report;
pub mod saliency;
pub mod se_map;
mod settings;
pub mod sweep;

pub use edit::{edited, hit_test, rejected, replay, Edit};
pub use pipeline::{derive, refine_image, run_sam, Derived, Inputs, SamOutput};
pub use report::{ImageEntry, Report};
pub use settings::{Method, SeplSettings, Settings};
