//! The one error type of the library. Messages name the file (or the input) and say what
//! was expected; the CLI prints them, the wasm layer maps them once to `JsError`.

use std::path::Path;

/// Every failure camsam reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied file or value is not what was expected.
    #[error("{source_name}: {message}")]
    Input {
        /// The file (or input) at fault, as the user named it.
        source_name: String,
        /// What was found and what was expected.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The model failed (shape mismatch inside the network, backend error).
    #[error("model: {0}")]
    Model(String),
    /// Encoding an output (PNG, JSON, `.npz`, zip) failed.
    #[error("encoding {what} failed: {message}")]
    Encode {
        /// What was being encoded ("PNG", "JSON", …).
        what: String,
        message: String,
    },
    /// The GPU backend failed (no adapter, device lost, out of memory).
    #[error("webgpu: {0}")]
    Gpu(String),
    /// The job was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
}

/// `Result` with camsam's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bad-input error about `source_name` (a path or a name the user gave).
    pub fn input(source_name: impl AsRef<str>, message: impl Into<String>) -> Self {
        Error::Input {
            source_name: source_name.as_ref().to_string(),
            message: message.into(),
        }
    }

    /// An encoding failure of `what` (an output format).
    pub fn encode(what: &str, message: impl std::fmt::Display) -> Self {
        Error::Encode {
            what: what.to_string(),
            message: message.to_string(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Model(e.to_string())
    }
}
