// Multi-head attention of SAM's two-way transformer (`modeling/transformer.py`, `Attention`),
// batched over prompts: softmax(q·kᵀ/√d)·v per head, with the softmax computed online in one
// pass over the keys (the token↔image attentions have 4096 keys or 4096 queries).
//   q[b, tq, heads * dh], k[b, tk, heads * dh], v[b, tk, heads * dh] → out[b, tq, heads * dh]
// dh ≤ 32 and a multiple of 4. One invocation per (b, query, head).

struct Params {
    batch: u32,
    tq: u32,
    tk: u32,
    heads: u32,
    dh: u32,
    scale: f32,
    total: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 64u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let head = idx % p.heads;
    let qi = (idx / p.heads) % p.tq;
    let b = idx / (p.heads * p.tq);
    let width = p.heads * p.dh;
    let d4 = p.dh / 4u;
    let qoff = (b * p.tq + qi) * width + head * p.dh;
    var qv: array<vec4<f32>, 8>;
    var acc: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        acc[i] = vec4<f32>(0.0);
        qv[i] = vec4<f32>(0.0);
    }
    for (var i = 0u; i < d4; i++) {
        let o = qoff + 4u * i;
        qv[i] = vec4<f32>(q[o], q[o + 1u], q[o + 2u], q[o + 3u]) * p.scale;
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var j = 0u; j < p.tk; j++) {
        let koff = (b * p.tk + j) * width + head * p.dh;
        var s = 0.0;
        for (var i = 0u; i < d4; i++) {
            let o = koff + 4u * i;
            s += dot(qv[i], vec4<f32>(k[o], k[o + 1u], k[o + 2u], k[o + 3u]));
        }
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let e = exp(s - m_new);
        l = l * corr + e;
        m = m_new;
        for (var i = 0u; i < d4; i++) {
            let o = koff + 4u * i;
            acc[i] = acc[i] * corr + e * vec4<f32>(v[o], v[o + 1u], v[o + 2u], v[o + 3u]);
        }
    }
    let inv = 1.0 / l;
    for (var i = 0u; i < d4; i++) {
        let r = acc[i] * inv;
        let o = qoff + 4u * i;
        out[o] = r.x;
        out[o + 1u] = r.y;
        out[o + 2u] = r.z;
        out[o + 3u] = r.w;
    }
}
