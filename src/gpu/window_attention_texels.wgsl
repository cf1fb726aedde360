// The inputs of `window_attention.wgsl` as texels (for CPU adapters): qkv, the padding row and
// the key-major bias copied by `Recorder::texels_of`; one texel holds the biases of an
// invocation's 4 queries for one key.

@group(0) @binding(1) var qkv: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var pad_qkv: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var bias: texture_storage_2d<rgba32float, read>;

fn qkv_row(i: u32) -> vec4<f32> {
    return textureLoad(qkv, texel(i));
}

fn pad_row(i: u32) -> vec4<f32> {
    return textureLoad(pad_qkv, texel(i));
}

// The biases of queries g * 4 .. g * 4 + 3 of `head` for key j.
fn bias4(head: u32, j: u32, g: u32) -> vec4<f32> {
    return textureLoad(bias, texel((head * p.n + j) * p.groups + g));
}
