//! The native integration tests, one module per former `tests/*.rs` file, in one test binary:
//! each binary links wgpu, candle and the whole crate, so on a 2-core machine linking twenty-odd
//! of them dominated `cargo test` rebuilds. Run one module with `cargo test --test it <module>::`
//! (e.g. `cargo test --test it gpu_model::`). The browser (wasm32) tests stay separate binaries
//! (`tests/wasm_*.rs`).

mod common;

mod amg_fixtures;
mod cam;
mod cam2label;
mod cam_formats;
mod cli_everything;
mod cli_medical;
mod cli_merge;
mod cli_refine;
mod cli_refine_modes;
mod cli_resume;
mod cli_sam;
mod cli_sweep;
mod cpm_sam;
mod cpm_synthetic;
mod cpu_helpers;
mod crf;
mod gpu_kernels;
mod gpu_model;
mod limits;
mod malformed_inputs;
mod medical;
mod metrics_fixtures;
mod npy;
mod sam_fixtures;
mod sepl_fixtures;
