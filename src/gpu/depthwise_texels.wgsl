// The inputs and output of `depthwise.wgsl` for CPU adapters (c a multiple of 4): the input
// and the tap-major weight copied by `Recorder::texels_of`, texel (pixel · c/4 + q) and
// (tap · c/4 + q) holding channels 4q..4q+3; bias and output as vec4s (one storage access
// per 4 channels: on a CPU adapter each is a loop over the SIMD lanes).

@group(0) @binding(1) var x: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var weight: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

fn input4(pixel: u32, q: u32) -> vec4<f32> {
    return textureLoad(x, texel(pixel * (p.c / 4u) + q));
}

fn weight4(tap: u32, q: u32) -> vec4<f32> {
    return textureLoad(weight, texel(tap * (p.c / 4u) + q));
}

fn bias4(q: u32) -> vec4<f32> {
    return bias[q];
}

fn store4(pixel: u32, q: u32, v: vec4<f32>) {
    out[pixel * (p.c / 4u) + q] = v;
}
