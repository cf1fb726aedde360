//! DICOM RLE Lossless (PS3.5 Annex G), decoded here rather than through dicom-pixeldata,
//! whose adapter indexes its output by the decoded length and panics on a short segment.
//!
//! A frame is one fragment: a 64-byte header (the segment count, then up to 15 segment
//! offsets, u32 little endian), then PackBits segments, one per byte plane: for each sample,
//! its most significant byte first. Each segment decodes to rows × columns bytes.

use crate::{Error, Result};

/// Decode one RLE frame of `pixels` pixels with `samples` samples of `bytes` bytes each into
/// `out` (appended): pixel-interleaved samples, little endian, as native pixel data
/// (planar configuration 0).
pub(super) fn decode_frame(
    fragment: &[u8],
    pixels: usize,
    samples: usize,
    bytes: usize,
    out: &mut Vec<u8>,
    name: &str,
) -> Result<()> {
    let bad = |msg: String| Error::input(name, format!("RLE pixel data: {msg}"));
    let header = fragment.get(..64).ok_or_else(|| {
        bad(format!(
            "a {}-byte fragment has no 64-byte header",
            fragment.len()
        ))
    })?;
    let word = |i: usize| {
        u32::from_le_bytes([
            header[4 * i],
            header[4 * i + 1],
            header[4 * i + 2],
            header[4 * i + 3],
        ]) as usize
    };
    let count = word(0);
    let expected = samples * bytes;
    if count != expected {
        return Err(bad(format!(
            "{count} segments; expected {expected} ({samples} sample(s) of {bytes} byte(s))"
        )));
    }
    let base = out.len();
    out.resize(base + pixels * expected, 0);
    let mut plane = Vec::with_capacity(pixels);
    for segment in 0..count {
        let start = word(segment + 1);
        let end = if segment + 1 < count {
            word(segment + 2)
        } else {
            fragment.len()
        };
        let data = fragment
            .get(start..end)
            .filter(|_| start >= 64)
            .ok_or_else(|| {
                bad(format!(
                    "segment {segment} spans bytes {start}..{end} of a {}-byte fragment",
                    fragment.len()
                ))
            })?;
        plane.clear();
        packbits(data, pixels, &mut plane);
        if plane.len() < pixels {
            return Err(bad(format!(
                "segment {segment} decodes to {} bytes; expected {pixels}: the data is truncated",
                plane.len()
            )));
        }
        // Segment s holds byte (bytes - 1 - s % bytes) of sample s / bytes.
        let sample = segment / bytes;
        let byte = bytes - 1 - segment % bytes;
        let stride = expected;
        for (i, &v) in plane.iter().take(pixels).enumerate() {
            out[base + i * stride + sample * bytes + byte] = v;
        }
    }
    Ok(())
}

/// PackBits-decode `data` into `out`, stopping once `limit` bytes are out.
fn packbits(data: &[u8], limit: usize, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < data.len() && out.len() < limit {
        let n = data[i] as i8;
        i += 1;
        if n >= 0 {
            let run = (n as usize + 1).min(data.len() - i);
            out.extend_from_slice(&data[i..i + run]);
            i += run;
        } else if n != -128 {
            if let Some(&v) = data.get(i) {
                out.extend(std::iter::repeat_n(v, 1 + n.unsigned_abs() as usize));
            }
            i += 1;
        }
    }
    out.truncate(limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(offsets: &[u32]) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&(offsets.len() as u32).to_le_bytes());
        for (i, o) in offsets.iter().enumerate() {
            h[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        h
    }

    #[test]
    fn sixteen_bit_segments_interleave_high_byte_first() {
        // Two pixels 0x0102, 0x0304: high bytes [1, 3], low bytes [2, 4] (literal runs).
        let mut f = header(&[64, 67]);
        f.extend_from_slice(&[1, 1, 3, 1, 2, 4]);
        let mut out = Vec::new();
        decode_frame(&f, 2, 1, 2, &mut out, "x").unwrap();
        assert_eq!(out, [2, 1, 4, 3]);
    }

    #[test]
    fn replicate_runs_and_short_segments() {
        let mut f = header(&[64]);
        f.extend_from_slice(&[(-3i8) as u8, 7]);
        let mut out = Vec::new();
        decode_frame(&f, 4, 1, 1, &mut out, "x").unwrap();
        assert_eq!(out, [7, 7, 7, 7]);
        let mut out = Vec::new();
        let e = decode_frame(&f, 5, 1, 1, &mut out, "x.dcm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("decodes to 4 bytes; expected 5"), "{e}");
        let e = decode_frame(&f[..10], 4, 1, 1, &mut out, "x.dcm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no 64-byte header"), "{e}");
    }
}
