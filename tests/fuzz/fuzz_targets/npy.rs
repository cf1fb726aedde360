//! `.npy` parsing, then use as a CAM: never a panic; errors name the file.
#![no_main]
use camsam::core::cam::{Cam, CamOptions};
use camsam::core::npy::NpyArray;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match NpyArray::from_bytes(data, "f.npy") {
        Ok(a) => {
            assert_eq!(Some(a.len()), camsam::core::npy::element_count(&a.shape));
            let _ = Cam::from_npy(&a, "f.npy", &CamOptions::default());
        }
        Err(e) => assert!(e.to_string().contains("f.npy")),
    }
});
