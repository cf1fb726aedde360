//! SAM mask sets: the class-agnostic "segment everything" masks of one image, as SAM's
//! `scripts/amg.py` (`write_masks_to_folder`) writes them — a folder per image holding
//! `0.png, 1.png, …` (8-bit grayscale, 0 outside / 255 inside) and an optional
//! `metadata.csv` (`id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,
//! predicted_iou,stability_score,crop_box_x0,…`).
//!
//! - Masks are read in ascending **numeric** order of their file stem (`0, 1, 2, …, 10`), the
//!   order the SEPL fixtures were produced in (a plain directory listing would give
//!   `0, 1, 10, 11, 2, …`). PNG files whose stem is not a number are skipped, with a warning
//!   in [`MaskSet::warnings`] for the caller to show; other files are ignored.
//! - A pixel is inside a mask when its grayscale value is at least half the maximum (≥ 128 for
//!   8-bit; 1 for 1-bit PNGs), or its palette index is not 0. For the 0/255 masks SAM writes
//!   this is exactly the published SEPL code's `np.array(Image.open(f)) == 255`.
//! - 16-bit, RGB and alpha PNGs are errors naming the file, and so is a mask whose size differs
//!   from the label it is merged with.
//! - Sets come from a folder ([`MaskSet::read_dir`]), from in-memory files
//!   ([`MaskSet::from_files`], what the browser passes) or from a `.zip` of `<name>/<i>.png`
//!   entries ([`MaskZip`]; entries with `..` or absolute paths are refused).
//!
//! Masks are held bit-packed ([`BitMask`], 64 pixels per word, row-major), which is what
//! makes the SEPL merge's overlap counts cheap (`popcount(M & P_k)`).
//!
//! ```
//! use camsam::core::masks::MaskSet;
//! # fn png(w: u32, h: u32, px: &[u8]) -> Vec<u8> {
//! #     let mut out = Vec::new();
//! #     let mut e = png::Encoder::new(&mut out, w, h);
//! #     e.set_color(png::ColorType::Grayscale);
//! #     e.set_depth(png::BitDepth::Eight);
//! #     let mut wr = e.write_header().unwrap();
//! #     wr.write_image_data(px).unwrap();
//! #     wr.finish().unwrap();
//! #     out
//! # }
//! let files = vec![
//!     ("10.png".to_string(), png(2, 1, &[255, 0])),
//!     ("2.png".to_string(), png(2, 1, &[0, 255])),
//!     ("notes.png".to_string(), png(2, 1, &[0, 0])),
//! ];
//! let set = MaskSet::from_files("img1", files, Some((2, 1))).unwrap();
//! assert_eq!(set.masks.iter().map(|m| m.index).collect::<Vec<_>>(), vec![2, 10]);
//! assert_eq!(set.warnings.len(), 1); // notes.png skipped
//! assert_eq!(set.masks[0].bits.count(), 1);
//! ```

use crate::core::label::LabelMap;
use crate::limits::{read_zip_entry, MAX_MASK_ENTRY_BYTES};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

/// A binary mask over a `width × height` image, bit-packed row-major: pixel `i = y·width + x`
/// is bit `i % 64` of word `i / 64`. Bits past the last pixel are always zero.
///
/// The mask also keeps a word range outside of which every word is zero (SAM masks are mostly
/// local), so overlaps, unions and painting only touch that range.
#[derive(Debug, Clone)]
pub struct BitMask {
    width: usize,
    height: usize,
    words: Vec<u64>,
    /// `words[i] == 0` for every `i` outside `lo..hi`.
    lo: usize,
    hi: usize,
}

impl PartialEq for BitMask {
    fn eq(&self, other: &Self) -> bool {
        (self.width, self.height) == (other.width, other.height) && self.words == other.words
    }
}

impl Eq for BitMask {}

impl BitMask {
    fn from_words(width: usize, height: usize, words: Vec<u64>) -> Self {
        let lo = words.iter().position(|&w| w != 0).unwrap_or(0);
        let hi = words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        BitMask {
            width,
            height,
            words,
            lo,
            hi,
        }
    }

    /// An all-zero mask.
    pub fn empty(width: usize, height: usize) -> Self {
        Self::from_words(width, height, vec![0; (width * height).div_ceil(64)])
    }

