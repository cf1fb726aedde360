// im2col for dense k×k convolutions (TinyViT's 3×3 stride-2 stem, the neck's 3×3, the prompt
// encoder's 2×2) on channels-last input x[h * w, cin]: gathers, taps-last,
//   col[(oy * wo + ox), (ky * ks + kx) * cin + ci] = x[(oy * stride + ky - pad) * w + ox * stride + kx - pad, ci]
// (zero outside), so the convolution is `matmul(col, weight[cout, ks * ks * cin])`.

struct Params {
    cin: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    ks: u32,
    stride: u32,
    pad: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 256u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let cols = p.cin * p.ks * p.ks;
    let pix = idx / cols;
    let c = idx % cols;
    let tap = c / p.cin;
    let ci = c % p.cin;
    let ky = tap / p.ks;
    let kx = tap % p.ks;
    let oy = pix / p.wo;
    let ox = pix % p.wo;
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let ix = i32(ox * p.stride + kx) - i32(p.pad);
    var v = 0.0;
    if (iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w)) {
        v = x[(u32(iy) * p.w + u32(ix)) * p.cin + ci];
    }
    col[idx] = v;
}
