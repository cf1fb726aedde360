// The inputs and output of `depthwise.wgsl` in storage buffers (for GPUs; any channel count).

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Channels 4q..4q+3 of x at `pixel`, 0 past the channels.
fn input4(pixel: u32, q: u32) -> vec4<f32> {
    let b = pixel * p.c;
    let ch = q * 4u;
    let last = p.c - 1u;
    return vec4<f32>(
        select(0.0, x[b + min(ch, last)], ch < p.c),
        select(0.0, x[b + min(ch + 1u, last)], ch + 1u < p.c),
        select(0.0, x[b + min(ch + 2u, last)], ch + 2u < p.c),
        select(0.0, x[b + min(ch + 3u, last)], ch + 3u < p.c),
    );
}

// Tap `tap`'s weights for channels 4q..4q+3, 0 past the channels.
fn weight4(tap: u32, q: u32) -> vec4<f32> {
    let b = tap * p.c;
    let ch = q * 4u;
    let last = p.c - 1u;
    return vec4<f32>(
        select(0.0, weight[b + min(ch, last)], ch < p.c),
        select(0.0, weight[b + min(ch + 1u, last)], ch + 1u < p.c),
        select(0.0, weight[b + min(ch + 2u, last)], ch + 2u < p.c),
        select(0.0, weight[b + min(ch + 3u, last)], ch + 3u < p.c),
    );
}

// The biases of channels 4q..4q+3, 0 past the channels.
fn bias4(q: u32) -> vec4<f32> {
    let ch = q * 4u;
    let last = p.c - 1u;
    return vec4<f32>(
        select(0.0, bias[min(ch, last)], ch < p.c),
        select(0.0, bias[min(ch + 1u, last)], ch + 1u < p.c),
        select(0.0, bias[min(ch + 2u, last)], ch + 2u < p.c),
        select(0.0, bias[min(ch + 3u, last)], ch + 3u < p.c),
    );
}

// Channels 4q..4q+3 of output pixel `pixel`; those past c are not stored.
fn store4(pixel: u32, q: u32, v: vec4<f32>) {
    let ch = q * 4u;
    let o = pixel * p.c + ch;
    out[o] = v.x;
    if (ch + 1u < p.c) {
        out[o + 1u] = v.y;
    }
    if (ch + 2u < p.c) {
        out[o + 2u] = v.z;
    }
    if (ch + 3u < p.c) {
        out[o + 3u] = v.w;
    }
}
