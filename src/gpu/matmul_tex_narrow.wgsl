// `matmul_tex.wgsl` with 16×32 tiles (each invocation owns 4 columns): for n = 32 (the stem's
// first conv) and other widths where 64-column tiles would leave an eighth or more of the
// columns idle (`matmul::narrow_tiles`). Per 4 values of k: 2 texels of `a` and 4 of `w`
// feed 256 multiply-adds. Contract and epilogue: `matmul_tex_epilogue.wgsl`.

@compute @workgroup_size(8, 1, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let k4 = p.k / 4u;
    let r0 = wg.y * 16u;
    let c0 = wg.x * 32u + lid.x * 4u;
    let ra0 = min(r0 + 0u + lane, p.m - 1u) * k4;
    let ra1 = min(r0 + 8u + lane, p.m - 1u) * k4;
    let cw0 = i32(min(c0 + 0u, p.n - 1u));
    let cw1 = i32(min(c0 + 1u, p.n - 1u));
    let cw2 = i32(min(c0 + 2u, p.n - 1u));
    let cw3 = i32(min(c0 + 3u, p.n - 1u));
    // The bias seeds the accumulators: 1 load per invocation instead of one per stored vec4
    // (a storage load is a loop over the lanes on a CPU adapter).
    var b0 = vec4<f32>(0.0);
    if ((p.flags & 1u) != 0u) {
        b0 = bias[min(c0 + 0u, p.n - 4u) / 4u];
    }
    var acc0_0 = b0;
    var acc1_0 = b0;
    var acc2_0 = b0;
    var acc3_0 = b0;
    var acc4_0 = b0;
    var acc5_0 = b0;
    var acc6_0 = b0;
    var acc7_0 = b0;
    var acc8_0 = b0;
    var acc9_0 = b0;
    var acc10_0 = b0;
    var acc11_0 = b0;
    var acc12_0 = b0;
    var acc13_0 = b0;
    var acc14_0 = b0;
    var acc15_0 = b0;
    for (var kk = 0u; kk < k4; kk++) {
        let t = i32(kk);
        let af0 = textureLoad(a, texel(ra0 + kk));
        let af1 = textureLoad(a, texel(ra1 + kk));
        let w0 = textureLoad(w, vec2<i32>(t, cw0));
        let w1 = textureLoad(w, vec2<i32>(t, cw1));
        let w2 = textureLoad(w, vec2<i32>(t, cw2));
        let w3 = textureLoad(w, vec2<i32>(t, cw3));
        let a0 = subgroupBroadcast(af0, 0u);
        acc0_0 += vec4<f32>(dot(a0, w0), dot(a0, w1), dot(a0, w2), dot(a0, w3));
        let a1 = subgroupBroadcast(af0, 1u);
        acc1_0 += vec4<f32>(dot(a1, w0), dot(a1, w1), dot(a1, w2), dot(a1, w3));
        let a2 = subgroupBroadcast(af0, 2u);
        acc2_0 += vec4<f32>(dot(a2, w0), dot(a2, w1), dot(a2, w2), dot(a2, w3));
        let a3 = subgroupBroadcast(af0, 3u);
        acc3_0 += vec4<f32>(dot(a3, w0), dot(a3, w1), dot(a3, w2), dot(a3, w3));
        let a4 = subgroupBroadcast(af0, 4u);
        acc4_0 += vec4<f32>(dot(a4, w0), dot(a4, w1), dot(a4, w2), dot(a4, w3));
        let a5 = subgroupBroadcast(af0, 5u);
        acc5_0 += vec4<f32>(dot(a5, w0), dot(a5, w1), dot(a5, w2), dot(a5, w3));
        let a6 = subgroupBroadcast(af0, 6u);
        acc6_0 += vec4<f32>(dot(a6, w0), dot(a6, w1), dot(a6, w2), dot(a6, w3));
        let a7 = subgroupBroadcast(af0, 7u);
        acc7_0 += vec4<f32>(dot(a7, w0), dot(a7, w1), dot(a7, w2), dot(a7, w3));
        let a8 = subgroupBroadcast(af1, 0u);
        acc8_0 += vec4<f32>(dot(a8, w0), dot(a8, w1), dot(a8, w2), dot(a8, w3));
        let a9 = subgroupBroadcast(af1, 1u);
        acc9_0 += vec4<f32>(dot(a9, w0), dot(a9, w1), dot(a9, w2), dot(a9, w3));
        let a10 = subgroupBroadcast(af1, 2u);
        acc10_0 += vec4<f32>(dot(a10, w0), dot(a10, w1), dot(a10, w2), dot(a10, w3));
        let a11 = subgroupBroadcast(af1, 3u);
        acc11_0 += vec4<f32>(dot(a11, w0), dot(a11, w1), dot(a11, w2), dot(a11, w3));
        let a12 = subgroupBroadcast(af1, 4u);
        acc12_0 += vec4<f32>(dot(a12, w0), dot(a12, w1), dot(a12, w2), dot(a12, w3));
        let a13 = subgroupBroadcast(af1, 5u);
        acc13_0 += vec4<f32>(dot(a13, w0), dot(a13, w1), dot(a13, w2), dot(a13, w3));
        let a14 = subgroupBroadcast(af1, 6u);
        acc14_0 += vec4<f32>(dot(a14, w0), dot(a14, w1), dot(a14, w2), dot(a14, w3));
        let a15 = subgroupBroadcast(af1, 7u);
        acc15_0 += vec4<f32>(dot(a15, w0), dot(a15, w1), dot(a15, w2), dot(a15, w3));
    }
    store4(r0 + 0u, c0 + 0u, acc0_0);
    store4(r0 + 1u, c0 + 0u, acc1_0);
    store4(r0 + 2u, c0 + 0u, acc2_0);
    store4(r0 + 3u, c0 + 0u, acc3_0);
    store4(r0 + 4u, c0 + 0u, acc4_0);
    store4(r0 + 5u, c0 + 0u, acc5_0);
    store4(r0 + 6u, c0 + 0u, acc6_0);
    store4(r0 + 7u, c0 + 0u, acc7_0);
    store4(r0 + 8u, c0 + 0u, acc8_0);
    store4(r0 + 9u, c0 + 0u, acc9_0);
    store4(r0 + 10u, c0 + 0u, acc10_0);
    store4(r0 + 11u, c0 + 0u, acc11_0);
    store4(r0 + 12u, c0 + 0u, acc12_0);
    store4(r0 + 13u, c0 + 0u, acc13_0);
    store4(r0 + 14u, c0 + 0u, acc14_0);
    store4(r0 + 15u, c0 + 0u, acc15_0);
}
