//! Windowing: modality values onto the 8-bit image the model and the page see.
//!
//! A window maps a value range linearly onto 0..255 and clips outside it, DICOM's linear VOI
//! function (PS3.3 C.11.2.1.2.1) with the output range 0..255:
//!
//! ```text
//! x <= c - 0.5 - (w - 1) / 2  →  0
//! x >  c - 0.5 + (w - 1) / 2  →  255
//! else                        →  ((x - (c - 0.5)) / (w - 1) + 0.5) · 255
//! ```
//!
//! rounded to the nearest level. Min-max maps the file's smallest value to 0 and its largest
//! to 255. MONOCHROME1 (low values bright) is inverted after the window.

use super::Display;
use crate::{Error, Result};

/// Where a gray image's 0..255 range comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// The DICOM's own first WindowCenter / WindowWidth.
    File,
    /// The file's smallest value → 0, its largest → 255 (over all frames or slices).
    MinMax,
    /// A window centre and width (width ≥ 1), in modality units (e.g. Hounsfield units).
    CenterWidth(f64, f64),
}

/// Named windows (centre, width) in Hounsfield units, for CT.
pub const PRESETS: [(&str, f64, f64); 4] = [
    ("ct-lung", -600.0, 1500.0),
    ("ct-soft", 40.0, 400.0),
    ("ct-bone", 400.0, 1800.0),
    ("ct-brain", 40.0, 80.0),
];

impl std::str::FromStr for Window {
    type Err = String;

    /// `file`, `minmax`, `C,W` (e.g. `40,400`) or a preset name (`ct-lung`, `ct-soft`,
    /// `ct-bone`, `ct-brain`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let expected = "expected file, minmax, C,W (e.g. 40,400) or a preset \
                        (ct-lung, ct-soft, ct-bone, ct-brain)";
        match s.to_ascii_lowercase().as_str() {
            "file" => return Ok(Window::File),
            "minmax" | "min-max" => return Ok(Window::MinMax),
            lower => {
                if let Some(&(_, c, w)) = PRESETS.iter().find(|(n, _, _)| *n == lower) {
                    return Ok(Window::CenterWidth(c, w));
                }
            }
        }
        let (c, w) = s
            .split_once(',')
            .ok_or_else(|| format!("unknown window '{s}': {expected}"))?;
        let number = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("window '{s}': '{}' is not a number; {expected}", t.trim()))
        };
        let (c, w) = (number(c)?, number(w)?);
        if w < 1.0 {
            return Err(format!(
                "window '{s}': width {w} is below 1 (DICOM windows are at least 1 wide)"
            ));
        }
        Ok(Window::CenterWidth(c, w))
    }
}

impl std::fmt::Display for Window {
    /// As [`Window::from_str`](std::str::FromStr) reads it: `file`, `minmax` or `C,W`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Window::File => f.write_str("file"),
            Window::MinMax => f.write_str("minmax"),
            Window::CenterWidth(c, w) => write!(f, "{c},{w}"),
        }
    }
}

/// DICOM's linear VOI function onto 0..255 (see the module docs), before rounding.
pub fn linear_voi(x: f64, center: f64, width: f64) -> f64 {
    let low = center - 0.5 - (width - 1.0) / 2.0;
    let high = center - 0.5 + (width - 1.0) / 2.0;
    if x <= low {
        0.0
    } else if x > high {
        255.0
    } else {
        ((x - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    }
}

/// A level in 0..255 from a value already on that scale: rounded, clipped, NaN → 0.
fn level(v: f64) -> u8 {
    if v.is_nan() {
        0
    } else {
        v.round().clamp(0.0, 255.0) as u8
    }
}

/// The smallest and largest finite value of a file (`None` when it has none), for min-max.
pub(super) fn finite_range<'a>(values: impl Iterator<Item = &'a f32>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |range, &v| {
        let v = f64::from(v);
        Some(match range {
            None => (v, v),
            Some((lo, hi)) => (v.min(lo), v.max(hi)),
        })
    })
}

