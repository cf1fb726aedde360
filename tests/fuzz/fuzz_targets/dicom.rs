//! DICOM parsing and pixel decoding (`medical::read_slices` on `.dcm` bytes: the structure
//! check, dicom-object, RLE, JPEG, JPEG 2000): never a panic, never an allocation past the
//! caps; errors name the file; slices are consistent.
#![no_main]
use camsam::medical::{read_slices, MedicalOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match read_slices(data, "f.dcm", &MedicalOptions::default()) {
        Ok(slices) => {
            for s in slices {
                assert_eq!(s.values.len(), s.width * s.height * s.channels);
                assert_eq!(s.rgb.dimensions(), (s.width as u32, s.height as u32));
            }
        }
        Err(e) => assert!(e.to_string().starts_with("f.dcm: "), "{e}"),
    }
});
