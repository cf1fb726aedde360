// TinyViT window attention (MobileSAM `tiny_vit_sam.py`, `Attention` inside `TinyViTBlock`),
// fused: window partition with padding, q·kᵀ·scale + attention bias, softmax (online, in one
// pass over the keys) and the weighted sum of values, written back in token order with the
// padding cropped.
//   qkv[token, head * 96 + (q 0..32 | k 32..64 | v 64..96)]   (key_dim = head_dim = 32)
//   pad_qkv[head * 96 + ...]: the qkv row of a zero (padding) token, i.e. qkv(LayerNorm(0))
//   bias[head, key, query] over the ws×ws window, queries padded to groups * 4 (`keyed_bias`);
//   out[token, head * 32 + i]
// The inputs are read through `qkv_row`, `pad_row` and `bias4`, defined with their bindings
// (1: qkv, 2: pad_qkv, 3: bias) by `window_attention_storage.wgsl` (storage buffers, for
// GPUs) or `window_attention_texels.wgsl` (read-only storage textures from
// `Recorder::texels_of`, for CPU adapters; see `matmul_tex.wgsl` for why).
// One invocation per (window, head, 4 consecutive queries): each key and value row loaded
// feeds 4 queries (on CPU adapters every storage load of a per-invocation address is a loop
// over the SIMD lanes, so loads, not arithmetic, set the speed). The keys inside the image
// are visited first; the padding keys all share one k and v row (`pad_qkv`), so their
// softmax terms are summed separately (one k·q per query, then only the biases) and merged at
// the end. Unrolled by hand (query i, vec4 j of 8: q<i>_<j>, acc<i>_<j>): CPU compilers keep
// named values in registers, while indexed local arrays may live in memory.

struct Params {
    h: u32,
    w: u32,
    ws: u32,
    heads: u32,
    windows_w: u32,
    n: u32,
    total: u32,
    scale: f32,
    groups: u32,
}

