//! The segment-everything (SE) map: one index map painted from SAM's everything-mode masks.
//!
//! S2C ("From SAM to CAMs", CVPR 2024, Sec. 3.2, SAM-segment contrasting; official code
//! `get_se_map.py`) turns the automatic mask generator's output into a single map whose value
//! at a pixel is the index of the mask painted last over it, `-1` where no mask lies:
//!
//! ```text
//! temp = np.full((H, W), -1)
//! for i, mask in enumerate(reversed(masks)):
//!     temp[mask['segmentation']] = i
//! ```
//!
//! The official generator (no crops, S2C's setting) returns masks by descending predicted IoU
//! (its box NMS sorts by score), so S2C paints in **ascending predicted IoU, best painted
//! last**, and index `i` is the paint position. [`SeOrder::AscendingIou`] sorts by predicted
//! IoU ascending, breaking ties by reversed input order, which is exactly S2C's order on the
//! generator's output and stays well defined for any input order. [`SeOrder::SmallestOnTop`]
//! paints by descending area instead, so small parts stay visible on top of the objects that
//! contain them.
//!
//! ```
//! use camsam::refine::se_map::{se_map, SeOrder};
//! // Two 2×1 masks: A covers both pixels (IoU 0.9), B the right one (IoU 0.95).
//! let a = [true, true];
//! let b = [false, true];
//! let map = se_map(&[&a[..], &b[..]], &[0.9, 0.95], 2, 1, SeOrder::AscendingIou).unwrap();
//! assert_eq!(map.data, vec![0, 1]); // A painted first (index 0), B on top (index 1)
//! assert_eq!(map.order, vec![0, 1]); // paint position → input mask
//! ```

use crate::{Error, Result};

/// The order masks are painted in (the last painted wins a pixel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SeOrder {
    /// S2C's order: ascending predicted IoU, the best painted last.
    AscendingIou,
    /// Largest first, smallest painted last (on top).
    SmallestOnTop,
}

/// An SE map: per pixel the paint position of the mask on top, `-1` where none.
#[derive(Debug, Clone, PartialEq)]
pub struct SeMap {
    pub width: usize,
    pub height: usize,
    /// Row-major, `height × width`.
    pub data: Vec<i32>,
    /// `order[i]` is the index, in the input list, of the mask painted at position `i`.
    pub order: Vec<usize>,
}

/// Paint `masks` (each `height × width`, row-major) into an SE map.
pub fn se_map(
    masks: &[&[bool]],
    predicted_iou: &[f32],
    width: usize,
    height: usize,
    order: SeOrder,
) -> Result<SeMap> {
    if predicted_iou.len() != masks.len() {
        return Err(Error::input(
            "SE map",
            format!(
                "{} masks but {} predicted IoUs; expected one IoU per mask",
                masks.len(),
                predicted_iou.len()
            ),
        ));
    }
    if let Some(i) = masks.iter().position(|m| m.len() != width * height) {
        return Err(Error::input(
            format!("SE map mask {i}"),
            format!(
                "has {} pixels; expected {width}×{height} like the image",
                masks[i].len()
            ),
        ));
    }
    if masks.len() > i32::MAX as usize {
        return Err(Error::input(
            "SE map",
            "too many masks for an i32 index map",
        ));
    }
    // Reversed input order first (S2C's `reversed(masks)`), then a stable sort.
    let mut paint: Vec<usize> = (0..masks.len()).rev().collect();
    match order {
        SeOrder::AscendingIou => {
            paint.sort_by(|&a, &b| predicted_iou[a].total_cmp(&predicted_iou[b]));
        }
        SeOrder::SmallestOnTop => {
            let area: Vec<usize> = masks
                .iter()
                .map(|m| m.iter().filter(|&&v| v).count())
                .collect();
            paint.sort_by(|&a, &b| area[b].cmp(&area[a]));
        }
    }
    let mut data = vec![-1i32; width * height];
    for (pos, &m) in paint.iter().enumerate() {
        for (d, &inside) in data.iter_mut().zip(masks[m]) {
            if inside {
                *d = pos as i32;
            }
        }
    }
    Ok(SeMap {
        width,
        height,
        data,
        order: paint,
    })
}

