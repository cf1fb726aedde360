//! camsam — refine weakly-supervised segmentation pseudo-labels with Segment Anything.
//!
//! The crate is layered (see `ARCHITECTURE.md`):
//! - pure label logic, free of GPU and browser types: [`label`], [`npy`], [`cam`], [`masks`],
//!   [`sepl`], [`metrics`], and the [`limits`] every reader enforces;
//! - the SAM model interface ([`predictor`]) and its implementations;
//! - thin front ends: the native `camsam` CLI (`src/main.rs`, `src/cli/`) and the wasm API.

pub mod core;
pub mod demo;
pub mod error;
#[cfg(feature = "webgpu")]
pub mod gpu;
pub mod limits;
pub mod medical;
pub mod profile;
pub mod refine;
pub mod sam;

#[cfg(all(target_arch = "wasm32", feature = "webgpu"))]
pub mod web;

pub use error::{Error, Result};
