// The second pass of a batched matmul split along k (`batched_matmul.wgsl`): for every output
// element of every product z = b · heads + h,
//   out[C(z) + i * c_rs + j] = alpha * sum_s scratch[s * c_split + (z * m + i) * n + j]
//                              + bias[bias(z) + j] + res[..]
// one invocation per element (flags: bit 0 bias, bit 1 residual).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scratch: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.y * nwg.x * 64u + gid.x;
    let per = p.m * p.n;
    if (e >= p.c_split) {
        return;
    }
    let z = e / per;
    let i = (e % per) / p.n;
    let j = e % p.n;
    var acc = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        acc += scratch[s * p.c_split + e];
    }
    let bi = z / p.heads;
    let hi = z % p.heads;
    let o = bi * p.c_sb + hi * p.c_sh + i * p.c_rs + j;
    var v = acc * p.alpha;
    if ((p.flags & 1u) != 0u) {
        v += bias[bi * p.bias_sb + hi * p.bias_sh + j];
    }
    if ((p.flags & 2u) != 0u) {
        v += res[o];
    }
    out[o] = v;
}
