//! `.npy` files holding a pickled CAM dict (IRN, AMN, LPCAM, PSA, CLIP-ES), read through the
//! restricted pickle reader, then labelled; and the same bytes as a bare pickle.
#![no_main]
use camsam::core::cam::{Cam, CamOptions, CamToLabel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Cam::from_npy_bytes(data, "f.npy", &CamOptions::default()) {
        Ok(cam) => {
            let out = cam.to_label(None, &CamToLabel::default(), "f.npy");
            assert!(out.is_ok());
        }
        Err(e) => assert!(e.to_string().contains("f.npy")),
    }
    if let Err(e) = camsam::core::pickle::load(data, "f.pkl") {
        assert!(e.to_string().starts_with("f.pkl: "));
    }
});
