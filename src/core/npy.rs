//! NumPy `.npy` and `.npz` files: the array format CAM code bases (IRN, AMN, ReCAM, …) and the
//! SAM tools write.
//!
//! Follows the format specification of `numpy.lib.format` (NEP 1): the magic `\x93NUMPY`, a
//! version (1.0: 16-bit header length; 2.0 and 3.0: 32-bit, 3.0 with a UTF-8 header), a Python
//! dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces
//! and a newline, then the raw data. Read: booleans, signed and unsigned integers of 1–8 bytes,
//! float16/32/64, little (`<`), big (`>`), native (`=`) or not applicable (`|`) byte order, C or
//! Fortran order (Fortran data is reordered to C order on load). Object (pickled) arrays are
//! not arrays of numbers: [`NpyArray::pickled`] hands their pickle to [`crate::core::pickle`]; other
//! structured dtypes, complex, strings and dates are rejected with an error. `.npz` files are zip
//! archives of `.npy` members (`np.savez` stores them, `np.savez_compressed` deflates them); both
//! are read. Every malformed header, truncated body or shape whose size overflows is an
//! [`Error::Input`] naming the file, raised before anything is allocated for the data.
//! Written: version 1.0 (2.0 when the header needs it), little endian, C order, header padded
//! to a multiple of 64 bytes as numpy does.
//!
//! ```
//! use camsam::core::npy::{NpyArray, NpyData};
//! let a = NpyArray::new(vec![2, 3], NpyData::F32(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0])).unwrap();
//! let bytes = a.to_bytes();
//! let b = NpyArray::from_bytes(&bytes, "a.npy").unwrap();
//! assert_eq!(a, b);
//! ```

use crate::limits::read_zip_entry;
use crate::{Error, Result};
use std::io::{Cursor, Write};
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Largest header accepted. numpy itself refuses headers over 10,000 bytes unless told otherwise.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// Largest `.npz` member read, uncompressed (bounds what a zip bomb can make us allocate).
pub const MAX_NPZ_MEMBER_BYTES: u64 = 4 << 30;

/// The element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F16,
    F32,
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// The numpy type string, little endian (`'<f4'`, `'|u1'`, …).
    pub fn descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::I8 => "|i1",
            DType::U8 => "|u1",
            DType::I16 => "<i2",
            DType::U16 => "<u2",
            DType::I32 => "<i4",
            DType::U32 => "<u4",
            DType::I64 => "<i8",
            DType::U64 => "<u8",
            DType::F16 => "<f2",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }
}

/// The elements of an array, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    /// IEEE half floats, as their bit patterns.
    F16(Vec<u16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl NpyData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::Bool(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I16(v) => v.len(),
            NpyData::U16(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::U32(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::U64(v) => v.len(),
            NpyData::F16(v) => v.len(),
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            NpyData::Bool(_) => DType::Bool,
            NpyData::I8(_) => DType::I8,
            NpyData::U8(_) => DType::U8,
            NpyData::I16(_) => DType::I16,
            NpyData::U16(_) => DType::U16,
            NpyData::I32(_) => DType::I32,
            NpyData::U32(_) => DType::U32,
            NpyData::I64(_) => DType::I64,
            NpyData::U64(_) => DType::U64,
            NpyData::F16(_) => DType::F16,
            NpyData::F32(_) => DType::F32,
            NpyData::F64(_) => DType::F64,
        }
    }
}

/// An n-dimensional array read from or written to a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// The elements in C order.
    pub data: NpyData,
}

impl NpyArray {
    /// An array of `shape` holding `data` (C order); the element count must match the shape.
    pub fn new(shape: Vec<usize>, data: NpyData) -> Result<Self> {
        let count = element_count(&shape)
            .ok_or_else(|| Error::input("array", format!("shape {shape:?} overflows")))?;
        if count != data.len() {
            return Err(Error::input(
                "array",
                format!(
                    "{} elements for shape {shape:?} (expected {count})",
                    data.len()
                ),
            ));
        }
        Ok(NpyArray { shape, data })
    }

