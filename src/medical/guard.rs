//! The last line of defence around third-party parsers and decoders (dicom-rs, jpeg-decoder,
//! the openjp2 port). Inputs are validated before they reach them (element lengths, frame
//! sizes, codestream dimensions), but a decoder bug on a malformed stream must still end as
//! an error naming the file, not a crashed CLI. Where panics abort (wasm32), this is a plain
//! call; fuzzing (whose panic hook aborts) still reports every panic as a crash.

use crate::{Error, Result};

/// Run `f`; a panic inside it becomes an [`Error::Input`] on `name` saying that `what` failed.
pub(super) fn no_panic<T>(name: &str, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            Err(Error::input(
                name,
                format!(
                    "the {what} failed on this file ({detail}); the data is malformed or uses \
                     a variant it cannot read"
                ),
            ))
        }
    }
}
