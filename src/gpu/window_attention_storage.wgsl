// The inputs of `window_attention.wgsl` in storage buffers (for GPUs): qkv rows and the
// padding row as vec4s, the key-major bias (`keyed_bias`) as scalars.

@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pad_qkv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

fn qkv_row(i: u32) -> vec4<f32> {
    return qkv[i];
}

fn pad_row(i: u32) -> vec4<f32> {
    return pad_qkv[i];
}

// The biases of queries g * 4 .. g * 4 + 3 of `head` for key j.
fn bias4(head: u32, j: u32, g: u32) -> vec4<f32> {
    let b = (head * p.n + j) * p.groups * 4u + g * 4u;
    return vec4<f32>(bias[b], bias[b + 1u], bias[b + 2u], bias[b + 3u]);
}
