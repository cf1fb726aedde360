//! Encapsulated (compressed) DICOM pixel data: fragments grouped into frames (PS3.5 A.4), and
//! each frame decoded with a pure-Rust decoder after its header is checked against the data
//! set's Rows, Columns and Samples per Pixel, so that a lying codestream can neither overrun a
//! buffer nor allocate more than the frame it claims to be.
//!
//! - JPEG baseline (8-bit) and lossless (2–16-bit, processes 14 and 14 SV1): `jpeg-decoder`.
//!   Its DCT path is 8-bit only, so 12-bit JPEG Extended (process 4) is refused by name.
//! - JPEG 2000: `rust-j2k` (pure Rust, no unsafe code; CLI and page alike), on the raw
//!   codestream (inside a JP2 wrapper too); a truncated or malformed codestream is an error.
//! - RLE Lossless: [`super::rle`].
//! - JPEG-LS and others with no pure-Rust decoder: refused by [`Codec::from_syntax`].
//!
//! Every decoder writes native layout: pixel-interleaved samples of BitsAllocated / 8 bytes,
//! little endian, as uncompressed pixel data is.

use super::guard::no_panic;
use super::rle;
use crate::{Error, Result};
use std::borrow::Cow;

/// A compressed pixel data codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Jpeg,
    Jpeg2000,
    Rle,
}

impl Codec {
    /// The codec of an encapsulated transfer syntax; `Ok(None)` for native (uncompressed)
    /// syntaxes; an error naming the syntax when it has no pure-Rust decoder.
    pub(super) fn from_syntax(uid: &str, name: &str) -> Result<Option<Codec>> {
        let refuse = |what: &str| {
            Err(Error::input(
                name,
                format!(
                    "{what} (transfer syntax {uid}) is not supported: no pure-Rust decoder; \
                     convert the file to an uncompressed syntax first (e.g. dcmdjpls, \
                     gdcmconv --raw)"
                ),
            ))
        };
        match uid {
            "1.2.840.10008.1.2"
            | "1.2.840.10008.1.2.1"
            | "1.2.840.10008.1.2.2"
            | "1.2.840.10008.1.2.1.99"
            | "1.2.840.10008.1.2.1.98" => Ok(None),
            "1.2.840.10008.1.2.5" => Ok(Some(Codec::Rle)),
            "1.2.840.10008.1.2.4.50"
            | "1.2.840.10008.1.2.4.51"
            | "1.2.840.10008.1.2.4.57"
            | "1.2.840.10008.1.2.4.70" => Ok(Some(Codec::Jpeg)),
            "1.2.840.10008.1.2.4.90"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.92"
            | "1.2.840.10008.1.2.4.93"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203" => Ok(Some(Codec::Jpeg2000)),
            "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => refuse("JPEG-LS"),
            "1.2.840.10008.1.2.4.110" | "1.2.840.10008.1.2.4.111" | "1.2.840.10008.1.2.4.112" => {
                refuse("JPEG XL")
            }
            u if u.starts_with("1.2.840.10008.1.2.4.10") => refuse("MPEG / HEVC video"),
            _ => Err(Error::input(
                name,
                format!("unknown or unsupported transfer syntax {uid}"),
            )),
        }
    }
}

/// The frame geometry the data set declares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub rows: usize,
    pub cols: usize,
    pub samples: usize,
    pub bits_allocated: usize,
}

impl Geometry {
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    pub fn frame_bytes(&self) -> usize {
        self.pixels() * self.samples * self.bits_allocated / 8
    }
}

