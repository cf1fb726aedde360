//! Label maps back to a NIfTI volume on a reference's grid: the exact inverse of the slice
//! mapping of [`super::read_slices`], so labels drawn on slice `<stem>_<K>` land on voxels
//! `[:, :, K]` of the reference.
//!
//! The output header is the reference's own, byte for byte (its qform, sform, pixdim, units,
//! description and byte order), with only what describes the voxels changed: datatype uint8,
//! bitpix 8, scl_slope 1, scl_inter 0, cal_min/cal_max 0, intent NIFTI_INTENT_LABEL, voxels
//! right after the header (no extensions), and a 4-D reference's time axis dropped when one
//! volume was labelled. The file is gzipped (`.nii.gz`).

use super::nifti::{self, Header};
use super::{slice_name, stem};
use crate::core::label::LabelMap;
use crate::{Error, Result};
use std::io::Write;

/// NIFTI_INTENT_LABEL: each voxel is an index into a set of labels.
const INTENT_LABEL: i32 = 1002;

/// Build the `.nii.gz` label volume for the NIfTI `reference` (its bytes; `name` names it and
/// gives the slice names): `label(slice_name)` returns the class-id map of each slice, named
/// as [`super::read_slices`] names them (`volume` as given there). A map of the wrong size is
/// refused naming its slice; `label`'s own errors (a missing slice) pass through.
pub fn label_volume(
    reference: &[u8],
    name: &str,
    volume: Option<usize>,
    label: &mut dyn FnMut(&str) -> Result<LabelMap>,
) -> Result<Vec<u8>> {
    let (data, header) = nifti::open(reference, name, |h| Ok(h.size()))?;
    let header_bytes = data
        .get(..header.size())
        .ok_or_else(|| Error::input(name, "NIfTI header cut short"))?;
    let grid = nifti::grid(&header, name)?;
    let picked = nifti::pick_volume(grid, volume, name)?;
    let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz);
    super::check_size(nx, ny, 1, nz, name)?;
    let stem = stem(name);
    let mut voxels = vec![0u8; nx * ny * nz];
    for k in 0..nz {
        let slice = slice_name(stem, picked, k, nz);
        let map = label(&slice)?;
        if (map.width, map.height) != (nx, ny) {
            return Err(Error::input(
                &slice,
                format!(
                    "label map is {}×{}; the slices of {name} are {nx}×{ny}",
                    map.width, map.height
                ),
            ));
        }
        for r in 0..ny {
            let j = ny - 1 - r;
            let at = nx * (j + ny * k);
            voxels[at..at + nx].copy_from_slice(&map.data[r * nx..(r + 1) * nx]);
        }
    }
    let mut out_header = header_bytes.to_vec();
    patch(&mut out_header, &header, picked.is_some());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let io = |e: std::io::Error| Error::input(name, format!("cannot compress the volume ({e})"));
    gz.write_all(&out_header).map_err(io)?;
    gz.write_all(&[0, 0, 0, 0]).map_err(io)?;
    gz.write_all(&voxels).map_err(io)?;
    gz.finish().map_err(io)
}