    /// A float32 array (the format of SAM embeddings and logits).
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        Self::new(shape, NpyData::F32(data))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements as `f32` (integers converted, f64 rounded to nearest, booleans as 0/1).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::Bool(v) => v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect(),
            NpyData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I16(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U16(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::F16(v) => v.iter().map(|&x| f16_to_f32(x)).collect(),
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The elements as integers; floats must hold whole numbers. `name` is used in errors.
    pub fn to_i64(&self, name: &str) -> Result<Vec<i64>> {
        let from_float = |x: f64| -> Result<i64> {
            if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 {
                Ok(x as i64)
            } else {
                Err(Error::input(
                    name,
                    format!("value {x} where a whole number was expected"),
                ))
            }
        };
        Ok(match &self.data {
            NpyData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I16(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U16(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U32(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I64(v) => v.clone(),
            NpyData::U64(v) => v
                .iter()
                .map(|&x| {
                    i64::try_from(x).map_err(|_| {
                        Error::input(name, format!("value {x} does not fit a 64-bit integer"))
                    })
                })
                .collect::<Result<_>>()?,
            NpyData::F16(v) => v
                .iter()
                .map(|&x| from_float(f16_to_f32(x) as f64))
                .collect::<Result<_>>()?,
            NpyData::F32(v) => v
                .iter()
                .map(|&x| from_float(x as f64))
                .collect::<Result<_>>()?,
            NpyData::F64(v) => v.iter().map(|&x| from_float(x)).collect::<Result<_>>()?,
        })
    }

    /// Parse a `.npy` file's bytes. `name` (the file) is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let header = parse_preamble(bytes, name)?;
        let Some(dtype) = header.dtype else {
            return Err(Error::input(
                name,
                "a pickled object array (np.save of a dict, as IRN writes), not a numeric array; \
                 read it as a CAM (camsam reads the dicts of IRN, AMN, LPCAM, PSA and CLIP-ES)",
            ));
        };
        let body = &bytes[header.data_offset..];
        let count = element_count(&header.shape).ok_or_else(|| {
            Error::input(
                name,
                format!(
                    "shape {:?} has more elements than can be addressed",
                    header.shape
                ),
            )
        })?;
        let item = dtype.size();
        let need = count.checked_mul(item).ok_or_else(|| {
            Error::input(
                name,
                format!("shape {:?} is too large to address", header.shape),
            )
        })?;
        if body.len() < need {
            return Err(Error::input(
                name,
                format!(
                    "truncated: shape {:?} of {} needs {need} data bytes, the file holds {}",
                    header.shape,
                    dtype.descr(),
                    body.len()
                ),
            ));
        }
        if body.len() > need {
            return Err(Error::input(
                name,
                format!(
                    "{} unexpected bytes after the data of shape {:?} ({}); expected exactly {need}",
                    body.len() - need,
                    header.shape,
                    dtype.descr()
                ),
            ));
        }
        let data = decode_data(body, dtype, header.big_endian);
        let data = if header.fortran_order && header.shape.len() > 1 {
            fortran_to_c(data, &header.shape)
        } else {
            data
        };
        Ok(NpyArray {
            shape: header.shape,
            data,
        })
    }

    /// The pickle stream of an object `.npy` (`np.save` of a dict or list: a 0-d object array
    /// whose data is a pickle), or `None` for a numeric array. The caller unpickles it with
    /// [`crate::core::pickle`], which runs nothing.
    pub fn pickled<'a>(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
        let header = parse_preamble(bytes, name)?;
        if header.dtype.is_some() {
            return Ok(None);
        }
        if !header.shape.is_empty() {
            return Err(Error::input(
                name,
                format!(
                    "an object array of shape {:?}; expected a 0-d one (np.save of a dict)",
                    header.shape
                ),
            ));
        }
        Ok(Some(&bytes[header.data_offset..]))
    }

    /// Read a `.npy` file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Encode as a `.npy` file (little endian, C order).
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = match self.shape.len() {
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let dict = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.dtype().descr()
        );
        // Version 1.0 has a 16-bit header length; fall back to 2.0 for huge shapes.
        let (version, len_bytes) = if dict.len() + 1 + 10 <= 65535 {
            (1u8, 2usize)
        } else {
            (2u8, 4usize)
        };
        let prefix = MAGIC.len() + 2 + len_bytes;
        let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
        let header_len = total - prefix;
        let mut out = Vec::with_capacity(total + self.len() * self.dtype().size());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[version, 0]);
        if version == 1 {
            out.extend_from_slice(&(header_len as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header_len as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.resize(total - 1, b' ');
        out.push(b'\n');
        encode_data(&self.data, &mut out);
        out
    }

    /// Write a `.npy` file.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(|e| Error::io(path, e))
    }
}

/// Write a float32 `.npy` file of `shape` (C order).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let count = element_count(shape);
    if count != Some(data.len()) {
        return Err(Error::input(
            path.display().to_string(),
            format!(
                "{} values for shape {shape:?}; expected one per element",
                data.len()
            ),
        ));
    }
    // Encode without cloning the data into an NpyArray.
    let header = NpyArray {
        shape: shape.to_vec(),
        data: NpyData::F32(Vec::new()),
    }
    .to_bytes();
    let mut out = Vec::with_capacity(header.len() + 4 * data.len());
    out.extend_from_slice(&header);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

/// The number of elements of `shape`, or `None` when it overflows `usize`.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

struct Header {
    /// `None` for an object array (`'|O'`: a pickle follows the header).
    dtype: Option<DType>,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
    data_offset: usize,
}

fn parse_preamble(bytes: &[u8], name: &str) -> Result<Header> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(Error::input(
            name,
            "not a .npy file: it does not start with the magic \\x93NUMPY",
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Error::input(name, "truncated .npy header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => {
            return Err(Error::input(
                name,
                format!(".npy format version {major}.{minor}; expected 1.0, 2.0 or 3.0"),
            ))
        }
    };
    if header_len > MAX_HEADER_BYTES {
        return Err(Error::input(
            name,
            format!(".npy header of {header_len} bytes; expected at most {MAX_HEADER_BYTES}"),
        ));
    }
    let end = start + header_len;
    if bytes.len() < end {
        return Err(Error::input(
            name,
            format!(
                "truncated: the .npy header says {header_len} bytes, the file holds {}",
                bytes.len() - start
            ),
        ));
    }
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| Error::input(name, ".npy header is not ASCII/UTF-8 text"))?;
    let bad = |what: String| {
        Error::input(
            name,
            format!(
                "bad .npy header {:?}: {what}; expected {{'descr': '<f4', 'fortran_order': False, 'shape': (…), }}",
                text.trim_end()
            ),
        )
    };
    let dict = DictParser::new(text).parse().map_err(bad)?;
    let (dtype, big_endian) = if matches!(dict.descr.as_str(), "|O" | "O" | "<O" | ">O" | "=O") {
        (None, false)
    } else {
        let (dtype, big_endian) = parse_descr(&dict.descr).map_err(bad)?;
        (Some(dtype), big_endian)
    };
    Ok(Header {
        dtype,
        big_endian,
        fortran_order: dict.fortran_order,
        shape: dict.shape,
        data_offset: end,
    })
}

pub(crate) fn parse_descr(descr: &str) -> std::result::Result<(DType, bool), String> {
    let mut chars = descr.chars();
    let (order, rest) = match chars.next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, chars.as_str()),
        _ => ('=', descr),
    };
    let dtype = match rest {
        "b1" | "?" => DType::Bool,
        "i1" => DType::I8,
        "u1" => DType::U8,
        "i2" => DType::I16,
        "u2" => DType::U16,
        "i4" => DType::I32,
        "u4" => DType::U32,
        "i8" => DType::I64,
        "u8" => DType::U64,
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "O" | "O8" | "O4" => {
            return Err(format!(
                "dtype '{descr}' is a pickled object array; only a 0-d one holding a dict \
                 (np.save of a dict, as IRN writes) is read, as a CAM"
            ))
        }
        _ => {
            return Err(format!(
                "dtype '{descr}' is not supported (expected bool, integers or float16/32/64)"
            ))
        }
    };
    if order == '|' && dtype.size() > 1 {
        return Err(format!(
            "dtype '{descr}' has no byte order but {} bytes per element",
            dtype.size()
        ));
    }
    // '=' is native order; every target camsam runs on is little endian.
    Ok((dtype, order == '>'))
}

