//! Export: refined labels and reports packed into one zip archive, the download of the
//! browser app (`camsam-labels.zip`: `<name>.png` per image, optional overlays, a JSON
//! report). Works on bytes only, so it runs the same natively and on wasm32.
//!
//! ```
//! use camsam::core::export::ZipBuilder;
//! let mut zip = ZipBuilder::new();
//! zip.add("a.png", b"\x89PNG...").unwrap();
//! zip.add("report.json", b"{}").unwrap();
//! let bytes = zip.finish().unwrap();
//! assert_eq!(&bytes[..4], b"PK\x03\x04");
//! ```

use crate::{Error, Result};
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Builds a zip archive in memory. PNGs are stored (already compressed); other files are
/// deflated.
pub struct ZipBuilder {
    writer: ZipWriter<Cursor<Vec<u8>>>,
    names: std::collections::HashSet<String>,
}

impl Default for ZipBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn zip_error(name: &str, e: impl std::fmt::Display) -> Error {
    Error::input(name, format!("could not be added to the zip archive ({e})"))
}

impl ZipBuilder {
    pub fn new() -> Self {
        ZipBuilder {
            writer: ZipWriter::new(Cursor::new(Vec::new())),
            names: Default::default(),
        }
    }

    /// Add a file. Names are paths inside the archive (`/`-separated, relative); a repeated
    /// name is an error rather than a silently shadowed entry.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == "..") {
            return Err(Error::input(
                name,
                "not a relative path; expected a name like <image>.png",
            ));
        }
        if !self.names.insert(name.to_string()) {
            return Err(Error::input(
                name,
                "appears twice; expected one entry per name",
            ));
        }
        let method = if name.ends_with(".png") {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        let options = SimpleFileOptions::default().compression_method(method);
        self.writer
            .start_file(name, options)
            .map_err(|e| zip_error(name, e))?;
        self.writer
            .write_all(bytes)
            .map_err(|e| zip_error(name, e))?;
        Ok(())
    }

    /// Number of files added so far.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The archive's bytes.
    pub fn finish(self) -> Result<Vec<u8>> {
        let cursor = self
            .writer
            .finish()
            .map_err(|e| zip_error("zip archive", e))?;
        Ok(cursor.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn entries_read_back_with_their_contents() {
        let mut zip = ZipBuilder::new();
        zip.add("x.png", &[1, 2, 3]).unwrap();
        zip.add("report.json", br#"{"miou":0.5}"#).unwrap();
        assert_eq!(zip.len(), 2);
        let bytes = zip.finish().unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 2);
        let mut s = String::new();
        archive
            .by_name("report.json")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, r#"{"miou":0.5}"#);
        let mut v = Vec::new();
        archive
            .by_name("x.png")
            .unwrap()
            .read_to_end(&mut v)
            .unwrap();
        assert_eq!(v, vec![1, 2, 3]);
    }

    #[test]
    fn duplicate_and_escaping_names_are_errors() {
        let mut zip = ZipBuilder::new();
        zip.add("a.png", &[0]).unwrap();
        let e = zip.add("a.png", &[0]).unwrap_err().to_string();
        assert!(e.contains("a.png") && e.contains("twice"), "{e}");
        assert!(zip.add("../b.png", &[0]).is_err());
        assert!(zip.add("/b.png", &[0]).is_err());
    }
}
