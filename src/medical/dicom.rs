//! DICOM (PS3.10 files) to frames of modality values.
//!
//! The file is checked structurally first ([`super::scan`]), parsed with dicom-object, and its
//! pixel data decoded natively (uncompressed, deflated) or through [`super::codec`]. Stored
//! samples take Bits Stored and Pixel Representation into account (masked, sign-extended),
//! then the Modality LUT: value = stored × RescaleSlope + RescaleIntercept, in f64 as pydicom's
//! `apply_modality_lut`, stored as f32. Colour: RGB as stored; YBR_FULL / YBR_FULL_422 to RGB
//! with pydicom's matrix; PALETTE COLOR through its LUT (the entries as stored).

use super::codec::{self, Codec, Geometry};
use super::guard::no_panic;
use super::{check_size, is_dicom_bytes, scan, Display, Frames};
use super::{MAX_COMPRESSION_RATIO, SMALL_DECODE_BYTES};
use crate::{Error, Result};
use dicom_core::header::HasLength;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{InMemDicomObject, OpenFileOptions};

/// Read every frame of the DICOM file `bytes` (with or without its 128-byte preamble).
pub(super) fn read(bytes: &[u8], name: &str) -> Result<Frames> {
    let file = if is_dicom_bytes(bytes) {
        &bytes[128..]
    } else {
        bytes
    };
    let syntax = scan::check(file, name)?;
    let obj = no_panic(name, "DICOM parser", || {
        OpenFileOptions::new()
            .read_preamble(ReadPreamble::Never)
            .from_reader(file)
            .map_err(|e| Error::input(name, format!("cannot parse the DICOM data set ({e})")))
    })?;
    let attrs = Attributes::read(&obj, name)?;
    let codec = Codec::from_syntax(&syntax, name)?;
    // Attributes::read has refused data sets without it.
    let pixel_data = element(&obj, tags::PIXEL_DATA)
        .ok_or_else(|| Error::input(name, "no pixel data (7FE0,0010)"))?;
    let g = attrs.geometry;
    let raw = match codec {
        None => native(
            pixel_data.value(),
            &attrs,
            syntax == scan::EXPLICIT_VR_BE,
            name,
        )?,
        Some(codec) => {
            let (Some(fragments), Some(table)) = (
                pixel_data.value().fragments(),
                pixel_data.value().offset_table(),
            ) else {
                return Err(Error::input(
                    name,
                    "the transfer syntax is compressed but the pixel data is not encapsulated",
                ));
            };
            let compressed: usize = fragments.iter().map(Vec::len).sum();
            let decoded = g.frame_bytes() * attrs.frames;
            if decoded > (compressed.saturating_mul(MAX_COMPRESSION_RATIO)).max(SMALL_DECODE_BYTES)
            {
                return Err(Error::input(
                    name,
                    format!(
                        "{compressed} bytes of compressed pixel data claim to decode into \
                         {decoded} (over {MAX_COMPRESSION_RATIO}×): refused as malformed"
                    ),
                ));
            }
            let frames = codec::frames(fragments, table, attrs.frames, codec, name)?;
            let mut raw = Vec::with_capacity(g.frame_bytes());
            for (k, frame) in frames.iter().enumerate() {
                codec::decode(codec, frame, g, k, &mut raw, name)?;
            }
            raw
        }
    };
    attrs.interpret(&raw, codec, &obj, name)
}

/// The image attributes of a data set (PS3.3 C.7.6.3).
struct Attributes {
    geometry: Geometry,
    frames: usize,
    bits_stored: usize,
    signed: bool,
    photometric: String,
    planar: bool,
    slope: f64,
    intercept: f64,
    window: Option<(f64, f64)>,
}

/// The element `tag` of `obj`, if present.
pub(super) fn element(
    obj: &InMemDicomObject,
    tag: Tag,
) -> Option<&dicom_object::mem::InMemElement> {
    obj.element_opt(tag).ok().flatten()
}

/// The first item of the sequence `tag`.
fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    element(obj, tag)?.items()?.first()
}

