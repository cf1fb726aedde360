//! The WebGPU device: instance → adapter → device, the limits it runs within, the compiled
//! pipelines and the dispatch recorder every kernel launches through.
//!
//! Limits: camsam asks for the adapter's own limits when they are higher than WebGPU's
//! defaults, and every kernel stays within the defaults anyway (at most 8 storage buffers per
//! stage, 16 KiB of workgroup memory, 128 MiB per storage binding): the model chunks its
//! batches so no tensor passes [`GpuContext::max_binding_bytes`].
//!
//! ```no_run
//! # async fn demo() -> camsam::Result<()> {
//! let ctx = camsam::gpu::GpuContext::new().await?;
//! println!("{}", ctx.adapter_name());
//! # Ok(()) }
//! ```

use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::tensor::BufferPool;

/// Width in texels of the operand textures of [`Recorder::texels_of`] (a power of two, so
/// kernels split a texel index with a mask and a shift: see `texels.wgsl`).
pub(crate) const TEXELS_WIDTH: u32 = 4096;

/// WebGPU's default `maxComputeWorkgroupsPerDimension`.
pub(crate) const MAX_GROUPS_PER_DIM: u32 = 65_535;
/// Invocations of the one-workgroup-per-row kernels (`row_reduce.wgsl`'s `ROW_WG`).
pub(crate) const ROW_WG: u32 = 64;

/// Which kernel family runs: the matmul of [`super::matmul::linear`], and for depthwise
/// convolution and window attention whether their inputs are read as texels (`Blocked`, for
/// CPU adapters) or from storage buffers (`Tiled`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulKernel {
    /// [`MatmulKernel::Blocked`] on CPU adapters (lavapipe, SwiftShader), else
    /// [`MatmulKernel::Tiled`].
    #[default]
    Auto,
    /// 64×64×16 tiles in workgroup memory (`matmul.wgsl`): for GPUs.
    Tiled,
    /// Barrier-free 8×8 register blocks with operands read as texels where they fit
    /// (`matmul_tex.wgsl`, `depthwise_texels.wgsl`, `window_attention_texels.wgsl`; else
    /// `matmul_blocked.wgsl`): for CPU adapters.
    Blocked,
}

/// Asks llvmpipe (the CPU behind lavapipe, Mesa's software Vulkan driver) for two threads
/// per core, unless `LP_NUM_THREADS` is already set. llvmpipe runs a dispatch by handing each
/// of its threads one fixed, equal share of the workgroups (`lp_cs_tpool_queue_task`:
/// `iter_per_thread = num_iters / num_threads`; one thread per core by default), so a
/// dispatch lasts as long as its slowest share: on the 2-core VM each worker sat idle about
/// a quarter of an encoder pass. With two threads per core, a core whose share is done runs
/// another thread's. Other drivers do not read the variable. It changes the process
/// environment, so the native CLI calls it first thing in `main`, before any other thread
/// exists (figures: ARCHITECTURE.md, WebGPU engine).
#[cfg(not(target_arch = "wasm32"))]
pub fn balance_software_vulkan_threads() {
    if std::env::var_os(SOFTWARE_VULKAN_THREADS).is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var(SOFTWARE_VULKAN_THREADS, (2 * cores).to_string());
    }
}

/// The variable llvmpipe reads its thread count from.
#[cfg(not(target_arch = "wasm32"))]
pub const SOFTWARE_VULKAN_THREADS: &str = "LP_NUM_THREADS";

/// How [`GpuContext::with_options`] opens the device.
#[derive(Clone, Copy, Debug, Default)]
pub struct GpuOptions {
    /// The matmul kernel (default: chosen by adapter type).
    pub matmul: MatmulKernel,
    /// Submit and wait after every dispatch, timing each op ([`GpuContext::profile`]); native
    /// only (`camsam bench sam --backend webgpu --profile`). Slows the chain down.
    pub profile: bool,
    /// Act as if no adapter existed: [`GpuContext::with_options`] fails like on a machine
    /// without WebGPU (tests of the CPU fallback).
    pub no_adapter: bool,
    /// f16 operands in the storage-buffer matmuls (`operands_f16.wgsl`): weights stored as
    /// f16, activations rounded to f16 where a matmul stages them, products accumulated in
    /// f32. Only where the adapter offers `shader-f16` and the GPU family
    /// ([`MatmulKernel::Tiled`]) runs; ignored elsewhere ([`GpuContext::f16_operands`] says
    /// whether it took effect). Tolerance: ARCHITECTURE.md, WebGPU engine.
    pub f16: bool,
}

