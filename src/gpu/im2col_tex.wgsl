// im2col for CPU adapters: `conv.wgsl`'s contract (channels-last input, taps-last columns,
// zero padding) with the input read as texels (`Recorder::texels_of`; see `matmul_tex.wgsl`
// for why) and the columns written a vec4 at a time; cin is a multiple of 4, so 4 adjacent
// columns are 4 channels of one tap: one texel. One invocation per output pixel.

struct Params {
    cin: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    ks: u32,
    stride: u32,
    pad: u32,
    pixels: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var x: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var<storage, read_write> col: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let pix = gid.y * nwg.x * 64u + gid.x;
    if (pix >= p.pixels) {
        return;
    }
    let c4 = p.cin / 4u;
    let oy = pix / p.wo;
    let ox = pix % p.wo;
    var o = pix * p.ks * p.ks * c4;
    for (var ky = 0u; ky < p.ks; ky++) {
        for (var kx = 0u; kx < p.ks; kx++) {
            let iy = i32(oy * p.stride + ky) - i32(p.pad);
            let ix = i32(ox * p.stride + kx) - i32(p.pad);
            let inside = iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
            let y = u32(clamp(iy, 0, i32(p.h) - 1));
            let xx = u32(clamp(ix, 0, i32(p.w) - 1));
            let base = (y * p.w + xx) * c4;
            for (var q = 0u; q < c4; q++) {
                let v = textureLoad(x, texel(base + q));
                col[o] = select(vec4<f32>(0.0), v, inside);
                o += 1u;
            }
        }
    }
}
