//! NIfTI-1 and NIfTI-2 single files (`.nii`, `.nii.gz`) to slices of values.
//!
//! NIfTI-1 headers are parsed by the `nifti` crate (which also finds their byte order);
//! NIfTI-2 headers, which it does not read, by [`header2`] from the 540-byte layout of
//! `nifti2.h`. Values are nibabel's `get_fdata()`: stored × scl_slope + scl_inter in f64
//! (no scaling when the slope is 0 or not finite), stored as f32. Slice K of a volume is
//! `data[:, :, K]` shown with rows from the highest j down and columns = i.

use super::{check_size, Display, Frames, MAX_DECODED_BYTES};
use crate::{Error, Result};
use std::borrow::Cow;
use std::io::Read;

/// `sizeof_hdr` of NIfTI-1 and NIfTI-2.
const SIZE_V1: usize = 348;
const SIZE_V2: usize = 540;

/// What the reader and the label writer need from a header.
#[derive(Debug, Clone)]
pub(super) struct Header {
    /// 1 or 2.
    pub version: u8,
    pub big_endian: bool,
    /// `dim[0..8]`: `dim[0]` is the number of dimensions.
    pub dim: [i64; 8],
    pub datatype: i16,
    /// Where the voxels start.
    pub offset: usize,
    pub slope: f64,
    pub inter: f64,
}

impl Header {
    /// The header's size in bytes (348 or 540).
    pub fn size(&self) -> usize {
        if self.version == 1 {
            SIZE_V1
        } else {
            SIZE_V2
        }
    }
}

/// The sampling grid of a file: `nx × ny` slices, `nz` of them per volume, `nt` volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grid {
    pub nx: usize,
    pub ny: usize,
    pub nz: usize,
    pub nt: usize,
}

/// Whether `bytes` start with an uncompressed NIfTI-1 or NIfTI-2 header.
pub(super) fn is_nifti_header(bytes: &[u8]) -> bool {
    let size = |b: &[u8]| {
        let w = [b[0], b[1], b[2], b[3]];
        [i32::from_le_bytes(w), i32::from_be_bytes(w)]
    };
    match bytes.get(..4).map(size) {
        Some(s) if s.contains(&(SIZE_V1 as i32)) => bytes
            .get(344..348)
            .is_some_and(|m| m == b"n+1\0" || m == b"ni1\0"),
        Some(s) if s.contains(&(SIZE_V2 as i32)) => bytes
            .get(4..8)
            .is_some_and(|m| m == b"n+2\0" || m == b"ni2\0"),
        _ => false,
    }
}

/// The bytes of a `.nii` or `.nii.gz` file up to `need(header)` bytes (inflated when
/// gzipped, never past [`MAX_DECODED_BYTES`]), with its header.
pub(super) fn open<'a>(
    bytes: &'a [u8],
    name: &str,
    need: impl Fn(&Header) -> Result<usize>,
) -> Result<(Cow<'a, [u8]>, Header)> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        let header = header(bytes, name)?;
        return Ok((Cow::Borrowed(bytes), header));
    }
    let corrupt = |e: std::io::Error| Error::input(name, format!("corrupt gzip data ({e})"));
    let mut reader = flate2::read::MultiGzDecoder::new(bytes);
    let mut data = Vec::with_capacity(SIZE_V2);
    (&mut reader)
        .take(SIZE_V2 as u64)
        .read_to_end(&mut data)
        .map_err(corrupt)?;
    let header = header(&data, name)?;
    let total = need(&header)?;
    if total as u64 > MAX_DECODED_BYTES {
        return Err(Error::input(
            name,
            format!("the volume needs {total} bytes; at most {MAX_DECODED_BYTES} are read"),
        ));
    }
    let rest = total.saturating_sub(data.len()) as u64;
    data.try_reserve_exact(rest as usize)
        .map_err(|_| Error::input(name, format!("cannot allocate {total} bytes")))?;
    reader.take(rest).read_to_end(&mut data).map_err(corrupt)?;
    Ok((Cow::Owned(data), header))
}

