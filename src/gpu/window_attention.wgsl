// TinyViT window attention (MobileSAM `tiny_vit_sam.py`, `Attention` inside `TinyViTBlock`),
// fused: window partition with padding, q·kᵀ·scale + attention bias, softmax (online, in one
// pass over the keys) and the weighted sum of values, written back in token order with the
// padding cropped.
//   qkv[token, head * 96 + (q 0..32 | k 32..64 | v 64..96)]   (key_dim = head_dim = 32)
//   pad_qkv[head * 96 + ...]: the qkv row of a zero (padding) token, i.e. qkv(LayerNorm(0))
//   bias[head, query, key] over the ws×ws window; out[token, head * 32 + i]
// One invocation per (window, head, query).

struct Params {
    h: u32,
    w: u32,
    ws: u32,
    heads: u32,
    windows_w: u32,
    n: u32,
    total: u32,
    scale: f32,
}

const HD: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> pad_qkv: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.y * nwg.x * 64u + gid.x;
    if (idx >= p.total) {
        return;
    }
    let q = idx % p.n;
    let head = (idx / p.n) % p.heads;
    let win = idx / (p.n * p.heads);
    let wy = win / p.windows_w;
    let wx = win % p.windows_w;
    let qy = wy * p.ws + q / p.ws;
    let qx = wx * p.ws + q % p.ws;
    if (qy >= p.h || qx >= p.w) {
        return;
    }
    let stride = p.heads * 3u * HD;
    let qoff = (qy * p.w + qx) * stride + head * 3u * HD;
    var qv: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        let o = qoff + 4u * i;
        qv[i] = vec4<f32>(qkv[o], qkv[o + 1u], qkv[o + 2u], qkv[o + 3u]) * p.scale;
    }
    var acc: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    var m = -3.0e38;
    var l = 0.0;
    let brow = (head * p.n + q) * p.n;
    for (var j = 0u; j < p.n; j++) {
        let ky = wy * p.ws + j / p.ws;
        let kx = wx * p.ws + j % p.ws;
        let inside = ky < p.h && kx < p.w;
        let koff = (ky * p.w + kx) * stride + head * 3u * HD + HD;
        let poff = head * 3u * HD + HD;
        var s = bias[brow + j];
        for (var i = 0u; i < 8u; i++) {
            var kv: vec4<f32>;
            if (inside) {
                let o = koff + 4u * i;
                kv = vec4<f32>(qkv[o], qkv[o + 1u], qkv[o + 2u], qkv[o + 3u]);
            } else {
                let o = poff + 4u * i;
                kv = vec4<f32>(pad_qkv[o], pad_qkv[o + 1u], pad_qkv[o + 2u], pad_qkv[o + 3u]);
            }
            s += dot(qv[i], kv);
        }
        let m_new = max(m, s);
        let corr = exp(m - m_new);
        let e = exp(s - m_new);
        l = l * corr + e;
        m = m_new;
        for (var i = 0u; i < 8u; i++) {
            var vv: vec4<f32>;
            if (inside) {
                let o = koff + HD + 4u * i;
                vv = vec4<f32>(qkv[o], qkv[o + 1u], qkv[o + 2u], qkv[o + 3u]);
            } else {
                let o = poff + HD + 4u * i;
                vv = vec4<f32>(pad_qkv[o], pad_qkv[o + 1u], pad_qkv[o + 2u], pad_qkv[o + 3u]);
            }
            acc[i] = acc[i] * corr + e * vv;
        }
    }
    let ooff = (qy * p.w + qx) * p.heads * HD + head * HD;
    let inv = 1.0 / l;
    for (var i = 0u; i < 8u; i++) {
        let v = acc[i] * inv;
        out[ooff + 4u * i] = v.x;
        out[ooff + 4u * i + 1u] = v.y;
        out[ooff + 4u * i + 2u] = v.z;
        out[ooff + 4u * i + 3u] = v.w;
    }
}
