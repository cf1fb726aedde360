// Register-blocked matrix multiply for CPU adapters (lavapipe/llvmpipe, SwiftShader), same
// contract and epilogue as `matmul.wgsl`:
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// No workgroup memory and no barriers (CPU adapters run a workgroup's invocations as
// coroutines, so every `workgroupBarrier()` is a context switch): each invocation reads its 8
// rows of `a` and 8 rows of `w` straight from storage, 4 values of k at a time, and keeps an
// 8×8 block of outputs in registers (16 vec4 accumulators), so every value loaded feeds 8
// multiply-adds. Workgroup 8×8 → a 64×64 tile per workgroup. Rows past `m`/`n` are clamped
// on load and skipped on store; k needs no multiple (a scalar tail loop).
// Parameters, epilogue (`store_output`) and output: `matmul_io.wgsl`.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

fn load_a4(o: u32) -> vec4<f32> {
    return vec4<f32>(a[o], a[o + 1u], a[o + 2u], a[o + 3u]);
}

fn load_w4(o: u32) -> vec4<f32> {
    return vec4<f32>(w[o], w[o + 1u], w[o + 2u], w[o + 3u]);
}

// Unrolled by hand (rows 0..7 of a, rows 0..7 of w, accumulators acc<row>_<column quad>):
// CPU compilers keep named values in registers, while indexed local arrays may live in memory.
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let r0 = wg.y * 64u + lid.y * 8u;
    let c0 = wg.x * 64u + lid.x * 8u;
    let ra0 = min(r0 + 0u, p.m - 1u) * p.k;
    let ra1 = min(r0 + 1u, p.m - 1u) * p.k;
    let ra2 = min(r0 + 2u, p.m - 1u) * p.k;
    let ra3 = min(r0 + 3u, p.m - 1u) * p.k;
    let ra4 = min(r0 + 4u, p.m - 1u) * p.k;
    let ra5 = min(r0 + 5u, p.m - 1u) * p.k;
    let ra6 = min(r0 + 6u, p.m - 1u) * p.k;
    let ra7 = min(r0 + 7u, p.m - 1u) * p.k;
    let rw0 = min(c0 + 0u, p.n - 1u) * p.k;
    let rw1 = min(c0 + 1u, p.n - 1u) * p.k;
    let rw2 = min(c0 + 2u, p.n - 1u) * p.k;
    let rw3 = min(c0 + 3u, p.n - 1u) * p.k;
    let rw4 = min(c0 + 4u, p.n - 1u) * p.k;
    let rw5 = min(c0 + 5u, p.n - 1u) * p.k;
    let rw6 = min(c0 + 6u, p.n - 1u) * p.k;
    let rw7 = min(c0 + 7u, p.n - 1u) * p.k;
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
    let k4 = p.k & ~3u;
    for (var kk = 0u; kk < k4; kk += 4u) {
        let a0 = load_a4(ra0 + kk);
        let a1 = load_a4(ra1 + kk);
        let a2 = load_a4(ra2 + kk);
        let a3 = load_a4(ra3 + kk);
        let a4 = load_a4(ra4 + kk);
        let a5 = load_a4(ra5 + kk);
        let a6 = load_a4(ra6 + kk);
        let a7 = load_a4(ra7 + kk);
        let w0 = load_w4(rw0 + kk);
        let w1 = load_w4(rw1 + kk);
        let w2 = load_w4(rw2 + kk);
        let w3 = load_w4(rw3 + kk);
        let w4 = load_w4(rw4 + kk);
        let w5 = load_w4(rw5 + kk);
        let w6 = load_w4(rw6 + kk);
        let w7 = load_w4(rw7 + kk);
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
    for (var kk = k4; kk < p.k; kk++) {
        let w0 = vec4<f32>(w[rw0 + kk], w[rw1 + kk], w[rw2 + kk], w[rw3 + kk]);
        let w1 = vec4<f32>(w[rw4 + kk], w[rw5 + kk], w[rw6 + kk], w[rw7 + kk]);
        let a0 = vec4<f32>(a[ra0 + kk]);
        acc0_0 = fma(a0, w0, acc0_0);
        acc0_1 = fma(a0, w1, acc0_1);
        let a1 = vec4<f32>(a[ra1 + kk]);
        acc1_0 = fma(a1, w0, acc1_0);
        acc1_1 = fma(a1, w1, acc1_1);
        let a2 = vec4<f32>(a[ra2 + kk]);
        acc2_0 = fma(a2, w0, acc2_0);
        acc2_1 = fma(a2, w1, acc2_1);
        let a3 = vec4<f32>(a[ra3 + kk]);
        acc3_0 = fma(a3, w0, acc3_0);
        acc3_1 = fma(a3, w1, acc3_1);
        let a4 = vec4<f32>(a[ra4 + kk]);
        acc4_0 = fma(a4, w0, acc4_0);
        acc4_1 = fma(a4, w1, acc4_1);
        let a5 = vec4<f32>(a[ra5 + kk]);
        acc5_0 = fma(a5, w0, acc5_0);
        acc5_1 = fma(a5, w1, acc5_1);
        let a6 = vec4<f32>(a[ra6 + kk]);
        acc6_0 = fma(a6, w0, acc6_0);
        acc6_1 = fma(a6, w1, acc6_1);
        let a7 = vec4<f32>(a[ra7 + kk]);
        acc7_0 = fma(a7, w0, acc7_0);
        acc7_1 = fma(a7, w1, acc7_1);
    }
    store_output(r0 + 0u, c0 + 0u, acc0_0.x);
    store_output(r0 + 0u, c0 + 1u, acc0_0.y);
    store_output(r0 + 0u, c0 + 2u, acc0_0.z);
    store_output(r0 + 0u, c0 + 3u, acc0_0.w);
    store_output(r0 + 0u, c0 + 4u, acc0_1.x);
    store_output(r0 + 0u, c0 + 5u, acc0_1.y);
    store_output(r0 + 0u, c0 + 6u, acc0_1.z);
    store_output(r0 + 0u, c0 + 7u, acc0_1.w);
    store_output(r0 + 1u, c0 + 0u, acc1_0.x);
    store_output(r0 + 1u, c0 + 1u, acc1_0.y);
    store_output(r0 + 1u, c0 + 2u, acc1_0.z);
    store_output(r0 + 1u, c0 + 3u, acc1_0.w);
    store_output(r0 + 1u, c0 + 4u, acc1_1.x);
    store_output(r0 + 1u, c0 + 5u, acc1_1.y);
    store_output(r0 + 1u, c0 + 6u, acc1_1.z);
    store_output(r0 + 1u, c0 + 7u, acc1_1.w);
    store_output(r0 + 2u, c0 + 0u, acc2_0.x);
    store_output(r0 + 2u, c0 + 1u, acc2_0.y);
    store_output(r0 + 2u, c0 + 2u, acc2_0.z);
    store_output(r0 + 2u, c0 + 3u, acc2_0.w);
    store_output(r0 + 2u, c0 + 4u, acc2_1.x);
    store_output(r0 + 2u, c0 + 5u, acc2_1.y);
    store_output(r0 + 2u, c0 + 6u, acc2_1.z);
    store_output(r0 + 2u, c0 + 7u, acc2_1.w);
    store_output(r0 + 3u, c0 + 0u, acc3_0.x);
    store_output(r0 + 3u, c0 + 1u, acc3_0.y);
    store_output(r0 + 3u, c0 + 2u, acc3_0.z);
    store_output(r0 + 3u, c0 + 3u, acc3_0.w);
    store_output(r0 + 3u, c0 + 4u, acc3_1.x);
    store_output(r0 + 3u, c0 + 5u, acc3_1.y);
    store_output(r0 + 3u, c0 + 6u, acc3_1.z);
    store_output(r0 + 3u, c0 + 7u, acc3_1.w);
    store_output(r0 + 4u, c0 + 0u, acc4_0.x);
    store_output(r0 + 4u, c0 + 1u, acc4_0.y);
    store_output(r0 + 4u, c0 + 2u, acc4_0.z);
    store_output(r0 + 4u, c0 + 3u, acc4_0.w);
    store_output(r0 + 4u, c0 + 4u, acc4_1.x);
    store_output(r0 + 4u, c0 + 5u, acc4_1.y);
    store_output(r0 + 4u, c0 + 6u, acc4_1.z);
    store_output(r0 + 4u, c0 + 7u, acc4_1.w);
    store_output(r0 + 5u, c0 + 0u, acc5_0.x);
    store_output(r0 + 5u, c0 + 1u, acc5_0.y);
    store_output(r0 + 5u, c0 + 2u, acc5_0.z);
    store_output(r0 + 5u, c0 + 3u, acc5_0.w);
    store_output(r0 + 5u, c0 + 4u, acc5_1.x);
    store_output(r0 + 5u, c0 + 5u, acc5_1.y);
    store_output(r0 + 5u, c0 + 6u, acc5_1.z);
    store_output(r0 + 5u, c0 + 7u, acc5_1.w);
    store_output(r0 + 6u, c0 + 0u, acc6_0.x);
    store_output(r0 + 6u, c0 + 1u, acc6_0.y);
    store_output(r0 + 6u, c0 + 2u, acc6_0.z);
    store_output(r0 + 6u, c0 + 3u, acc6_0.w);
    store_output(r0 + 6u, c0 + 4u, acc6_1.x);
    store_output(r0 + 6u, c0 + 5u, acc6_1.y);
    store_output(r0 + 6u, c0 + 6u, acc6_1.z);
    store_output(r0 + 6u, c0 + 7u, acc6_1.w);
    store_output(r0 + 7u, c0 + 0u, acc7_0.x);
    store_output(r0 + 7u, c0 + 1u, acc7_0.y);
    store_output(r0 + 7u, c0 + 2u, acc7_0.z);
    store_output(r0 + 7u, c0 + 3u, acc7_0.w);
    store_output(r0 + 7u, c0 + 4u, acc7_1.x);
    store_output(r0 + 7u, c0 + 5u, acc7_1.y);
    store_output(r0 + 7u, c0 + 6u, acc7_1.z);
    store_output(r0 + 7u, c0 + 7u, acc7_1.w);
}