/// Parse a NIfTI-1 (through the `nifti` crate) or NIfTI-2 header at the start of `bytes`.
pub(super) fn header(bytes: &[u8], name: &str) -> Result<Header> {
    let bad = |msg: &str| Error::input(name, msg.to_string());
    if !is_nifti_header(bytes) {
        return Err(bad(
            "not a NIfTI file: expected sizeof_hdr 348 with magic n+1, or 540 with magic n+2",
        ));
    }
    let v2 = bytes
        .get(4..8)
        .is_some_and(|m| m == b"n+2\0" || m == b"ni2\0");
    let magic = if v2 { &bytes[4..8] } else { &bytes[344..348] };
    if magic[1] == b'i' {
        return Err(bad(
            "a NIfTI header without its image (magic ni1/ni2: a .hdr/.img pair); expected a \
             single-file .nii",
        ));
    }
    let header = if v2 {
        header2(bytes).ok_or_else(|| bad("NIfTI-2 header cut short"))?
    } else {
        header1(bytes, name)?
    };
    if !(header.slope == 0.0 || !header.slope.is_finite() || header.inter.is_finite()) {
        return Err(bad("valid scl_slope but scl_inter is not finite"));
    }
    Ok(header)
}

fn header1(bytes: &[u8], name: &str) -> Result<Header> {
    let h = nifti::NiftiHeader::from_reader(bytes)
        .map_err(|e| Error::input(name, format!("cannot read the NIfTI-1 header ({e})")))?;
    let mut dim = [0i64; 8];
    for (d, &v) in dim.iter_mut().zip(&h.dim) {
        // The crate reads dims as u16; NIfTI-1 stores them as i16.
        *d = i64::from(v as i16);
    }
    let offset = h.vox_offset;
    if !(offset.is_finite() && offset >= 0.0 && offset.fract() == 0.0) {
        return Err(Error::input(
            name,
            format!("vox_offset {offset} is not a byte offset"),
        ));
    }
    Ok(Header {
        version: 1,
        big_endian: h.endianness == nifti::Endianness::Big,
        dim,
        datatype: h.datatype,
        offset: offset as usize,
        slope: f64::from(h.scl_slope),
        inter: f64::from(h.scl_inter),
    })
}

/// A NIfTI-2 header (`nifti2.h`: dims i64 at 16, vox_offset at 168, scl_slope/inter f64 at
/// 176/184, datatype i16 at 12), in the byte order its sizeof_hdr reads 540 in.
fn header2(bytes: &[u8]) -> Option<Header> {
    let b = bytes.get(..SIZE_V2)?;
    let big = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) != SIZE_V2 as i32;
    let word = |at: usize| -> [u8; 8] { b[at..at + 8].try_into().unwrap_or([0; 8]) };
    let i64_at = |at| {
        if big {
            i64::from_be_bytes(word(at))
        } else {
            i64::from_le_bytes(word(at))
        }
    };
    let f64_at = |at| f64::from_bits(i64_at(at) as u64);
    let datatype = [b[12], b[13]];
    let mut dim = [0i64; 8];
    for (i, d) in dim.iter_mut().enumerate() {
        *d = i64_at(16 + 8 * i);
    }
    Some(Header {
        version: 2,
        big_endian: big,
        dim,
        datatype: if big {
            i16::from_be_bytes(datatype)
        } else {
            i16::from_le_bytes(datatype)
        },
        offset: usize::try_from(i64_at(168)).ok()?,
        slope: f64_at(176),
        inter: f64_at(184),
    })
}

/// The grid of a header, checked: 2 to 4 dimensions that count (later ones must be 1), each
/// at least 1.
pub(super) fn grid(h: &Header, name: &str) -> Result<Grid> {
    let ndim = h.dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(Error::input(
            name,
            format!("dim[0] = {ndim}; expected 1 to 7"),
        ));
    }
    let dims = &h.dim[1..=ndim as usize];
    if let Some(d) = dims.iter().find(|&&d| d < 1) {
        return Err(Error::input(
            name,
            format!("dimension {d} in {dims:?}; every dimension must be at least 1"),
        ));
    }
    if dims.len() < 2 {
        return Err(Error::input(
            name,
            "a 1-D NIfTI; expected 2-D, 3-D or 4-D images",
        ));
    }
    if dims.len() > 4 && dims[4..].iter().any(|&d| d > 1) {
        return Err(Error::input(
            name,
            format!(
                "{}-D NIfTI {}; expected at most 4 dimensions",
                dims.len(),
                join(dims)
            ),
        ));
    }
    let at = |i: usize| dims.get(i).copied().unwrap_or(1) as usize;
    Ok(Grid {
        nx: at(0),
        ny: at(1),
        nz: at(2),
        nt: at(3),
    })
}

