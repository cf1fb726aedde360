// Element-wise add with cyclic broadcast: out[i] = a[i % len_a] + b[i % len_b], i < total.
// Adds positional encodings to tokens and image keys, and prompt embeddings to the image
// embedding, across a batch of prompts without copying the shared operand.

struct Params {
    total: u32,
    len_a: u32,
    len_b: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.total) {
        return;
    }
    out[i] = a[i % p.len_a] + b[i % p.len_b];
}
