// Depthwise 3×3 convolution (groups = channels, padding 1, stride 1 or 2) on channels-last
// tensors x[h * w, c] → out[ho * wo, c], with BatchNorm folded into weight[c, 9] and bias[c].
// Used by MBConv, PatchMerging and TinyViT's local conv. flags: bit 0 GELU after the bias.

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

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 256u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let ch = idx % p.c;
    let pix = idx / p.c;
    let oy = pix / p.wo;
    let ox = pix % p.wo;
    var acc = bias[ch];
    for (var ky = 0u; ky < 3u; ky++) {
        let iy = i32(oy * p.stride + ky) - 1;
        if (iy < 0 || iy >= i32(p.h)) {
            continue;
        }
        for (var kx = 0u; kx < 3u; kx++) {
            let ix = i32(ox * p.stride + kx) - 1;
            if (ix < 0 || ix >= i32(p.w)) {
                continue;
            }
            acc = fma(x[(u32(iy) * p.w + u32(ix)) * p.c + ch], weight[ch * 9u + ky * 3u + kx], acc);
        }
    }
    if ((p.flags & 1u) != 0u) {
        acc = gelu(acc);
    }
    out[idx] = acc;
}