/// Time spent in one op (kernel and its parameter words) over a profiled run.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// Kernel name (from [`super::shaders`]).
    pub kernel: &'static str,
    /// Its parameter words (sizes), which tell the calls of one kernel apart.
    pub params: Vec<u32>,
    /// Dispatches with these parameters.
    pub calls: usize,
    /// Seconds summed over the calls: the device's own time between the start and the end of
    /// the dispatch's pass (timestamp queries) where the adapter offers them, else wall time
    /// from submit to completion ([`GpuContext::profile_clock`] says which).
    pub seconds: f64,
}

/// Timestamp queries around each profiled dispatch (adapters with `timestamp-query`; native
/// only, like profiling).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
struct Timestamps {
    set: wgpu::QuerySet,
    /// Where the two ticks are resolved, then copied to `read` for mapping.
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
}

impl Timestamps {
    fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        Self {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: buffer(
                "profile ticks",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            read: buffer(
                "profile ticks readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            period: queue.get_timestamp_period() as f64,
        }
    }
}

/// An open WebGPU device with its pipeline cache and buffer pool.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Each kernel's pipeline and the layout of its bind group 0.
    pipelines: Mutex<HashMap<&'static str, (wgpu::ComputePipeline, wgpu::BindGroupLayout)>>,
    pub(crate) pool: Arc<BufferPool>,
    /// Free `rgba32float` textures by (width, height), for [`Recorder::texels_of`].
    textures: Mutex<HashMap<(u32, u32), Vec<wgpu::Texture>>>,
    /// The first uncaptured device error (validation, out of memory), reported at readback.
    pub(crate) error: Arc<Mutex<Option<String>>>,
    /// The kernel family, resolved from [`GpuOptions::matmul`] (never `Auto`).
    matmul: MatmulKernel,
    /// Per-op times when profiling (`None` otherwise).
    profile: Option<Mutex<Vec<OpTime>>>,
    /// Device-side timing of profiled dispatches, where offered.
    timestamps: Option<Timestamps>,
    /// Whether the adapter offers `shader-f16`.
    offers_f16: bool,
    /// Whether the matmuls take f16 operands ([`GpuOptions::f16`] where it applies).
    f16: bool,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter_name())
            .finish()
    }
}

/// Limits to request: WebGPU's defaults, raised to what the adapter offers for the few
/// limits the model benefits from.
fn wanted_limits(offered: &wgpu::Limits) -> wgpu::Limits {
    let mut limits = wgpu::Limits::defaults();
    limits.max_storage_buffer_binding_size = limits
        .max_storage_buffer_binding_size
        .max(offered.max_storage_buffer_binding_size);
    limits.max_buffer_size = limits.max_buffer_size.max(offered.max_buffer_size);
    limits.max_storage_buffers_per_shader_stage = limits
        .max_storage_buffers_per_shader_stage
        .max(offered.max_storage_buffers_per_shader_stage);
    limits.max_compute_workgroup_storage_size = limits
        .max_compute_workgroup_storage_size
        .max(offered.max_compute_workgroup_storage_size);
    // Never ask for more than offered (downlevel adapters offer less than the defaults).
    limits.max_storage_buffer_binding_size = limits
        .max_storage_buffer_binding_size
        .min(offered.max_storage_buffer_binding_size);
    limits.max_buffer_size = limits.max_buffer_size.min(offered.max_buffer_size);
    limits
        .using_resolution(offered.clone())
        .using_alignment(offered.clone())
}

