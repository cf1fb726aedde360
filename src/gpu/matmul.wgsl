// Tiled matrix multiply with a fused epilogue:
//   out[m, n] = act(sum_k a[m, k] * w[n, k] + bias[n] + res[m, n])
// `w` is in PyTorch's Linear layout (out × in), so both operands are contiguous along k.
// Workgroup 16×16, tile 64×64×16 in workgroup memory (8 KiB), 4×4 outputs per invocation.
// Parameters, epilogue and output: `matmul_io.wgsl`; operand precision `op`: `operands_*.wgsl`
// (the weight and the staged tiles; f32 accumulators).

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<op>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

// k-major tiles: tile_a[kk * TM + row], tile_w[kk * TN + col].
var<workgroup> tile_a: array<op, 1024>;
var<workgroup> tile_w: array<op, 1024>;

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let tid = lid.y * 16u + lid.x;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * 256u;
            let r = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            let gr = row0 + r;
            var va = 0.0;
            if (gr < p.m && gk < p.k) {
                va = a[gr * p.k + gk];
            }
            tile_a[kk * TM + r] = op(va);
            let gc = col0 + r;
            var vw = op(0.0);
            if (gc < p.n && gk < p.k) {
                vw = w[gc * p.k + gk];
            }
            tile_w[kk * TN + r] = vw;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let wv = vec4<f32>(vec4<op>(
                tile_w[kk * TN + lid.x],
                tile_w[kk * TN + lid.x + 16u],
                tile_w[kk * TN + lid.x + 32u],
                tile_w[kk * TN + lid.x + 48u],
            ));
            for (var i = 0u; i < 4u; i++) {
                acc[i] = fma(vec4<f32>(f32(tile_a[kk * TM + lid.y + 16u * i])), wv, acc[i]);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store_output(row0 + lid.y + 16u * i, col0 + lid.x + 16u * j, acc[i][j]);
        }
    }
}
