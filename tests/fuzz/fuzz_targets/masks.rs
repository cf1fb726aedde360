//! SAM mask sets: a folder's files (`MaskSet::from_files`, `metadata.csv` included) and zips
//! of folders (`MaskZip`). Input: a zip (starts `PK`), or files packed as
//! `[name length u8][name][body length u16 le][body]…`. Never a panic; errors name the input.
#![no_main]
use camsam::core::masks::{MaskSet, MaskZip};
use libfuzzer_sys::fuzz_target;

fn unpack(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let n = (n as usize).min(rest.len());
        let name = String::from_utf8_lossy(&rest[..n]).into_owned();
        let rest = &rest[n..];
        let len = match rest {
            [a, b, ..] => u16::from_le_bytes([*a, *b]) as usize,
            _ => 0,
        };
        let rest = rest.get(2..).unwrap_or_default();
        let len = len.min(rest.len());
        files.push((name, rest[..len].to_vec()));
        data = &rest[len..];
    }
    files
}

fn check_set(set: &MaskSet) {
    let mut size = None;
    for m in &set.masks {
        let s = (m.bits.width(), m.bits.height());
        assert!(size.is_none_or(|t| t == s), "masks of one set disagree in size");
        size = Some(s);
        assert!(m.bits.count() <= s.0 * s.1);
    }
}

fn check_err(e: camsam::Error, name: &str) {
    let text = e.to_string();
    assert!(text.contains(name), "error does not name {name}: {text}");
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"PK") {
        match MaskZip::new(data.to_vec(), "f.zip") {
            Ok(zip) => {
                let names: Vec<String> = zip.names().map(str::to_string).collect();
                for name in names.iter().take(8) {
                    match zip.mask_set(name, None) {
                        Ok(set) => check_set(&set),
                        Err(e) => check_err(e, "f.zip"),
                    }
                }
            }
            Err(e) => check_err(e, "f.zip"),
        }
    } else {
        match MaskSet::from_files("set", unpack(data), None) {
            Ok(set) => check_set(&set),
            Err(e) => check_err(e, "set"),
        }
        if let Err(e) = camsam::core::masks::parse_metadata(data, "m.csv") {
            check_err(e, "m.csv");
        }
    }
});