    /// Pack `values` (one per pixel, row-major) where `inside(v)` holds.
    pub fn from_values(
        width: usize,
        height: usize,
        values: &[u8],
        inside: impl Fn(u8) -> bool,
    ) -> Result<Self> {
        check_len(width, height, values)?;
        let words = values
            .chunks(64)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (i, &v)| w | (inside(v) as u64) << i)
            })
            .collect();
        Ok(Self::from_words(width, height, words))
    }

    /// Pack row-major booleans (`bools.len()` must be `width · height`).
    pub fn from_bools(width: usize, height: usize, bools: &[bool]) -> Result<Self> {
        check_len(width, height, bools)?;
        let words = bools
            .chunks(64)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (i, &b)| w | (b as u64) << i)
            })
            .collect();
        Ok(Self::from_words(width, height, words))
    }

    /// `bools` (a `w`-wide row-major crop) placed at `(x0, y0)` in an empty `width × height`
    /// mask (SAM's `uncrop_masks`: zero padding around a crop); pixels outside are dropped.
    pub fn uncrop(
        bools: &[bool],
        w: usize,
        x0: usize,
        y0: usize,
        width: usize,
        height: usize,
    ) -> Self {
        let mut m = BitMask::empty(width, height);
        for (r, row) in bools.chunks_exact(w.max(1)).enumerate() {
            for (c, _) in row.iter().enumerate().filter(|(_, &b)| b) {
                m.set(x0 + c, y0 + r, true);
            }
        }
        m
    }

    /// Row-major booleans.
    pub fn to_bools(&self) -> Vec<bool> {
        (0..self.width * self.height)
            .map(|i| self.words[i / 64] >> (i % 64) & 1 == 1)
            .collect()
    }

    /// Pack `values` where the value is 128 or more (the top bit set): SAM's 0/255 masks.
    /// Sixteen pixels at a time (SSE2 on x86-64, eight with SWAR elsewhere): the hot path
    /// of reading mask sets.
    pub fn from_values_ge128(width: usize, height: usize, values: &[u8]) -> Result<Self> {
        check_len(width, height, values)?;
        #[cfg(target_arch = "x86_64")]
        let words = sse2::pack_ge128(values);
        #[cfg(not(target_arch = "x86_64"))]
        let words = pack_swar(values, |x| x, |v| v >= 128);
        Ok(Self::from_words(width, height, words))
    }

    /// The pixels of `label` equal to `class` (the pseudo-label region `P_k`).
    pub fn of_class(label: &LabelMap, class: u8) -> Self {
        #[cfg(target_arch = "x86_64")]
        let words = sse2::pack_eq(&label.data, class);
        #[cfg(not(target_arch = "x86_64"))]
        let words = pack_eq_swar(&label.data, class);
        Self::from_words(label.width, label.height, words)
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The packed words (pixel `i` is bit `i % 64` of word `i / 64`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Whether pixel `(x, y)` is inside; `false` outside the image.
    pub fn get(&self, x: usize, y: usize) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let i = y * self.width + x;
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Set pixel `(x, y)`; ignored outside the image.
    pub fn set(&mut self, x: usize, y: usize, inside: bool) {
        if x >= self.width || y >= self.height {
            return;
        }
        let i = y * self.width + x;
        if inside {
            self.words[i / 64] |= 1 << (i % 64);
            self.widen(i / 64, i / 64 + 1);
        } else {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    fn widen(&mut self, lo: usize, hi: usize) {
        if lo >= hi {
            return;
        }
        if self.lo >= self.hi {
            (self.lo, self.hi) = (lo, hi);
        } else {
            self.lo = self.lo.min(lo);
            self.hi = self.hi.max(hi);
        }
    }

    /// The words that may be non-zero.
    fn live(&self) -> &[u64] {
        &self.words[self.lo..self.hi]
    }

    /// The number of pixels inside (the mask's area).
    pub fn count(&self) -> usize {
        self.live().iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `|self ∩ other|`. Masks of different sizes count only their common words.
    pub fn and_count(&self, other: &BitMask) -> usize {
        let lo = self.lo.max(other.lo);
        let hi = self.hi.min(other.hi);
        if lo >= hi {
            return 0;
        }
        self.words[lo..hi]
            .iter()
            .zip(&other.words[lo..hi])
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }

    /// `self ← self ∪ other`.
    pub fn union_with(&mut self, other: &BitMask) {
        let hi = other.hi.min(self.words.len());
        if other.lo >= hi {
            return;
        }
        for (a, b) in self.words[other.lo..hi]
            .iter_mut()
            .zip(&other.words[other.lo..hi])
        {
            *a |= b;
        }
        self.widen(other.lo, hi);
    }

    /// `self ← self \ other`.
    pub fn subtract(&mut self, other: &BitMask) {
        let lo = self.lo.max(other.lo);
        let hi = self.hi.min(other.hi);
        if lo >= hi {
            return;
        }
        for (a, b) in self.words[lo..hi].iter_mut().zip(&other.words[lo..hi]) {
            *a &= !b;
        }
    }

    /// Whether no pixel is inside.
    pub fn is_empty(&self) -> bool {
        self.live().iter().all(|&w| w == 0)
    }

    /// Write `value` into `out[i]` for every pixel `i` inside (`out` is row-major, one byte per
    /// pixel, at least `width × height` long).
    pub fn paint(&self, out: &mut [u8], value: u8) {
        for (wi, &w) in self.live().iter().enumerate() {
            if w == 0 {
                continue;
            }
            let base = (self.lo + wi) * 64;
            if w == u64::MAX {
                if let Some(dst) = out.get_mut(base..base + 64) {
                    dst.fill(value);
                    continue;
                }
            }
            let mut bits = w;
            while bits != 0 {
                let i = base + bits.trailing_zeros() as usize;
                if let Some(px) = out.get_mut(i) {
                    *px = value;
                }
                bits &= bits - 1;
            }
        }
    }

    /// One byte per pixel: 255 inside, 0 outside (the `amg.py` PNG values).
    pub fn to_values(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.width * self.height];
        self.paint(&mut out, 255);
        out
    }

    /// The packed bits as little-endian bytes (pixel `i` is bit `i % 8` of byte `i / 8`),
    /// `8·⌈w·h/64⌉` bytes: how the browser app keeps masks between visits.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// The inverse of [`BitMask::to_le_bytes`]; `name` names the data in errors. Refuses a
    /// wrong length and bits set past the last pixel.
    pub fn from_le_bytes(width: usize, height: usize, bytes: &[u8], name: &str) -> Result<Self> {
        let pixels = width
            .checked_mul(height)
            .ok_or_else(|| Error::input(name, format!("a {width}×{height} mask is too large")))?;
        let n = pixels.div_ceil(64);
        if bytes.len() != 8 * n {
            return Err(Error::input(
                name,
                format!(
                    "{} bytes of packed mask; expected {} for {width}×{height}",
                    bytes.len(),
                    8 * n
                ),
            ));
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| c.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b)))
            .collect();
        let tail = pixels % 64;
        if tail != 0 && words.last().is_some_and(|&w| w >> tail != 0) {
            return Err(Error::input(
                name,
                format!("bits set past the last pixel of a {width}×{height} mask"),
            ));
        }
        Ok(Self::from_words(width, height, words))
    }
}

const LSB: u64 = 0x0101_0101_0101_0101;
const MSB: u64 = 0x8080_8080_8080_8080;

fn check_len<T>(width: usize, height: usize, values: &[T]) -> Result<()> {
    if values.len() != width * height {
        return Err(Error::input(
            "mask",
            format!(
                "{} values for a {width}×{height} mask (expected {})",
                values.len(),
                width * height
            ),
        ));
    }
    Ok(())
}

/// [`pack_swar`] of the bytes equal to `class`.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn pack_eq_swar(values: &[u8], class: u8) -> Vec<u64> {
    let splat = LSB * class as u64;
    // A byte of `t = x ^ splat` is zero exactly where the pixel equals `class`;
    // `((t & 0x7f…) + 0x7f…) | t` has a byte's top bit set iff that byte is non-zero.
    let equal = |x: u64| {
        let t = x ^ splat;
        !(((t & !MSB).wrapping_add(!MSB)) | t)
    };
    pack_swar(values, equal, |v| v == class)
}

