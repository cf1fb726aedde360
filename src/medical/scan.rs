//! A structural check of a DICOM file before dicom-rs parses it.
//!
//! dicom-rs allocates each element's value at the length its header declares before reading
//! it, so a few hundred malformed bytes can ask for gigabytes, and deep nesting recurses
//! without bound. This walk reads only element headers (PS3.5 §7): every declared length must
//! fit in the bytes that remain of its container, elements must tile a defined-length item
//! exactly (dicom-rs reads on past an item's end), sequences nest at most [`MAX_DEPTH`] deep,
//! and a deflated data set must inflate to at most [`super::MAX_DECODED_BYTES`]. It returns
//! the transfer syntax UID from the file meta group.

use super::MAX_DECODED_BYTES;
use crate::{Error, Result};
use dicom_core::dictionary::{DataDictionary, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use std::io::Read;

/// Deepest sequence nesting accepted (real files rarely pass 6).
const MAX_DEPTH: usize = 32;

/// Undefined length (PS3.5 §7.1.1).
const UNDEFINED: u32 = 0xFFFF_FFFF;

pub(super) const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub(super) const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
pub(super) const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// How the data set's element headers are encoded.
#[derive(Clone, Copy)]
struct Encoding {
    explicit: bool,
    big_endian: bool,
}

/// Check `file` (starting at `DICM`, after any preamble) and return its transfer syntax UID.
pub(super) fn check(file: &[u8], name: &str) -> Result<String> {
    let bad = |msg: String| Error::input(name, msg);
    if !file.starts_with(b"DICM") {
        return Err(bad("not a DICOM file: no 'DICM' after the preamble".into()));
    }
    // The file meta group, explicit VR little endian, read as dicom-object reads it: the group
    // length (0002,0000) first, then elements until that many bytes are consumed, whatever
    // their group; the data set starts right after.
    let meta = Encoding {
        explicit: true,
        big_endian: false,
    };
    let group_length = match read_header(file, 4, meta) {
        Some(Ok(h)) if h.tag == Tag(0x0002, 0x0000) && h.len == 4 => {
            let v = &file[h.value..value_end(file, &h, file.len(), name)?];
            u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize
        }
        _ => {
            return Err(bad(
                "the file meta group does not start with its group length (0002,0000)".into(),
            ))
        }
    };
    let mut pos = 16;
    let mut syntax = None;
    while pos - 16 < group_length {
        let header = match read_header(file, pos, meta) {
            Some(h) => h.map_err(|m| bad(format!("file meta group: {m}")))?,
            None => return Err(bad("the file meta group is cut short".into())),
        };
        let end = value_end(file, &header, file.len(), name)?;
        if header.tag == Tag(0x0002, 0x0010) {
            let uid = String::from_utf8_lossy(&file[header.value..end]);
            syntax = Some(uid.trim_end_matches(['\0', ' ']).trim().to_string());
        }
        pos = end;
    }
    let syntax = syntax
        .ok_or_else(|| bad("the file meta group has no Transfer Syntax UID (0002,0010)".into()))?;
    let data = &file[pos..];
    let enc = Encoding {
        explicit: syntax != IMPLICIT_VR_LE,
        big_endian: syntax == EXPLICIT_VR_BE,
    };
    if syntax == DEFLATED {
        let inflated = inflate(data, name)?;
        walk(&inflated, 0, inflated.len(), enc, 0, name)?;
    } else {
        walk(data, 0, data.len(), enc, 0, name)?;
    }
    Ok(syntax)
}

/// Inflate a deflated data set (raw deflate, PS3.5 A.5), refusing past the cap.
fn inflate(data: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::input(name, format!("corrupt deflated data set ({e})")))?;
    if out.len() as u64 > MAX_DECODED_BYTES {
        return Err(Error::input(
            name,
            format!("the deflated data set inflates past {MAX_DECODED_BYTES} bytes"),
        ));
    }
    Ok(out)
}

/// An element (or item) header.
struct Header {
    tag: Tag,
    vr: Option<VR>,
    len: u32,
    /// Offset of the value.
    value: usize,
    /// Offset of the header.
    at: usize,
}