impl GpuContext {
    /// Opens the default adapter (high performance preferred). Fails with [`Error::Gpu`] when
    /// there is no WebGPU/Vulkan/Metal/DX12 adapter or the device cannot be created.
    pub async fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default()).await
    }

    /// [`GpuContext::new`] with a kernel choice, profiling, or a simulated missing adapter.
    pub async fn with_options(options: GpuOptions) -> Result<Self> {
        if options.no_adapter {
            return Err(Error::Gpu(
                "no WebGPU adapter: disabled by the caller (GpuOptions::no_adapter)".into(),
            ));
        }
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if desc.backends.is_empty() {
            desc.backends = wgpu::Backends::all();
        }
        // WebGL has no compute shaders: never pick it.
        desc.backends.remove(wgpu::Backends::GL);
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("no WebGPU adapter: {e}")))?;
        let offered = adapter.limits();
        let offers_f16 = adapter.features().contains(wgpu::Features::SHADER_F16);
        let limits = wanted_limits(&offered);
        let matmul = match options.matmul {
            MatmulKernel::Auto if adapter.get_info().device_type == wgpu::DeviceType::Cpu => {
                MatmulKernel::Blocked
            }
            MatmulKernel::Auto => MatmulKernel::Tiled,
            chosen => chosen,
        };
        let f16 = options.f16 && offers_f16 && matmul == MatmulKernel::Tiled;
        let f16_feature = if f16 {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::empty()
        };
        // Profiling reads the device's own clock where the adapter has one.
        let clock = if options.profile && !cfg!(target_arch = "wasm32") {
            adapter.features() & wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("camsam"),
                // Subgroup operations when offered (`matmul_tex.wgsl` broadcasts through them).
                required_features: (adapter.features() & wgpu::Features::SUBGROUP)
                    | clock
                    | f16_feature,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("creating the device failed: {e}")))?;
        let error = Arc::new(Mutex::new(None::<String>));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        // wgpu's buffers are Send + Sync natively; in the browser (one thread) they are not,
        // and the pool is still shared by the tensors that return buffers to it.
        #[allow(clippy::arc_with_non_send_sync)]
        let pool = Arc::new(BufferPool::default());
        let timestamps = (!clock.is_empty()).then(|| Timestamps::new(&device, &queue));
        Ok(Self {
            device,
            queue,
            info: adapter.get_info(),
            limits,
            pipelines: Mutex::new(HashMap::new()),
            pool,
            textures: Mutex::new(HashMap::new()),
            error,
            matmul,
            profile: options.profile.then(|| Mutex::new(Vec::new())),
            timestamps,
            offers_f16,
            f16,
        })
    }

    /// The matmul kernel in use on this device: never [`MatmulKernel::Auto`].
    pub fn matmul_kernel(&self) -> MatmulKernel {
        self.matmul
    }

    /// Per-op times recorded since the device was opened with [`GpuOptions::profile`]
    /// (slowest first); empty when not profiling.
    pub fn profile(&self) -> Vec<OpTime> {
        let mut ops = self
            .profile
            .as_ref()
            .and_then(|p| p.lock().ok().map(|v| v.clone()))
            .unwrap_or_default();
        ops.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        ops
    }

    /// How [`OpTime::seconds`] was measured: `"device timestamps"` or `"wall clock"`.
    pub fn profile_clock(&self) -> &'static str {
        if self.timestamps.is_some() {
            "device timestamps"
        } else {
            "wall clock"
        }
    }

    /// True when the device runs subgroup operations in subgroups of exactly 8 invocations
    /// (lavapipe on AVX2), which `matmul_tex.wgsl` is written for.
    pub(crate) fn subgroups_of_8(&self) -> bool {
        self.device.features().contains(wgpu::Features::SUBGROUP)
            && self.info.subgroup_min_size == 8
            && self.info.subgroup_max_size == 8
    }

    /// Adapter name and backend, e.g. `llvmpipe (LLVM 19.1.7, 256 bits) (Vulkan)`.
    pub fn adapter_name(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// Whether the adapter offers WebGPU's `shader-f16` feature (f16 arithmetic in WGSL).
    pub fn offers_shader_f16(&self) -> bool {
        self.offers_f16
    }

    /// Whether the matmuls run with f16 operands ([`GpuOptions::f16`], where it applies).
    pub fn f16_operands(&self) -> bool {
        self.f16
    }

    /// True for CPU (software) adapters such as lavapipe or SwiftShader.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Largest storage binding the device accepts, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Largest texture side the device accepts, in texels.
    pub(crate) fn max_texture_side(&self) -> usize {
        self.limits.max_texture_dimension_2d as usize
    }

    /// A `width` × `height` rgba32float texture that kernels for CPU adapters read as a
    /// read-only storage texture, filled by copies.
    pub(crate) fn texel_texture(&self, label: &str, width: u32, height: u32) -> wgpu::Texture {
        self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        })
    }

    /// Frees the pooled intermediate buffers (after a large job).
    pub fn trim(&self) {
        self.pool.clear();
        if let Ok(mut t) = self.textures.lock() {
            t.clear();
        }
    }

    /// Fails with the first device error seen since the last check, if any.
    pub(crate) fn check_error(&self) -> Result<()> {
        let taken = self.error.lock().ok().and_then(|mut e| e.take());
        match taken {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// The compute pipeline for `shader` (a name from [`super::shaders`]), compiled once, with
    /// the layout of its bind group.
    pub(crate) fn pipeline(
        &self,
        shader: &'static str,
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("pipeline cache poisoned".into()))?;
        if let Some(p) = cache.get(shader) {
            return Ok(p.clone());
        }
        let source = super::shaders::source(shader)
            .ok_or_else(|| Error::Gpu(format!("unknown kernel {shader}")))?;
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(shader),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        // Bounds checks stay; the loop bound wgpu otherwise injects into every loop goes. That
        // counter keeps GPU compilers from unrolling the kernels' constant-trip inner loops, so
        // per-invocation accumulator arrays leave registers: on an H200 the encoder's matmuls
        // took 18.4 ms of device time with it and 4.2 ms without (ARCHITECTURE.md).
        let mut checks = wgpu::ShaderRuntimeChecks::checked();
        checks.force_loop_bounding = false;
        // SAFETY: `force_loop_bounding = false` requires that no kernel loops forever. Every
        // loop in `src/gpu/*.wgsl` is a `for` that counts up by a positive step to a constant
        // or to a size from its parameters (sizes of bound buffers, far from u32 overflow), or
        // halves a constant down to zero; nothing else writes its counter.
        let module = unsafe { self.device.create_shader_module_trusted(desc, checks) };
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    // Every kernel writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        let layout = pipeline.get_bind_group_layout(0);
        cache.insert(shader, (pipeline.clone(), layout.clone()));
        Ok((pipeline, layout))
    }

    /// A recorder for a chain of dispatches, submitted together.
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder {
            ctx: self,
            encoder: self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }),
            dispatches: 0,
            held: Vec::new(),
            pass: None,
            params: Vec::new(),
        }
    }
}

