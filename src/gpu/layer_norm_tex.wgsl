// LayerNorm for CPU adapters: `layer_norm.wgsl` with the input, gamma and beta read as texels
// (`Recorder::texels_of`; see `matmul_tex.wgsl` for why) and the output written a vec4 at a
// time; c is a multiple of 4. Same contract: one invocation per row, mean and variance in two
// passes as PyTorch, `gelu` != 0 applies GELU after the affine.

// Params: `layer_norm_params.wgsl`.
@group(0) @binding(1) var x: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var gamma: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var beta: texture_storage_2d<rgba32float, read>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.y * nwg.x * 64u + gid.x;
    if (row >= p.rows) {
        return;
    }
    let c4 = p.c / 4u;
    let base = row * c4;
    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < c4; i++) {
        sum += textureLoad(x, texel(base + i));
    }
    let mean = (sum.x + sum.y + sum.z + sum.w) / f32(p.c);
    var sq = vec4<f32>(0.0);
    for (var i = 0u; i < c4; i++) {
        let d = textureLoad(x, texel(base + i)) - mean;
        sq = fma(d, d, sq);
    }
    let inv = inverseSqrt((sq.x + sq.y + sq.z + sq.w) / f32(p.c) + p.eps);
    for (var i = 0u; i < c4; i++) {
        let g = textureLoad(gamma, texel(i));
        let b = textureLoad(beta, texel(i));
        var v = (textureLoad(x, texel(base + i)) - mean) * inv * g + b;
        if (p.gelu != 0u) {
            v = vec4<f32>(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w));
        }
        out[base + i] = v;
    }
}