/// The header at `pos`: `None` when fewer than 8 bytes remain (trailing padding is left to
/// the parser), `Some(Err)` when it is malformed.
fn read_header(
    data: &[u8],
    pos: usize,
    enc: Encoding,
) -> Option<std::result::Result<Header, String>> {
    let u16_at = |p: usize| {
        let b = [data[p], data[p + 1]];
        if enc.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |p: usize| {
        let b = [data[p], data[p + 1], data[p + 2], data[p + 3]];
        if enc.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    if data.len().saturating_sub(pos) < 8 {
        return None;
    }
    let tag = Tag(u16_at(pos), u16_at(pos + 2));
    // Items and delimiters have no VR, whatever the transfer syntax.
    if !enc.explicit || tag.0 == 0xFFFE {
        return Some(Ok(Header {
            tag,
            vr: None,
            len: u32_at(pos + 4),
            value: pos + 8,
            at: pos,
        }));
    }
    let vr = match VR::from_binary([data[pos + 4], data[pos + 5]]) {
        Some(vr) => vr,
        None => {
            return Some(Err(format!(
                "element {tag} at byte {pos} has no valid VR ({:?})",
                String::from_utf8_lossy(&data[pos + 4..pos + 6])
            )))
        }
    };
    use VR::*;
    let long = matches!(
        vr,
        OB | OD | OF | OL | OV | OW | SQ | SV | UC | UN | UR | UT | UV
    );
    if !long {
        return Some(Ok(Header {
            tag,
            vr: Some(vr),
            len: u32::from(u16_at(pos + 6)),
            value: pos + 8,
            at: pos,
        }));
    }
    if data.len() - pos < 12 {
        return Some(Err(format!("element {tag} at byte {pos} is cut short")));
    }
    Some(Ok(Header {
        tag,
        vr: Some(vr),
        len: u32_at(pos + 8),
        value: pos + 12,
        at: pos,
    }))
}

/// The end of a defined-length value, checked against `end` (its container's end).
fn value_end(data: &[u8], header: &Header, end: usize, name: &str) -> Result<usize> {
    let end = end.min(data.len());
    let len = header.len as usize;
    if header.len == UNDEFINED || header.value > end || len > end - header.value {
        let remain = end.saturating_sub(header.value);
        return Err(Error::input(
            name,
            format!(
                "element {} at byte {} declares {} bytes but only {remain} remain: the file \
                 is truncated or corrupt",
                header.tag, header.at, header.len
            ),
        ));
    }
    Ok(header.value + len)
}

/// The error for a header that does not fit in the `end - pos` bytes left of its container.
fn cut_short(pos: usize, end: usize, name: &str) -> Error {
    Error::input(
        name,
        format!(
            "{} stray byte(s) at byte {pos} where an element or item header should start: its \
             sequence or item length is wrong",
            end - pos
        ),
    )
}

/// Whether an element holds a sequence of items.
fn is_sequence(header: &Header) -> bool {
    match header.vr {
        Some(vr) => vr == VR::SQ,
        None => StandardDataDictionary
            .by_tag(header.tag)
            .is_some_and(|e| e.vr == VirtualVr::Exact(VR::SQ)),
    }
}

/// Walk the elements in `data[pos..end]`; inside an undefined-length item (`depth > 0`), stop
/// after its Item Delimitation. Returns where the walk stopped.
fn walk(
    data: &[u8],
    mut pos: usize,
    end: usize,
    enc: Encoding,
    depth: usize,
    name: &str,
) -> Result<usize> {
    if depth > MAX_DEPTH {
        return Err(Error::input(
            name,
            format!("sequences nest deeper than {MAX_DEPTH} levels"),
        ));
    }
    while pos < end {
        let header = match read_header(&data[..end], pos, enc) {
            // Trailing bytes at the end of the file are padding; inside an item they would be
            // read by the parser as a header running past the item.
            None if depth == 0 => return Ok(end),
            None => return Err(cut_short(pos, end, name)),
            Some(h) => h.map_err(|m| Error::input(name, m))?,
        };
        match header.tag {
            // Item Delimitation: the end of an undefined-length item.
            Tag(0xFFFE, 0xE00D) if depth > 0 => return Ok(header.value),
            Tag(0xFFFE, _) => {
                return Err(Error::input(
                    name,
                    format!("unexpected item tag {} at byte {pos}", header.tag),
                ))
            }
            _ => {}
        }
        let pixel_data = header.tag == Tag(0x7FE0, 0x0010);
        if header.len == UNDEFINED {
            // A sequence, encapsulated pixel data, or UN holding an implicit VR sequence.
            let inner = match header.vr {
                Some(VR::UN) => Encoding {
                    explicit: false,
                    big_endian: false,
                },
                _ => enc,
            };
            pos = items(data, header.value, end, inner, depth, pixel_data, name)?;
        } else {
            let value_end = value_end(data, &header, end, name)?;
            if is_sequence(&header) {
                items(data, header.value, value_end, enc, depth, false, name)?;
            }
            pos = value_end;
        }
    }
    Ok(pos)
}

/// Walk the items of a sequence (or pixel data fragments) starting at `pos`, up to `end` or
/// the Sequence Delimitation; returns the position after it.
fn items(
    data: &[u8],
    mut pos: usize,
    end: usize,
    enc: Encoding,
    depth: usize,
    fragments: bool,
    name: &str,
) -> Result<usize> {
    let item_enc = Encoding {
        explicit: false,
        ..enc
    };
    while pos < end {
        let header = match read_header(&data[..end], pos, item_enc) {
            None => return Err(cut_short(pos, end, name)),
            Some(h) => h.map_err(|m| Error::input(name, m))?,
        };
        match header.tag {
            Tag(0xFFFE, 0xE0DD) => return Ok(header.value),
            Tag(0xFFFE, 0xE000) => {}
            tag => {
                return Err(Error::input(
                    name,
                    format!("expected an item at byte {pos}, found element {tag}"),
                ))
            }
        }
        if header.len == UNDEFINED {
            if fragments {
                return Err(Error::input(
                    name,
                    format!("pixel data fragment at byte {pos} has an undefined length"),
                ));
            }
            pos = walk(data, header.value, end, enc, depth + 1, name)?;
        } else {
            let item_end = value_end(data, &header, end, name)?;
            if !fragments {
                walk(data, header.value, item_end, enc, depth + 1, name)?;
            }
            pos = item_end;
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `DICM` + a meta group with only the transfer syntax, then `body`.
    fn file(syntax: &str, body: &[u8]) -> Vec<u8> {
        let mut uid = syntax.as_bytes().to_vec();
        if uid.len() % 2 == 1 {
            uid.push(0);
        }
        let mut f = b"DICM".to_vec();
        f.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        f.extend_from_slice(&(8 + uid.len() as u32).to_le_bytes());
        f.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
        f.extend_from_slice(&(uid.len() as u16).to_le_bytes());
        f.extend_from_slice(&uid);
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn lengths_past_the_end_are_refused_before_parsing() {
        // (0010,0010) PN declaring 0xFFF0 bytes with 4 present.
        let body = [
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xF0, 0xFF, b'A', b'B', b'C', b'D',
        ];
        let e = check(&file("1.2.840.10008.1.2.1", &body), "x.dcm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("declares 65520 bytes but only 4 remain"), "{e}");
        // Implicit VR: (0010,0010) declaring 4 GB.
        let body = [0x10, 0x00, 0x10, 0x00, 0xF0, 0xFF, 0xFF, 0x7F, 0, 0];
        assert!(check(&file(IMPLICIT_VR_LE, &body), "x.dcm").is_err());
    }

    #[test]
    fn nested_sequences_are_bounded() {
        // SQ (0008,1115) undefined length, item undefined length, nested 40 deep.
        let mut body = Vec::new();
        for _ in 0..40 {
            body.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0]);
            body.extend_from_slice(&UNDEFINED.to_le_bytes());
            body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            body.extend_from_slice(&UNDEFINED.to_le_bytes());
        }
        let e = check(&file("1.2.840.10008.1.2.1", &body), "x.dcm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nest deeper than 32"), "{e}");
    }

    #[test]
    fn a_valid_element_passes_and_yields_the_syntax() {
        let body = [
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0, b'A', b'B', b'C', b'D',
        ];
        let ts = check(&file("1.2.840.10008.1.2.1", &body), "x.dcm").unwrap();
        assert_eq!(ts, "1.2.840.10008.1.2.1");
    }
}