/// Pack bytes into words, 64 pixels per word (pixel `i` → bit `i % 64`). `flags(x)` maps
/// eight little-endian bytes to a word whose byte `j` has its top bit set iff pixel `j` is
/// inside; `inside` is the same test for one byte (used for the tail).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn pack_swar(values: &[u8], flags: impl Fn(u64) -> u64, inside: impl Fn(u8) -> bool) -> Vec<u64> {
    // Multiplying the byte-wise 0/1 values by this moves byte j's bit to bit 56 + j.
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut words = Vec::with_capacity(values.len().div_ceil(64));
    let mut chunks = values.chunks_exact(64);
    for chunk in &mut chunks {
        let mut w = 0u64;
        for (k, eight) in chunk.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(eight);
            let bits = ((flags(u64::from_le_bytes(b)) & MSB) >> 7).wrapping_mul(GATHER) >> 56;
            w |= bits << (8 * k);
        }
        words.push(w);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        words.push(
            rest.iter()
                .enumerate()
                .fold(0u64, |w, (i, &v)| w | (inside(v) as u64) << i),
        );
    }
    words
}

/// x86-64 always has SSE2: compare 16 bytes at once and take their top bits with `movemask`.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    /// 64 bytes → one word, bit `i` from byte `i` through `bits16` (16 bytes → 16 bits).
    fn pack(
        values: &[u8],
        bits16: impl Fn(__m128i) -> u32,
        inside: impl Fn(u8) -> bool,
    ) -> Vec<u64> {
        let mut words = Vec::with_capacity(values.len().div_ceil(64));
        let mut chunks = values.chunks_exact(64);
        for chunk in &mut chunks {
            let mut w = 0u64;
            for (k, sixteen) in chunk.chunks_exact(16).enumerate() {
                // SAFETY: `sixteen` is exactly 16 readable bytes; `loadu` has no alignment
                // requirement; SSE2 is part of the x86-64 baseline.
                let v = unsafe { _mm_loadu_si128(sixteen.as_ptr().cast::<__m128i>()) };
                w |= (bits16(v) as u64) << (16 * k);
            }
            words.push(w);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            words.push(
                rest.iter()
                    .enumerate()
                    .fold(0u64, |w, (i, &v)| w | (inside(v) as u64) << i),
            );
        }
        words
    }

    pub(super) fn pack_ge128(values: &[u8]) -> Vec<u64> {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        pack(
            values,
            |v| unsafe { _mm_movemask_epi8(v) as u32 & 0xffff },
            |v| v >= 128,
        )
    }

    pub(super) fn pack_eq(values: &[u8], class: u8) -> Vec<u64> {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        let splat = unsafe { _mm_set1_epi8(class as i8) };
        pack(
            values,
            |v| unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, splat)) as u32 & 0xffff },
            |v| v == class,
        )
    }
}

/// Scores from `metadata.csv`, where the file has them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaskMeta {
    pub area: Option<u64>,
    /// `[x0, y0, w, h]` in pixels.
    pub bbox: Option<[f64; 4]>,
    pub predicted_iou: Option<f64>,
    pub stability_score: Option<f64>,
}

/// One mask of a set.
#[derive(Debug, Clone)]
pub struct SamMask {
    /// The number in the file name (`7` for `7.png`).
    pub index: u64,
    /// The file it came from, as named in errors.
    pub file: String,
    pub bits: BitMask,
    /// Its `metadata.csv` row, if the set has one.
    pub meta: Option<MaskMeta>,
}

/// The masks of one image, in ascending numeric order.
#[derive(Debug, Clone, Default)]
pub struct MaskSet {
    pub masks: Vec<SamMask>,
    /// Files skipped (non-numeric PNG names), one message each, for the caller to show.
    pub warnings: Vec<String>,
}

