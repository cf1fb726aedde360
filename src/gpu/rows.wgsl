// Strided row copy: out[(r * out_stride + out_offset), :] = x[(r * in_stride + in_offset), :]
// for r < rows. Picks the IoU and mask tokens out of the transformer's output tokens and
// interleaves the hypernetwork outputs per prompt, without a round trip to the host.

struct Params {
    rows: u32,
    cols: u32,
    in_stride: u32,
    in_offset: u32,
    out_stride: u32,
    out_offset: u32,
    total: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.total) {
        return;
    }
    let r = i / p.cols;
    let c = i % p.cols;
    out[(r * p.out_stride + p.out_offset) * p.cols + c] = x[(r * p.in_stride + p.in_offset) * p.cols + c];
}
