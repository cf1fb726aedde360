//! Device-resident f32 tensors, the buffer pool they come from, and async readback.
//!
//! A [`GpuTensor`] is a storage buffer plus a row-major shape. Dropping it returns the buffer
//! to the pool, so a whole encoder pass reuses a handful of allocations; reuse inside one
//! command buffer is safe because dispatches run in recorded order.
//!
//! Readback copies into a `MAP_READ` staging buffer and awaits `map_async` through a
//! `futures_channel::oneshot`; natively the device is polled until done, on wasm the browser
//! resolves the mapping and nothing blocks.
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! let t = camsam::gpu::GpuTensor::upload(ctx, &[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
//! assert_eq!(t.read(ctx).await?, vec![1.0, 2.0, 3.0, 4.0]);
//! # Ok(()) }
//! ```

use super::context::GpuContext;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Free storage buffers by byte size.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

impl BufferPool {
    fn take(&self, bytes: u64) -> Option<wgpu::Buffer> {
        self.free.lock().ok()?.get_mut(&bytes)?.pop()
    }

    fn give(&self, buffer: wgpu::Buffer) {
        if let Ok(mut free) = self.free.lock() {
            free.entry(buffer.size()).or_default().push(buffer);
        }
    }

    /// Frees every pooled buffer (after a large job).
    pub(crate) fn clear(&self) {
        if let Ok(mut free) = self.free.lock() {
            free.clear();
        }
    }
}

/// A row-major f32 tensor in a device storage buffer.
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    shape: Vec<usize>,
    pool: Arc<BufferPool>,
    /// A matmul weight `[n, k]` on CPU adapters also lives in an rgba32float texture of
    /// k/4 × n texels, which `matmul_tex.wgsl` reads ([`GpuTensor::upload_weight`]).
    texture: Option<wgpu::TextureView>,
    /// A matmul weight's values as f16 too, where the matmuls take f16 operands
    /// ([`super::GpuOptions::f16`]).
    half: Option<wgpu::Buffer>,
}

impl std::fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuTensor{:?}", self.shape)
    }
}

impl Drop for GpuTensor {
    fn drop(&mut self) {
        self.pool.give(self.buffer.clone());
    }
}

/// Buffer sizes are rounded up so that shapes differing slightly share pool entries.
fn rounded_bytes(elems: usize) -> u64 {
    let bytes = (elems.max(1) * 4) as u64;
    bytes.div_ceil(256) * 256
}

impl GpuTensor {
    /// An uninitialised tensor of `shape` (contents are whatever the pooled buffer held).
    pub fn empty(ctx: &GpuContext, shape: &[usize]) -> Result<Self> {
        let elems: usize = shape.iter().product();
        let bytes = rounded_bytes(elems);
        if bytes > ctx.max_binding_bytes() {
            return Err(Error::Gpu(format!(
                "tensor {shape:?} needs {bytes} bytes; the device binds at most {} (chunk the batch)",
                ctx.max_binding_bytes()
            )));
        }
        let buffer = match ctx.pool.take(bytes) {
            Some(b) => b,
            None => ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        Ok(Self {
            buffer,
            shape: shape.to_vec(),
            pool: ctx.pool.clone(),
            texture: None,
            half: None,
        })
    }

    /// Uploads `data` (row-major, `shape.product()` values).
    pub fn upload(ctx: &GpuContext, shape: &[usize], data: &[f32]) -> Result<Self> {
        let elems: usize = shape.iter().product();
        if elems != data.len() {
            return Err(Error::Model(format!(
                "upload: shape {shape:?} holds {elems} values, got {}",
                data.len()
            )));
        }
        let t = Self::empty(ctx, shape)?;
        if !data.is_empty() {
            ctx.queue
                .write_buffer(t.buffer(), 0, bytemuck::cast_slice(data));
        }
        Ok(t)
    }

    /// Uploads a matmul weight `[n, k]` (PyTorch's `Linear` layout). On devices that run the
    /// blocked matmul (CPU adapters) it is also written to a texture when k is a multiple of 4
    /// and it fits the device's texture size, so [`super::matmul::linear`] reads it with texel
    /// fetches. Where the matmuls take f16 operands ([`GpuContext::f16_operands`]) it also
    /// keeps an f16 copy, which they read.
    pub fn upload_weight(ctx: &GpuContext, shape: &[usize], data: &[f32]) -> Result<Self> {
        let mut t = Self::upload(ctx, shape, data)?;
        let max = ctx.max_texture_side();
        if let [n, k] = *shape {
            let texels = k / 4;
            let fits = k % 4 == 0 && k > 0 && n > 0 && texels <= max && n <= max;
            if fits && ctx.matmul_kernel() == super::MatmulKernel::Blocked {
                let size = wgpu::Extent3d {
                    width: texels as u32,
                    height: n as u32,
                    depth_or_array_layers: 1,
                };
                let texture = ctx.texel_texture("matmul weight", size.width, size.height);
                ctx.queue.write_texture(
                    texture.as_image_copy(),
                    bytemuck::cast_slice(data),
                    wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(16 * texels as u32),
                        rows_per_image: Some(n as u32),
                    },
                    size,
                );
                t.texture = Some(texture.create_view(&wgpu::TextureViewDescriptor::default()));
            }
        }
        if ctx.f16_operands() && shape.len() == 2 {
            let mut half: Vec<u16> = data
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            // Storage bindings are whole 4-byte words.
            half.resize(half.len().max(2).next_multiple_of(2), 0);
            t.half = Some(wgpu::util::DeviceExt::create_buffer_init(
                &ctx.device,
                &wgpu::util::BufferInitDescriptor {
                    label: Some("matmul weight (f16)"),
                    contents: bytemuck::cast_slice(&half),
                    usage: wgpu::BufferUsages::STORAGE,
                },
            ));
        }
        Ok(t)
    }