/// The SE map of the automatic mask generator's output for one `width × height` image, in
/// its output order (see [`crate::refine::amg`]); an image with no masks gives an all-`-1` map.
/// Errors when a mask is not of the image's size.
pub fn se_map_from_records(
    records: &[crate::refine::amg::MaskRecord],
    width: usize,
    height: usize,
    order: SeOrder,
) -> Result<SeMap> {
    let bools: Vec<Vec<bool>> = records.iter().map(|r| r.segmentation.to_bools()).collect();
    let refs: Vec<&[bool]> = bools.iter().map(|b| b.as_slice()).collect();
    let iou: Vec<f32> = records.iter().map(|r| r.predicted_iou).collect();
    se_map(&refs, &iou, width, height, order)
}

impl SeOrder {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SeOrder::AscendingIou => "ascending-iou",
            SeOrder::SmallestOnTop => "smallest-on-top",
        }
    }
}

impl std::str::FromStr for SeOrder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ascending-iou" => Ok(SeOrder::AscendingIou),
            "smallest-on-top" => Ok(SeOrder::SmallestOnTop),
            _ => Err(Error::input(
                "SE-map order",
                format!("'{s}'; expected ascending-iou (S2C) or smallest-on-top"),
            )),
        }
    }
}

impl SeMap {
    /// The map as a 16-bit grayscale PNG holding `index + 1` (0 where no mask lies), so
    /// up to 65 534 masks fit. Errors when there are more.
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        if self.order.len() >= u16::MAX as usize {
            return Err(Error::input(
                "SE map",
                format!(
                    "{} masks; a 16-bit PNG holds at most {}",
                    self.order.len(),
                    u16::MAX - 1
                ),
            ));
        }
        let (w, h) = (self.width as u32, self.height as u32);
        let mut bytes = Vec::with_capacity(self.data.len() * 2);
        for &v in &self.data {
            bytes.extend_from_slice(&((v + 1) as u16).to_be_bytes());
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Sixteen);
            let mut writer = enc
                .write_header()
                .map_err(|e| Error::input("SE map PNG", e.to_string()))?;
            writer
                .write_image_data(&bytes)
                .map_err(|e| Error::input("SE map PNG", e.to_string()))?;
        }
        Ok(out)
    }

    /// Read a map written by [`SeMap::encode_png`] (the paint order is not stored; `order`
    /// comes back as `0..count` with `count` the largest index + 1).
    pub fn decode_png(bytes: &[u8], name: &str) -> Result<Self> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::IDENTITY);
        let mut reader = decoder
            .read_info()
            .map_err(|e| Error::input(name, format!("{e}; expected a 16-bit gray SE-map PNG")))?;
        let info = reader.info();
        crate::limits::check_pixels(info.width as usize, info.height as usize, name, "SE map")?;
        if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Sixteen
        {
            return Err(Error::input(
                name,
                format!(
                    "is {:?} {:?}; expected a 16-bit grayscale SE-map PNG",
                    info.color_type, info.bit_depth
                ),
            ));
        }
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| Error::input(name, "is too large to decode"))?;
        let mut buf = vec![0u8; size];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| Error::input(name, format!("{e}; expected a 16-bit gray SE-map PNG")))?;
        let (w, h) = (frame.width as usize, frame.height as usize);
        let mut data = Vec::with_capacity(w * h);
        for row in buf[..frame.line_size * h].chunks_exact(frame.line_size) {
            data.extend(
                row[..w * 2]
                    .chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) as i32 - 1),
            );
        }
        let count = data.iter().copied().max().map_or(0, |m| (m + 1).max(0)) as usize;
        Ok(SeMap {
            width: w,
            height: h,
            data,
            order: (0..count).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4×1 image. Masks (input order, as the generator returns them, descending IoU):
    /// 0: all four pixels, IoU 0.97, area 4; 1: pixels 0–1, IoU 0.95, area 2;
    /// 2: pixel 1, IoU 0.90, area 1. Pixel 3 is covered only by mask 0.
    fn masks() -> Vec<Vec<bool>> {
        vec![
            vec![true, true, true, true],
            vec![true, true, false, false],
            vec![false, true, false, false],
        ]
    }

    #[test]
    fn s2c_order_paints_best_iou_last() {
        let m = masks();
        let refs: Vec<&[bool]> = m.iter().map(|v| v.as_slice()).collect();
        let map = se_map(&refs, &[0.97, 0.95, 0.90], 4, 1, SeOrder::AscendingIou).unwrap();
        // reversed: paint 2 (pos 0), 1 (pos 1), 0 (pos 2) — mask 0 covers everything.
        assert_eq!(map.order, vec![2, 1, 0]);
        assert_eq!(map.data, vec![2, 2, 2, 2]);
    }

    #[test]
    fn smallest_on_top_keeps_parts_visible() {
        let m = masks();
        let refs: Vec<&[bool]> = m.iter().map(|v| v.as_slice()).collect();
        let map = se_map(&refs, &[0.97, 0.95, 0.90], 4, 1, SeOrder::SmallestOnTop).unwrap();
        assert_eq!(map.order, vec![0, 1, 2]);
        assert_eq!(map.data, vec![1, 2, 0, 0]);
    }

    #[test]
    fn ties_follow_reversed_input_order_and_uncovered_is_minus_one() {
        let a = [true, false, false];
        let b = [true, true, false];
        let map = se_map(&[&a[..], &b[..]], &[0.9, 0.9], 3, 1, SeOrder::AscendingIou).unwrap();
        // Equal IoU: reversed input order, so b first, a on top.
        assert_eq!(map.order, vec![1, 0]);
        assert_eq!(map.data, vec![1, 0, -1]);
    }

    #[test]
    fn png_round_trip() {
        let m = masks();
        let refs: Vec<&[bool]> = m.iter().map(|v| v.as_slice()).collect();
        let mut map = se_map(&refs, &[0.97, 0.95, 0.90], 4, 1, SeOrder::SmallestOnTop).unwrap();
        map.data[3] = -1;
        let back = SeMap::decode_png(&map.encode_png().unwrap(), "se.png").unwrap();
        assert_eq!(back.data, map.data);
        assert_eq!((back.width, back.height), (4, 1));
    }

    #[test]
    fn from_generator_records() {
        use crate::core::masks::BitMask;
        use crate::refine::amg::MaskRecord;
        let record = |bools: &[bool], iou: f32| MaskRecord {
            segmentation: BitMask::from_bools(2, 1, bools).unwrap(),
            area: bools.iter().filter(|&&b| b).count(),
            bbox: [0, 0, 2, 1],
            predicted_iou: iou,
            point_coords: [0.0, 0.0],
            stability_score: 1.0,
            crop_box: [0, 0, 2, 1],
        };
        let records = [record(&[true, false], 0.99), record(&[true, true], 0.9)];
        let map = se_map_from_records(&records, 2, 1, SeOrder::AscendingIou).unwrap();
        assert_eq!(map.order, vec![1, 0]);
        assert_eq!(map.data, vec![1, 0]);
        let empty = se_map_from_records(&[], 2, 1, SeOrder::AscendingIou).unwrap();
        assert_eq!(empty.data, vec![-1, -1]);
        assert!(se_map_from_records(&records, 3, 1, SeOrder::AscendingIou).is_err());
        for order in [SeOrder::AscendingIou, SeOrder::SmallestOnTop] {
            assert_eq!(order.name().parse::<SeOrder>().unwrap(), order);
        }
        let err = "best".parse::<SeOrder>().unwrap_err().to_string();
        assert!(err.contains("ascending-iou"), "{err}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let a = [true, false];
        assert!(se_map(&[&a[..]], &[], 2, 1, SeOrder::AscendingIou).is_err());
        assert!(se_map(&[&a[..]], &[0.5], 3, 1, SeOrder::AscendingIou).is_err());
        assert!(SeMap::decode_png(b"not a png", "x.png").is_err());
    }
}