struct Dict {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A parser for the one Python literal numpy writes: a dict of str → str | bool | tuple of int.
struct DictParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> DictParser<'a> {
    fn new(text: &'a str) -> Self {
        DictParser {
            s: text.as_bytes(),
            pos: 0,
        }
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("'{}' expected at byte {}", c as char, self.pos))
        }
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        self.ws();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("a quoted string expected at byte {}", self.pos)),
        };
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != quote {
            if self.s[self.pos] == b'\\' {
                return Err("escapes in strings are not supported".into());
            }
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return Err("unterminated string".into());
        }
        let out = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(out)
    }

    fn word(&mut self) -> &'a [u8] {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        match self.word() {
            b"True" => Ok(true),
            b"False" => Ok(false),
            _ => Err("fortran_order must be True or False".into()),
        }
    }

    fn shape(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b')') {
                self.pos += 1;
                break;
            }
            let w = self.word();
            // Python 2 wrote long integers with an L suffix.
            let digits = w.strip_suffix(b"L").unwrap_or(w);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(format!(
                    "shape entries must be non-negative integers, found '{}'",
                    String::from_utf8_lossy(w)
                ));
            }
            let d: usize = std::str::from_utf8(digits)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| "a shape entry does not fit in memory addressing".to_string())?;
            dims.push(d);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {}
                _ => return Err(format!("',' or ')' expected in shape at byte {}", self.pos)),
            }
        }
        Ok(dims)
    }

    fn parse(mut self) -> std::result::Result<Dict, String> {
        self.expect(b'{')?;
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.string()?;
            self.expect(b':')?;
            self.ws();
            let dup = match key.as_str() {
                "descr" => {
                    if self.peek() == Some(b'[') {
                        return Err("structured dtypes (a list descr) are not supported".into());
                    }
                    descr.replace(self.string()?).is_some()
                }
                "fortran_order" => fortran.replace(self.boolean()?).is_some(),
                "shape" => shape.replace(self.shape()?).is_some(),
                other => return Err(format!("unknown key '{other}'")),
            };
            if dup {
                return Err(format!("key '{key}' given twice"));
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(format!("',' or '}}' expected at byte {}", self.pos)),
            }
        }
        self.ws();
        if self.pos != self.s.len() {
            return Err("text after the closing '}'".into());
        }
        match (descr, fortran, shape) {
            (Some(descr), Some(fortran_order), Some(shape)) => Ok(Dict {
                descr,
                fortran_order,
                shape,
            }),
            _ => Err("missing one of the keys 'descr', 'fortran_order', 'shape'".into()),
        }
    }
}

