//! NIfTI-1/2 reading (`medical::read_slices` on `.nii` / `.nii.gz` bytes) and, for what reads,
//! the label volume written back on its grid: never a panic, never an allocation past the
//! caps; errors name the file.
#![no_main]
use camsam::core::label::LabelMap;
use camsam::medical::{label_volume, read_slices, MedicalOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for volume in [None, Some(1)] {
        let opts = MedicalOptions {
            window: None,
            volume,
        };
        match read_slices(data, "f.nii", &opts) {
            Ok(slices) => {
                let sizes: Vec<_> = slices
                    .iter()
                    .map(|s| (s.name.clone(), s.width, s.height))
                    .collect();
                let out = label_volume(data, "f.nii", volume, &mut |name| {
                    let (_, w, h) = sizes.iter().find(|s| s.0 == name).expect("a slice read");
                    Ok(LabelMap::filled(*w, *h, 1))
                });
                assert!(out.is_ok(), "{:?}", out.err());
            }
            Err(e) => assert!(e.to_string().starts_with("f.nii: "), "{e}"),
        }
    }
});
