//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod synthetic;

use std::path::{Path, PathBuf};

/// The shared reference fixtures: `$CAMSAM_SHARED`, else `../shared` beside the repo.
/// Panics with a clear message when they are missing.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("CAMSAM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("README.md").is_file(),
        "the shared reference fixtures are missing: expected them at {} \
         (put shared/ beside the repo or set CAMSAM_SHARED)",
        dir.display()
    );
    dir
}

/// A fresh, empty scratch directory under the target directory, named after the test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
