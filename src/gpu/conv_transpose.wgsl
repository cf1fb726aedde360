// The second half of a 2×2 stride-2 transposed convolution (SAM's mask-decoder upscaler,
// `output_upscaling`): the matmul has produced y[b, (iy, ix), co * 4 + dy * 2 + dx] for every
// input pixel; this scatters each to output pixel (2·iy + dy, 2·ix + dx), adds the bias and
// optionally applies GELU:  out[b, (oy, ox), co] on a channels-last (2h)×(2w) grid.

struct Params {
    h: u32,
    w: u32,
    cout: u32,
    gelu: u32,
    total: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.total) {
        return;
    }
    let co = i % p.cout;
    let pix = i / p.cout;
    let ow = 2u * p.w;
    let plane = 4u * p.h * p.w;
    let b = pix / plane;
    let r = pix % plane;
    let oy = r / ow;
    let ox = r % ow;
    let src = (b * p.h * p.w + (oy / 2u) * p.w + ox / 2u) * (4u * p.cout)
        + co * 4u + (oy % 2u) * 2u + ox % 2u;
    var v = y[src] + bias[co];
    if (p.gelu != 0u) {
        v = gelu(v);
    }
    out[i] = v;
}
