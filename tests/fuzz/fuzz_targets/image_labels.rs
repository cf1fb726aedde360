//! Image-level label lists (TSV with a `classes` column, or `<name> <class>…` lines).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match camsam::core::cam::parse_image_labels(&text, "f.tsv", 21) {
        Ok(map) => assert!(map.values().flatten().all(|&c| (1..21).contains(&c))),
        Err(e) => assert!(e.to_string().contains("f.tsv")),
    }
});
