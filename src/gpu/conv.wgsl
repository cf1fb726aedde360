// im2col for dense k×k convolutions (TinyViT's 3×3 stride-2 stem, the neck's 3×3): gathers
//   col[(oy * wo + ox), ci * kk + ky * ks + kx] = x[ci, oy * stride + ky - pad, ox * stride + kx - pad]
// (zero outside), so the convolution is `matmul(col, weight[cout, cin * ks * ks])` in PyTorch's
// weight layout. The input is addressed through strides, so it may be CHW (the image) or HWC.

struct Params {
    cin: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    ks: u32,
    stride: u32,
    pad: u32,
    stride_c: u32,
    stride_y: u32,
    stride_x: u32,
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
    let kk = p.ks * p.ks;
    let cols = p.cin * kk;
    let pix = idx / cols;
    let c = idx % cols;
    let ci = c / kk;
    let ky = (c % kk) / p.ks;
    let kx = c % p.ks;
    let oy = pix / p.wo;
    let ox = pix % p.wo;
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let ix = i32(ox * p.stride + kx) - i32(p.pad);
    var v = 0.0;
    if (iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w)) {
        v = x[ci * p.stride_c + u32(iy) * p.stride_y + u32(ix) * p.stride_x];
    }
    col[idx] = v;
}