/// Group `fragments` into `frames` frames: one fragment per frame, all fragments for a single
/// frame, the basic offset table's groups, or (JPEG, JPEG 2000) a new frame at each fragment
/// that starts a codestream.
pub(super) fn frames<'a>(
    fragments: &'a [Vec<u8>],
    offset_table: &[u32],
    frames: usize,
    codec: Codec,
    name: &str,
) -> Result<Vec<Cow<'a, [u8]>>> {
    let concat = |group: &[Vec<u8>]| -> Cow<'a, [u8]> { Cow::Owned(group.concat()) };
    if fragments.len() == frames {
        return Ok(fragments
            .iter()
            .map(|f| Cow::Borrowed(f.as_slice()))
            .collect());
    }
    if frames == 1 && !fragments.is_empty() {
        return Ok(vec![concat(fragments)]);
    }
    // Start offsets of the fragments' items, as the offset table counts them (8-byte headers).
    let mut starts = Vec::with_capacity(fragments.len());
    let mut at = 0u64;
    for f in fragments {
        starts.push(at);
        at += 8 + f.len() as u64;
    }
    let mut groups: Vec<(usize, usize)> = Vec::new();
    if offset_table.len() == frames && offset_table.first() == Some(&0) {
        for (k, &offset) in offset_table.iter().enumerate() {
            let first = starts.iter().position(|&s| s == u64::from(offset));
            let next = offset_table.get(k + 1).map(|&o| u64::from(o));
            let end = match next {
                Some(o) => starts.iter().position(|&s| s == o),
                None => Some(fragments.len()),
            };
            match (first, end) {
                (Some(a), Some(b)) if a < b => groups.push((a, b)),
                _ => {
                    groups.clear();
                    break;
                }
            }
        }
    }
    if groups.is_empty() && codec != Codec::Rle {
        let starts_stream = |f: &Vec<u8>| match codec {
            Codec::Jpeg => f.starts_with(&[0xFF, 0xD8]),
            _ => f.starts_with(&[0xFF, 0x4F]) || f.starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50]),
        };
        let heads: Vec<usize> = (0..fragments.len())
            .filter(|&i| starts_stream(&fragments[i]))
            .collect();
        if heads.len() == frames && heads.first() == Some(&0) {
            for (k, &a) in heads.iter().enumerate() {
                groups.push((a, heads.get(k + 1).copied().unwrap_or(fragments.len())));
            }
        }
    }
    if groups.len() != frames {
        return Err(Error::input(
            name,
            format!(
                "{} pixel data fragment(s) for {frames} frame(s), and no offset table or \
                 codestream markers that split them",
                fragments.len()
            ),
        ));
    }
    Ok(groups
        .into_iter()
        .map(|(a, b)| match b - a {
            1 => Cow::Borrowed(fragments[a].as_slice()),
            _ => concat(&fragments[a..b]),
        })
        .collect())
}

/// Decode one frame with `codec`, appending its native-layout bytes to `out`.
pub(super) fn decode(
    codec: Codec,
    data: &[u8],
    geometry: Geometry,
    frame: usize,
    out: &mut Vec<u8>,
    name: &str,
) -> Result<()> {
    let bytes = geometry.bits_allocated / 8;
    match codec {
        Codec::Rle => {
            rle::decode_frame(data, geometry.pixels(), geometry.samples, bytes, out, name)
        }
        Codec::Jpeg => no_panic(name, "JPEG decoder", || {
            jpeg(data, geometry, frame, out, name)
        }),
        Codec::Jpeg2000 => no_panic(name, "JPEG 2000 decoder", || {
            jpeg2000(data, geometry, frame, out, name)
        }),
    }
}

/// Check a decoded frame's size against the data set's.
fn check_geometry(
    what: &str,
    (width, height, components): (usize, usize, usize),
    geometry: Geometry,
    frame: usize,
    name: &str,
) -> Result<()> {
    if (width, height, components) != (geometry.cols, geometry.rows, geometry.samples) {
        return Err(Error::input(
            name,
            format!(
                "frame {frame}: the {what} codestream is {width}×{height} with {components} \
                 component(s); the data set says {}×{} with {} sample(s)",
                geometry.cols, geometry.rows, geometry.samples
            ),
        ));
    }
    Ok(())
}

fn jpeg(data: &[u8], g: Geometry, frame: usize, out: &mut Vec<u8>, name: &str) -> Result<()> {
    use jpeg_decoder::{Error as JpegError, PixelFormat, UnsupportedFeature};
    let fail = |e: JpegError| {
        let msg = match e {
            JpegError::Unsupported(UnsupportedFeature::SamplePrecision(p)) => format!(
                "frame {frame}: {p}-bit lossy JPEG (JPEG Extended, process 4) is not supported \
                 by the pure-Rust decoder; convert the file to an uncompressed syntax first"
            ),
            e => format!("frame {frame}: cannot decode the JPEG data ({e})"),
        };
        Error::input(name, msg)
    };
    let mut decoder = jpeg_decoder::Decoder::new(data);
    decoder.read_info().map_err(fail)?;
    let info = decoder
        .info()
        .ok_or_else(|| Error::input(name, format!("frame {frame}: JPEG data without a frame")))?;
    let (components, sample_bytes) = match info.pixel_format {
        PixelFormat::L8 => (1, 1),
        PixelFormat::L16 => (1, 2),
        PixelFormat::RGB24 => (3, 1),
        PixelFormat::CMYK32 => (4, 1),
    };
    let size = (
        usize::from(info.width),
        usize::from(info.height),
        components,
    );
    check_geometry("JPEG", size, g, frame, name)?;
    if sample_bytes > g.bits_allocated / 8 {
        return Err(Error::input(
            name,
            format!(
                "frame {frame}: 16-bit JPEG samples in {}-bit pixel data",
                g.bits_allocated
            ),
        ));
    }
    decoder.set_max_decoding_buffer_size(g.pixels() * components * sample_bytes + (1 << 16));
    let pixels = decoder.decode().map_err(fail)?;
    if pixels.len() != g.pixels() * components * sample_bytes {
        return Err(Error::input(
            name,
            format!(
                "frame {frame}: the JPEG decoder returned {} bytes; expected {}",
                pixels.len(),
                g.pixels() * components * sample_bytes
            ),
        ));
    }
    let width = g.bits_allocated / 8;
    if sample_bytes == 2 {
        // Native endian from the decoder; little endian out.
        for pair in pixels.chunks_exact(2) {
            out.extend_from_slice(&u16::from_ne_bytes([pair[0], pair[1]]).to_le_bytes());
        }
    } else {
        for &v in &pixels {
            out.push(v);
            out.extend(std::iter::repeat_n(0, width - 1));
        }
    }
    Ok(())
}