const HD: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 64u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let g = idx % p.groups;
    let head = (idx / p.groups) % p.heads;
    let win = idx / (p.groups * p.heads);
    let wy = win / p.windows_w;
    let wx = win % p.windows_w;
    // qkv rows in vec4 units: a token's row is heads * 24 vec4, a head's q/k/v 8 each.
    let stride = p.heads * 24u;
    let hoff = head * 24u;
    // Keys inside the image: rows_in × cols_in at the window's top left.
    let rows_in = min(p.ws, p.h - wy * p.ws);
    let cols_in = min(p.ws, p.w - wx * p.ws);
    let qi0 = min(g * 4u + 0u, p.n - 1u);
    let qy0 = wy * p.ws + qi0 / p.ws;
    let qx0 = wx * p.ws + qi0 % p.ws;
    let qo0 = (min(qy0, p.h - 1u) * p.w + min(qx0, p.w - 1u)) * stride + hoff;
    let q0_0 = qkv_row(qo0 + 0u) * p.scale;
    let q0_1 = qkv_row(qo0 + 1u) * p.scale;
    let q0_2 = qkv_row(qo0 + 2u) * p.scale;
    let q0_3 = qkv_row(qo0 + 3u) * p.scale;
    let q0_4 = qkv_row(qo0 + 4u) * p.scale;
    let q0_5 = qkv_row(qo0 + 5u) * p.scale;
    let q0_6 = qkv_row(qo0 + 6u) * p.scale;
    let q0_7 = qkv_row(qo0 + 7u) * p.scale;
    let qi1 = min(g * 4u + 1u, p.n - 1u);
    let qy1 = wy * p.ws + qi1 / p.ws;
    let qx1 = wx * p.ws + qi1 % p.ws;
    let qo1 = (min(qy1, p.h - 1u) * p.w + min(qx1, p.w - 1u)) * stride + hoff;
    let q1_0 = qkv_row(qo1 + 0u) * p.scale;
    let q1_1 = qkv_row(qo1 + 1u) * p.scale;
    let q1_2 = qkv_row(qo1 + 2u) * p.scale;
    let q1_3 = qkv_row(qo1 + 3u) * p.scale;
    let q1_4 = qkv_row(qo1 + 4u) * p.scale;
    let q1_5 = qkv_row(qo1 + 5u) * p.scale;
    let q1_6 = qkv_row(qo1 + 6u) * p.scale;
    let q1_7 = qkv_row(qo1 + 7u) * p.scale;
    let qi2 = min(g * 4u + 2u, p.n - 1u);
    let qy2 = wy * p.ws + qi2 / p.ws;
    let qx2 = wx * p.ws + qi2 % p.ws;
    let qo2 = (min(qy2, p.h - 1u) * p.w + min(qx2, p.w - 1u)) * stride + hoff;
    let q2_0 = qkv_row(qo2 + 0u) * p.scale;
    let q2_1 = qkv_row(qo2 + 1u) * p.scale;
    let q2_2 = qkv_row(qo2 + 2u) * p.scale;
    let q2_3 = qkv_row(qo2 + 3u) * p.scale;
    let q2_4 = qkv_row(qo2 + 4u) * p.scale;
    let q2_5 = qkv_row(qo2 + 5u) * p.scale;
    let q2_6 = qkv_row(qo2 + 6u) * p.scale;
    let q2_7 = qkv_row(qo2 + 7u) * p.scale;
    let qi3 = min(g * 4u + 3u, p.n - 1u);
    let qy3 = wy * p.ws + qi3 / p.ws;
    let qx3 = wx * p.ws + qi3 % p.ws;
    let qo3 = (min(qy3, p.h - 1u) * p.w + min(qx3, p.w - 1u)) * stride + hoff;
    let q3_0 = qkv_row(qo3 + 0u) * p.scale;
    let q3_1 = qkv_row(qo3 + 1u) * p.scale;
    let q3_2 = qkv_row(qo3 + 2u) * p.scale;
    let q3_3 = qkv_row(qo3 + 3u) * p.scale;
    let q3_4 = qkv_row(qo3 + 4u) * p.scale;
    let q3_5 = qkv_row(qo3 + 5u) * p.scale;
    let q3_6 = qkv_row(qo3 + 6u) * p.scale;
    let q3_7 = qkv_row(qo3 + 7u) * p.scale;
    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc0_2 = vec4<f32>(0.0);
    var acc0_3 = vec4<f32>(0.0);
    var acc0_4 = vec4<f32>(0.0);
    var acc0_5 = vec4<f32>(0.0);
    var acc0_6 = vec4<f32>(0.0);
    var acc0_7 = vec4<f32>(0.0);
    var m0 = -3.0e38;
    var l0 = 0.0;
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc1_2 = vec4<f32>(0.0);
    var acc1_3 = vec4<f32>(0.0);
    var acc1_4 = vec4<f32>(0.0);
    var acc1_5 = vec4<f32>(0.0);
    var acc1_6 = vec4<f32>(0.0);
    var acc1_7 = vec4<f32>(0.0);
    var m1 = -3.0e38;
    var l1 = 0.0;
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc2_2 = vec4<f32>(0.0);
    var acc2_3 = vec4<f32>(0.0);
    var acc2_4 = vec4<f32>(0.0);
    var acc2_5 = vec4<f32>(0.0);
    var acc2_6 = vec4<f32>(0.0);
    var acc2_7 = vec4<f32>(0.0);
    var m2 = -3.0e38;
    var l2 = 0.0;
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    var acc3_2 = vec4<f32>(0.0);
    var acc3_3 = vec4<f32>(0.0);
    var acc3_4 = vec4<f32>(0.0);
    var acc3_5 = vec4<f32>(0.0);
    var acc3_6 = vec4<f32>(0.0);
    var acc3_7 = vec4<f32>(0.0);
    var m3 = -3.0e38;
    var l3 = 0.0;
    for (var ky = 0u; ky < rows_in; ky++) {
        for (var kx = 0u; kx < cols_in; kx++) {
            let j = ky * p.ws + kx;
            let bj = bias4(head, j, g);
            let ko = ((wy * p.ws + ky) * p.w + wx * p.ws + kx) * stride + hoff + 8u;
            let k0 = qkv_row(ko + 0u);
            let k1 = qkv_row(ko + 1u);
            let k2 = qkv_row(ko + 2u);
            let k3 = qkv_row(ko + 3u);
            let k4 = qkv_row(ko + 4u);
            let k5 = qkv_row(ko + 5u);
            let k6 = qkv_row(ko + 6u);
            let k7 = qkv_row(ko + 7u);
            let s0 = bj.x + dot(q0_0, k0) + dot(q0_1, k1) + dot(q0_2, k2) + dot(q0_3, k3) + dot(q0_4, k4) + dot(q0_5, k5) + dot(q0_6, k6) + dot(q0_7, k7);
            let s1 = bj.y + dot(q1_0, k0) + dot(q1_1, k1) + dot(q1_2, k2) + dot(q1_3, k3) + dot(q1_4, k4) + dot(q1_5, k5) + dot(q1_6, k6) + dot(q1_7, k7);
            let s2 = bj.z + dot(q2_0, k0) + dot(q2_1, k1) + dot(q2_2, k2) + dot(q2_3, k3) + dot(q2_4, k4) + dot(q2_5, k5) + dot(q2_6, k6) + dot(q2_7, k7);
            let s3 = bj.w + dot(q3_0, k0) + dot(q3_1, k1) + dot(q3_2, k2) + dot(q3_3, k3) + dot(q3_4, k4) + dot(q3_5, k5) + dot(q3_6, k6) + dot(q3_7, k7);
            let v0 = qkv_row(ko + 8u);
            let v1 = qkv_row(ko + 9u);
            let v2 = qkv_row(ko + 10u);
            let v3 = qkv_row(ko + 11u);
            let v4 = qkv_row(ko + 12u);
            let v5 = qkv_row(ko + 13u);
            let v6 = qkv_row(ko + 14u);
            let v7 = qkv_row(ko + 15u);
            let mn0 = max(m0, s0);
            let c0 = exp(m0 - mn0);
            let e0 = exp(s0 - mn0);
            l0 = l0 * c0 + e0;
            m0 = mn0;
            acc0_0 = acc0_0 * c0 + e0 * v0;
            acc0_1 = acc0_1 * c0 + e0 * v1;
            acc0_2 = acc0_2 * c0 + e0 * v2;
            acc0_3 = acc0_3 * c0 + e0 * v3;
            acc0_4 = acc0_4 * c0 + e0 * v4;
            acc0_5 = acc0_5 * c0 + e0 * v5;
            acc0_6 = acc0_6 * c0 + e0 * v6;
            acc0_7 = acc0_7 * c0 + e0 * v7;
            let mn1 = max(m1, s1);
            let c1 = exp(m1 - mn1);
            let e1 = exp(s1 - mn1);
            l1 = l1 * c1 + e1;
            m1 = mn1;
            acc1_0 = acc1_0 * c1 + e1 * v0;
            acc1_1 = acc1_1 * c1 + e1 * v1;
            acc1_2 = acc1_2 * c1 + e1 * v2;
            acc1_3 = acc1_3 * c1 + e1 * v3;
            acc1_4 = acc1_4 * c1 + e1 * v4;
            acc1_5 = acc1_5 * c1 + e1 * v5;
            acc1_6 = acc1_6 * c1 + e1 * v6;
            acc1_7 = acc1_7 * c1 + e1 * v7;
            let mn2 = max(m2, s2);
            let c2 = exp(m2 - mn2);
            let e2 = exp(s2 - mn2);
            l2 = l2 * c2 + e2;
            m2 = mn2;
            acc2_0 = acc2_0 * c2 + e2 * v0;
            acc2_1 = acc2_1 * c2 + e2 * v1;
            acc2_2 = acc2_2 * c2 + e2 * v2;
            acc2_3 = acc2_3 * c2 + e2 * v3;
            acc2_4 = acc2_4 * c2 + e2 * v4;
            acc2_5 = acc2_5 * c2 + e2 * v5;
            acc2_6 = acc2_6 * c2 + e2 * v6;
            acc2_7 = acc2_7 * c2 + e2 * v7;
            let mn3 = max(m3, s3);
            let c3 = exp(m3 - mn3);
            let e3 = exp(s3 - mn3);
            l3 = l3 * c3 + e3;
            m3 = mn3;
            acc3_0 = acc3_0 * c3 + e3 * v0;
            acc3_1 = acc3_1 * c3 + e3 * v1;
            acc3_2 = acc3_2 * c3 + e3 * v2;
            acc3_3 = acc3_3 * c3 + e3 * v3;
            acc3_4 = acc3_4 * c3 + e3 * v4;
            acc3_5 = acc3_5 * c3 + e3 * v5;
            acc3_6 = acc3_6 * c3 + e3 * v6;
            acc3_7 = acc3_7 * c3 + e3 * v7;
        }
    }
    // Padding keys (outside the image): one shared k and v row; their softmax terms are
    // max mp, sum lp over the padding positions, merged with the inside keys' below.
    let po = hoff + 8u;
    let pk0 = pad_row(po + 0u);
    let pk1 = pad_row(po + 1u);
    let pk2 = pad_row(po + 2u);
    let pk3 = pad_row(po + 3u);
    let pk4 = pad_row(po + 4u);
    let pk5 = pad_row(po + 5u);
    let pk6 = pad_row(po + 6u);
    let pk7 = pad_row(po + 7u);
    let pd0 = dot(q0_0, pk0) + dot(q0_1, pk1) + dot(q0_2, pk2) + dot(q0_3, pk3) + dot(q0_4, pk4) + dot(q0_5, pk5) + dot(q0_6, pk6) + dot(q0_7, pk7);
    var mp0 = -3.0e38;
    var lp0 = 0.0;
    let pd1 = dot(q1_0, pk0) + dot(q1_1, pk1) + dot(q1_2, pk2) + dot(q1_3, pk3) + dot(q1_4, pk4) + dot(q1_5, pk5) + dot(q1_6, pk6) + dot(q1_7, pk7);
    var mp1 = -3.0e38;
    var lp1 = 0.0;
    let pd2 = dot(q2_0, pk0) + dot(q2_1, pk1) + dot(q2_2, pk2) + dot(q2_3, pk3) + dot(q2_4, pk4) + dot(q2_5, pk5) + dot(q2_6, pk6) + dot(q2_7, pk7);
    var mp2 = -3.0e38;
    var lp2 = 0.0;
    let pd3 = dot(q3_0, pk0) + dot(q3_1, pk1) + dot(q3_2, pk2) + dot(q3_3, pk3) + dot(q3_4, pk4) + dot(q3_5, pk5) + dot(q3_6, pk6) + dot(q3_7, pk7);
    var mp3 = -3.0e38;
    var lp3 = 0.0;
    for (var ky = 0u; ky < p.ws; ky++) {
        for (var kx = 0u; kx < p.ws; kx++) {
            if (ky < rows_in && kx < cols_in) {
                continue;
            }
            let j = ky * p.ws + kx;
            let bj = bias4(head, j, g);
            let sp0 = pd0 + bj.x;
            let mpn0 = max(mp0, sp0);
            lp0 = lp0 * exp(mp0 - mpn0) + exp(sp0 - mpn0);
            mp0 = mpn0;
            let sp1 = pd1 + bj.y;
            let mpn1 = max(mp1, sp1);
            lp1 = lp1 * exp(mp1 - mpn1) + exp(sp1 - mpn1);
            mp1 = mpn1;
            let sp2 = pd2 + bj.z;
            let mpn2 = max(mp2, sp2);
            lp2 = lp2 * exp(mp2 - mpn2) + exp(sp2 - mpn2);
            mp2 = mpn2;
            let sp3 = pd3 + bj.w;
            let mpn3 = max(mp3, sp3);
            lp3 = lp3 * exp(mp3 - mpn3) + exp(sp3 - mpn3);
            mp3 = mpn3;
        }
    }
    let pv0 = pad_row(po + 8u);
    let pv1 = pad_row(po + 9u);
    let pv2 = pad_row(po + 10u);
    let pv3 = pad_row(po + 11u);
    let pv4 = pad_row(po + 12u);
    let pv5 = pad_row(po + 13u);
    let pv6 = pad_row(po + 14u);
    let pv7 = pad_row(po + 15u);
    let q0_ok = g * 4u + 0u < p.n && qy0 < p.h && qx0 < p.w;
    if (q0_ok) {
        let mt = max(m0, mp0);
        let ci = exp(m0 - mt);
        let cp = lp0 * exp(mp0 - mt);
        let inv = 1.0 / (l0 * ci + cp);
        let oo = (qy0 * p.w + qx0) * p.heads * 8u + head * 8u;
        out[oo + 0u] = (acc0_0 * ci + cp * pv0) * inv;
        out[oo + 1u] = (acc0_1 * ci + cp * pv1) * inv;
        out[oo + 2u] = (acc0_2 * ci + cp * pv2) * inv;
        out[oo + 3u] = (acc0_3 * ci + cp * pv3) * inv;
        out[oo + 4u] = (acc0_4 * ci + cp * pv4) * inv;
        out[oo + 5u] = (acc0_5 * ci + cp * pv5) * inv;
        out[oo + 6u] = (acc0_6 * ci + cp * pv6) * inv;
        out[oo + 7u] = (acc0_7 * ci + cp * pv7) * inv;
    }
    let q1_ok = g * 4u + 1u < p.n && qy1 < p.h && qx1 < p.w;
    if (q1_ok) {
        let mt = max(m1, mp1);
        let ci = exp(m1 - mt);
        let cp = lp1 * exp(mp1 - mt);
        let inv = 1.0 / (l1 * ci + cp);
        let oo = (qy1 * p.w + qx1) * p.heads * 8u + head * 8u;
        out[oo + 0u] = (acc1_0 * ci + cp * pv0) * inv;
        out[oo + 1u] = (acc1_1 * ci + cp * pv1) * inv;
        out[oo + 2u] = (acc1_2 * ci + cp * pv2) * inv;
        out[oo + 3u] = (acc1_3 * ci + cp * pv3) * inv;
        out[oo + 4u] = (acc1_4 * ci + cp * pv4) * inv;
        out[oo + 5u] = (acc1_5 * ci + cp * pv5) * inv;
        out[oo + 6u] = (acc1_6 * ci + cp * pv6) * inv;
        out[oo + 7u] = (acc1_7 * ci + cp * pv7) * inv;
    }
    let q2_ok = g * 4u + 2u < p.n && qy2 < p.h && qx2 < p.w;
    if (q2_ok) {
        let mt = max(m2, mp2);
        let ci = exp(m2 - mt);
        let cp = lp2 * exp(mp2 - mt);
        let inv = 1.0 / (l2 * ci + cp);
        let oo = (qy2 * p.w + qx2) * p.heads * 8u + head * 8u;
        out[oo + 0u] = (acc2_0 * ci + cp * pv0) * inv;
        out[oo + 1u] = (acc2_1 * ci + cp * pv1) * inv;
        out[oo + 2u] = (acc2_2 * ci + cp * pv2) * inv;
        out[oo + 3u] = (acc2_3 * ci + cp * pv3) * inv;
        out[oo + 4u] = (acc2_4 * ci + cp * pv4) * inv;
        out[oo + 5u] = (acc2_5 * ci + cp * pv5) * inv;
        out[oo + 6u] = (acc2_6 * ci + cp * pv6) * inv;
        out[oo + 7u] = (acc2_7 * ci + cp * pv7) * inv;
    }
    let q3_ok = g * 4u + 3u < p.n && qy3 < p.h && qx3 < p.w;
    if (q3_ok) {
        let mt = max(m3, mp3);
        let ci = exp(m3 - mt);
        let cp = lp3 * exp(mp3 - mt);
        let inv = 1.0 / (l3 * ci + cp);
        let oo = (qy3 * p.w + qx3) * p.heads * 8u + head * 8u;
        out[oo + 0u] = (acc3_0 * ci + cp * pv0) * inv;
        out[oo + 1u] = (acc3_1 * ci + cp * pv1) * inv;
        out[oo + 2u] = (acc3_2 * ci + cp * pv2) * inv;
        out[oo + 3u] = (acc3_3 * ci + cp * pv3) * inv;
        out[oo + 4u] = (acc3_4 * ci + cp * pv4) * inv;
        out[oo + 5u] = (acc3_5 * ci + cp * pv5) * inv;
        out[oo + 6u] = (acc3_6 * ci + cp * pv6) * inv;
        out[oo + 7u] = (acc3_7 * ci + cp * pv7) * inv;
    }
}
