// The contract, bindings and epilogue shared by `matmul_tex.wgsl` (16×64 tiles) and
// `matmul_tex_narrow.wgsl` (16×32 tiles):
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// for k and n multiples of 4, `a` and `w` read as texels (see `matmul_tex.wgsl`).
// Parameters: `matmul_params.wgsl`.

@group(0) @binding(1) var a: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var w: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> res: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

// Columns col..col+3 of a row (n is a multiple of 4, so they are all inside or all outside);
// `acc` already holds the bias.
fn store4(row: u32, col: u32, acc: vec4<f32>) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    var v = acc;
    let o = (row * p.n + col) / 4u;
    if ((p.flags & 2u) != 0u) {
        v += res[o];
    }
    if ((p.flags & 4u) != 0u) {
        v = vec4<f32>(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w));
    }
    if ((p.flags & 8u) != 0u) {
        v = max(v, vec4<f32>(0.0));
    }
    out[o] = v;
}
