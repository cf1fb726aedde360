//! The generator's records as SAM's `scripts/amg.py` writes them (`write_masks_to_folder`):
//! `<i>.png` (0/255) per mask and `metadata.csv`, so `camsam merge` and other SAM tooling
//! read them directly. Numbers are printed as Python's `str` prints them.
//!
//! ```
//! use camsam::refine::amg::output::py_float;
//! assert_eq!(py_float(414.0), "414.0");
//! assert_eq!(py_float(0.949999988079071), "0.949999988079071");
//! assert_eq!(py_float(1e-5), "1e-05");
//! ```

use super::MaskRecord;

/// The header of `metadata.csv`.
pub const METADATA_HEADER: &str = "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,\
point_input_y,predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h";

/// Python's `repr`/`str` of a float: the shortest round-trip digits, `.0` on integral
/// values, exponent form (two-digit exponent at least) below 1e-4 and from 1e16 up.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust: "1e-5", "1.5e16"; Python: "1e-05", "1.5e+16"
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `metadata.csv` for `records` (rows joined by `\n`, no trailing newline, as `amg.py`).
pub fn metadata_csv(records: &[MaskRecord]) -> String {
    let mut lines = vec![METADATA_HEADER.to_string()];
    for (i, r) in records.iter().enumerate() {
        let mut row = vec![i.to_string(), r.area.to_string()];
        row.extend(r.bbox.iter().map(|v| v.to_string()));
        row.extend(r.point_coords.iter().map(|&v| py_float(v)));
        row.push(py_float(r.predicted_iou as f64));
        row.push(py_float(r.stability_score as f64));
        row.extend(r.crop_box.iter().map(|v| v.to_string()));
        lines.push(row.join(","));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::masks::BitMask;

    #[test]
    fn python_float_strings() {
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(-2.5), "-2.5");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(2e16), "2e+16");
        assert_eq!(py_float(0.9757459163665771), "0.9757459163665771");
    }

    #[test]
    fn csv_rows_follow_amg_py() {
        let r = MaskRecord {
            segmentation: BitMask::empty(2, 2),
            area: 5158,
            bbox: [339, 259, 81, 81],
            predicted_iou: 0.95,
            point_coords: [414.4375, 299.0],
            stability_score: 0.975_745_9,
            crop_box: [239, 159, 401, 321],
        };
        let csv = metadata_csv(&[r]);
        let lines: Vec<&str> = csv.split('\n').collect();
        assert_eq!(lines[0], METADATA_HEADER);
        assert_eq!(
            lines[1],
            "0,5158,339,259,81,81,414.4375,299.0,0.949999988079071,0.9757459163665771,239,159,401,321"
        );
        assert!(!csv.ends_with('\n'));
    }
}
