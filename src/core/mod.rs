//! The label core: pure Rust, no GPU or browser types, compiles for wasm32 — label maps and
//! their files, CAMs, SAM mask sets, the SEPL merge, metrics, `.npy`/pickle readers, overlays
//! and the export zip.

pub mod cam;
pub mod export;
pub mod label;
pub mod masks;
pub mod metrics;
pub mod npy;
pub mod overlay;
pub mod pickle;
pub mod sepl;