/// Records compute dispatches into one command buffer; [`Recorder::submit`] sends them.
pub struct Recorder<'a> {
    pub(crate) ctx: &'a GpuContext,
    /// The compute pass dispatches are recorded into (ended before copies and submission;
    /// declared before `encoder`, so a recorder dropped unsubmitted ends it first).
    pass: Option<wgpu::ComputePass<'static>>,
    pub(crate) encoder: wgpu::CommandEncoder,
    dispatches: usize,
    /// Operand textures of [`Recorder::texels_of`] the next dispatch reads.
    held: Vec<((u32, u32), wgpu::Texture)>,
    /// The dispatches' parameter blocks: one uniform buffer per [`PARAM_SLOTS`] dispatches,
    /// with the bytes to write into it before the recording is submitted.
    params: Vec<(wgpu::Buffer, Vec<u8>)>,
}

/// Parameter blocks per uniform buffer of a [`Recorder`], each in its own 256-byte slot
/// (WebGPU's largest `minUniformBufferOffsetAlignment`). One buffer for a chain of dispatches
/// instead of one per dispatch: allocating buffers was most of the host's time per dispatch.
const PARAM_SLOTS: usize = 256;
const PARAM_SLOT_BYTES: usize = 256;

/// Splits `groups` workgroups over x and y so neither passes the per-dimension limit.
/// Kernels rebuild the linear index as `wg.y * num_workgroups.x + wg.x`.
pub(crate) fn grid(groups: u32) -> (u32, u32) {
    if groups <= MAX_GROUPS_PER_DIM {
        (groups.max(1), 1)
    } else {
        let y = groups.div_ceil(MAX_GROUPS_PER_DIM);
        (groups.div_ceil(y), y)
    }
}

