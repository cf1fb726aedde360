//! camsam — refine weakly-supervised segmentation pseudo-labels with Segment Anything.
//!
//! The crate is layered (see `ARCHITECTURE.md`):
//! - pure label logic, free of GPU and browser types: [`label`], [`npy`], [`cam`], [`masks`],
//!   [`sepl`], [`metrics`], and the [`limits`] every reader enforces;
//! - the SAM model interface ([`predictor`]) and its implementations;
//! - thin front ends: the native `camsam` CLI (`src/main.rs`, `src/cli/`) and the wasm API.

pub mod amg;
#[cfg(feature = "webgpu")]
pub mod backend;
pub mod cam;
pub mod cpm;
pub mod crf;
pub mod demo;
pub mod error;
pub mod export;
#[cfg(feature = "webgpu")]
pub mod gpu;
pub mod label;
pub mod limits;
pub mod masks;
pub mod medical;
pub mod metrics;
pub mod npy;
pub mod overlay;
pub mod pamr;
pub mod peaks;
pub mod pickle;
pub mod postprocess;
pub mod predictor;
pub mod refine;
pub mod saliency;
pub mod sam;
pub mod se_map;
pub mod sepl;
pub mod sweep;

#[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
pub mod web;

pub use error::{Error, Result};