    /// The f16 copy of a weight from [`GpuTensor::upload_weight`], where the matmuls take f16
    /// operands.
    pub(crate) fn half(&self) -> Option<&wgpu::Buffer> {
        self.half.as_ref()
    }

    /// The weight texture of [`GpuTensor::upload_weight`], if it made one.
    pub(crate) fn texture(&self) -> Option<&wgpu::TextureView> {
        self.texture.as_ref()
    }

    /// The shape, row-major.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Same data, another shape with the same element count.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != self.len() {
            return Err(Error::Model(format!(
                "reshape {:?} → {shape:?}: element counts differ",
                self.shape
            )));
        }
        self.shape = shape.to_vec();
        // The texture's layout follows the old shape.
        self.texture = None;
        Ok(self)
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Reads the tensor back to the host (submits any pending work first).
    pub async fn read(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        self.start_read(ctx).finish(ctx).await
    }

    /// Starts reading the tensor back: submits a copy into a staging buffer behind the work
    /// already submitted and asks for its mapping. [`Readback::finish`] waits for that copy
    /// alone, so work submitted after this call keeps the device busy meanwhile (the decoder
    /// reads one prompt batch back while the next one runs).
    pub fn start_read(&self, ctx: &GpuContext) -> Readback {
        let bytes = (self.len() * 4) as u64;
        if bytes == 0 {
            return Readback { pending: None };
        }
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_buffer_to_buffer(self.buffer(), 0, &staging, 0, bytes);
        let index = ctx.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        Readback {
            pending: Some((staging, index, rx)),
        }
    }
}

/// A readback under way ([`GpuTensor::start_read`]).
#[must_use = "a readback does nothing until it is finished"]
pub struct Readback {
    #[allow(clippy::type_complexity)]
    pending: Option<(
        wgpu::Buffer,
        wgpu::SubmissionIndex,
        futures_channel::oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    )>,
}

impl Readback {
    /// Waits for the copy (natively by polling the device up to its submission; in the
    /// browser the mapping resolves by itself) and returns the values.
    pub async fn finish(self, ctx: &GpuContext) -> Result<Vec<f32>> {
        self.finish_with(ctx, <[f32]>::to_vec).await
    }

    /// [`Readback::finish`] that hands the mapped values to `take` instead of copying them
    /// all: the decoder copies each prompt's masks straight out of the mapping.
    pub async fn finish_with<T>(
        self,
        ctx: &GpuContext,
        take: impl FnOnce(&[f32]) -> T,
    ) -> Result<T> {
        let Some((staging, _index, rx)) = self.pending else {
            return Ok(take(&[]));
        };
        #[cfg(not(target_arch = "wasm32"))]
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(_index),
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        let mapped = rx
            .await
            .map_err(|_| Error::Gpu("the device was lost during readback".into()))?;
        ctx.check_error()?;
        mapped.map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
        let out = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("reading the mapped buffer: {e}")))?;
            take(bytemuck::cast_slice::<u8, f32>(&view))
        };
        staging.unmap();
        Ok(out)
    }
}
