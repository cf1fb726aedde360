// Depthwise 3×3 convolution (groups = channels, padding 1, stride 1 or 2) on channels-last
// tensors x[h * w, c] → out[ho * wo, c], with BatchNorm folded into the tap-major weight[9, c]
// and bias[c]. Used by MBConv, PatchMerging and TinyViT's local conv. flags: bit 0 GELU after
// the bias. One invocation per 4 channels (q: channels 4q..4q+3) and 2 × 4 output pixels
// (2 rows of 4 horizontally adjacent pixels): each input row's values are loaded once for
// all the outputs they feed (4 rows of 6 texels for 8 outputs at stride 1, against 3 rows for
// 4). Input, weights and bias are read and the output written through `input4`, `weight4`,
// `bias4` and `store4`, defined with their bindings (1: x, 2: weight, 3: bias, 4: out) by
// `depthwise_storage.wgsl` (storage buffers, for GPUs; any channel count: the channels past
// c read as 0 and are not stored) or `depthwise_texels.wgsl` (read-only storage textures from
// `Recorder::texels_of` and vec4 bias/output, c a multiple of 4, for CPU adapters; see
// `matmul_tex.wgsl` for why). Taps outside the image read as 0 (coordinates are clamped,
// the value selected away). Unrolled by hand (generated): CPU compilers keep named values in
// registers.