/// What to do with each file of a mask folder.
struct Plan {
    /// `(number, file name)`, sorted by number then name.
    pngs: Vec<(u64, String)>,
    metadata: Option<String>,
    warnings: Vec<String>,
}

fn plan(set_name: &str, file_names: impl IntoIterator<Item = String>) -> Plan {
    let mut pngs = Vec::new();
    let mut metadata = None;
    let mut warnings = Vec::new();
    for file in file_names {
        if file.eq_ignore_ascii_case("metadata.csv") {
            metadata = Some(file);
            continue;
        }
        let Some(stem) = file
            .len()
            .checked_sub(4)
            .filter(|&cut| file.is_char_boundary(cut) && file[cut..].eq_ignore_ascii_case(".png"))
            .map(|cut| &file[..cut])
        else {
            continue;
        };
        match stem.parse::<u64>() {
            Ok(n) if stem.bytes().all(|b| b.is_ascii_digit()) => pngs.push((n, file)),
            _ => warnings.push(format!(
                "{set_name}/{file}: not a numbered mask (<i>.png); skipped"
            )),
        }
    }
    pngs.sort();
    Plan {
        pngs,
        metadata,
        warnings,
    }
}

impl MaskSet {
    /// Build a set from in-memory files `(file name, bytes)` of one image's folder.
    /// `set_name` names the folder in errors; `size` is the `(width, height)` every mask must
    /// have (the label's), or `None` to require only that all masks agree.
    pub fn from_files(
        set_name: &str,
        files: Vec<(String, Vec<u8>)>,
        size: Option<(usize, usize)>,
    ) -> Result<Self> {
        let mut by_name: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (name, bytes) in files {
            if by_name.contains_key(&name) {
                return Err(Error::input(
                    format!("{set_name}/{name}"),
                    "appears twice in the mask set; expected one file per name",
                ));
            }
            by_name.insert(name, bytes);
        }
        let plan = plan(set_name, by_name.keys().cloned());
        Self::build(set_name, plan, size, |file| {
            by_name
                .get(file)
                .cloned()
                .ok_or_else(|| Error::input(format!("{set_name}/{file}"), "missing"))
        })
    }

    /// Read one image's mask folder (`dir/<i>.png`, optional `dir/metadata.csv`).
    pub fn read_dir(dir: &Path, size: Option<(usize, usize)>) -> Result<Self> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let is_file = entry
                .file_type()
                .map(|t| t.is_file() || t.is_symlink())
                .unwrap_or(false);
            if !is_file {
                continue;
            }
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(raw) => {
                    // A non-UTF-8 name cannot be a numbered mask.
                    names.push(raw.to_string_lossy().into_owned());
                }
            }
        }
        let set_name = dir.display().to_string();
        let plan = plan(&set_name, names);
        Self::build(&set_name, plan, size, |file| {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|e| Error::io(&path, e))
        })
    }

    fn build(
        set_name: &str,
        plan: Plan,
        size: Option<(usize, usize)>,
        mut read: impl FnMut(&str) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let meta = match &plan.metadata {
            Some(file) => {
                let bytes = read(file)?;
                parse_metadata(&bytes, &format!("{set_name}/{file}"))?
            }
            None => BTreeMap::new(),
        };
        let mut size = size;
        let mut masks = Vec::with_capacity(plan.pngs.len());
        for (index, file) in plan.pngs {
            let bytes = read(&file)?;
            let full = format!("{set_name}/{file}");
            let bits = decode_mask_png(&bytes, &full, size)?;
            size = Some((bits.width, bits.height));
            masks.push(SamMask {
                index,
                file: full,
                bits,
                meta: meta.get(&index).cloned(),
            });
        }
        Ok(MaskSet {
            masks,
            warnings: plan.warnings,
        })
    }

    /// The bit masks alone, in order.
    pub fn bit_masks(&self) -> Vec<&BitMask> {
        self.masks.iter().map(|m| &m.bits).collect()
    }
}

/// Decode one mask PNG. `name` is used in errors; `size` is the required `(width, height)`
/// (checked before the pixels are inflated).
pub fn decode_mask_png(bytes: &[u8], name: &str, size: Option<(usize, usize)>) -> Result<BitMask> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder
        .read_info()
        .map_err(|e| Error::input(name, format!("not a readable PNG ({e})")))?;
    let (width, height, color, depth) = {
        let info = reader.info();
        (
            info.width as usize,
            info.height as usize,
            info.color_type,
            info.bit_depth,
        )
    };
    crate::limits::check_pixels(width, height, name, "mask")?;
    if let Some((w, h)) = size {
        if (w, h) != (width, height) {
            return Err(Error::input(
                name,
                format!(
                    "mask is {width}×{height} but the label is {w}×{h}; expected the same size"
                ),
            ));
        }
    }
    let bits = match (color, depth) {
        (png::ColorType::Grayscale | png::ColorType::Indexed, png::BitDepth::One) => 1,
        (png::ColorType::Grayscale | png::ColorType::Indexed, png::BitDepth::Two) => 2,
        (png::ColorType::Grayscale | png::ColorType::Indexed, png::BitDepth::Four) => 4,
        (png::ColorType::Grayscale | png::ColorType::Indexed, png::BitDepth::Eight) => 8,
        (png::ColorType::Grayscale | png::ColorType::Indexed, png::BitDepth::Sixteen) => {
            return Err(Error::input(
                name,
                "16-bit PNG; expected an 8-bit grayscale mask (0 outside, 255 inside)",
            ))
        }
        (other, _) => {
            let what = match other {
                png::ColorType::Rgb => "RGB",
                png::ColorType::Rgba => "RGBA",
                png::ColorType::GrayscaleAlpha => "grayscale+alpha",
                _ => "unsupported",
            };
            return Err(Error::input(
                name,
                format!("{what} PNG; expected an 8-bit grayscale mask (0 outside, 255 inside)"),
            ));
        }
    };
    let indexed = color == png::ColorType::Indexed;
    // Grayscale: inside at half the maximum or more; palette: any index but 0.
    let threshold: u8 = if indexed { 1 } else { 1 << (bits - 1) };
    let buf_size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::input(name, "PNG too large to decode"))?;
    DECODE_BUFFER.with(|cell| {
        let mut buf = cell.take();
        // Every byte is overwritten by the decoder: no need to zero a reused buffer.
        buf.resize(buf_size, 0);
        let result = reader
            .next_frame(&mut buf)
            .map_err(|e| Error::input(name, format!("corrupt PNG data ({e})")))
            .and_then(|frame| pack_frame(&buf, frame.line_size, width, height, bits, threshold));
        cell.set(buf);
        result
    })
}