impl Recorder<'_> {
    /// Records one dispatch of `shader`: binding 0 is a uniform block holding `params`
    /// (4-byte words), bindings 1.. are `buffers` in order.
    pub(crate) fn dispatch(
        &mut self,
        shader: &'static str,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        groups: (u32, u32, u32),
    ) -> Result<()> {
        let resources: Vec<wgpu::BindingResource> =
            buffers.iter().map(|b| b.as_entire_binding()).collect();
        self.dispatch_with(shader, params, resources, groups)
    }

    /// [`Recorder::dispatch`] with any resources (buffers, texture views) at bindings 1...
    pub(crate) fn dispatch_with(
        &mut self,
        shader: &'static str,
        params: &[u32],
        resources: Vec<wgpu::BindingResource>,
        groups: (u32, u32, u32),
    ) -> Result<()> {
        let (pipeline, layout) = self.ctx.pipeline(shader)?;
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let bytes: &[u8] = bytemuck::cast_slice(&words);
        if bytes.len() > PARAM_SLOT_BYTES {
            return Err(Error::Gpu(format!(
                "{shader}: {} parameter bytes, a slot holds {PARAM_SLOT_BYTES}",
                bytes.len()
            )));
        }
        if self
            .params
            .last()
            .is_none_or(|(_, b)| b.len() >= PARAM_SLOTS * PARAM_SLOT_BYTES)
        {
            let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params"),
                size: (PARAM_SLOTS * PARAM_SLOT_BYTES) as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.params.push((buffer, Vec::new()));
        }
        let Some((uniform, staged)) = self.params.last_mut() else {
            return Err(Error::Gpu("no parameter buffer".into()));
        };
        let offset = staged.len() as u64;
        staged.extend_from_slice(bytes);
        staged.resize(offset as usize + PARAM_SLOT_BYTES, 0);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: uniform,
                offset,
                size: std::num::NonZeroU64::new(bytes.len() as u64),
            }),
        }];
        for (i, resource) in resources.into_iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource,
            });
        }
        let bind_group = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(shader),
                layout: &layout,
                entries: &entries,
            });
        // One compute pass for a chain of dispatches (wgpu orders them by what they read and
        // write), ended only by a copy or the submission; a pass of its own per dispatch when
        // profiling, for its timestamps.
        let profiling = self.ctx.profile.is_some();
        if profiling {
            self.end_pass();
        }
        let pass = self.pass.get_or_insert_with(|| {
            self.encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(if profiling { shader } else { "chain" }),
                    timestamp_writes: self.ctx.timestamps.as_ref().map(|t| {
                        wgpu::ComputePassTimestampWrites {
                            query_set: &t.set,
                            beginning_of_pass_write_index: Some(0),
                            end_of_pass_write_index: Some(1),
                        }
                    }),
                })
                .forget_lifetime()
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        self.dispatches += 1;
        if !self.held.is_empty() {
            if let Ok(mut free) = self.ctx.textures.lock() {
                for (key, texture) in self.held.drain(..) {
                    free.entry(key).or_default().push(texture);
                }
            }
        }
        if profiling {
            self.end_pass();
            self.time_dispatch(shader, params)?;
        }
        Ok(())
    }

    /// Ends the open compute pass, if any, so the encoder can record copies or be finished.
    fn end_pass(&mut self) {
        self.pass = None;
    }

    /// Profiling: submits what is recorded, waits for it and books the time under `shader`.
    #[cfg(not(target_arch = "wasm32"))]
    fn time_dispatch(&mut self, shader: &'static str, params: &[u32]) -> Result<()> {
        let mut encoder = std::mem::replace(
            &mut self.encoder,
            self.ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }),
        );
        if let Some(ts) = &self.ctx.timestamps {
            encoder.resolve_query_set(&ts.set, 0..2, &ts.resolve, 0);
            encoder.copy_buffer_to_buffer(&ts.resolve, 0, &ts.read, 0, 16);
        }
        self.write_params();
        let t = std::time::Instant::now();
        self.ctx.queue.submit([encoder.finish()]);
        // The ticks' mapping resolves in the same wait as the dispatch.
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(ts) = &self.ctx.timestamps {
            ts.read.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        }
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        let mut seconds = t.elapsed().as_secs_f64();
        if let Some(ts) = &self.ctx.timestamps {
            rx.recv()
                .map_err(|_| Error::Gpu("the device was lost while profiling".into()))?
                .map_err(|e| Error::Gpu(format!("mapping the profile ticks: {e}")))?;
            let ticks: [u64; 2] = {
                let view = ts
                    .read
                    .slice(..)
                    .get_mapped_range()
                    .map_err(|e| Error::Gpu(format!("reading the profile ticks: {e}")))?;
                bytemuck::pod_read_unaligned(&view)
            };
            ts.read.unmap();
            seconds = ticks[1].saturating_sub(ticks[0]) as f64 * ts.period * 1e-9;
        }
        if let Some(Ok(mut ops)) = self.ctx.profile.as_ref().map(|p| p.lock()) {
            match ops
                .iter_mut()
                .find(|o| o.kernel == shader && o.params == params)
            {
                Some(op) => {
                    op.calls += 1;
                    op.seconds += seconds;
                }
                None => ops.push(OpTime {
                    kernel: shader,
                    params: params.to_vec(),
                    calls: 1,
                    seconds,
                }),
            }
        }
        Ok(())
    }

    /// Profiling needs a blocking wait, which the browser does not allow: a no-op there.
    #[cfg(target_arch = "wasm32")]
    fn time_dispatch(&mut self, _shader: &'static str, _params: &[u32]) -> Result<()> {
        Ok(())
    }

    /// Records a dispatch of a kernel built on `row_reduce.wgsl`: one workgroup of [`ROW_WG`]
    /// invocations per row, spread over x and y like [`Recorder::dispatch_1d`].
    pub(crate) fn dispatch_rows(
        &mut self,
        shader: &'static str,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        rows: usize,
    ) -> Result<()> {
        self.dispatch_1d(shader, params, buffers, rows * ROW_WG as usize, ROW_WG)
    }

    /// Records a dispatch of `total` invocations of a kernel with a 1-D workgroup of
    /// `wg_size`, spread over x and y (the kernel rebuilds the index from `num_workgroups`).
    pub(crate) fn dispatch_1d(
        &mut self,
        shader: &'static str,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        total: usize,
        wg_size: u32,
    ) -> Result<()> {
        let resources = buffers.iter().map(|b| b.as_entire_binding()).collect();
        self.dispatch_1d_with(shader, params, resources, total, wg_size)
    }

    /// [`Recorder::dispatch_1d`] with any resources (buffers, texture views) at bindings 1...
    pub(crate) fn dispatch_1d_with(
        &mut self,
        shader: &'static str,
        params: &[u32],
        resources: Vec<wgpu::BindingResource>,
        total: usize,
        wg_size: u32,
    ) -> Result<()> {
        let groups = u32::try_from(total.div_ceil(wg_size as usize))
            .map_err(|_| Error::Model(format!("{shader}: {total} invocations is too many")))?;
        let (x, y) = grid(groups);
        self.dispatch_with(shader, params, resources, (x, y, 1))
    }

    /// Records a copy of `buffer`'s first `texels` × 16 bytes into a pooled `rgba32float`
    /// texture (read as a read-only storage texture) [`TEXELS_WIDTH`] texels wide: texel `t`
    /// (4 consecutive f32) lands at `(t % TEXELS_WIDTH, t / TEXELS_WIDTH)`. Kernels for CPU
    /// adapters read their operands this way because lavapipe fetches texels with a
    /// branch-free gather, while every storage-buffer load is a loop over the SIMD lanes.
    /// `None` when the texture would pass the device's size limit (the caller falls back to
    /// the storage kernel).
    ///
    /// The texture goes back to the pool once the next dispatch is recorded: later uses are
    /// recorded later and so run after it.
    pub(crate) fn texels_of(
        &mut self,
        buffer: &wgpu::Buffer,
        texels: usize,
    ) -> Option<wgpu::TextureView> {
        let w = TEXELS_WIDTH as usize;
        let rows = texels.div_ceil(w).max(1);
        // Heights rounded up so that tensors of nearby sizes share pool entries.
        let height = rows.div_ceil(16) * 16;
        if height > self.ctx.max_texture_side() || texels * 16 > buffer.size() as usize {
            return None;
        }
        let key = (TEXELS_WIDTH, height as u32);
        let texture = self
            .ctx
            .textures
            .lock()
            .ok()
            .and_then(|mut t| t.get_mut(&key).and_then(|v| v.pop()))
            .unwrap_or_else(|| self.ctx.texel_texture("operand texels", key.0, key.1));
        let full = texels / w;
        let rest = texels % w;
        let copy = |encoder: &mut wgpu::CommandEncoder,
                    y: usize,
                    offset: usize,
                    width: usize,
                    height: usize| {
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: offset as u64,
                        bytes_per_row: Some(16 * TEXELS_WIDTH),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: y as u32,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width: width as u32,
                    height: height as u32,
                    depth_or_array_layers: 1,
                },
            );
        };
        // Copies are recorded outside compute passes.
        self.end_pass();
        if full > 0 {
            copy(&mut self.encoder, 0, 0, w, full);
        }
        if rest > 0 {
            copy(&mut self.encoder, full, full * w * 16, rest, 1);
        }
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        self.held.push((key, texture));
        Some(view)
    }

    /// Number of dispatches recorded so far.
    pub fn dispatches(&self) -> usize {
        self.dispatches
    }

    /// Queues the parameter blocks recorded so far for writing (before the next submission).
    fn write_params(&self) {
        for (buffer, bytes) in &self.params {
            self.ctx.queue.write_buffer(buffer, 0, bytes);
        }
    }

    /// Submits everything recorded.
    pub fn submit(mut self) {
        self.end_pass();
        self.write_params();
        self.ctx.queue.submit([self.encoder.finish()]);
    }
}
