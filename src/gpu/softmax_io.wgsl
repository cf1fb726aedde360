// Parameters and bindings of the softmax kernels (`softmax.wgsl`, `softmax_wide.wgsl`): rows of
// `len` contiguous values of `x`, normalised into `out`.

struct Params {
    rows: u32,
    len: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