fn chunks<const N: usize, T>(
    body: &[u8],
    big: bool,
    le: fn([u8; N]) -> T,
    be: fn([u8; N]) -> T,
) -> Vec<T> {
    body.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            if big {
                be(a)
            } else {
                le(a)
            }
        })
        .collect()
}

pub(crate) fn decode_data(body: &[u8], dtype: DType, big: bool) -> NpyData {
    match dtype {
        DType::Bool => NpyData::Bool(body.iter().map(|&b| b != 0).collect()),
        DType::I8 => NpyData::I8(body.iter().map(|&b| b as i8).collect()),
        DType::U8 => NpyData::U8(body.to_vec()),
        DType::I16 => NpyData::I16(chunks(body, big, i16::from_le_bytes, i16::from_be_bytes)),
        DType::U16 => NpyData::U16(chunks(body, big, u16::from_le_bytes, u16::from_be_bytes)),
        DType::F16 => NpyData::F16(chunks(body, big, u16::from_le_bytes, u16::from_be_bytes)),
        DType::I32 => NpyData::I32(chunks(body, big, i32::from_le_bytes, i32::from_be_bytes)),
        DType::U32 => NpyData::U32(chunks(body, big, u32::from_le_bytes, u32::from_be_bytes)),
        DType::F32 => NpyData::F32(chunks(body, big, f32::from_le_bytes, f32::from_be_bytes)),
        DType::I64 => NpyData::I64(chunks(body, big, i64::from_le_bytes, i64::from_be_bytes)),
        DType::U64 => NpyData::U64(chunks(body, big, u64::from_le_bytes, u64::from_be_bytes)),
        DType::F64 => NpyData::F64(chunks(body, big, f64::from_le_bytes, f64::from_be_bytes)),
    }
}

