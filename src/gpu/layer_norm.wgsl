// LayerNorm over the last dimension: out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta.
// On channels-last tensors this is also the neck's channel LayerNorm2d. One invocation per row
// (rows hold at most a few hundred channels); mean and variance in two passes, as PyTorch.
// `gelu` != 0 applies GELU after the affine (the upscaler's LayerNorm2d → GELU).

// Params: `layer_norm_params.wgsl`.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.y * nwg.x * 64u + gid.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.c;
    var sum = 0.0;
    for (var i = 0u; i < p.c; i++) {
        sum += x[base + i];
    }
    let mean = sum / f32(p.c);
    var sq = 0.0;
    for (var i = 0u; i < p.c; i++) {
        let d = x[base + i] - mean;
        sq = fma(d, d, sq);
    }
    let inv = inverseSqrt(sq / f32(p.c) + p.eps);
    for (var i = 0u; i < p.c; i++) {
        let v = (x[base + i] - mean) * inv * gamma[i] + beta[i];
        out[base + i] = select(v, gelu(v), p.gelu != 0u);
    }
}
