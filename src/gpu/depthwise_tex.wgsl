// Depthwise 3×3 convolution for CPU adapters, same contract as `depthwise.wgsl` (padding 1,
// stride 1 or 2, BatchNorm folded, flags bit 0 = GELU after the bias) with the input and the
// weights read as texels (see `matmul_tex.wgsl` for why): `x` is the channels-last input
// [h * w, c] copied by `Recorder::texels_of`, so texel (pixel * c/4 + q) holds channels
// 4q..4q+3 of a pixel; `weight` is the tap-major [9, c] weight copied the same way (texel
// tap * c/4 + q). c is a multiple of 4. One invocation per 4 channels and 8 horizontally
// adjacent output pixels: per input row it fetches the 10 (stride 1) or 17 (stride 2) texels
// those outputs need once. Taps outside the image read as 0 (coordinates are clamped, the
// value selected away). Unrolled by hand (generated): CPU compilers keep named values in
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
@group(0) @binding(1) var x: texture_2d<f32>;
@group(0) @binding(2) var weight: texture_2d<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Channels 4q..4q+3 of x at (iy, ix), 0 outside the image.
fn tap(iy: i32, ix: i32, q: u32) -> vec4<f32> {
    let inside = iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
    let y = u32(clamp(iy, 0, i32(p.h) - 1));
    let xx = u32(clamp(ix, 0, i32(p.w) - 1));
    let v = textureLoad(x, texel((y * p.w + xx) * (p.c / 4u) + q), 0);
    return select(vec4<f32>(0.0), v, inside);
}

fn put(pixel: u32, q: u32, acc: vec4<f32>) {
    var v = acc;
    if ((p.flags & 1u) != 0u) {
        v = vec4<f32>(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w));
    }
    let o = pixel * p.c + q * 4u;
    out[o] = v.x;
    out[o + 1u] = v.y;
    out[o + 2u] = v.z;
    out[o + 3u] = v.w;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 64u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let c4 = p.c / 4u;
    let q = idx % c4;
    let t = idx / c4;
    let groups_x = (p.wo + 7u) / 8u;
    let ox0 = (t % groups_x) * 8u;
    let oy = t / groups_x;
    let w0 = textureLoad(weight, texel(0u * c4 + q), 0);
    let w1 = textureLoad(weight, texel(1u * c4 + q), 0);
    let w2 = textureLoad(weight, texel(2u * c4 + q), 0);
    let w3 = textureLoad(weight, texel(3u * c4 + q), 0);
    let w4 = textureLoad(weight, texel(4u * c4 + q), 0);
    let w5 = textureLoad(weight, texel(5u * c4 + q), 0);
    let w6 = textureLoad(weight, texel(6u * c4 + q), 0);
    let w7 = textureLoad(weight, texel(7u * c4 + q), 0);
    let w8 = textureLoad(weight, texel(8u * c4 + q), 0);
    let b = vec4<f32>(bias[q * 4u], bias[q * 4u + 1u], bias[q * 4u + 2u], bias[q * 4u + 3u]);
    var acc0 = b;
    var acc1 = b;
    var acc2 = b;
    var acc3 = b;
    var acc4 = b;
    var acc5 = b;
    var acc6 = b;
    var acc7 = b;
    let s = i32(p.stride);
    let ix0 = i32(ox0) * s - 1;
    for (var ky = 0; ky < 3; ky++) {
        let iy = i32(oy) * s + ky - 1;
        let wa = select(select(w6, w3, ky == 1), w0, ky == 0);
        let wb = select(select(w7, w4, ky == 1), w1, ky == 0);
        let wc = select(select(w8, w5, ky == 1), w2, ky == 0);
        if (s == 1) {
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            let x6 = tap(iy, ix0 + 6, q);
            let x7 = tap(iy, ix0 + 7, q);
            let x8 = tap(iy, ix0 + 8, q);
            let x9 = tap(iy, ix0 + 9, q);
            acc0 = fma(x0, wa, fma(x1, wb, fma(x2, wc, acc0)));
            acc1 = fma(x1, wa, fma(x2, wb, fma(x3, wc, acc1)));
            acc2 = fma(x2, wa, fma(x3, wb, fma(x4, wc, acc2)));
            acc3 = fma(x3, wa, fma(x4, wb, fma(x5, wc, acc3)));
            acc4 = fma(x4, wa, fma(x5, wb, fma(x6, wc, acc4)));
            acc5 = fma(x5, wa, fma(x6, wb, fma(x7, wc, acc5)));
            acc6 = fma(x6, wa, fma(x7, wb, fma(x8, wc, acc6)));
            acc7 = fma(x7, wa, fma(x8, wb, fma(x9, wc, acc7)));
        } else {
            let x0 = tap(iy, ix0 + 0, q);
            let x1 = tap(iy, ix0 + 1, q);
            let x2 = tap(iy, ix0 + 2, q);
            let x3 = tap(iy, ix0 + 3, q);
            let x4 = tap(iy, ix0 + 4, q);
            let x5 = tap(iy, ix0 + 5, q);
            let x6 = tap(iy, ix0 + 6, q);
            let x7 = tap(iy, ix0 + 7, q);
            let x8 = tap(iy, ix0 + 8, q);
            let x9 = tap(iy, ix0 + 9, q);
            let x10 = tap(iy, ix0 + 10, q);
            let x11 = tap(iy, ix0 + 11, q);
            let x12 = tap(iy, ix0 + 12, q);
            let x13 = tap(iy, ix0 + 13, q);
            let x14 = tap(iy, ix0 + 14, q);
            let x15 = tap(iy, ix0 + 15, q);
            let x16 = tap(iy, ix0 + 16, q);
            acc0 = fma(x0, wa, fma(x1, wb, fma(x2, wc, acc0)));
            acc1 = fma(x2, wa, fma(x3, wb, fma(x4, wc, acc1)));
            acc2 = fma(x4, wa, fma(x5, wb, fma(x6, wc, acc2)));
            acc3 = fma(x6, wa, fma(x7, wb, fma(x8, wc, acc3)));
            acc4 = fma(x8, wa, fma(x9, wb, fma(x10, wc, acc4)));
            acc5 = fma(x10, wa, fma(x11, wb, fma(x12, wc, acc5)));
            acc6 = fma(x12, wa, fma(x13, wb, fma(x14, wc, acc6)));
            acc7 = fma(x14, wa, fma(x15, wb, fma(x16, wc, acc7)));
        }
    }
    let row = oy * p.wo;
    if (ox0 + 0u < p.wo) {
        put(row + ox0 + 0u, q, acc0);
    }
    if (ox0 + 1u < p.wo) {
        put(row + ox0 + 1u, q, acc1);
    }
    if (ox0 + 2u < p.wo) {
        put(row + ox0 + 2u, q, acc2);
    }
    if (ox0 + 3u < p.wo) {
        put(row + ox0 + 3u, q, acc3);
    }
    if (ox0 + 4u < p.wo) {
        put(row + ox0 + 4u, q, acc4);
    }
    if (ox0 + 5u < p.wo) {
        put(row + ox0 + 5u, q, acc5);
    }
    if (ox0 + 6u < p.wo) {
        put(row + ox0 + 6u, q, acc6);
    }
    if (ox0 + 7u < p.wo) {
        put(row + ox0 + 7u, q, acc7);
    }
}
