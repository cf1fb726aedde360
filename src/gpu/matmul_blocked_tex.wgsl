// Register-blocked matrix multiply for CPU adapters reading the weight from a texture;
// same contract and epilogue as `matmul.wgsl`:
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// for k a multiple of 4, with `w` as an rgba32float texture of k/4 × n texels (row = output
// column, texel = 4 consecutive k). On lavapipe a storage-buffer load of a per-invocation
// address is a loop over the SIMD lanes with a bounds check and a branch per value, while a
// texel fetch is a branch-free gather of 4 values, several times cheaper per value. So each
// invocation keeps a 4 × 8 block of outputs in registers (8 vec4 accumulators) and per 4
// values of k reads 4 vec4 rows of `a` from storage and 8 texels of `w`; no workgroup memory
// and no barriers (a barrier switches between all of a workgroup's invocations on a CPU).
// Workgroup 8 × 8 → a 32-row × 64-column tile; the 8 invocations lavapipe runs as one SIMD
// vector share their rows of `a` (measured: 1.3–2.5× the speed of `matmul_blocked.wgsl` on
// lavapipe; lanes on different rows of `a` were slower). Rows past `m`/`n` are clamped on load
// and skipped on store.
// flags: bit 0 bias, bit 1 residual, bit 2 GELU, bit 3 ReLU (activations after the residual add).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var w: texture_2d<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn store(row: u32, col: u32, acc: f32) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    var v = acc;
    if ((p.flags & 1u) != 0u) {
        v += bias[col];
    }
    if ((p.flags & 2u) != 0u) {
        v += res[row * p.n + col];
    }
    if ((p.flags & 4u) != 0u) {
        v = gelu(v);
    }
    if ((p.flags & 8u) != 0u) {
        v = max(v, 0.0);
    }
    out[row * p.n + col] = v;
}

fn store4(row: u32, col: u32, acc: vec4<f32>) {
    store(row, col, acc.x);
    store(row, col + 1u, acc.y);
    store(row, col + 2u, acc.z);
    store(row, col + 3u, acc.w);
}

// Unrolled by hand (rows 0..3 of a, columns 0..7 of w, accumulators acc<row>_<column quad>):
// CPU compilers keep named values in registers, while indexed local arrays may live in memory.
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let k4 = p.k / 4u;
    let r0 = wg.y * 32u + lid.y * 4u;
    let c0 = wg.x * 64u + lid.x * 8u;
    let ra0 = min(r0 + 0u, p.m - 1u) * k4;
    let ra1 = min(r0 + 1u, p.m - 1u) * k4;
    let ra2 = min(r0 + 2u, p.m - 1u) * k4;
    let ra3 = min(r0 + 3u, p.m - 1u) * k4;
    let cw0 = i32(min(c0 + 0u, p.n - 1u));
    let cw1 = i32(min(c0 + 1u, p.n - 1u));
    let cw2 = i32(min(c0 + 2u, p.n - 1u));
    let cw3 = i32(min(c0 + 3u, p.n - 1u));
    let cw4 = i32(min(c0 + 4u, p.n - 1u));
    let cw5 = i32(min(c0 + 5u, p.n - 1u));
    let cw6 = i32(min(c0 + 6u, p.n - 1u));
    let cw7 = i32(min(c0 + 7u, p.n - 1u));
    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    for (var kk = 0u; kk < k4; kk++) {
        let t = i32(kk);
        let a0 = a[ra0 + kk];
        let a1 = a[ra1 + kk];
        let a2 = a[ra2 + kk];
        let a3 = a[ra3 + kk];
        let w0 = textureLoad(w, vec2<i32>(t, cw0), 0);
        let w1 = textureLoad(w, vec2<i32>(t, cw1), 0);
        let w2 = textureLoad(w, vec2<i32>(t, cw2), 0);
        let w3 = textureLoad(w, vec2<i32>(t, cw3), 0);
        let w4 = textureLoad(w, vec2<i32>(t, cw4), 0);
        let w5 = textureLoad(w, vec2<i32>(t, cw5), 0);
        let w6 = textureLoad(w, vec2<i32>(t, cw6), 0);
        let w7 = textureLoad(w, vec2<i32>(t, cw7), 0);
        acc0_0 += vec4<f32>(dot(a0, w0), dot(a0, w1), dot(a0, w2), dot(a0, w3));
        acc0_1 += vec4<f32>(dot(a0, w4), dot(a0, w5), dot(a0, w6), dot(a0, w7));
        acc1_0 += vec4<f32>(dot(a1, w0), dot(a1, w1), dot(a1, w2), dot(a1, w3));
        acc1_1 += vec4<f32>(dot(a1, w4), dot(a1, w5), dot(a1, w6), dot(a1, w7));
        acc2_0 += vec4<f32>(dot(a2, w0), dot(a2, w1), dot(a2, w2), dot(a2, w3));
        acc2_1 += vec4<f32>(dot(a2, w4), dot(a2, w5), dot(a2, w6), dot(a2, w7));
        acc3_0 += vec4<f32>(dot(a3, w0), dot(a3, w1), dot(a3, w2), dot(a3, w3));
        acc3_1 += vec4<f32>(dot(a3, w4), dot(a3, w5), dot(a3, w6), dot(a3, w7));
    }
    store4(r0 + 0u, c0 + 0u, acc0_0);
    store4(r0 + 0u, c0 + 4u, acc0_1);
    store4(r0 + 1u, c0 + 0u, acc1_0);
    store4(r0 + 1u, c0 + 4u, acc1_1);
    store4(r0 + 2u, c0 + 0u, acc2_0);
    store4(r0 + 2u, c0 + 4u, acc2_1);
    store4(r0 + 3u, c0 + 0u, acc3_0);
    store4(r0 + 3u, c0 + 4u, acc3_1);
}