/// `tag` as an unsigned integer: `Ok(None)` when absent or empty, an error when malformed.
fn uint(obj: &InMemDicomObject, tag: Tag, what: &str, name: &str) -> Result<Option<usize>> {
    match element(obj, tag) {
        None => Ok(None),
        Some(e) if e.value().primitive().is_some_and(|p| p.is_empty()) => Ok(None),
        Some(e) => e
            .to_int::<u32>()
            .map(|v| Some(v as usize))
            .map_err(|_| Error::input(name, format!("{what} {tag} is not an unsigned integer"))),
    }
}

/// The first value of `tag` as a finite number, if present and readable.
fn number(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    element(obj, tag)?
        .to_multi_float64()
        .ok()?
        .first()
        .copied()
        .filter(|v| v.is_finite())
}

/// `tag` as a trimmed string, if present.
pub(super) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = element(obj, tag)?.to_str().ok()?;
    let s = s.trim_matches(['\0', ' ']).to_string();
    (!s.is_empty()).then_some(s)
}

impl Attributes {
    fn read(obj: &InMemDicomObject, name: &str) -> Result<Self> {
        if element(obj, tags::PIXEL_DATA).is_none() {
            if element(obj, tags::FLOAT_PIXEL_DATA).is_some()
                || element(obj, tags::DOUBLE_FLOAT_PIXEL_DATA).is_some()
            {
                return Err(Error::input(
                    name,
                    "float pixel data (7FE0,0008/0009) is not supported",
                ));
            }
            let modality = text(obj, tags::MODALITY).unwrap_or_else(|| "unknown".into());
            return Err(Error::input(
                name,
                format!(
                    "no pixel data (7FE0,0010): not an image object (modality {modality}); \
                     expected an image such as CT, MR or a secondary capture"
                ),
            ));
        }
        let required = |tag: Tag, what: &str| -> Result<usize> {
            uint(obj, tag, what, name)?
                .filter(|&v| v > 0)
                .ok_or_else(|| Error::input(name, format!("image without a valid {what} {tag}")))
        };
        let rows = required(tags::ROWS, "Rows")?;
        let cols = required(tags::COLUMNS, "Columns")?;
        let bits_allocated = required(tags::BITS_ALLOCATED, "Bits Allocated")?;
        if ![8, 16, 32].contains(&bits_allocated) {
            return Err(Error::input(
                name,
                format!("Bits Allocated {bits_allocated} is not supported; expected 8, 16 or 32"),
            ));
        }
        let samples = uint(obj, tags::SAMPLES_PER_PIXEL, "Samples per Pixel", name)?.unwrap_or(1);
        if samples != 1 && samples != 3 {
            return Err(Error::input(
                name,
                format!("{samples} samples per pixel; expected 1 (gray) or 3 (colour)"),
            ));
        }
        let bits_stored =
            uint(obj, tags::BITS_STORED, "Bits Stored", name)?.unwrap_or(bits_allocated);
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(Error::input(
                name,
                format!("Bits Stored {bits_stored} with Bits Allocated {bits_allocated}"),
            ));
        }
        let signed = uint(
            obj,
            tags::PIXEL_REPRESENTATION,
            "Pixel Representation",
            name,
        )?
        .unwrap_or(0)
            == 1;
        let photometric = match text(obj, tags::PHOTOMETRIC_INTERPRETATION) {
            Some(p) => p.to_ascii_uppercase(),
            None if samples == 1 => "MONOCHROME2".to_string(),
            None => {
                return Err(Error::input(
                    name,
                    "colour image without a Photometric Interpretation (0028,0004)",
                ))
            }
        };
        let planar = uint(
            obj,
            tags::PLANAR_CONFIGURATION,
            "Planar Configuration",
            name,
        )?
        .unwrap_or(0)
            == 1;
        let frames = match element(obj, tags::NUMBER_OF_FRAMES) {
            None => 1,
            Some(e) if e.value().primitive().is_some_and(|p| p.is_empty()) => 1,
            Some(e) => match e.to_int::<i64>() {
                Ok(n) if n >= 1 => n as usize,
                _ => {
                    return Err(Error::input(
                        name,
                        "Number of Frames (0028,0008) is not a positive integer",
                    ))
                }
            },
        };
        check_size(cols, rows, samples, frames, name)?;
        // Rescale and window at the top level, else in the shared functional groups of an
        // enhanced multi-frame object.
        let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
        let transform =
            shared.and_then(|s| first_item(s, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE));
        let voi = shared.and_then(|s| first_item(s, tags::FRAME_VOILUT_SEQUENCE));
        let either = |tag: Tag, nested: Option<&InMemDicomObject>| {
            number(obj, tag).or_else(|| nested.and_then(|n| number(n, tag)))
        };
        let slope = either(tags::RESCALE_SLOPE, transform).unwrap_or(1.0);
        let intercept = either(tags::RESCALE_INTERCEPT, transform).unwrap_or(0.0);
        let window = match (
            either(tags::WINDOW_CENTER, voi),
            either(tags::WINDOW_WIDTH, voi),
        ) {
            (Some(c), Some(w)) if w >= 1.0 => Some((c, w)),
            _ => None,
        };
        Ok(Attributes {
            geometry: Geometry {
                rows,
                cols,
                samples,
                bits_allocated,
            },
            frames,
            bits_stored,
            signed,
            photometric,
            planar,
            slope,
            intercept,
            window,
        })
    }

    /// Bytes of native pixel data per frame: YBR_FULL_422 stores two samples per pixel.
    fn native_frame_bytes(&self) -> usize {
        if self.photometric == "YBR_FULL_422" {
            self.geometry.pixels() * 2 * self.geometry.bits_allocated / 8
        } else {
            self.geometry.frame_bytes()
        }
    }

    /// Native-layout pixel data (one frame after another) to modality values, frame by
    /// frame, and a display.
    fn interpret(
        &self,
        raw: &[u8],
        codec: Option<Codec>,
        obj: &InMemDicomObject,
        name: &str,
    ) -> Result<Frames> {
        let g = self.geometry;
        let raw_frames = raw.chunks_exact(g.frame_bytes().max(1));
        let frames = |channels: usize, frames: Vec<Vec<f32>>, display: Display| Frames {
            width: g.cols,
            height: g.rows,
            channels,
            frames,
            display,
        };
        let rgb_max = if g.bits_allocated == 8 {
            255.0
        } else {
            65535.0
        };
        let photometric = self.photometric.as_str();
        match photometric {
            "MONOCHROME1" | "MONOCHROME2" if g.samples == 1 => {
                let values = raw_frames
                    .map(|f| {
                        stored(f, self)
                            .map(|s| (s as f64 * self.slope + self.intercept) as f32)
                            .collect()
                    })
                    .collect();
                let display = Display::Gray {
                    monochrome1: photometric == "MONOCHROME1",
                    file_window: self.window,
                };
                Ok(frames(1, values, display))
            }
            "PALETTE COLOR" if g.samples == 1 => {
                let lut = Palette::read(obj, name)?;
                let values = raw_frames.map(|f| lut.apply(stored(f, self))).collect();
                Ok(frames(3, values, Display::Rgb { max: lut.max }))
            }
            _ if g.samples == 3 => {
                // The JPEG decoder converts YCbCr to RGB itself; JPEG 2000 undoes its own
                // colour transform (YBR_ICT / YBR_RCT).
                let decoded_rgb = match codec {
                    Some(Codec::Jpeg) => photometric.starts_with("YBR_FULL"),
                    Some(Codec::Jpeg2000) => matches!(photometric, "YBR_ICT" | "YBR_RCT"),
                    _ => false,
                };
                let ybr = match photometric {
                    "RGB" => false,
                    _ if decoded_rgb => false,
                    "YBR_FULL" | "YBR_FULL_422" if g.bits_allocated == 8 => true,
                    other => {
                        return Err(Error::input(
                            name,
                            format!(
                                "photometric interpretation {other} ({} bits) is not supported \
                                 here; expected RGB, YBR_FULL(_422), PALETTE COLOR or MONOCHROME",
                                g.bits_allocated
                            ),
                        ))
                    }
                };
                let mut values = Vec::with_capacity(self.frames);
                for f in raw_frames {
                    let mut samples: Vec<i64> = stored(f, self).collect();
                    if self.planar && codec.is_none() {
                        deplanarize(&mut samples, g.pixels());
                    }
                    if ybr {
                        ybr_full_to_rgb(&mut samples);
                    }
                    values.push(samples.iter().map(|&s| s as f32).collect());
                }
                Ok(frames(3, values, Display::Rgb { max: rgb_max }))
            }
            other => Err(Error::input(
                name,
                format!(
                    "photometric interpretation {other} with {} sample(s) per pixel is not \
                     supported",
                    g.samples
                ),
            )),
        }
    }
}