struct Params {
    c: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    stride: u32,
    flags: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Channels 4q..4q+3 of x at (iy, ix), 0 outside the image.
fn tap(iy: i32, ix: i32, q: u32) -> vec4<f32> {
    let inside = iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
    let y = u32(clamp(iy, 0, i32(p.h) - 1));
    let xx = u32(clamp(ix, 0, i32(p.w) - 1));
    let v = input4(y * p.w + xx, q);
    return select(vec4<f32>(0.0), v, inside);
}

fn put(pixel: u32, q: u32, acc: vec4<f32>) {
    var v = acc;
    if ((p.flags & 1u) != 0u) {
        v = vec4<f32>(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w));
    }
    store4(pixel, q, v);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 64u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let c4 = (p.c + 3u) / 4u;
    let q = idx % c4;
    let t = idx / c4;
    let groups_x = (p.wo + 3u) / 4u;
    let ox0 = (t % groups_x) * 4u;
    let oy0 = (t / groups_x) * 2u;
    let w0 = weight4(0u, q);
    let w1 = weight4(1u, q);
    let w2 = weight4(2u, q);
    let w3 = weight4(3u, q);
    let w4 = weight4(4u, q);
    let w5 = weight4(5u, q);
    let w6 = weight4(6u, q);
    let w7 = weight4(7u, q);
    let w8 = weight4(8u, q);
    let b = bias4(q);
    var acc0_0 = b;
    var acc0_1 = b;
    var acc0_2 = b;
    var acc0_3 = b;
    var acc1_0 = b;
    var acc1_1 = b;
    var acc1_2 = b;
    var acc1_3 = b;
    let ix0 = i32(ox0) * i32(p.stride) - 1;
    if (p.stride == 1u) {
        {
            let iy = i32(oy0) * 1 + -1;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            acc0_0 = fma(x0, w0, fma(x1, w1, fma(x2, w2, acc0_0)));
            acc0_1 = fma(x1, w0, fma(x2, w1, fma(x3, w2, acc0_1)));
            acc0_2 = fma(x2, w0, fma(x3, w1, fma(x4, w2, acc0_2)));
            acc0_3 = fma(x3, w0, fma(x4, w1, fma(x5, w2, acc0_3)));
        }
        {
            let iy = i32(oy0) * 1 + 0;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            acc0_0 = fma(x0, w3, fma(x1, w4, fma(x2, w5, acc0_0)));
            acc0_1 = fma(x1, w3, fma(x2, w4, fma(x3, w5, acc0_1)));
            acc0_2 = fma(x2, w3, fma(x3, w4, fma(x4, w5, acc0_2)));
            acc0_3 = fma(x3, w3, fma(x4, w4, fma(x5, w5, acc0_3)));
            acc1_0 = fma(x0, w0, fma(x1, w1, fma(x2, w2, acc1_0)));
            acc1_1 = fma(x1, w0, fma(x2, w1, fma(x3, w2, acc1_1)));
            acc1_2 = fma(x2, w0, fma(x3, w1, fma(x4, w2, acc1_2)));
            acc1_3 = fma(x3, w0, fma(x4, w1, fma(x5, w2, acc1_3)));
        }
        {
            let iy = i32(oy0) * 1 + 1;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            acc0_0 = fma(x0, w6, fma(x1, w7, fma(x2, w8, acc0_0)));
            acc0_1 = fma(x1, w6, fma(x2, w7, fma(x3, w8, acc0_1)));
            acc0_2 = fma(x2, w6, fma(x3, w7, fma(x4, w8, acc0_2)));
            acc0_3 = fma(x3, w6, fma(x4, w7, fma(x5, w8, acc0_3)));
            acc1_0 = fma(x0, w3, fma(x1, w4, fma(x2, w5, acc1_0)));
            acc1_1 = fma(x1, w3, fma(x2, w4, fma(x3, w5, acc1_1)));
            acc1_2 = fma(x2, w3, fma(x3, w4, fma(x4, w5, acc1_2)));
            acc1_3 = fma(x3, w3, fma(x4, w4, fma(x5, w5, acc1_3)));
        }
        {
            let iy = i32(oy0) * 1 + 2;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            acc1_0 = fma(x0, w6, fma(x1, w7, fma(x2, w8, acc1_0)));
            acc1_1 = fma(x1, w6, fma(x2, w7, fma(x3, w8, acc1_1)));
            acc1_2 = fma(x2, w6, fma(x3, w7, fma(x4, w8, acc1_2)));
            acc1_3 = fma(x3, w6, fma(x4, w7, fma(x5, w8, acc1_3)));
        }
    } else {
        {
            let iy = i32(oy0) * 2 + -1;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            let x6 = tap(iy, ix0 + 6, q);
            let x7 = tap(iy, ix0 + 7, q);
            let x8 = tap(iy, ix0 + 8, q);
            acc0_0 = fma(x0, w0, fma(x1, w1, fma(x2, w2, acc0_0)));
            acc0_1 = fma(x2, w0, fma(x3, w1, fma(x4, w2, acc0_1)));
            acc0_2 = fma(x4, w0, fma(x5, w1, fma(x6, w2, acc0_2)));
            acc0_3 = fma(x6, w0, fma(x7, w1, fma(x8, w2, acc0_3)));
        }
        {
            let iy = i32(oy0) * 2 + 0;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            let x6 = tap(iy, ix0 + 6, q);
            let x7 = tap(iy, ix0 + 7, q);
            let x8 = tap(iy, ix0 + 8, q);
            acc0_0 = fma(x0, w3, fma(x1, w4, fma(x2, w5, acc0_0)));
            acc0_1 = fma(x2, w3, fma(x3, w4, fma(x4, w5, acc0_1)));
            acc0_2 = fma(x4, w3, fma(x5, w4, fma(x6, w5, acc0_2)));
            acc0_3 = fma(x6, w3, fma(x7, w4, fma(x8, w5, acc0_3)));
        }
        {
            let iy = i32(oy0) * 2 + 1;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            let x6 = tap(iy, ix0 + 6, q);
            let x7 = tap(iy, ix0 + 7, q);
            let x8 = tap(iy, ix0 + 8, q);
            acc0_0 = fma(x0, w6, fma(x1, w7, fma(x2, w8, acc0_0)));
            acc0_1 = fma(x2, w6, fma(x3, w7, fma(x4, w8, acc0_1)));
            acc0_2 = fma(x4, w6, fma(x5, w7, fma(x6, w8, acc0_2)));
            acc0_3 = fma(x6, w6, fma(x7, w7, fma(x8, w8, acc0_3)));
            acc1_0 = fma(x0, w0, fma(x1, w1, fma(x2, w2, acc1_0)));
            acc1_1 = fma(x2, w0, fma(x3, w1, fma(x4, w2, acc1_1)));
            acc1_2 = fma(x4, w0, fma(x5, w1, fma(x6, w2, acc1_2)));
            acc1_3 = fma(x6, w0, fma(x7, w1, fma(x8, w2, acc1_3)));
        }
        {
            let iy = i32(oy0) * 2 + 2;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            let x6 = tap(iy, ix0 + 6, q);
            let x7 = tap(iy, ix0 + 7, q);
            let x8 = tap(iy, ix0 + 8, q);
            acc1_0 = fma(x0, w3, fma(x1, w4, fma(x2, w5, acc1_0)));
            acc1_1 = fma(x2, w3, fma(x3, w4, fma(x4, w5, acc1_1)));
            acc1_2 = fma(x4, w3, fma(x5, w4, fma(x6, w5, acc1_2)));
            acc1_3 = fma(x6, w3, fma(x7, w4, fma(x8, w5, acc1_3)));
        }
        {
            let iy = i32(oy0) * 2 + 3;
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            let x6 = tap(iy, ix0 + 6, q);
            let x7 = tap(iy, ix0 + 7, q);
            let x8 = tap(iy, ix0 + 8, q);
            acc1_0 = fma(x0, w6, fma(x1, w7, fma(x2, w8, acc1_0)));
            acc1_1 = fma(x2, w6, fma(x3, w7, fma(x4, w8, acc1_1)));
            acc1_2 = fma(x4, w6, fma(x5, w7, fma(x6, w8, acc1_2)));
            acc1_3 = fma(x6, w6, fma(x7, w7, fma(x8, w8, acc1_3)));
        }
    }
    if (oy0 + 0u < p.ho) {
        let row = (oy0 + 0u) * p.wo;
        if (ox0 + 0u < p.wo) {
            put(row + ox0 + 0u, q, acc0_0);
        }
        if (ox0 + 1u < p.wo) {
            put(row + ox0 + 1u, q, acc0_1);
        }
        if (ox0 + 2u < p.wo) {
            put(row + ox0 + 2u, q, acc0_2);
        }
        if (ox0 + 3u < p.wo) {
            put(row + ox0 + 3u, q, acc0_3);
        }
    }
    if (oy0 + 1u < p.ho) {
        let row = (oy0 + 1u) * p.wo;
        if (ox0 + 0u < p.wo) {
            put(row + ox0 + 0u, q, acc1_0);
        }
        if (ox0 + 1u < p.wo) {
            put(row + ox0 + 1u, q, acc1_1);
        }
        if (ox0 + 2u < p.wo) {
            put(row + ox0 + 2u, q, acc1_2);
        }
        if (ox0 + 3u < p.wo) {
            put(row + ox0 + 3u, q, acc1_3);
        }
    }
}