fn encode_data(data: &NpyData, out: &mut Vec<u8>) {
    match data {
        NpyData::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
        NpyData::I8(v) => out.extend(v.iter().map(|&b| b as u8)),
        NpyData::U8(v) => out.extend_from_slice(v),
        NpyData::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::U16(v) | NpyData::F16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
}

/// Reorder Fortran-order (column-major) elements into C order.
pub(crate) fn fortran_to_c(data: NpyData, shape: &[usize]) -> NpyData {
    fn reorder<T: Copy>(v: Vec<T>, shape: &[usize]) -> Vec<T> {
        let n = shape.len();
        // Column-major strides: the first index varies fastest.
        let mut fstride = vec![1usize; n];
        for k in 1..n {
            fstride[k] = fstride[k - 1] * shape[k - 1];
        }
        let mut out = Vec::with_capacity(v.len());
        let mut idx = vec![0usize; n];
        let mut f = 0usize;
        for _ in 0..v.len() {
            out.push(v[f]);
            // Advance the C-order odometer (last index fastest), tracking the Fortran offset.
            for k in (0..n).rev() {
                idx[k] += 1;
                f += fstride[k];
                if idx[k] < shape[k] {
                    break;
                }
                f -= fstride[k] * idx[k];
                idx[k] = 0;
            }
        }
        out
    }
    match data {
        NpyData::Bool(v) => NpyData::Bool(reorder(v, shape)),
        NpyData::I8(v) => NpyData::I8(reorder(v, shape)),
        NpyData::U8(v) => NpyData::U8(reorder(v, shape)),
        NpyData::I16(v) => NpyData::I16(reorder(v, shape)),
        NpyData::U16(v) => NpyData::U16(reorder(v, shape)),
        NpyData::I32(v) => NpyData::I32(reorder(v, shape)),
        NpyData::U32(v) => NpyData::U32(reorder(v, shape)),
        NpyData::I64(v) => NpyData::I64(reorder(v, shape)),
        NpyData::U64(v) => NpyData::U64(reorder(v, shape)),
        NpyData::F16(v) => NpyData::F16(reorder(v, shape)),
        NpyData::F32(v) => NpyData::F32(reorder(v, shape)),
        NpyData::F64(v) => NpyData::F64(reorder(v, shape)),
    }
}

/// IEEE 754 half → single precision.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac · 2⁻²⁴.
            let v = frac as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// An `.npz` archive (`np.savez` / `np.savez_compressed`), read member by member.
pub struct Npz<'a> {
    name: String,
    archive: zip::ZipArchive<Cursor<&'a [u8]>>,
    keys: Vec<(String, usize)>,
    member_limit: u64,
}

