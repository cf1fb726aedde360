// `batched_matmul.wgsl` for operands that are both contiguous along k (A row-major, B stored
// as n rows of k: `a·bᵀ` per batch and head), every offset and stride a multiple of 4 and k a
// multiple of 4: operands are read as vec4s of four k values, so each invocation loads 16
// vec4s per 4 values of k for its 8×8 block of outputs (a quarter of the scalar kernel's loads,
// which on CPU adapters each cost a loop over the SIMD lanes). Same parameters (strides in
// floats), epilogue, tiles and grid as the scalar kernel.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    heads: u32,
    a_sb: u32,
    a_sh: u32,
    a_rs: u32,
    a_cs: u32,
    b_sb: u32,
    b_sh: u32,
    b_rs: u32,
    b_cs: u32,
    c_sb: u32,
    c_sh: u32,
    c_rs: u32,
    flags: u32,
    bias_sb: u32,
    bias_sh: u32,
    alpha: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bm: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
fn store(c_off: u32, bias_off: u32, row: u32, col: u32, acc: f32) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    let o = c_off + row * p.c_rs + col;
    var v = acc * p.alpha;
    if ((p.flags & 1u) != 0u) {
        v += bias[bias_off + col];
    }
    if ((p.flags & 2u) != 0u) {
        v += res[o];
    }
    out[o] = v;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let bi = wg.z / p.heads;
    let hi = wg.z % p.heads;
    let a_off = bi * p.a_sb + hi * p.a_sh;
    let b_off = bi * p.b_sb + hi * p.b_sh;
    let c_off = bi * p.c_sb + hi * p.c_sh;
    let bias_off = bi * p.bias_sb + hi * p.bias_sh;
    let r0 = wg.y * 64u + lid.y * 8u;
    let c0 = wg.x * 64u + lid.x * 8u;
    let ra0 = (a_off + min(r0 + 0u, p.m - 1u) * p.a_rs) / 4u;
    let ra1 = (a_off + min(r0 + 1u, p.m - 1u) * p.a_rs) / 4u;
    let ra2 = (a_off + min(r0 + 2u, p.m - 1u) * p.a_rs) / 4u;
    let ra3 = (a_off + min(r0 + 3u, p.m - 1u) * p.a_rs) / 4u;
    let ra4 = (a_off + min(r0 + 4u, p.m - 1u) * p.a_rs) / 4u;
    let ra5 = (a_off + min(r0 + 5u, p.m - 1u) * p.a_rs) / 4u;
    let ra6 = (a_off + min(r0 + 6u, p.m - 1u) * p.a_rs) / 4u;
    let ra7 = (a_off + min(r0 + 7u, p.m - 1u) * p.a_rs) / 4u;
    let rb0 = (b_off + min(c0 + 0u, p.n - 1u) * p.b_cs) / 4u;
    let rb1 = (b_off + min(c0 + 1u, p.n - 1u) * p.b_cs) / 4u;
    let rb2 = (b_off + min(c0 + 2u, p.n - 1u) * p.b_cs) / 4u;
    let rb3 = (b_off + min(c0 + 3u, p.n - 1u) * p.b_cs) / 4u;
    let rb4 = (b_off + min(c0 + 4u, p.n - 1u) * p.b_cs) / 4u;
    let rb5 = (b_off + min(c0 + 5u, p.n - 1u) * p.b_cs) / 4u;
    let rb6 = (b_off + min(c0 + 6u, p.n - 1u) * p.b_cs) / 4u;
    let rb7 = (b_off + min(c0 + 7u, p.n - 1u) * p.b_cs) / 4u;
    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0);
    var acc4_1 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc5_1 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc6_1 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    var acc7_1 = vec4<f32>(0.0);
    let k4 = p.k / 4u;
    for (var kk = 0u; kk < k4; kk++) {
        let a0 = a[ra0 + kk];
        let a1 = a[ra1 + kk];
        let a2 = a[ra2 + kk];
        let a3 = a[ra3 + kk];
        let a4 = a[ra4 + kk];
        let a5 = a[ra5 + kk];
        let a6 = a[ra6 + kk];
        let a7 = a[ra7 + kk];
        let w0 = bm[rb0 + kk];
        let w1 = bm[rb1 + kk];
        let w2 = bm[rb2 + kk];
        let w3 = bm[rb3 + kk];
        let w4 = bm[rb4 + kk];
        let w5 = bm[rb5 + kk];
        let w6 = bm[rb6 + kk];
        let w7 = bm[rb7 + kk];
        acc0_0 += vec4<f32>(dot(a0, w0), dot(a0, w1), dot(a0, w2), dot(a0, w3));
        acc0_1 += vec4<f32>(dot(a0, w4), dot(a0, w5), dot(a0, w6), dot(a0, w7));
        acc1_0 += vec4<f32>(dot(a1, w0), dot(a1, w1), dot(a1, w2), dot(a1, w3));
        acc1_1 += vec4<f32>(dot(a1, w4), dot(a1, w5), dot(a1, w6), dot(a1, w7));
        acc2_0 += vec4<f32>(dot(a2, w0), dot(a2, w1), dot(a2, w2), dot(a2, w3));
        acc2_1 += vec4<f32>(dot(a2, w4), dot(a2, w5), dot(a2, w6), dot(a2, w7));
        acc3_0 += vec4<f32>(dot(a3, w0), dot(a3, w1), dot(a3, w2), dot(a3, w3));
        acc3_1 += vec4<f32>(dot(a3, w4), dot(a3, w5), dot(a3, w6), dot(a3, w7));
        acc4_0 += vec4<f32>(dot(a4, w0), dot(a4, w1), dot(a4, w2), dot(a4, w3));
        acc4_1 += vec4<f32>(dot(a4, w4), dot(a4, w5), dot(a4, w6), dot(a4, w7));
        acc5_0 += vec4<f32>(dot(a5, w0), dot(a5, w1), dot(a5, w2), dot(a5, w3));
        acc5_1 += vec4<f32>(dot(a5, w4), dot(a5, w5), dot(a5, w6), dot(a5, w7));
        acc6_0 += vec4<f32>(dot(a6, w0), dot(a6, w1), dot(a6, w2), dot(a6, w3));
        acc6_1 += vec4<f32>(dot(a6, w4), dot(a6, w5), dot(a6, w6), dot(a6, w7));
        acc7_0 += vec4<f32>(dot(a7, w0), dot(a7, w1), dot(a7, w2), dot(a7, w3));
        acc7_1 += vec4<f32>(dot(a7, w4), dot(a7, w5), dot(a7, w6), dot(a7, w7));
    }
    store(c_off, bias_off, r0 + 0u, c0 + 0u, acc0_0.x);
    store(c_off, bias_off, r0 + 0u, c0 + 1u, acc0_0.y);
    store(c_off, bias_off, r0 + 0u, c0 + 2u, acc0_0.z);
    store(c_off, bias_off, r0 + 0u, c0 + 3u, acc0_0.w);
    store(c_off, bias_off, r0 + 0u, c0 + 4u, acc0_1.x);
    store(c_off, bias_off, r0 + 0u, c0 + 5u, acc0_1.y);
    store(c_off, bias_off, r0 + 0u, c0 + 6u, acc0_1.z);
    store(c_off, bias_off, r0 + 0u, c0 + 7u, acc0_1.w);
    store(c_off, bias_off, r0 + 1u, c0 + 0u, acc1_0.x);
    store(c_off, bias_off, r0 + 1u, c0 + 1u, acc1_0.y);
    store(c_off, bias_off, r0 + 1u, c0 + 2u, acc1_0.z);
    store(c_off, bias_off, r0 + 1u, c0 + 3u, acc1_0.w);
    store(c_off, bias_off, r0 + 1u, c0 + 4u, acc1_1.x);
    store(c_off, bias_off, r0 + 1u, c0 + 5u, acc1_1.y);
    store(c_off, bias_off, r0 + 1u, c0 + 6u, acc1_1.z);
    store(c_off, bias_off, r0 + 1u, c0 + 7u, acc1_1.w);
    store(c_off, bias_off, r0 + 2u, c0 + 0u, acc2_0.x);
    store(c_off, bias_off, r0 + 2u, c0 + 1u, acc2_0.y);
    store(c_off, bias_off, r0 + 2u, c0 + 2u, acc2_0.z);
    store(c_off, bias_off, r0 + 2u, c0 + 3u, acc2_0.w);
    store(c_off, bias_off, r0 + 2u, c0 + 4u, acc2_1.x);
    store(c_off, bias_off, r0 + 2u, c0 + 5u, acc2_1.y);
    store(c_off, bias_off, r0 + 2u, c0 + 6u, acc2_1.z);
    store(c_off, bias_off, r0 + 2u, c0 + 7u, acc2_1.w);
    store(c_off, bias_off, r0 + 3u, c0 + 0u, acc3_0.x);
    store(c_off, bias_off, r0 + 3u, c0 + 1u, acc3_0.y);
    store(c_off, bias_off, r0 + 3u, c0 + 2u, acc3_0.z);
    store(c_off, bias_off, r0 + 3u, c0 + 3u, acc3_0.w);
    store(c_off, bias_off, r0 + 3u, c0 + 4u, acc3_1.x);
    store(c_off, bias_off, r0 + 3u, c0 + 5u, acc3_1.y);
    store(c_off, bias_off, r0 + 3u, c0 + 6u, acc3_1.z);
    store(c_off, bias_off, r0 + 3u, c0 + 7u, acc3_1.w);
    store(c_off, bias_off, r0 + 4u, c0 + 0u, acc4_0.x);
    store(c_off, bias_off, r0 + 4u, c0 + 1u, acc4_0.y);
    store(c_off, bias_off, r0 + 4u, c0 + 2u, acc4_0.z);
    store(c_off, bias_off, r0 + 4u, c0 + 3u, acc4_0.w);
    store(c_off, bias_off, r0 + 4u, c0 + 4u, acc4_1.x);
    store(c_off, bias_off, r0 + 4u, c0 + 5u, acc4_1.y);
    store(c_off, bias_off, r0 + 4u, c0 + 6u, acc4_1.z);
    store(c_off, bias_off, r0 + 4u, c0 + 7u, acc4_1.w);
    store(c_off, bias_off, r0 + 5u, c0 + 0u, acc5_0.x);
    store(c_off, bias_off, r0 + 5u, c0 + 1u, acc5_0.y);
    store(c_off, bias_off, r0 + 5u, c0 + 2u, acc5_0.z);
    store(c_off, bias_off, r0 + 5u, c0 + 3u, acc5_0.w);
    store(c_off, bias_off, r0 + 5u, c0 + 4u, acc5_1.x);
    store(c_off, bias_off, r0 + 5u, c0 + 5u, acc5_1.y);
    store(c_off, bias_off, r0 + 5u, c0 + 6u, acc5_1.z);
    store(c_off, bias_off, r0 + 5u, c0 + 7u, acc5_1.w);
    store(c_off, bias_off, r0 + 6u, c0 + 0u, acc6_0.x);
    store(c_off, bias_off, r0 + 6u, c0 + 1u, acc6_0.y);
    store(c_off, bias_off, r0 + 6u, c0 + 2u, acc6_0.z);
    store(c_off, bias_off, r0 + 6u, c0 + 3u, acc6_0.w);
    store(c_off, bias_off, r0 + 6u, c0 + 4u, acc6_1.x);
    store(c_off, bias_off, r0 + 6u, c0 + 5u, acc6_1.y);
    store(c_off, bias_off, r0 + 6u, c0 + 6u, acc6_1.z);
    store(c_off, bias_off, r0 + 6u, c0 + 7u, acc6_1.w);
    store(c_off, bias_off, r0 + 7u, c0 + 0u, acc7_0.x);
    store(c_off, bias_off, r0 + 7u, c0 + 1u, acc7_0.y);
    store(c_off, bias_off, r0 + 7u, c0 + 2u, acc7_0.z);
    store(c_off, bias_off, r0 + 7u, c0 + 3u, acc7_0.w);
    store(c_off, bias_off, r0 + 7u, c0 + 4u, acc7_1.x);
    store(c_off, bias_off, r0 + 7u, c0 + 5u, acc7_1.y);
    store(c_off, bias_off, r0 + 7u, c0 + 6u, acc7_1.z);
    store(c_off, bias_off, r0 + 7u, c0 + 7u, acc7_1.w);
}
