// Tiled matrix multiply with a fused epilogue:
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// `w` is in PyTorch's Linear layout (out × in), so both operands are contiguous along k.
// Workgroup 16×16, tile 64×64×16 in workgroup memory (8 KiB), 4×4 outputs per invocation on
// 4 consecutive rows and 4 consecutive columns, so that each step along k reads its operands
// from workgroup memory as two vec4 loads for 16 multiply-adds. The next k-slice is fetched
// into registers while the current one is multiplied. Each invocation fetches 4 consecutive k
// values of one row of each operand (coalesced in 64-byte runs).
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

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

// k-major tiles of 4-row (4-column) groups: tile_a[kk * 16 + r / 4][r % 4].
var<workgroup> tile_a: array<vec4<f32>, 256>;
var<workgroup> tile_w: array<vec4<f32>, 256>;

// Four consecutive k values (from `k0`) of row `r` of a row-major matrix with `rows` rows,
// zero outside it.
fn fetch_a(r: u32, k0: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (r < p.m) {
        let base = r * p.k;
        for (var j = 0u; j < 4u; j++) {
            if (k0 + j < p.k) {
                v[j] = a[base + k0 + j];
            }
        }
    }
    return v;
}

fn fetch_w(c: u32, k0: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (c < p.n) {
        let base = c * p.k;
        for (var j = 0u; j < 4u; j++) {
            if (k0 + j < p.k) {
                v[j] = w[base + k0 + j];
            }
        }
    }
    return v;
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let tid = lid.y * 16u + lid.x;
    // This invocation's share of each tile load: row (column) `lr`, k values 4·lq .. 4·lq + 3.
    let lr = tid / 4u;
    let lq = tid % 4u;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    var next_a = fetch_a(row0 + lr, 4u * lq);
    var next_w = fetch_w(col0 + lr, 4u * lq);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var j = 0u; j < 4u; j++) {
            let slot = (4u * lq + j) * 16u + lr / 4u;
            tile_a[slot][lr % 4u] = next_a[j];
            tile_w[slot][lr % 4u] = next_w[j];
        }
        workgroupBarrier();
        if (k0 + TK < p.k) {
            next_a = fetch_a(row0 + lr, k0 + TK + 4u * lq);
            next_w = fetch_w(col0 + lr, k0 + TK + 4u * lq);
        }
        for (var kk = 0u; kk < TK; kk++) {
            let av = tile_a[kk * 16u + lid.y];
            let wv = tile_w[kk * 16u + lid.x];
            acc[0] = fma(vec4<f32>(av.x), wv, acc[0]);
            acc[1] = fma(vec4<f32>(av.y), wv, acc[1]);
            acc[2] = fma(vec4<f32>(av.z), wv, acc[2]);
            acc[3] = fma(vec4<f32>(av.w), wv, acc[3]);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 4u * lid.y + i;
        if (row >= p.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + 4u * lid.x + j;
            if (col >= p.n) {
                continue;
            }
            var v = acc[i][j];
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
}