thread_local! {
    /// The decode buffer of [`decode_mask_png`], kept per thread between masks.
    static DECODE_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Unpack a decoded frame (`stride` bytes per row, `bits` per sample) into a mask.
fn pack_frame(
    buf: &[u8],
    stride: usize,
    width: usize,
    height: usize,
    bits: usize,
    threshold: u8,
) -> Result<BitMask> {
    if bits == 8 && stride == width {
        let values = &buf[..width * height];
        return if threshold == 128 {
            BitMask::from_values_ge128(width, height, values)
        } else {
            BitMask::from_values(width, height, values, |v| v >= threshold)
        };
    }
    let mut values = Vec::with_capacity(width * height);
    for row in buf[..stride * height].chunks_exact(stride) {
        if bits == 8 {
            values.extend_from_slice(&row[..width]);
        } else {
            let per_byte = 8 / bits;
            let mask = (1u8 << bits) - 1;
            values.extend((0..width).map(|x| {
                let shift = 8 - bits * (x % per_byte + 1);
                (row[x / per_byte] >> shift) & mask
            }));
        }
    }
    BitMask::from_values(width, height, &values, |v| v >= threshold)
}

/// Parse an `amg.py` `metadata.csv`: a header naming the columns (`id` required; `area`,
/// `bbox_x0`, `bbox_y0`, `bbox_w`, `bbox_h`, `predicted_iou`, `stability_score` used when
/// present, others ignored) and one row per mask. Returns the rows by `id`.
pub fn parse_metadata(bytes: &[u8], name: &str) -> Result<BTreeMap<u64, MaskMeta>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::input(name, "not UTF-8 text; expected amg.py's metadata.csv"))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(Error::input(
            name,
            "empty; expected amg.py's metadata.csv (a header line, then a row per mask)",
        ));
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |c: &str| cols.iter().position(|h| *h == c);
    let id_col = col("id").ok_or_else(|| {
        Error::input(
            name,
            format!("header '{header}' has no 'id' column; expected amg.py's metadata.csv"),
        )
    })?;
    let area_col = col("area");
    let bbox_cols = [col("bbox_x0"), col("bbox_y0"), col("bbox_w"), col("bbox_h")];
    let iou_col = col("predicted_iou");
    let stab_col = col("stability_score");
    let mut out = BTreeMap::new();
    for (line_no, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let at = |line_no: usize, c: usize, what: &str| -> Result<&str> {
            fields.get(c).copied().ok_or_else(|| {
                Error::input(
                    name,
                    format!(
                        "line {}: {} fields, no '{what}'; expected {} as in the header",
                        line_no + 1,
                        fields.len(),
                        cols.len()
                    ),
                )
            })
        };
        let num = |line_no: usize, c: usize, what: &str| -> Result<f64> {
            let s = at(line_no, c, what)?;
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    Error::input(
                        name,
                        format!("line {}: {what} is '{s}'; expected a number", line_no + 1),
                    )
                })
        };
        let id_text = at(line_no, id_col, "id")?;
        let id = id_text.parse::<u64>().map_err(|_| {
            Error::input(
                name,
                format!(
                    "line {}: id is '{id_text}'; expected a mask number",
                    line_no + 1
                ),
            )
        })?;
        let area = match area_col {
            Some(c) => {
                let v = num(line_no, c, "area")?;
                if v < 0.0 || v.fract() != 0.0 {
                    return Err(Error::input(
                        name,
                        format!("line {}: area is {v}; expected a pixel count", line_no + 1),
                    ));
                }
                Some(v as u64)
            }
            None => None,
        };
        let bbox = match bbox_cols {
            [Some(x), Some(y), Some(w), Some(h)] => Some([
                num(line_no, x, "bbox_x0")?,
                num(line_no, y, "bbox_y0")?,
                num(line_no, w, "bbox_w")?,
                num(line_no, h, "bbox_h")?,
            ]),
            _ => None,
        };
        let predicted_iou = iou_col
            .map(|c| num(line_no, c, "predicted_iou"))
            .transpose()?;
        let stability_score = stab_col
            .map(|c| num(line_no, c, "stability_score"))
            .transpose()?;
        out.insert(
            id,
            MaskMeta {
                area,
                bbox,
                predicted_iou,
                stability_score,
            },
        );
    }
    Ok(out)
}

