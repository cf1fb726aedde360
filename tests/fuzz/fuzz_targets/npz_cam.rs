//! `.npz` archives (zip + npy members) read as CAMs, then labelled.
#![no_main]
use camsam::core::cam::{Cam, CamOptions, CamToLabel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Cam::from_npz(data, "f.npz", &CamOptions::default()) {
        Ok(cam) => {
            let out = cam.to_label(None, &CamToLabel::default(), "f.npz");
            assert!(out.is_ok());
        }
        Err(e) => assert!(e.to_string().contains("f.npz")),
    }
});
