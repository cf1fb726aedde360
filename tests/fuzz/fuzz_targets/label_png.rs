//! Label PNGs (`label::decode_png`) and RGB images (`sam::preprocess::decode_rgb`): never a
//! panic; errors name the file; a decoded label survives a write and a re-read unchanged.
#![no_main]
use camsam::core::label::{LabelFormat, LabelMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match LabelMap::decode_png(data, "f.png") {
        Ok(map) => {
            assert_eq!(map.data.len(), map.width * map.height);
            for format in [LabelFormat::Palette, LabelFormat::Gray] {
                let png = map.encode_png(format).expect("a decoded map encodes");
                let again = LabelMap::decode_png(&png, "again.png").expect("re-read");
                assert_eq!(again, map);
            }
        }
        Err(e) => assert!(e.to_string().contains("f.png"), "{e}"),
    }
    match camsam::sam::preprocess::decode_rgb(data, "f.img") {
        Ok(img) => assert_eq!(img.as_raw().len(), 3 * img.width() as usize * img.height() as usize),
        Err(e) => assert!(e.to_string().contains("f.img"), "{e}"),
    }
});
