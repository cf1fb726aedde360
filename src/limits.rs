//! Resource limits on untrusted inputs. Every file camsam reads comes from the user (a dataset
//! folder, a download, a drag-and-drop), so sizes are checked against these caps *before* any
//! buffer of that size is allocated, and each refusal is an [`Error::Input`] naming the file
//! and the cap:
//!
//! - images, label maps, masks and CAMs: at most [`MAX_PIXELS`] (64 megapixels) per channel,
//!   checked on the PNG header / array shape ([`check_pixels`]);
//! - zip entries (`.npz` members, mask zips, PyTorch checkpoints): the size the archive
//!   declares is checked against a cap, and the entry is read through a bounded reader that
//!   stops one byte past the cap whatever the header claims ([`read_zip_entry`]), so a zip bomb
//!   or a lying size header costs at most the cap;
//! - checkpoints: tensor shapes are checked before their storage is read (`sam::weights`).

use crate::{Error, Result};
use std::io::Read;

/// Largest image, label map, mask or CAM channel accepted, in pixels (64 megapixels).
pub const MAX_PIXELS: usize = 1 << 26;

/// Largest mask PNG read from a zip of mask folders, in bytes (a 64-megapixel 8-bit mask
/// stored without compression).
pub const MAX_MASK_ENTRY_BYTES: u64 = 1 << 26;

/// `Ok` when a `width × height` `what` ("image", "label", "mask", "CAM") is within
/// [`MAX_PIXELS`]; else an error naming `name`.
pub fn check_pixels(width: usize, height: usize, name: &str, what: &str) -> Result<()> {
    match width.checked_mul(height) {
        Some(n) if n <= MAX_PIXELS => Ok(()),
        _ => Err(Error::input(
            name,
            format!(
                "{width}×{height} {what}; at most {MAX_PIXELS} pixels (64 megapixels) are accepted"
            ),
        )),
    }
}

/// Read a zip entry that declares `declared` bytes uncompressed, refusing it when the
/// declaration is over `limit` and stopping when the data inflates past `limit` (a zip bomb,
/// or a header that lies). `name` names the entry in errors.
pub fn read_zip_entry(entry: impl Read, declared: u64, limit: u64, name: &str) -> Result<Vec<u8>> {
    if declared > limit {
        return Err(Error::input(
            name,
            format!("entry of {declared} bytes uncompressed; at most {limit} are read"),
        ));
    }
    let mut bytes = Vec::with_capacity(declared.min(1 << 24) as usize);
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::input(name, format!("corrupt zip entry ({e})")))?;
    if bytes.len() as u64 > limit {
        return Err(Error::input(
            name,
            format!("entry inflates past {limit} bytes (a zip bomb?)"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_caps_name_the_file_and_survive_overflow() {
        assert!(check_pixels(8192, 8192, "a.png", "image").is_ok());
        let e = check_pixels(8193, 8192, "a.png", "image")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.png: 8193×8192 image; at most"), "{e}");
        let e = check_pixels(usize::MAX, 3, "b.png", "mask")
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.png") && e.contains("64 megapixels"), "{e}");
    }

    #[test]
    fn zip_entries_are_read_up_to_the_limit_only() {
        let data = vec![7u8; 100];
        assert_eq!(read_zip_entry(&data[..], 100, 100, "e").unwrap(), data);
        let e = read_zip_entry(&data[..], 100, 99, "e")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 99"), "{e}");
        // The header says 10 bytes; the data runs on.
        let e = read_zip_entry(&data[..], 10, 50, "e")
            .unwrap_err()
            .to_string();
        assert!(e.contains("inflates past 50 bytes"), "{e}");
    }
}
