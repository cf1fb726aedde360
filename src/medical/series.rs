//! DICOM series: the order of the single-frame files of a series, as viewers stack them.
//!
//! Files are ordered by InstanceNumber (0020,0013), then by ImagePositionPatient (0020,0032)
//! along the slice normal (the cross product of ImageOrientationPatient's (0020,0037) row and
//! column directions; the z component of the position when the file has no orientation), then
//! by file name. A file without InstanceNumber comes after those with one, and one without a
//! position after those with one. Files of different series (SeriesInstanceUID (0020,000E))
//! are not interleaved: each series is ordered on its own and takes the place of its
//! first file by name; a file without SeriesInstanceUID, and any file that is not DICOM,
//! keeps its own place by name. Only the header is parsed (up to the pixel data), after the same
//! structural check as [`super::read_slices`].
//!
//! Slice names are not changed by the order: each file of a series is its own slice, named
//! by its stem as [`super::read_slices`] names a single frame.

use super::dicom::{element, text};
use super::guard::no_panic;
use super::{is_dicom_bytes, scan};
use crate::{Error, Result};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::OpenFileOptions;
use std::cmp::Ordering;

/// Where a DICOM file sits in its series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesPosition {
    /// SeriesInstanceUID, when present.
    pub series: Option<String>,
    /// InstanceNumber, when present and an integer.
    pub instance: Option<i64>,
    /// ImagePositionPatient projected on the slice normal (mm); its z component when the
    /// file has no usable ImageOrientationPatient.
    pub position: Option<f64>,
}

/// The [`SeriesPosition`] of the DICOM file `bytes` (with or without its 128-byte preamble);
/// `name` names it in errors. Reads the header only.
pub fn series_position(bytes: &[u8], name: &str) -> Result<SeriesPosition> {
    let file = if is_dicom_bytes(bytes) {
        &bytes[128..]
    } else {
        bytes
    };
    scan::check(file, name)?;
    let obj = no_panic(name, "DICOM parser", || {
        OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .read_until(tags::PIXEL_DATA)
            .from_reader(file)
            .map_err(|e| Error::input(name, format!("cannot parse the DICOM data set ({e})")))
    })?;
    let numbers = |tag| -> Option<Vec<f64>> {
        let v = element(&obj, tag)?.to_multi_float64().ok()?;
        v.iter().all(|x| x.is_finite()).then_some(v)
    };
    let instance = element(&obj, tags::INSTANCE_NUMBER).and_then(|e| e.to_int::<i64>().ok());
    let position = numbers(tags::IMAGE_POSITION_PATIENT)
        .filter(|p| p.len() == 3)
        .map(|p| match numbers(tags::IMAGE_ORIENTATION_PATIENT) {
            Some(o) if o.len() == 6 => {
                let n = [
                    o[1] * o[5] - o[2] * o[4],
                    o[2] * o[3] - o[0] * o[5],
                    o[0] * o[4] - o[1] * o[3],
                ];
                if n.iter().all(|c| *c == 0.0) {
                    p[2]
                } else {
                    p[0] * n[0] + p[1] * n[1] + p[2] * n[2]
                }
            }
            _ => p[2],
        });
    Ok(SeriesPosition {
        series: text(&obj, tags::SERIES_INSTANCE_UID),
        instance,
        position,
    })
}

/// The series order of `files`: `(file name, its position)` pairs, `None` for files that are
/// not DICOM or whose header could not be read (they keep their place by name). Returns the
/// indices of `files` in order.
pub fn series_order(files: &[(&str, Option<&SeriesPosition>)]) -> Vec<usize> {
    // Each series sorts at the place of its first file by name.
    let mut first: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (name, pos) in files {
        if let Some(uid) = pos.and_then(|p| p.series.as_deref()) {
            let slot = first.entry(uid).or_insert(name);
            if *name < *slot {
                *slot = name;
            }
        }
    }
    let group = |i: usize| -> &str {
        let (name, pos) = files[i];
        pos.and_then(|p| p.series.as_deref())
            .and_then(|uid| first.get(uid).copied())
            .unwrap_or(name)
    };
    // Present values first, then absent ones.
    fn some_first<T>(a: Option<T>, b: Option<T>, cmp: impl Fn(T, T) -> Ordering) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) => cmp(a, b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (files[a].1, files[b].1);
        group(a)
            .cmp(group(b))
            .then_with(|| {
                some_first(
                    pa.and_then(|p| p.instance),
                    pb.and_then(|p| p.instance),
                    |x, y| x.cmp(&y),
                )
            })
            .then_with(|| {
                some_first(
                    pa.and_then(|p| p.position),
                    pb.and_then(|p| p.position),
                    |x, y| x.total_cmp(&y),
                )
            })
            .then_with(|| files[a].0.cmp(files[b].0))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(series: &str, instance: Option<i64>, position: Option<f64>) -> SeriesPosition {
        SeriesPosition {
            series: Some(series.to_string()),
            instance,
            position,
        }
    }

    #[test]
    fn instance_number_then_position_then_name() {
        let a = at("s", Some(3), Some(0.0));
        let b = at("s", Some(1), Some(9.0));
        let c = at("s", Some(2), Some(-4.0));
        let d = at("s", None, Some(-2.0));
        let e = at("s", None, Some(-5.0));
        let f = at("s", None, None);
        let files = [
            ("a", Some(&a)),
            ("b", Some(&b)),
            ("c", Some(&c)),
            ("d", Some(&d)),
            ("e", Some(&e)),
            ("f", Some(&f)),
            ("g", Some(&f)),
        ];
        let names: Vec<&str> = series_order(&files).iter().map(|&i| files[i].0).collect();
        assert_eq!(names, ["b", "c", "a", "e", "d", "f", "g"]);
    }

    #[test]
    fn series_stay_together_at_their_first_file() {
        let s1 = at("1", Some(2), None);
        let s1b = at("1", Some(1), None);
        let s2 = at("2", Some(1), None);
        let files = [
            ("a", Some(&s1)),
            ("b", Some(&s2)),
            ("c", None),
            ("d", Some(&s1b)),
        ];
        let names: Vec<&str> = series_order(&files).iter().map(|&i| files[i].0).collect();
        assert_eq!(names, ["d", "a", "b", "c"]);
    }
}