/// Uncompressed pixel data (native, deflated or encapsulated uncompressed) as little-endian
/// bytes, exactly the frames' worth; YBR_FULL_422 is expanded to three samples per pixel.
fn native(
    value: &Value<InMemDicomObject, Vec<u8>>,
    attrs: &Attributes,
    big_endian: bool,
    name: &str,
) -> Result<Vec<u8>> {
    let mut bytes: Vec<u8> = match value {
        Value::Primitive(PrimitiveValue::U8(v)) => v.to_vec(),
        Value::Primitive(PrimitiveValue::U16(v))
            if big_endian && attrs.geometry.bits_allocated == 8 =>
        {
            v.iter().flat_map(|w| w.to_be_bytes()).collect()
        }
        Value::Primitive(PrimitiveValue::U16(v)) => {
            v.iter().flat_map(|w| w.to_le_bytes()).collect()
        }
        Value::Primitive(PrimitiveValue::I16(v)) => {
            v.iter().flat_map(|w| w.to_le_bytes()).collect()
        }
        Value::Primitive(PrimitiveValue::U32(v)) => {
            v.iter().flat_map(|w| w.to_le_bytes()).collect()
        }
        Value::Primitive(PrimitiveValue::I32(v)) => {
            v.iter().flat_map(|w| w.to_le_bytes()).collect()
        }
        Value::Primitive(PrimitiveValue::Empty) => Vec::new(),
        Value::PixelSequence(seq) => seq.fragments().concat(),
        _ => {
            return Err(Error::input(
                name,
                "pixel data (7FE0,0010) holds an unexpected value type",
            ))
        }
    };
    let frame = attrs.native_frame_bytes();
    let expected = frame * attrs.frames;
    if bytes.len() < expected {
        let g = attrs.geometry;
        return Err(Error::input(
            name,
            format!(
                "the pixel data has {} bytes; expected {expected} for {} frame(s) of {}×{}×{} \
                 samples at {} bits: the data is truncated or the image attributes are wrong",
                bytes.len(),
                attrs.frames,
                g.cols,
                g.rows,
                g.samples,
                g.bits_allocated
            ),
        ));
    }
    bytes.truncate(expected);
    if attrs.photometric == "YBR_FULL_422" && attrs.geometry.samples == 3 {
        bytes = expand_422(&bytes, attrs.geometry.bits_allocated / 8);
    }
    Ok(bytes)
}

