// The tiled matrix multiply of `matmul.wgsl` for large products, with four times the work per
// invocation: 128×128 tiles, 8×8 outputs per invocation, same contract and epilogue
// (`matmul_io.wgsl`). Needs k to be a multiple of 4: both operands are read from storage as
// vec4s along k and staged k-major in workgroup memory, where each invocation reads its
// 8 rows and 8 columns of a k-slice as four vec4s (64 multiply-adds per 4 loads, against
// 16 per 8 in `matmul.wgsl`). Operand precision `op` as in `matmul.wgsl`.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<op>>;

// Tile rows and columns, tile depth, and vec4s per k-slice of a staged tile: 32 for the
// 128 values, one more so that the transposing stores below spread over the banks.
const WT: u32 = 128u;
const WK: u32 = 16u;
const WS: u32 = 33u;

// k-major: the values of k-slice kk are wide_a[kk * WS + 0..32] (rows 0..128 of the tile).
var<workgroup> wide_a: array<vec4<op>, 528>;
var<workgroup> wide_w: array<vec4<op>, 528>;

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let row0 = wg.y * WT;
    let col0 = wg.x * WT;
    let tid = lid.y * 16u + lid.x;
    let kq = p.k / 4u;
    // acc[8 * h + 2 * i + g]: row row0 + 64h + 4 lid.y + i, columns col0 + 64g + 4 lid.x + 0..4.
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    for (var k0 = 0u; k0 < kq; k0 += WK / 4u) {
        // Each operand tile is 128 rows × 4 vec4s: two of each per invocation.
        for (var s = 0u; s < 2u; s++) {
            let e = tid + 256u * s;
            let r = e / 4u;
            let q = e % 4u;
            let gq = k0 + q;
            var va = vec4<f32>(0.0);
            if (row0 + r < p.m && gq < kq) {
                va = a[(row0 + r) * kq + gq];
            }
            var vw = vec4<op>(0.0);
            if (col0 + r < p.n && gq < kq) {
                vw = w[(col0 + r) * kq + gq];
            }
            for (var c = 0u; c < 4u; c++) {
                let at = (4u * q + c) * WS + r / 4u;
                wide_a[at][r % 4u] = op(va[c]);
                wide_w[at][r % 4u] = vw[c];
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < WK; kk++) {
            let a0 = vec4<f32>(wide_a[kk * WS + lid.y]);
            let a1 = vec4<f32>(wide_a[kk * WS + 16u + lid.y]);
            let w0 = vec4<f32>(wide_w[kk * WS + lid.x]);
            let w1 = vec4<f32>(wide_w[kk * WS + 16u + lid.x]);
            for (var i = 0u; i < 4u; i++) {
                acc[2u * i] = fma(vec4<f32>(a0[i]), w0, acc[2u * i]);
                acc[2u * i + 1u] = fma(vec4<f32>(a0[i]), w1, acc[2u * i + 1u]);
                acc[8u + 2u * i] = fma(vec4<f32>(a1[i]), w0, acc[8u + 2u * i]);
                acc[9u + 2u * i] = fma(vec4<f32>(a1[i]), w1, acc[9u + 2u * i]);
            }
        }
        workgroupBarrier();
    }
    for (var h = 0u; h < 2u; h++) {
        for (var i = 0u; i < 4u; i++) {
            let row = row0 + 64u * h + 4u * lid.y + i;
            for (var g = 0u; g < 2u; g++) {
                let v = acc[8u * h + 2u * i + g];
                for (var j = 0u; j < 4u; j++) {
                    store_output(row, col0 + 64u * g + 4u * lid.x + j, v[j]);
                }
            }
        }
    }
}