/// A `.zip` of mask folders: entries `<name>/<i>.png` (and `<name>/metadata.csv`), possibly
/// under a common top folder; the image name is the entry's parent folder. Entries whose
/// path contains `..` or is absolute make the whole archive an error.
#[derive(Debug, Clone)]
pub struct MaskZip {
    zip_name: String,
    archive: zip::ZipArchive<Cursor<Arc<[u8]>>>,
    /// image name → (file name, entry index).
    sets: BTreeMap<String, Vec<(String, usize)>>,
    /// Entries not inside a folder (skipped).
    pub warnings: Vec<String>,
}

impl MaskZip {
    /// Index a zip held in memory. `zip_name` names it in errors.
    pub fn new(bytes: impl Into<Arc<[u8]>>, zip_name: &str) -> Result<Self> {
        let archive = zip::ZipArchive::new(Cursor::new(bytes.into()))
            .map_err(|e| Error::input(zip_name, format!("not a readable zip ({e})")))?;
        let mut sets: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
        let mut warnings = Vec::new();
        for i in 0..archive.len() {
            let entry = archive
                .name_for_index(i)
                .ok_or_else(|| Error::input(zip_name, format!("entry {i} has no name")))?
                .map_err(|e| Error::input(zip_name, format!("entry {i}: bad name ({e})")))?;
            let entry = entry.into_owned();
            if entry.ends_with('/') || entry.ends_with('\\') {
                continue; // a directory
            }
            let parts: Vec<&str> = entry.split(['/', '\\']).collect();
            let absolute = entry.starts_with('/')
                || entry.starts_with('\\')
                || parts
                    .first()
                    .is_some_and(|p| p.len() == 2 && p.ends_with(':'));
            if absolute || parts.contains(&"..") {
                return Err(Error::input(
                    zip_name,
                    format!(
                        "entry '{entry}' is an absolute path or contains '..'; \
                         expected <name>/<i>.png entries"
                    ),
                ));
            }
            let parts: Vec<&str> = parts
                .into_iter()
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            if parts.first() == Some(&"__MACOSX") {
                continue;
            }
            match parts.as_slice() {
                [.., set, file] => {
                    let files = sets.entry(set.to_string()).or_default();
                    if files.iter().any(|(f, _)| f == file) {
                        return Err(Error::input(
                            zip_name,
                            format!("'{set}/{file}' appears twice; expected one entry per mask"),
                        ));
                    }
                    files.push((file.to_string(), i));
                }
                _ => warnings.push(format!(
                    "{zip_name}: entry '{entry}' is not inside a <name>/ folder; skipped"
                )),
            }
        }
        Ok(MaskZip {
            zip_name: zip_name.to_string(),
            archive,
            sets,
            warnings,
        })
    }