impl<'a> Npz<'a> {
    /// Open an archive held in memory. `name` (the file) is used in errors.
    pub fn new(bytes: &'a [u8], name: &str) -> Result<Self> {
        let archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| Error::input(name, format!("not a readable .npz (zip) archive ({e})")))?;
        let mut keys: Vec<(String, usize)> = Vec::new();
        for (i, member) in archive.file_names().enumerate() {
            let member = member.map_err(|e| {
                Error::input(
                    name,
                    format!("unreadable member name in .npz archive ({e})"),
                )
            })?;
            let Some(key) = member.strip_suffix(".npy") else {
                continue;
            };
            if keys.iter().any(|(k, _)| k == key) {
                return Err(Error::input(
                    name,
                    format!("member '{member}' appears twice in the .npz archive"),
                ));
            }
            keys.push((key.to_string(), i));
        }
        Ok(Npz {
            name: name.to_string(),
            archive,
            keys,
            member_limit: MAX_NPZ_MEMBER_BYTES,
        })
    }

    /// Read members of at most `bytes` uncompressed (default [`MAX_NPZ_MEMBER_BYTES`]).
    pub fn with_member_limit(mut self, bytes: u64) -> Self {
        self.member_limit = bytes;
        self
    }

    /// The array names (`.npy` members without the extension), in archive order.
    pub fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// True when the archive holds an array called `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }

    /// Read the array called `key`.
    pub fn read(&mut self, key: &str) -> Result<NpyArray> {
        let member_name = format!("{}[{key}]", self.name);
        let Some(&(_, index)) = self.keys.iter().find(|(k, _)| k == key) else {
            return Err(Error::input(
                &self.name,
                format!(
                    "no array '{key}' in the .npz archive (it holds: {})",
                    self.keys().join(", ")
                ),
            ));
        };
        let member = self
            .archive
            .by_index(index)
            .map_err(|e| Error::input(&member_name, format!("unreadable .npz member ({e})")))?;
        let declared = member.size();
        let bytes = read_zip_entry(member, declared, self.member_limit, &member_name)?;
        NpyArray::from_bytes(&bytes, &member_name)
    }
}

/// Encode arrays as an `.npz` archive (`compressed`: deflated like `np.savez_compressed`,
/// else stored like `np.savez`).
pub fn encode_npz(arrays: &[(&str, &NpyArray)], compressed: bool) -> Result<Vec<u8>> {
    let method = if compressed {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(true);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let fail = |e: String| Error::encode(".npz", e);
    for (key, array) in arrays {
        zip.start_file(format!("{key}.npy"), options)
            .map_err(|e| fail(e.to_string()))?;
        zip.write_all(&array.to_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(zip.finish().map_err(|e| fail(e.to_string()))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn header_is_padded_to_64_bytes_and_ends_with_newline() {
        let a = NpyArray::from_f32(vec![1, 256, 64, 64], vec![0.0; 256 * 64 * 64]).unwrap();
        let b = a.to_bytes();
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(b[10 + hlen - 1], b'\n');
        let text = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(text
            .starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 256, 64, 64), }"));
    }

    #[test]
    fn fortran_reorder_matches_column_major_layout() {
        // A (2,3,2) array whose element (i,j,k) is 100i + 10j + k, stored column-major.
        let shape = [2usize, 3, 2];
        let mut f = Vec::new();
        for k in 0..2 {
            for j in 0..3 {
                for i in 0..2 {
                    f.push(100 * i + 10 * j + k);
                }
            }
        }
        let NpyData::I32(c) = fortran_to_c(NpyData::I32(f), &shape) else {
            panic!("dtype changed")
        };
        let expected: Vec<i32> = (0..2)
            .flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| 100 * i + 10 * j + k)))
            .collect();
        assert_eq!(c, expected);
    }
}
