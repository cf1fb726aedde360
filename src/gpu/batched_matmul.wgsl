// Strided, batched matrix multiply for the two-way transformer's reordered cross attentions
// (see `batched_matmul.rs`): for every batch index z = b * heads + h,
//   out[C(z) + i * c_rs + j] = alpha * sum_k A(z)[i, k] * B(z)[k, j] + bias[bias(z) + j] + res[..]
// where A(z)[i, k] = a[b * a_sb + h * a_sh + i * a_rs + k * a_cs], B(z)[k, j] likewise with
// b_*, C(z) = b * c_sb + h * c_sh, bias(z) = b * bias_sb + h * bias_sh, and res is read at the
// output's address. Any strides (a stride of 0 shares an operand over the batch or heads), so
// products with a transposed operand or one head's slice need no copy.
// Split along k (GPUs, products with few output tiles and a long k): `splits` workgroups share
// one product's tile, each summing its k range into its own plane of a scratch tensor (at
// `split · c_split` past the product's offset; alpha 1, no bias or residual there), and
// `batched_split_sum.wgsl` adds the planes up and applies the epilogue.
// Like `matmul_blocked.wgsl`: no workgroup memory, each invocation keeps an 8×8 block of
// outputs in registers (rows/columns past m/n clamped on load, skipped on store);
// workgroup 8×8 → a 64×64 tile; grid (n tiles, m tiles, batch · heads · splits).
// flags: bit 0 bias, bit 1 residual.

// Params: `batched_params.wgsl`.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> bm: array<f32>;
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

// Unrolled by hand (rows 0..7 of A, columns 0..7 of B, accumulators acc<row>_<column quad>):
// CPU compilers keep named values in registers, while indexed local arrays may live in memory.
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let splits = max(p.splits, 1u);
    let z = wg.z / splits;
    let split = wg.z % splits;
    let k_chunk = (p.k + splits - 1u) / splits;
    let k_begin = split * k_chunk;
    let k_end = min(p.k, k_begin + k_chunk);
    let bi = z / p.heads;
    let hi = z % p.heads;
    let a_off = bi * p.a_sb + hi * p.a_sh;
    let b_off = bi * p.b_sb + hi * p.b_sh;
    let c_off = bi * p.c_sb + hi * p.c_sh + split * p.c_split;
    let bias_off = bi * p.bias_sb + hi * p.bias_sh;
    let r0 = wg.y * 64u + lid.y * 8u;
    let c0 = wg.x * 64u + lid.x * 8u;
    let ra0 = a_off + min(r0 + 0u, p.m - 1u) * p.a_rs;
    let ra1 = a_off + min(r0 + 1u, p.m - 1u) * p.a_rs;
    let ra2 = a_off + min(r0 + 2u, p.m - 1u) * p.a_rs;
    let ra3 = a_off + min(r0 + 3u, p.m - 1u) * p.a_rs;
    let ra4 = a_off + min(r0 + 4u, p.m - 1u) * p.a_rs;
    let ra5 = a_off + min(r0 + 5u, p.m - 1u) * p.a_rs;
    let ra6 = a_off + min(r0 + 6u, p.m - 1u) * p.a_rs;
    let ra7 = a_off + min(r0 + 7u, p.m - 1u) * p.a_rs;
    let rb0 = b_off + min(c0 + 0u, p.n - 1u) * p.b_cs;
    let rb1 = b_off + min(c0 + 1u, p.n - 1u) * p.b_cs;
    let rb2 = b_off + min(c0 + 2u, p.n - 1u) * p.b_cs;
    let rb3 = b_off + min(c0 + 3u, p.n - 1u) * p.b_cs;
    let rb4 = b_off + min(c0 + 4u, p.n - 1u) * p.b_cs;
    let rb5 = b_off + min(c0 + 5u, p.n - 1u) * p.b_cs;
    let rb6 = b_off + min(c0 + 6u, p.n - 1u) * p.b_cs;
    let rb7 = b_off + min(c0 + 7u, p.n - 1u) * p.b_cs;
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
    for (var kk = k_begin; kk < k_end; kk++) {
        let ka = kk * p.a_cs;
        let kb = kk * p.b_rs;
        let w0 = vec4<f32>(bm[rb0 + kb], bm[rb1 + kb], bm[rb2 + kb], bm[rb3 + kb]);
        let w1 = vec4<f32>(bm[rb4 + kb], bm[rb5 + kb], bm[rb6 + kb], bm[rb7 + kb]);
        let a0 = vec4<f32>(a[ra0 + ka]);
        acc0_0 = fma(a0, w0, acc0_0);
        acc0_1 = fma(a0, w1, acc0_1);
        let a1 = vec4<f32>(a[ra1 + ka]);
        acc1_0 = fma(a1, w0, acc1_0);
        acc1_1 = fma(a1, w1, acc1_1);
        let a2 = vec4<f32>(a[ra2 + ka]);
        acc2_0 = fma(a2, w0, acc2_0);
        acc2_1 = fma(a2, w1, acc2_1);
        let a3 = vec4<f32>(a[ra3 + ka]);
        acc3_0 = fma(a3, w0, acc3_0);
        acc3_1 = fma(a3, w1, acc3_1);
        let a4 = vec4<f32>(a[ra4 + ka]);
        acc4_0 = fma(a4, w0, acc4_0);
        acc4_1 = fma(a4, w1, acc4_1);
        let a5 = vec4<f32>(a[ra5 + ka]);
        acc5_0 = fma(a5, w0, acc5_0);
        acc5_1 = fma(a5, w1, acc5_1);
        let a6 = vec4<f32>(a[ra6 + ka]);
        acc6_0 = fma(a6, w0, acc6_0);
        acc6_1 = fma(a6, w1, acc6_1);
        let a7 = vec4<f32>(a[ra7 + ka]);
        acc7_0 = fma(a7, w0, acc7_0);
        acc7_1 = fma(a7, w1, acc7_1);
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
