//! Per-class heatmap PNGs.
#![no_main]
use camsam::core::cam::{Cam, CamOptions, CamToLabel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let maps = vec![(3u8, data.to_vec(), "f_3.png".to_string())];
    match Cam::from_heatmaps(&maps, &CamOptions::default()) {
        Ok(cam) => assert!(cam.to_label(None, &CamToLabel::default(), "f_3.png").is_ok()),
        Err(e) => assert!(e.to_string().contains("f_3.png")),
    }
});
