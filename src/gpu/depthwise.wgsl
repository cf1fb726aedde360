// Depthwise 3×3 convolution (groups = channels, padding 1, stride 1 or 2) on channels-last
// tensors x[h * w, c] → out[ho * wo, c], with BatchNorm folded into the tap-major weight[9, c]
// and bias[c].
// Used by MBConv, PatchMerging and TinyViT's local conv. flags: bit 0 GELU after the bias.
// One invocation per channel and 4 horizontally adjacent output pixels: the 9 weights and
// each input row's 6 (stride 1) or 9 (stride 2) values are loaded once for the 4 outputs
// (on CPU adapters storage loads, not arithmetic, set the speed). Loads are clamped into the
// image and zeroed outside it, so no invocation branches on its position; unrolled by hand.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// x at (iy, ix) for channel ch, 0 outside the image.
fn tap(iy: i32, ix: i32, ch: u32) -> f32 {
    let inside = iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
    let y = u32(clamp(iy, 0, i32(p.h) - 1));
    let xx = u32(clamp(ix, 0, i32(p.w) - 1));
    return select(0.0, x[(y * p.w + xx) * p.c + ch], inside);
}

fn finish(acc: f32) -> f32 {
    return select(acc, gelu(acc), (p.flags & 1u) != 0u);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 64u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let ch = idx % p.c;
    let t = idx / p.c;
    let groups_x = (p.wo + 3u) / 4u;
    let ox0 = (t % groups_x) * 4u;
    let oy = t / groups_x;
    let w0 = weight[0u * p.c + ch];
    let w1 = weight[1u * p.c + ch];
    let w2 = weight[2u * p.c + ch];
    let w3 = weight[3u * p.c + ch];
    let w4 = weight[4u * p.c + ch];
    let w5 = weight[5u * p.c + ch];
    let w6 = weight[6u * p.c + ch];
    let w7 = weight[7u * p.c + ch];
    let w8 = weight[8u * p.c + ch];
    let b = bias[ch];
    var acc0 = b;
    var acc1 = b;
    var acc2 = b;
    var acc3 = b;
    let s = i32(p.stride);
    let ix0 = i32(ox0) * s - 1;
    for (var ky = 0; ky < 3; ky++) {
        let iy = i32(oy) * s + ky - 1;
        let wa = select(select(w6, w3, ky == 1), w0, ky == 0);
        let wb = select(select(w7, w4, ky == 1), w1, ky == 0);
        let wc = select(select(w8, w5, ky == 1), w2, ky == 0);
        if (s == 1) {
            let x0 = tap(iy, ix0 + 0, ch);
            let x1 = tap(iy, ix0 + 1, ch);
            let x2 = tap(iy, ix0 + 2, ch);
            let x3 = tap(iy, ix0 + 3, ch);
            let x4 = tap(iy, ix0 + 4, ch);
            let x5 = tap(iy, ix0 + 5, ch);
            acc0 = fma(x0, wa, fma(x1, wb, fma(x2, wc, acc0)));
            acc1 = fma(x1, wa, fma(x2, wb, fma(x3, wc, acc1)));
            acc2 = fma(x2, wa, fma(x3, wb, fma(x4, wc, acc2)));
            acc3 = fma(x3, wa, fma(x4, wb, fma(x5, wc, acc3)));
        } else {
            let x0 = tap(iy, ix0 + 0, ch);
            let x1 = tap(iy, ix0 + 1, ch);
            let x2 = tap(iy, ix0 + 2, ch);
            let x3 = tap(iy, ix0 + 3, ch);
            let x4 = tap(iy, ix0 + 4, ch);
            let x5 = tap(iy, ix0 + 5, ch);
            let x6 = tap(iy, ix0 + 6, ch);
            let x7 = tap(iy, ix0 + 7, ch);
            let x8 = tap(iy, ix0 + 8, ch);
            acc0 = fma(x0, wa, fma(x1, wb, fma(x2, wc, acc0)));
            acc1 = fma(x2, wa, fma(x3, wb, fma(x4, wc, acc1)));
            acc2 = fma(x4, wa, fma(x5, wb, fma(x6, wc, acc2)));
            acc3 = fma(x6, wa, fma(x7, wb, fma(x8, wc, acc3)));
        }
    }
    let row = oy * p.wo;
    if (ox0 + 0u < p.wo) {
        out[(row + ox0 + 0u) * p.c + ch] = finish(acc0);
    }
    if (ox0 + 1u < p.wo) {
        out[(row + ox0 + 1u) * p.c + ch] = finish(acc1);
    }
    if (ox0 + 2u < p.wo) {
        out[(row + ox0 + 2u) * p.c + ch] = finish(acc2);
    }
    if (ox0 + 3u < p.wo) {
        out[(row + ox0 + 3u) * p.c + ch] = finish(acc3);
    }
}