/// `128×96×24×2`.
fn join(dims: &[i64]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// The volume to read: `None` for a 3-D grid (volume 0 also accepted), `Some(v)` for a 4-D
/// one; a 4-D grid without `volume` is refused with its dimensions.
pub(super) fn pick_volume(g: Grid, volume: Option<usize>, name: &str) -> Result<Option<usize>> {
    match (g.nt, volume) {
        (1, None | Some(0)) => Ok(None),
        (1, Some(v)) => Err(Error::input(
            name,
            format!("--volume {v}: this file has a single volume (index 0)"),
        )),
        (nt, None) => Err(Error::input(
            name,
            format!(
                "4-D volume ({}×{}×{}×{nt}): pick one with --volume (first index 0, last {})",
                g.nx,
                g.ny,
                g.nz,
                nt - 1
            ),
        )),
        (nt, Some(v)) if v >= nt => Err(Error::input(
            name,
            format!("--volume {v}: this file has {nt} volumes (0 to {})", nt - 1),
        )),
        (_, Some(v)) => Ok(Some(v)),
    }
}

/// Bytes per voxel of a NIfTI datatype code, for the types read as values.
fn voxel_bytes(datatype: i16, name: &str) -> Result<usize> {
    Ok(match datatype {
        2 | 256 => 1,
        4 | 512 => 2,
        8 | 16 | 768 => 4,
        64 | 1024 | 1280 => 8,
        other => {
            let what = match other {
                1 => "binary (1-bit)",
                32 | 1792 | 2048 => "complex",
                128 | 2304 => "RGB(A)",
                1536 => "128-bit float",
                _ => "unknown",
            };
            return Err(Error::input(
                name,
                format!(
                    "NIfTI datatype {other} ({what}) is not supported; expected an integer or \
                     float type"
                ),
            ));
        }
    })
}

/// The voxel at byte `b` (one voxel's bytes) as f64.
fn voxel(datatype: i16, big: bool, b: &[u8]) -> f64 {
    let mut w = [0u8; 8];
    let n = b.len();
    if big {
        w[8 - n..].copy_from_slice(b);
    } else {
        w[..n].copy_from_slice(b);
    }
    let (u, s) = if big {
        (u64::from_be_bytes(w), i64::from_be_bytes(w))
    } else {
        (u64::from_le_bytes(w), i64::from_le_bytes(w))
    };
    match datatype {
        2 => u as u8 as f64,
        256 => u as u8 as i8 as f64,
        4 => u as u16 as i16 as f64,
        512 => u as u16 as f64,
        8 => u as u32 as i32 as f64,
        768 => u as u32 as f64,
        16 => f64::from(f32::from_bits(u as u32)),
        64 => f64::from_bits(u),
        1024 => s as f64,
        _ => u as f64,
    }
}

/// Read the slices of one volume of a NIfTI file: the frames and the volume index in names.
pub(super) fn read(
    bytes: &[u8],
    name: &str,
    volume: Option<usize>,
) -> Result<(Frames, Option<usize>)> {
    let plan = |h: &Header| -> Result<(Grid, Option<usize>, usize, usize)> {
        let g = grid(h, name)?;
        let v = pick_volume(g, volume, name)?;
        let size = voxel_bytes(h.datatype, name)?;
        check_size(g.nx, g.ny, 1, g.nz, name)?;
        let offset = match h.offset {
            0 => h.size() + 4,
            o if o < h.size() => {
                return Err(Error::input(
                    name,
                    format!("vox_offset {o} lies inside the {}-byte header", h.size()),
                ))
            }
            o => o,
        };
        let end = (g.nx * g.ny * g.nz * size)
            .checked_mul(v.unwrap_or(0) + 1)
            .and_then(|n| n.checked_add(offset))
            .ok_or_else(|| Error::input(name, "the volume's size overflows"))?;
        Ok((g, v, offset, end))
    };
    let (data, header) = open(bytes, name, |h| plan(h).map(|p| p.3))?;
    let (g, v, offset, end) = plan(&header)?;
    if data.len() < end {
        return Err(Error::input(
            name,
            format!(
                "the file has {} bytes of voxel data; its header needs {}: the file is truncated",
                data.len().saturating_sub(offset),
                end - offset
            ),
        ));
    }
    let size = voxel_bytes(header.datatype, name)?;
    let (slope, inter) = if header.slope == 0.0 || !header.slope.is_finite() {
        (1.0, 0.0)
    } else {
        (header.slope, header.inter)
    };
    let volume_start = offset + g.nx * g.ny * g.nz * size * v.unwrap_or(0);
    let mut slices = Vec::with_capacity(g.nz);
    for k in 0..g.nz {
        let mut values = Vec::with_capacity(g.nx * g.ny);
        for r in 0..g.ny {
            let j = g.ny - 1 - r;
            let row = volume_start + size * g.nx * (j + g.ny * k);
            for b in data[row..row + size * g.nx].chunks_exact(size) {
                values.push((voxel(header.datatype, header.big_endian, b) * slope + inter) as f32);
            }
        }
        slices.push(values);
    }
    let frames = Frames {
        width: g.nx,
        height: g.ny,
        channels: 1,
        frames: slices,
        display: Display::Gray {
            monochrome1: false,
            file_window: None,
        },
    };
    Ok((frames, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian NIfTI-2 file of `dims` int16 voxels 0, 1, 2, ….
    fn nifti2(dims: &[i64], slope: f64, inter: f64) -> Vec<u8> {
        let mut h = vec![0u8; SIZE_V2 + 4];
        h[..4].copy_from_slice(&(SIZE_V2 as i32).to_le_bytes());
        h[4..12].copy_from_slice(b"n+2\0\r\n\x1a\n");
        h[12..14].copy_from_slice(&4i16.to_le_bytes());
        h[16..24].copy_from_slice(&(dims.len() as i64).to_le_bytes());
        for (i, d) in dims.iter().enumerate() {
            h[24 + 8 * i..32 + 8 * i].copy_from_slice(&d.to_le_bytes());
        }
        h[168..176].copy_from_slice(&((SIZE_V2 + 4) as i64).to_le_bytes());
        h[176..184].copy_from_slice(&slope.to_le_bytes());
        h[184..192].copy_from_slice(&inter.to_le_bytes());
        let n: i64 = dims.iter().product();
        for v in 0..n as i16 {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }

    #[test]
    fn nifti2_slices_flip_j_and_scale() {
        // 2×3×2: slice 1 holds 6..11; row 0 is j = 2.
        let file = nifti2(&[2, 3, 2], 2.0, 1.0);
        let (frames, v) = read(&file, "t.nii", None).unwrap();
        assert_eq!(v, None);
        assert_eq!(
            (frames.width, frames.height, frames.frames.len()),
            (2, 3, 2)
        );
        assert_eq!(frames.frames[1], [21.0, 23.0, 17.0, 19.0, 13.0, 15.0]);
        // Slope 0 means no scaling.
        let (frames, _) = read(&nifti2(&[2, 3, 2], 0.0, 5.0), "t.nii", None).unwrap();
        assert_eq!(frames.frames[0][..2], [4.0, 5.0]);
    }

    #[test]
    fn four_d_needs_a_volume() {
        let file = nifti2(&[2, 2, 1, 3], 1.0, 0.0);
        let e = read(&file, "f.nii", None).unwrap_err().to_string();
        assert!(
            e.starts_with("f.nii: 4-D volume (2×2×1×3): pick one"),
            "{e}"
        );
        let (frames, v) = read(&file, "f.nii", Some(2)).unwrap();
        assert_eq!(v, Some(2));
        assert_eq!(frames.frames, [vec![10.0, 11.0, 8.0, 9.0]]);
        let e = read(&file, "f.nii", Some(3)).unwrap_err().to_string();
        assert!(e.contains("has 3 volumes"), "{e}");
    }

    #[test]
    fn truncated_voxels_are_refused() {
        let file = nifti2(&[4, 4, 4], 1.0, 0.0);
        let e = read(&file[..600], "t.nii", None).unwrap_err().to_string();
        assert!(e.contains("the file is truncated"), "{e}");
    }
}