/// The value → 8-bit level function for a file shown as `display`, with the `window` asked
/// for (`None`: the file's own window if it has one, else min-max). `range` is the file's
/// [`finite_range`] (for min-max). An explicit [`Window::File`] on a file without a window is
/// refused, naming `name`.
pub(super) fn mapping(
    display: Display,
    range: Option<(f64, f64)>,
    window: Option<&Window>,
    name: &str,
) -> Result<Box<dyn Fn(f32) -> u8>> {
    let (monochrome1, file_window) = match display {
        Display::Rgb { max } => {
            let scale = 255.0 / max;
            return Ok(Box::new(move |v| level(f64::from(v) * scale)));
        }
        Display::Gray {
            monochrome1,
            file_window,
        } => (monochrome1, file_window),
    };
    let window = match (window, file_window) {
        (Some(w), _) => *w,
        (None, Some(_)) => Window::File,
        (None, None) => Window::MinMax,
    };
    let gray: Box<dyn Fn(f32) -> u8> = match window {
        Window::File => {
            let (c, w) = file_window.ok_or_else(|| {
                Error::input(
                    name,
                    "no usable WindowCenter/WindowWidth in the file; use --window minmax, C,W \
                     or a preset",
                )
            })?;
            Box::new(move |v| level(linear_voi(f64::from(v), c, w)))
        }
        Window::CenterWidth(c, w) => Box::new(move |v| level(linear_voi(f64::from(v), c, w))),
        Window::MinMax => {
            let (min, max) = range.unwrap_or((0.0, 0.0));
            let range = max - min;
            if range > 0.0 {
                Box::new(move |v| level((f64::from(v) - min) / range * 255.0))
            } else {
                // A constant image (or one without finite values) shows as black.
                Box::new(|_| 0)
            }
        }
    };
    Ok(if monochrome1 {
        Box::new(move |v| 255 - gray(v))
    } else {
        gray
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_from_names_and_numbers() {
        assert_eq!("file".parse::<Window>(), Ok(Window::File));
        assert_eq!("MinMax".parse::<Window>(), Ok(Window::MinMax));
        assert_eq!(
            "ct-lung".parse::<Window>(),
            Ok(Window::CenterWidth(-600.0, 1500.0))
        );
        assert_eq!(
            " 40, 400 ".parse::<Window>(),
            Ok(Window::CenterWidth(40.0, 400.0))
        );
        assert!("40,0.5".parse::<Window>().unwrap_err().contains("below 1"));
        assert!("lung".parse::<Window>().unwrap_err().contains("ct-lung"));
        for w in [
            Window::File,
            Window::MinMax,
            Window::CenterWidth(-600.0, 1500.5),
        ] {
            assert_eq!(w.to_string().parse::<Window>(), Ok(w));
        }
        assert!("a,b"
            .parse::<Window>()
            .unwrap_err()
            .contains("not a number"));
    }

    #[test]
    fn the_linear_voi_function_matches_the_standard() {
        // c = 40, w = 400: [-160, 240) maps onto 0..255.
        assert_eq!(linear_voi(-160.5, 40.0, 400.0), 0.0);
        assert_eq!(linear_voi(239.6, 40.0, 400.0), 255.0);
        assert!((linear_voi(39.5, 40.0, 400.0) - 127.5).abs() < 1e-9);
        // Width 1 is a threshold at c - 0.5.
        assert_eq!(linear_voi(9.5, 10.0, 1.0), 0.0);
        assert_eq!(linear_voi(9.6, 10.0, 1.0), 255.0);
    }

    #[test]
    fn monochrome1_is_inverted_and_rgb16_scaled() {
        let gray = Display::Gray {
            monochrome1: true,
            file_window: None,
        };
        let f = mapping(gray, finite_range([0.0, f32::NAN, 10.0].iter()), None, "x").unwrap();
        assert_eq!((f(0.0), f(10.0)), (255, 0));
        let f = mapping(Display::Rgb { max: 65535.0 }, None, None, "x").unwrap();
        assert_eq!((f(65535.0), f(257.0), f(0.0)), (255, 1, 0));
        let e = mapping(gray, None, Some(&Window::File), "a.nii")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("a.nii: no usable WindowCenter"), "{e}");
    }
}