/// Rewrite the voxel-describing fields of a copied header in its own byte order.
fn patch(bytes: &mut [u8], header: &Header, drop_time: bool) {
    let big = header.big_endian;
    let mut put = |at: usize, le: &[u8]| {
        let n = le.len();
        let dst = &mut bytes[at..at + n];
        dst.copy_from_slice(le);
        if big {
            dst.reverse();
        }
    };
    let data_offset = header.size() + 4;
    if header.version == 1 {
        if drop_time {
            put(40, &3i16.to_le_bytes());
            put(48, &1i16.to_le_bytes());
        }
        put(56, &0f32.to_le_bytes()); // intent_p1..p3
        put(60, &0f32.to_le_bytes());
        put(64, &0f32.to_le_bytes());
        put(68, &(INTENT_LABEL as i16).to_le_bytes());
        put(70, &2i16.to_le_bytes()); // datatype: uint8
        put(72, &8i16.to_le_bytes()); // bitpix
        put(108, &(data_offset as f32).to_le_bytes());
        put(112, &1f32.to_le_bytes()); // scl_slope
        put(116, &0f32.to_le_bytes()); // scl_inter
        put(124, &0f32.to_le_bytes()); // cal_max
        put(128, &0f32.to_le_bytes()); // cal_min
        put(140, &0i32.to_le_bytes()); // glmax
        put(144, &0i32.to_le_bytes()); // glmin
    } else {
        if drop_time {
            put(16, &3i64.to_le_bytes());
            put(48, &1i64.to_le_bytes());
        }
        put(80, &0f64.to_le_bytes());
        put(88, &0f64.to_le_bytes());
        put(96, &0f64.to_le_bytes());
        put(504, &INTENT_LABEL.to_le_bytes());
        put(12, &2i16.to_le_bytes());
        put(14, &8i16.to_le_bytes());
        put(168, &(data_offset as i64).to_le_bytes());
        put(176, &1f64.to_le_bytes());
        put(184, &0f64.to_le_bytes());
        put(192, &0f64.to_le_bytes());
        put(200, &0f64.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A little-endian NIfTI-2 file: 3×2×2 float32 voxels 0..12, 4-D when `nt` > 1.
    fn nifti2(nt: i64) -> Vec<u8> {
        let mut h = vec![0u8; 544];
        h[..4].copy_from_slice(&540i32.to_le_bytes());
        h[4..12].copy_from_slice(b"n+2\0\r\n\x1a\n");
        h[12..14].copy_from_slice(&16i16.to_le_bytes());
        h[14..16].copy_from_slice(&32i16.to_le_bytes());
        let dims = [if nt > 1 { 4 } else { 3 }, 3, 2, 2, nt, 1, 1, 1];
        for (i, d) in dims.iter().enumerate() {
            h[16 + 8 * i..24 + 8 * i].copy_from_slice(&d.to_le_bytes());
        }
        h[112..120].copy_from_slice(&1.5f64.to_le_bytes()); // pixdim[1]
        h[168..176].copy_from_slice(&544i64.to_le_bytes());
        h[176..184].copy_from_slice(&2.0f64.to_le_bytes());
        h[348..352].copy_from_slice(&1i32.to_le_bytes()); // sform_code
        h[400..408].copy_from_slice(&(-1.5f64).to_le_bytes()); // srow_x[0]
        for v in 0..12 * nt {
            h.extend_from_slice(&(v as f32).to_le_bytes());
        }
        h
    }

    #[test]
    fn nifti2_labels_keep_the_grid_and_invert_the_slicing() {
        for (nt, volume) in [(1, None), (2, Some(1))] {
            let file = nifti2(nt);
            let opts = super::super::MedicalOptions {
                window: None,
                volume,
            };
            let slices = super::super::read_slices(&file, "t.nii", &opts).unwrap();
            let mut by_name = std::collections::HashMap::new();
            for s in &slices {
                let ids = s.values.iter().map(|&v| (v / 2.0) as u8).collect();
                by_name.insert(
                    s.name.clone(),
                    LabelMap::new(s.width, s.height, ids).unwrap(),
                );
            }
            let gz = label_volume(&file, "t.nii", volume, &mut |n| Ok(by_name[n].clone())).unwrap();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut out)
                .unwrap();
            let h = nifti::header(&out, "out").unwrap();
            assert_eq!(h.version, 2);
            assert_eq!(&h.dim[..4], &[3, 3, 2, 2]);
            assert_eq!((h.datatype, h.offset, h.slope, h.inter), (2, 544, 1.0, 0.0));
            // The grid fields are the reference's.
            assert_eq!(out[104..168], file[104..168], "pixdim");
            assert_eq!(out[344..496], file[344..496], "qform/sform");
            // Labels are the stored values of the labelled volume, in file order.
            let first = 12 * volume.unwrap_or(0) as u8;
            let want: Vec<u8> = (first..first + 12).collect();
            assert_eq!(&out[544..], &want[..]);
        }
    }
}