/// YBR_FULL_422 (Y Y Cb Cr per pair of pixels) to YBR_FULL (Y Cb Cr per pixel).
fn expand_422(bytes: &[u8], width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() / 2 * 3);
    for group in bytes.chunks_exact(4 * width) {
        let (y0, y1) = (&group[..width], &group[width..2 * width]);
        let (cb, cr) = (&group[2 * width..3 * width], &group[3 * width..]);
        for y in [y0, y1] {
            out.extend_from_slice(y);
            out.extend_from_slice(cb);
            out.extend_from_slice(cr);
        }
    }
    out
}

/// Little-endian samples of `bits_allocated` to stored values: masked to Bits Stored and
/// sign-extended when Pixel Representation is 1.
fn stored<'a>(raw: &'a [u8], attrs: &Attributes) -> impl Iterator<Item = i64> + 'a {
    let width = attrs.geometry.bits_allocated / 8;
    let bits = attrs.bits_stored as u32;
    let signed = attrs.signed;
    let mask: u64 = if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    raw.chunks_exact(width).map(move |b| {
        let mut word = [0u8; 8];
        word[..width].copy_from_slice(b);
        let v = u64::from_le_bytes(word) & mask;
        if signed && bits > 0 && v >> (bits - 1) & 1 == 1 {
            v as i64 - (1i64 << bits)
        } else {
            v as i64
        }
    })
}