    /// Read a zip file from disk.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::new(bytes, &path.display().to_string())
    }

    /// The image names (folders) in the archive, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sets.keys().map(String::as_str)
    }

    /// Decode the mask set of image `name` (an error if the archive has no such folder).
    pub fn mask_set(&self, name: &str, size: Option<(usize, usize)>) -> Result<MaskSet> {
        let set_name = format!("{}:{name}", self.zip_name);
        let files = self.sets.get(name).ok_or_else(|| {
            Error::input(
                &self.zip_name,
                format!("no '{name}/' folder of masks; expected {name}/<i>.png entries"),
            )
        })?;
        let plan = plan(&set_name, files.iter().map(|(f, _)| f.clone()));
        // Cheap: the archive's index is shared, only the cursor is cloned.
        let mut archive = self.archive.clone();
        MaskSet::build(&set_name, plan, size, |file| {
            let index = files
                .iter()
                .find(|(f, _)| f == file)
                .map(|(_, i)| *i)
                .ok_or_else(|| Error::input(format!("{set_name}/{file}"), "missing"))?;
            let entry_name = format!("{set_name}/{file}");
            let entry = archive
                .by_index(index)
                .map_err(|e| Error::input(&entry_name, format!("unreadable entry ({e})")))?;
            let declared = entry.size();
            read_zip_entry(entry, declared, MAX_MASK_ENTRY_BYTES, &entry_name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmask_from_bools_round_trip_and_uncrop() {
        let bools = [true, false, true, true, false, false];
        let m = BitMask::from_bools(3, 2, &bools).unwrap();
        assert_eq!(m.to_bools(), bools);
        assert_eq!(m.count(), 3);
        assert!(BitMask::from_bools(3, 3, &bools).is_err());
        let u = BitMask::uncrop(&bools, 3, 2, 1, 6, 4);
        assert_eq!(u.count(), 3);
        assert!(u.get(2, 1) && u.get(4, 1) && u.get(2, 2) && !u.get(3, 1));
        assert_eq!(u.to_values().iter().filter(|&&v| v == 255).count(), 3);
        // pixels of the crop outside the image are dropped
        let edge = BitMask::uncrop(&bools, 3, 5, 3, 6, 4);
        assert_eq!(edge.to_bools().iter().filter(|&&b| b).count(), 1);
    }

    #[test]
    fn bitmask_le_bytes_round_trip_and_refusals() {
        let values: Vec<u8> = (0..7 * 11)
            .map(|i| if i % 3 == 0 { 255 } else { 0 })
            .collect();
        let m = BitMask::from_values(7, 11, &values, |v| v >= 128).unwrap();
        let bytes = m.to_le_bytes();
        assert_eq!(bytes.len(), 16);
        assert_eq!(bytes[0], 0b0100_1001, "pixel i is bit i % 8 of byte i / 8");
        let back = BitMask::from_le_bytes(7, 11, &bytes, "m").unwrap();
        assert_eq!(back, m);
        assert_eq!(back.count(), m.count());
        let short = BitMask::from_le_bytes(7, 11, &bytes[..8], "m").unwrap_err();
        assert!(
            short
                .to_string()
                .contains("8 bytes of packed mask; expected 16"),
            "{short}"
        );
        let mut stray = bytes.clone();
        stray[15] = 0x80;
        let err = BitMask::from_le_bytes(7, 11, &stray, "m").unwrap_err();
        assert!(err.to_string().contains("past the last pixel"), "{err}");
        assert!(BitMask::from_le_bytes(usize::MAX, 2, &[], "m").is_err());
    }

    pub(crate) fn gray_png(w: u32, h: u32, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(depth);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(data).unwrap();
        wr.finish().unwrap();
        out
    }

    fn mask_png(w: u32, h: u32, data: &[u8]) -> Vec<u8> {
        gray_png(w, h, png::BitDepth::Eight, data)
    }

    #[test]
    fn bit_mask_counts_and_paints_across_word_boundaries() {
        let n: usize = 70 * 3;
        let values: Vec<u8> = (0..n).map(|i| if i % 3 == 0 { 255 } else { 0 }).collect();
        let m = BitMask::from_values(70, 3, &values, |v| v >= 128).unwrap();
        assert_eq!(m.count(), n.div_ceil(3));
        assert_eq!(m.to_values(), values);
        assert!(m.get(0, 0) && !m.get(1, 0) && m.get(69, 2) == (209 % 3 == 0));
        let full = BitMask::from_values(70, 3, &vec![255; n], |v| v >= 128).unwrap();
        assert_eq!(full.count(), n);
        assert_eq!(m.and_count(&full), m.count());
        let mut painted = vec![0u8; n];
        full.paint(&mut painted, 7);
        assert!(painted.iter().all(|&v| v == 7));
    }

    #[test]
    fn swar_packing_matches_the_plain_rule() {
        // Every byte value at every position of several words, plus a ragged tail.
        let values: Vec<u8> = (0..(64 * 9 + 13)).map(|i| (i * 37 % 256) as u8).collect();
        let (w, h) = (values.len(), 1);
        let fast = BitMask::from_values_ge128(w, h, &values).unwrap();
        let plain = BitMask::from_values(w, h, &values, |v| v >= 128).unwrap();
        assert_eq!(fast, plain);
        assert_eq!(pack_swar(&values, |x| x, |v| v >= 128), plain.words);
        for class in [0u8, 1, 37, 127, 128, 200, 255] {
            let swar = pack_eq_swar(&values, class);
            let want = BitMask::from_values(w, h, &values, |v| v == class).unwrap();
            assert_eq!(swar, want.words, "class {class}");
        }
        let label = LabelMap::new(w, h, values.clone()).unwrap();
        for class in [0u8, 1, 37, 127, 128, 200, 255] {
            let want = BitMask::from_values(w, h, &values, |v| v == class).unwrap();
            assert_eq!(BitMask::of_class(&label, class), want, "class {class}");
        }
    }

    #[test]
    fn word_ranges_stay_correct_through_set_union_and_subtract() {
        let (w, h) = (300, 3);
        let mut a = BitMask::empty(w, h);
        assert_eq!(a.count(), 0);
        a.set(299, 2, true);
        a.set(5, 0, true);
        assert_eq!(a.count(), 2);
        let mut b = BitMask::empty(w, h);
        b.set(150, 1, true);
        b.union_with(&a);
        assert_eq!(b.count(), 3);
        assert_eq!(b.and_count(&a), 2);
        b.subtract(&a);
        assert_eq!(b.count(), 1);
        assert!(b.get(150, 1) && !b.get(5, 0));
        let mut out = vec![0u8; w * h];
        a.paint(&mut out, 9);
        assert_eq!(out.iter().filter(|&&v| v == 9).count(), 2);
        assert_eq!(out[2 * w + 299], 9);
        let far = BitMask::from_values(
            w,
            h,
            &(0..w * h).map(|i| (i < 10) as u8).collect::<Vec<_>>(),
            |v| v > 0,
        )
        .unwrap();
        assert_eq!(far.and_count(&BitMask::empty(w, h)), 0);
        assert_eq!(far.and_count(&a), 1);
    }

    #[test]
    fn of_class_selects_one_id() {
        let label = LabelMap::new(3, 1, vec![1, 2, 1]).unwrap();
        assert_eq!(BitMask::of_class(&label, 1).to_values(), vec![255, 0, 255]);
    }

    #[test]
    fn masks_are_read_in_numeric_order_and_non_numeric_names_warn() {
        let files = vec![
            ("10.png".to_string(), mask_png(1, 1, &[255])),
            ("2.png".to_string(), mask_png(1, 1, &[0])),
            ("0.png".to_string(), mask_png(1, 1, &[255])),
            ("1.png".to_string(), mask_png(1, 1, &[255])),
            ("mask_a.png".to_string(), mask_png(1, 1, &[255])),
            ("3.txt".to_string(), b"hello".to_vec()),
        ];
        let set = MaskSet::from_files("im", files, None).unwrap();
        let order: Vec<u64> = set.masks.iter().map(|m| m.index).collect();
        assert_eq!(order, vec![0, 1, 2, 10]);
        assert_eq!(set.warnings.len(), 1);
        assert!(set.warnings[0].contains("mask_a.png"), "{:?}", set.warnings);
    }

    #[test]
    fn empty_folder_gives_an_empty_set() {
        let set = MaskSet::from_files("im", vec![], Some((4, 4))).unwrap();
        assert!(set.masks.is_empty() && set.warnings.is_empty());
    }

    #[test]
    fn a_mask_of_another_size_is_an_error_naming_the_file() {
        let files = vec![
            ("0.png".to_string(), mask_png(2, 1, &[255, 0])),
            ("1.png".to_string(), mask_png(1, 2, &[255, 0])),
        ];
        let err = MaskSet::from_files("im", files.clone(), Some((2, 1)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("im/1.png") && err.contains("1×2"), "{err}");
        // Without a label size the masks must still agree with each other.
        let err = MaskSet::from_files("im", files, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("im/1.png"), "{err}");
    }

    #[test]
    fn sixteen_bit_and_rgb_masks_are_errors_naming_the_file() {
        let p16 = gray_png(1, 1, png::BitDepth::Sixteen, &[255, 255]);
        let err = decode_mask_png(&p16, "m/0.png", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("m/0.png") && err.contains("16-bit"), "{err}");

        let mut rgb = Vec::new();
        let mut enc = png::Encoder::new(&mut rgb, 1, 1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(&[255, 255, 255]).unwrap();
        wr.finish().unwrap();
        let err = decode_mask_png(&rgb, "m/1.png", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("m/1.png") && err.contains("RGB"), "{err}");

        let err = decode_mask_png(b"junk", "m/2.png", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("m/2.png"), "{err}");
    }

    #[test]
    fn one_bit_masks_mean_inside_at_one() {
        let p = gray_png(3, 1, png::BitDepth::One, &[0b1010_0000]);
        let m = decode_mask_png(&p, "m.png", Some((3, 1))).unwrap();
        assert_eq!(m.to_values(), vec![255, 0, 255]);
    }

    #[test]
    fn metadata_csv_is_parsed_by_header() {
        let csv = "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,\
                   predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h\n\
                   0,1,0,0,1,1,0.5,0.5,0.97,0.96,0,0,1,1\n\
                   1,0,0,0,0,0,0.5,0.5,0.9,0.95,0,0,1,1";
        let files = vec![
            ("0.png".to_string(), mask_png(1, 1, &[255])),
            ("1.png".to_string(), mask_png(1, 1, &[0])),
            ("metadata.csv".to_string(), csv.as_bytes().to_vec()),
        ];
        let set = MaskSet::from_files("im", files, None).unwrap();
        let meta = set.masks[0].meta.clone().unwrap();
        assert_eq!(meta.area, Some(1));
        assert_eq!(meta.predicted_iou, Some(0.97));
        assert_eq!(meta.stability_score, Some(0.96));
        assert_eq!(meta.bbox, Some([0.0, 0.0, 1.0, 1.0]));
        assert_eq!(set.masks[1].meta.clone().unwrap().predicted_iou, Some(0.9));

        let err = parse_metadata(b"id,predicted_iou\n0,high", "im/metadata.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("im/metadata.csv") && err.contains("line 2"),
            "{err}"
        );
        assert!(parse_metadata(b"area\n3", "x.csv").is_err());
    }

    fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, bytes) in entries {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(&mut w, bytes).unwrap();
            }
            w.finish().unwrap();
        }
        out.into_inner()
    }

    #[test]
    fn zip_of_mask_folders_is_read_by_name() {
        let bytes = zip_of(&[
            ("masks/a/1.png", mask_png(2, 1, &[0, 255])),
            ("masks/a/0.png", mask_png(2, 1, &[255, 0])),
            ("masks/b/0.png", mask_png(2, 1, &[255, 255])),
            ("readme.txt", b"x".to_vec()),
        ]);
        let zip = MaskZip::new(bytes, "m.zip").unwrap();
        assert_eq!(zip.names().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(zip.warnings.len(), 1);
        let a = zip.mask_set("a", Some((2, 1))).unwrap();
        assert_eq!(a.masks.len(), 2);
        assert_eq!(a.masks[0].bits.to_values(), vec![255, 0]);
        assert_eq!(zip.mask_set("b", None).unwrap().masks[0].bits.count(), 2);
        let err = zip.mask_set("c", None).unwrap_err().to_string();
        assert!(err.contains("m.zip") && err.contains("c/"), "{err}");
    }

    #[test]
    fn zip_entries_escaping_the_archive_are_refused() {
        for bad in ["../a/0.png", "a/../../0.png", "/abs/a/0.png"] {
            let bytes = zip_of(&[(bad, mask_png(1, 1, &[255]))]);
            match MaskZip::new(bytes, "evil.zip") {
                Err(e) => assert!(e.to_string().contains("evil.zip"), "{e}"),
                Ok(z) => panic!("{bad} accepted: {:?}", z.names().collect::<Vec<_>>()),
            }
        }
        assert!(MaskZip::new(b"not a zip".to_vec(), "x.zip").is_err());
    }
}