/// Where a JPEG 2000 codestream starts (its SOC, followed by SIZ; in a JP2 file, inside the
/// `jp2c` box), and its width, height and component count from the SIZ marker segment.
fn j2k_size(data: &[u8]) -> Option<(usize, (usize, usize, usize))> {
    let at = data
        .windows(4)
        .take(1 << 16)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])?;
    let siz = data.get(at + 4..at + 42)?;
    let u32_at = |i: usize| u32::from_be_bytes([siz[i], siz[i + 1], siz[i + 2], siz[i + 3]]);
    let (x, y, x0, y0) = (u32_at(4), u32_at(8), u32_at(12), u32_at(16));
    let components = u16::from_be_bytes([siz[36], siz[37]]);
    Some((
        at,
        (
            x.checked_sub(x0)? as usize,
            y.checked_sub(y0)? as usize,
            usize::from(components),
        ),
    ))
}

/// A JPEG 2000 frame with `rust-j2k` (pure Rust, so the browser build reads it too); the
/// codestream's size is checked against the DICOM's before anything is decoded.
fn jpeg2000(data: &[u8], g: Geometry, frame: usize, out: &mut Vec<u8>, name: &str) -> Result<()> {
    let (at, size) = j2k_size(data).ok_or_else(|| {
        Error::input(
            name,
            format!("frame {frame}: no JPEG 2000 codestream header (SOC + SIZ)"),
        )
    })?;
    check_geometry("JPEG 2000", size, g, frame, name)?;
    let image = rust_j2k::decode(&data[at..]).map_err(|e| {
        Error::input(
            name,
            format!("frame {frame}: cannot decode the JPEG 2000 data ({e})"),
        )
    })?;
    let components = &image.components;
    for (c, comp) in components.iter().enumerate() {
        let size = (comp.width as usize, comp.height as usize, components.len());
        check_geometry("JPEG 2000", size, g, frame, name)?;
        if comp.samples.len() != g.pixels() {
            return Err(Error::input(
                name,
                format!(
                    "frame {frame}: JPEG 2000 component {c} has {} samples; expected {}",
                    comp.samples.len(),
                    g.pixels()
                ),
            ));
        }
    }
    let width = g.bits_allocated / 8;
    for i in 0..g.pixels() {
        for comp in components {
            out.extend_from_slice(&comp.samples[i].to_le_bytes()[..width.min(4)]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_ls_is_refused_by_name() {
        let e = Codec::from_syntax("1.2.840.10008.1.2.4.80", "ls.dcm")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ls.dcm: JPEG-LS (transfer syntax"), "{e}");
        assert!(e.contains("is not supported"), "{e}");
        assert_eq!(
            Codec::from_syntax("1.2.840.10008.1.2.4.70", "x").unwrap(),
            Some(Codec::Jpeg)
        );
    }

    #[test]
    fn fragments_split_into_frames() {
        let f = vec![vec![0xFF, 0xD8, 1], vec![2], vec![0xFF, 0xD8, 3]];
        let got = frames(&f, &[], 2, Codec::Jpeg, "x").unwrap();
        assert_eq!(got[0].as_ref(), &[0xFF, 0xD8, 1, 2]);
        assert_eq!(got[1].as_ref(), &[0xFF, 0xD8, 3]);
        // Offset table: fragment items start at 0, 11, 20.
        let f = vec![vec![1, 2, 3], vec![4], vec![5]];
        let got = frames(&f, &[0, 20], 2, Codec::Rle, "x").unwrap();
        assert_eq!(got[0].as_ref(), &[1, 2, 3, 4]);
        assert_eq!(got[1].as_ref(), &[5]);
        let e = frames(&f, &[], 2, Codec::Rle, "x.dcm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 pixel data fragment(s) for 2 frame(s)"), "{e}");
    }
}
