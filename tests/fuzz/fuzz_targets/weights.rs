//! Checkpoint loading from bytes (`sam::weights::Weights::from_bytes`): PyTorch `.pt` (zip +
//! pickle) and `.safetensors` headers. Never a panic, never a huge allocation; errors name the
//! file.
#![no_main]
use camsam::sam::weights::Weights;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Weights::from_bytes(data, "f.pt") {
        assert!(e.to_string().contains("f.pt"), "{e}");
    }
});
