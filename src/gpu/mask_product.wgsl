// SAM's mask prediction (`mask_decoder.py`, `predict_masks`): masks = hyper_in @ upscaled,
//   hyper[b, m, c] (m < 4 mask tokens, c < 32), up[b, pixel, c] channels-last (256×256 pixels)
//   → masks[b, m, pixel]. One invocation per (b, pixel) computes the four masks.

struct Params {
    batch: u32,
    pixels: u32,
    c: u32,
    masks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.batch * p.pixels) {
        return;
    }
    let b = i / p.pixels;
    let px = i % p.pixels;
    let uoff = i * p.c;
    for (var m = 0u; m < p.masks; m++) {
        let hoff = (b * p.masks + m) * p.c;
        var s = 0.0;
        for (var c = 0u; c < p.c; c++) {
            s = fma(hyper[hoff + c], up[uoff + c], s);
        }
        out[(b * p.masks + m) * p.pixels + px] = s;
    }
}
