//! Checkpoint tensors for upload: the loaded [`Weights`] (official state-dict names, shapes
//! checked at load by `sam::weights`) read by name with the shape each GPU module expects.
//!
//! ```no_run
//! # fn demo() -> camsam::Result<()> {
//! use camsam::sam::gpu::weights::WeightsExt;
//! let w = camsam::sam::weights::Weights::load("mobile_sam.pt".as_ref())?;
//! let qkv = w.f32s("image_encoder.layers.1.blocks.0.attn.qkv.weight", &[384, 128])?;
//! # Ok(()) }
//! ```

use crate::sam::weights::Weights;
use crate::{Error, Result};

/// Shape-checked access to checkpoint tensors as host `f32`.
pub trait WeightsExt {
    /// The values of `name`, which must have shape `shape`.
    fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
    /// Shape of `name`, if present.
    fn dims(&self, name: &str) -> Option<Vec<usize>>;
}

impl WeightsExt for Weights {
    fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(Error::input(
                self.source(),
                format!(
                    "tensor {name} has shape {:?}; MobileSAM (vit_t) has {shape:?}",
                    t.shape
                ),
            ));
        }
        Ok(t.data.clone())
    }

    fn dims(&self, name: &str) -> Option<Vec<usize>> {
        self.get(name).ok().map(|t| t.shape.clone())
    }
}
