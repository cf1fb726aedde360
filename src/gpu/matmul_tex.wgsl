// Matrix multiply for CPU adapters with both operands read as texels; same contract and
// epilogue as `matmul.wgsl`:
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// for k and n multiples of 4. `a` is the row-major input copied into a texture by
// `Recorder::texels_of` (texel t = a[4t .. 4t+4], placed by `texel()` of `texels.wgsl`); `w` is
// the weight texture of `GpuTensor::upload_weight` (k/4 × n texels, row = output column).
//
// Why texels: on lavapipe (Mesa 22.3) a storage-buffer load is a loop over the SIMD lanes with
// a bounds check and a branch per value, even when every lane reads the same address, while a
// texel load is one call gathering 4 values per lane. Both operands are bound as read-only
// storage textures: their loads skip the sampler path's per-lane mip lookups (15–25 % faster
// than `texture_2d` on lavapipe). Loads still cost far more than the multiply-adds they feed,
// so the kernel is built to need few of them:
// - a workgroup is one subgroup of 8 invocations (lavapipe's SIMD width; the Rust side only
//   picks this kernel when the subgroup size is exactly 8) computing a 16-row × 64-column
//   tile; each invocation owns 8 columns and all 16 rows;
// - per 4 values of k, each invocation fetches 2 texels of `a` (rows lane and 8 + lane) and
//   8 of `w` (its columns); `subgroupBroadcast` hands every invocation the 16 rows (an
//   element extract on a CPU) — 10 fetches feed 512 multiply-adds;
// - the epilogue reads and writes whole vec4s (4 columns), a quarter of the per-lane loops,
//   and the bias is loaded once per invocation to seed the accumulators, not per stored vec4.
// Measured on the 2-core VM (`linear` alone on encoder shapes, best of 8 runs): 19–32
// GFLOP/s for k ≥ 320 against 12–16 with 8×8 blocks and no broadcast, 3–4 with `a` read
// from storage. No workgroup memory and no barriers (a barrier switches between all of a
// workgroup's invocations on a CPU). Rows past `m`/`n` are clamped on load and skipped on
// store. Unrolled by hand (generated): CPU compilers keep named values in registers.

