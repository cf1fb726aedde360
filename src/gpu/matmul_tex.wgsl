// Matrix multiply for CPU adapters with both operands read as texels; same contract and
// epilogue as `matmul.wgsl`:
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// for k a multiple of 4. `a` is the row-major activation copied into a texture by
// `Recorder::texels_of` (texel t = a[4t .. 4t+4], placed by `texel()` of `texels.wgsl`); `w` is
// the weight texture of `GpuTensor::upload_weight` (k/4 × n texels, row = output column).
// Why texels: on lavapipe (Mesa 22.3) a storage-buffer load is a loop over the SIMD lanes with
// a bounds check and a branch per value, even when every lane reads the same address, while a
// texel fetch is a branch-free gather of 4 values. Measured on the 2-core VM: the same kernel
// with `a` from storage ran at 3–4 GFLOP/s, with both operands as texels at 9–18 GFLOP/s.
// Each invocation keeps an 8 × 8 block of outputs in registers (16 vec4 accumulators): per 4
// values of k it fetches 8 texels of `a` (the workgroup's 8 rows, the same for every lane) and
// 8 of `w` (its own 8 columns), feeding 256 multiply-adds. A workgroup is 8 invocations — one
// SIMD vector on lavapipe — so its rows depend on the workgroup only: an 8-row × 64-column
// tile. No workgroup memory and no barriers (a barrier switches between all of a workgroup's
// invocations on a CPU). Rows past `m`/`n` are clamped on load and skipped on store.
// flags: bit 0 bias, bit 1 residual, bit 2 GELU, bit 3 ReLU (activations after the residual add).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var a: texture_2d<f32>;
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

@compute @workgroup_size(8, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let k4 = p.k / 4u;
    let r0 = wg.y * 8u;
    let c0 = wg.x * 64u + lid.x * 8u;
    let ra0 = min(r0 + 0u, p.m - 1u) * k4;
    let ra1 = min(r0 + 1u, p.m - 1u) * k4;
    let ra2 = min(r0 + 2u, p.m - 1u) * k4;
    let ra3 = min(r0 + 3u, p.m - 1u) * k4;
    let ra4 = min(r0 + 4u, p.m - 1u) * k4;
    let ra5 = min(r0 + 5u, p.m - 1u) * k4;
    let ra6 = min(r0 + 6u, p.m - 1u) * k4;
    let ra7 = min(r0 + 7u, p.m - 1u) * k4;
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
    var acc4_0 = vec4<f32>(0.0);
    var acc4_1 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc5_1 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc6_1 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    var acc7_1 = vec4<f32>(0.0);
    for (var kk = 0u; kk < k4; kk++) {
        let t = i32(kk);
        let a0 = textureLoad(a, texel(ra0 + kk), 0);
        let a1 = textureLoad(a, texel(ra1 + kk), 0);
        let a2 = textureLoad(a, texel(ra2 + kk), 0);
        let a3 = textureLoad(a, texel(ra3 + kk), 0);
        let a4 = textureLoad(a, texel(ra4 + kk), 0);
        let a5 = textureLoad(a, texel(ra5 + kk), 0);
        let a6 = textureLoad(a, texel(ra6 + kk), 0);
        let a7 = textureLoad(a, texel(ra7 + kk), 0);
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
        acc4_0 += vec4<f32>(dot(a4, w0), dot(a4, w1), dot(a4, w2), dot(a4, w3));
        acc4_1 += vec4<f32>(dot(a4, w4), dot(a4, w5), dot(a4, w6), dot(a4, w7));
        acc5_0 += vec4<f32>(dot(a5, w0), dot(a5, w1), dot(a5, w2), dot(a5, w3));
        acc5_1 += vec4<f32>(dot(a5, w4), dot(a5, w5), dot(a5, w6), dot(a5, w7));
        acc6_0 += vec4<f32>(dot(a6, w0), dot(a6, w1), dot(a6, w2), dot(a6, w3));
        acc6_1 += vec4<f32>(dot(a6, w4), dot(a6, w5), dot(a6, w6), dot(a6, w7));
        acc7_0 += vec4<f32>(dot(a7, w0), dot(a7, w1), dot(a7, w2), dot(a7, w3));
        acc7_1 += vec4<f32>(dot(a7, w4), dot(a7, w5), dot(a7, w6), dot(a7, w7));
    }
    store4(r0 + 0u, c0 + 0u, acc0_0);
    store4(r0 + 0u, c0 + 4u, acc0_1);
    store4(r0 + 1u, c0 + 0u, acc1_0);
    store4(r0 + 1u, c0 + 4u, acc1_1);
    store4(r0 + 2u, c0 + 0u, acc2_0);
    store4(r0 + 2u, c0 + 4u, acc2_1);
    store4(r0 + 3u, c0 + 0u, acc3_0);
    store4(r0 + 3u, c0 + 4u, acc3_1);
    store4(r0 + 4u, c0 + 0u, acc4_0);
    store4(r0 + 4u, c0 + 4u, acc4_1);
    store4(r0 + 5u, c0 + 0u, acc5_0);
    store4(r0 + 5u, c0 + 4u, acc5_1);
    store4(r0 + 6u, c0 + 0u, acc6_0);
    store4(r0 + 6u, c0 + 4u, acc6_1);
    store4(r0 + 7u, c0 + 0u, acc7_0);
    store4(r0 + 7u, c0 + 4u, acc7_1);
}
