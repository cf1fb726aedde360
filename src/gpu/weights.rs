//! Host-side access to the checkpoint tensors by their official state-dict names
//! (`image_encoder.*`, `prompt_encoder.*`, `mask_decoder.*`), with shape checks, for
//! uploading to the device. Parsing the files is the weights loader's job; this wraps the
//! name → tensor map it produces (or `candle_core::safetensors::load` directly).
//!
//! ```no_run
//! # fn demo() -> camsam::Result<()> {
//! let map = candle_core::safetensors::load("mobile_sam.safetensors", &candle_core::Device::Cpu)?;
//! let w = camsam::gpu::weights::HostWeights::new("mobile_sam.safetensors", map);
//! let qkv = w.get("image_encoder.layers.1.blocks.0.attn.qkv.weight", &[384, 128])?;
//! # Ok(()) }
//! ```

use crate::{Error, Result};
use candle_core::{DType, Tensor};
use std::collections::HashMap;

/// Checkpoint tensors by name.
pub struct HostWeights {
    source: String,
    map: HashMap<String, Tensor>,
}

impl HostWeights {
    /// Wraps `map`, read from `source` (named in error messages).
    pub fn new(source: impl Into<String>, map: HashMap<String, Tensor>) -> Self {
        Self {
            source: source.into(),
            map,
        }
    }

    /// The f32 values of `name`, which must have shape `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.map.get(name).ok_or_else(|| {
            Error::input(
                &self.source,
                format!("tensor {name} is missing; expected a MobileSAM (vit_t) checkpoint"),
            )
        })?;
        if t.dims() != shape {
            return Err(Error::input(
                &self.source,
                format!(
                    "tensor {name} has shape {:?}; MobileSAM (vit_t) has {shape:?}",
                    t.dims()
                ),
            ));
        }
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Shape of `name`, if present.
    pub fn dims(&self, name: &str) -> Option<Vec<usize>> {
        self.map.get(name).map(|t| t.dims().to_vec())
    }
}