/// Planar (RRR…GGG…BBB per frame) to pixel-interleaved samples.
fn deplanarize(samples: &mut [i64], pixels: usize) {
    for frame in samples.chunks_exact_mut(3 * pixels) {
        let planes = frame.to_vec();
        for i in 0..pixels {
            for c in 0..3 {
                frame[3 * i + c] = planes[c * pixels + i];
            }
        }
    }
}

/// 8-bit YBR_FULL to RGB in place, pydicom's `convert_color_space` (float32 matrix, then
/// floor(x + 0.5), clipped to 0..255).
fn ybr_full_to_rgb(samples: &mut [i64]) {
    for px in samples.chunks_exact_mut(3) {
        let y = px[0] as f32;
        let cb = px[1] as f32 - 128.0;
        let cr = px[2] as f32 - 128.0;
        let r = y + 1.402 * cr;
        let g = y + (-0.114 * 1.772 / 0.587) * cb + (-0.299 * 1.402 / 0.587) * cr;
        let b = y + 1.772 * cb;
        for (dst, v) in px.iter_mut().zip([r, g, b]) {
            *dst = (v + 0.5).floor().clamp(0.0, 255.0) as i64;
        }
    }
}

/// The red, green and blue LUTs of PALETTE COLOR (PS3.3 C.7.6.3.1.5): each stored value
/// becomes three LUT entries, as stored.
struct Palette {
    /// Per channel: the entries, the first value mapped, the entry count.
    tables: Vec<(Vec<u16>, i64, usize)>,
    /// The entries' full scale (255 or 65535).
    max: f64,
}

impl Palette {
    fn read(obj: &InMemDicomObject, name: &str) -> Result<Self> {
        let luts = [
            (
                tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            ),
            (
                tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            ),
            (
                tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
                tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            ),
        ];
        let mut tables = Vec::with_capacity(3);
        let mut max = 255.0;
        for (descriptor, data) in luts {
            let missing = || {
                Error::input(
                    name,
                    format!(
                        "PALETTE COLOR without a usable lookup table {descriptor}/{data} \
                     (segmented palettes are not supported)"
                    ),
                )
            };
            let desc = element(obj, descriptor)
                .and_then(|e| e.to_multi_int::<i32>().ok())
                .filter(|d| d.len() == 3)
                .ok_or_else(missing)?;
            let entries = match desc[0] as u16 {
                0 => 65536,
                n => usize::from(n),
            };
            let first = i64::from(desc[1]);
            let bits = desc[2];
            let value = element(obj, data).ok_or_else(missing)?.value();
            let table: Vec<u16> = match value {
                Value::Primitive(PrimitiveValue::U16(v)) => v.to_vec(),
                Value::Primitive(PrimitiveValue::U8(v)) if bits == 8 && v.len() >= entries => {
                    v.iter().map(|&b| u16::from(b)).collect()
                }
                Value::Primitive(PrimitiveValue::U8(v)) => v
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect(),
                _ => return Err(missing()),
            };
            if table.len() < entries {
                return Err(Error::input(
                    name,
                    format!(
                        "palette LUT {data} has {} entries; its descriptor says {entries}",
                        table.len()
                    ),
                ));
            }
            if bits == 16 {
                max = 65535.0;
            }
            tables.push((table, first, entries));
        }
        Ok(Palette { tables, max })
    }

    /// Three LUT entries per stored value.
    fn apply(&self, stored: impl Iterator<Item = i64>) -> Vec<f32> {
        let mut values = Vec::new();
        for s in stored {
            for (table, first, entries) in &self.tables {
                let index = (s - first).clamp(0, *entries as i64 - 1) as usize;
                values.push(f32::from(table[index]));
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ybr_full_matches_pydicom_on_primaries() {
        // Pure red in YCbCr (JPEG full range): Y 76, Cb 85, Cr 255.
        let mut px = [76, 85, 255];
        ybr_full_to_rgb(&mut px);
        assert_eq!(px, [254, 0, 0]);
    }

    #[test]
    fn planes_interleave_and_422_expands() {
        let mut s = [1, 2, 10, 20, 100, 200];
        deplanarize(&mut s, 2);
        assert_eq!(s, [1, 10, 100, 2, 20, 200]);
        assert_eq!(expand_422(&[1, 2, 3, 4], 1), [1, 3, 4, 2, 3, 4]);
    }
}