@compute @workgroup_size(8, 1, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let k4 = p.k / 4u;
    let r0 = wg.y * 16u;
    let c0 = wg.x * 64u + lid.x * 8u;
    let ra0 = min(r0 + 0u + lane, p.m - 1u) * k4;
    let ra1 = min(r0 + 8u + lane, p.m - 1u) * k4;
    let cw0 = i32(min(c0 + 0u, p.n - 1u));
    let cw1 = i32(min(c0 + 1u, p.n - 1u));
    let cw2 = i32(min(c0 + 2u, p.n - 1u));
    let cw3 = i32(min(c0 + 3u, p.n - 1u));
    let cw4 = i32(min(c0 + 4u, p.n - 1u));
    let cw5 = i32(min(c0 + 5u, p.n - 1u));
    let cw6 = i32(min(c0 + 6u, p.n - 1u));
    let cw7 = i32(min(c0 + 7u, p.n - 1u));
    // The bias seeds the accumulators: 2 loads per invocation instead of one per stored vec4
    // (a storage load is a loop over the lanes on a CPU adapter).
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    if ((p.flags & 1u) != 0u) {
        b0 = bias[min(c0 + 0u, p.n - 4u) / 4u];
        b1 = bias[min(c0 + 4u, p.n - 4u) / 4u];
    }
    var acc0_0 = b0;
    var acc0_1 = b1;
    var acc1_0 = b0;
    var acc1_1 = b1;
    var acc2_0 = b0;
    var acc2_1 = b1;
    var acc3_0 = b0;
    var acc3_1 = b1;
    var acc4_0 = b0;
    var acc4_1 = b1;
    var acc5_0 = b0;
    var acc5_1 = b1;
    var acc6_0 = b0;
    var acc6_1 = b1;
    var acc7_0 = b0;
    var acc7_1 = b1;
    var acc8_0 = b0;
    var acc8_1 = b1;
    var acc9_0 = b0;
    var acc9_1 = b1;
    var acc10_0 = b0;
    var acc10_1 = b1;
    var acc11_0 = b0;
    var acc11_1 = b1;
    var acc12_0 = b0;
    var acc12_1 = b1;
    var acc13_0 = b0;
    var acc13_1 = b1;
    var acc14_0 = b0;
    var acc14_1 = b1;
    var acc15_0 = b0;
    var acc15_1 = b1;
    for (var kk = 0u; kk < k4; kk++) {
        let t = i32(kk);
        let af0 = textureLoad(a, texel(ra0 + kk));
        let af1 = textureLoad(a, texel(ra1 + kk));
        let w0 = textureLoad(w, vec2<i32>(t, cw0));
        let w1 = textureLoad(w, vec2<i32>(t, cw1));
        let w2 = textureLoad(w, vec2<i32>(t, cw2));
        let w3 = textureLoad(w, vec2<i32>(t, cw3));
        let w4 = textureLoad(w, vec2<i32>(t, cw4));
        let w5 = textureLoad(w, vec2<i32>(t, cw5));
        let w6 = textureLoad(w, vec2<i32>(t, cw6));
        let w7 = textureLoad(w, vec2<i32>(t, cw7));
        let a0 = subgroupBroadcast(af0, 0u);
        acc0_0 += vec4<f32>(dot(a0, w0), dot(a0, w1), dot(a0, w2), dot(a0, w3));
        acc0_1 += vec4<f32>(dot(a0, w4), dot(a0, w5), dot(a0, w6), dot(a0, w7));
        let a1 = subgroupBroadcast(af0, 1u);
        acc1_0 += vec4<f32>(dot(a1, w0), dot(a1, w1), dot(a1, w2), dot(a1, w3));
        acc1_1 += vec4<f32>(dot(a1, w4), dot(a1, w5), dot(a1, w6), dot(a1, w7));
        let a2 = subgroupBroadcast(af0, 2u);
        acc2_0 += vec4<f32>(dot(a2, w0), dot(a2, w1), dot(a2, w2), dot(a2, w3));
        acc2_1 += vec4<f32>(dot(a2, w4), dot(a2, w5), dot(a2, w6), dot(a2, w7));
        let a3 = subgroupBroadcast(af0, 3u);
        acc3_0 += vec4<f32>(dot(a3, w0), dot(a3, w1), dot(a3, w2), dot(a3, w3));
        acc3_1 += vec4<f32>(dot(a3, w4), dot(a3, w5), dot(a3, w6), dot(a3, w7));
        let a4 = subgroupBroadcast(af0, 4u);
        acc4_0 += vec4<f32>(dot(a4, w0), dot(a4, w1), dot(a4, w2), dot(a4, w3));
        acc4_1 += vec4<f32>(dot(a4, w4), dot(a4, w5), dot(a4, w6), dot(a4, w7));
        let a5 = subgroupBroadcast(af0, 5u);
        acc5_0 += vec4<f32>(dot(a5, w0), dot(a5, w1), dot(a5, w2), dot(a5, w3));
        acc5_1 += vec4<f32>(dot(a5, w4), dot(a5, w5), dot(a5, w6), dot(a5, w7));
        let a6 = subgroupBroadcast(af0, 6u);
        acc6_0 += vec4<f32>(dot(a6, w0), dot(a6, w1), dot(a6, w2), dot(a6, w3));
        acc6_1 += vec4<f32>(dot(a6, w4), dot(a6, w5), dot(a6, w6), dot(a6, w7));
        let a7 = subgroupBroadcast(af0, 7u);
        acc7_0 += vec4<f32>(dot(a7, w0), dot(a7, w1), dot(a7, w2), dot(a7, w3));
        acc7_1 += vec4<f32>(dot(a7, w4), dot(a7, w5), dot(a7, w6), dot(a7, w7));
        let a8 = subgroupBroadcast(af1, 0u);
        acc8_0 += vec4<f32>(dot(a8, w0), dot(a8, w1), dot(a8, w2), dot(a8, w3));
        acc8_1 += vec4<f32>(dot(a8, w4), dot(a8, w5), dot(a8, w6), dot(a8, w7));
        let a9 = subgroupBroadcast(af1, 1u);
        acc9_0 += vec4<f32>(dot(a9, w0), dot(a9, w1), dot(a9, w2), dot(a9, w3));
        acc9_1 += vec4<f32>(dot(a9, w4), dot(a9, w5), dot(a9, w6), dot(a9, w7));
        let a10 = subgroupBroadcast(af1, 2u);
        acc10_0 += vec4<f32>(dot(a10, w0), dot(a10, w1), dot(a10, w2), dot(a10, w3));
        acc10_1 += vec4<f32>(dot(a10, w4), dot(a10, w5), dot(a10, w6), dot(a10, w7));
        let a11 = subgroupBroadcast(af1, 3u);
        acc11_0 += vec4<f32>(dot(a11, w0), dot(a11, w1), dot(a11, w2), dot(a11, w3));
        acc11_1 += vec4<f32>(dot(a11, w4), dot(a11, w5), dot(a11, w6), dot(a11, w7));
        let a12 = subgroupBroadcast(af1, 4u);
        acc12_0 += vec4<f32>(dot(a12, w0), dot(a12, w1), dot(a12, w2), dot(a12, w3));
        acc12_1 += vec4<f32>(dot(a12, w4), dot(a12, w5), dot(a12, w6), dot(a12, w7));
        let a13 = subgroupBroadcast(af1, 5u);
        acc13_0 += vec4<f32>(dot(a13, w0), dot(a13, w1), dot(a13, w2), dot(a13, w3));
        acc13_1 += vec4<f32>(dot(a13, w4), dot(a13, w5), dot(a13, w6), dot(a13, w7));
        let a14 = subgroupBroadcast(af1, 6u);
        acc14_0 += vec4<f32>(dot(a14, w0), dot(a14, w1), dot(a14, w2), dot(a14, w3));
        acc14_1 += vec4<f32>(dot(a14, w4), dot(a14, w5), dot(a14, w6), dot(a14, w7));
        let a15 = subgroupBroadcast(af1, 7u);
        acc15_0 += vec4<f32>(dot(a15, w0), dot(a15, w1), dot(a15, w2), dot(a15, w3));
        acc15_1 += vec4<f32>(dot(a15, w4), dot(a15, w5), dot(a15, w6), dot(a15, w7));
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
    store4(r0 + 8u, c0 + 0u, acc8_0);
    store4(r0 + 8u, c0 + 4u, acc8_1);
    store4(r0 + 9u, c0 + 0u, acc9_0);
    store4(r0 + 9u, c0 + 4u, acc9_1);
    store4(r0 + 10u, c0 + 0u, acc10_0);
    store4(r0 + 10u, c0 + 4u, acc10_1);
    store4(r0 + 11u, c0 + 0u, acc11_0);
    store4(r0 + 11u, c0 + 4u, acc11_1);
    store4(r0 + 12u, c0 + 0u, acc12_0);
    store4(r0 + 12u, c0 + 4u, acc12_1);
    store4(r0 + 13u, c0 + 0u, acc13_0);
    store4(r0 + 13u, c0 + 4u, acc13_1);
    store4(r0 + 14u, c0 + 0u, acc14_0);
    store4(r0 + 14u, c0 + 4u, acc14_1);
    store4(r0 + 15u, c0 + 0u, acc15_0);
    store4(r0 + 15u, c0 + 4u, acc15_1);
}
