//! CAM → label on arbitrary small CAMs: labels hold only 0, 255 or a CAM's classes.
#![no_main]
use camsam::core::cam::{Cam, CamToLabel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let (h, w) = (1 + data[0] as usize % 8, 1 + data[1] as usize % 8);
    let classes: Vec<u8> = (1..=data[2] % 6).map(|c| c * 3).collect();
    let params = CamToLabel {
        bg_threshold: data[3] as f32 / 255.0,
        ignore_margin: (data[4] % 4) as f32 / 10.0,
    };
    let floats: Vec<f32> = data[5..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .chain(std::iter::repeat(0.0))
        .take(classes.len() * h * w)
        .collect();
    let cam = Cam::new(classes.clone(), h, w, floats).expect("valid by construction");
    let out = cam.to_label(None, &params, "f.npy").expect("valid parameters");
    assert!(out
        .label
        .data
        .iter()
        .all(|&v| v == 0 || v == 255 || classes.contains(&v)));
});
