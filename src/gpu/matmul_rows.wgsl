// Matrix multiply for CPU adapters (lavapipe, SwiftShader), same contract as matmul.wgsl:
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// Software rasterisers run the invocations of a workgroup as SIMD lanes, where workgroup
// memory and barriers cost gathers and coroutine switches. Here each invocation owns one row
// m and a block of 16 output columns chosen by the workgroup, so every weight load is uniform
// across the lanes (one scalar load, broadcast) and feeds 8 lanes' FMAs; the only per-lane
// load is a[m, k]. No workgroup memory, no barriers.
// flags: bit 0 bias, bit 1 residual, bit 2 GELU, bit 3 ReLU (activations after the residual add).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const NB: u32 = 16u;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let row = wg.y * 64u + lid.x;
    let n0 = wg.x * NB;
    // Clamp instead of branching so the loop stays uniform; the store is guarded below.
    let ra = min(row, p.m - 1u) * p.k;
    var wo: array<u32, 16>;
    for (var j = 0u; j < NB; j++) {
        wo[j] = min(n0 + j, p.n - 1u) * p.k;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.k; k++) {
        let av = vec4<f32>(a[ra + k]);
        acc0 = fma(av, vec4<f32>(w[wo[0] + k], w[wo[1] + k], w[wo[2] + k], w[wo[3] + k]), acc0);
        acc1 = fma(av, vec4<f32>(w[wo[4] + k], w[wo[5] + k], w[wo[6] + k], w[wo[7] + k]), acc1);
        acc2 = fma(av, vec4<f32>(w[wo[8] + k], w[wo[9] + k], w[wo[10] + k], w[wo[11] + k]), acc2);
        acc3 = fma(av, vec4<f32>(w[wo[12] + k], w[wo[13] + k], w[wo[14] + k], w[wo[15] + k]), acc3);
    }
    if (row >= p.m) {
        return;
    }
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < NB; j++) {
        let col = n0 + j;
        if (col >= p.n) {
            break;
        }
        var v = accs[j / 4u][j % 4u];
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
}
