// LayerNorm over the last dimension (as `layer_norm.wgsl`), one workgroup per row: the GPU
// kernel family's LayerNorm. One invocation per row leaves a GPU mostly idle, each invocation
// waiting on its loads in turn (0.3 ms for 224 rows of 256 on an H200); here the row's loads
// are spread over the workgroup and coalesced. Mean and variance in two passes, as PyTorch.

// Params: `layer_norm_params.wgsl`.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(ROW_WG, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wg.y * nwg.x + wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.c;
    var sum = 0.0;
    for (var i = lid; i < p.c; i += ROW_WG) {
        sum += x[base + i];
    }
    let mean = row_sum(lid, sum) / f32(p.c);
    var sq = 0.0;
    for (var i = lid; i < p.c; i += ROW_WG) {
        let d = x[base + i] - mean;
        sq = fma(d, d, sq);
    }
    let inv = inverseSqrt(row_sum(lid, sq) / f32(p.c) + p.eps);
    for (var i = lid; i < p.c; i += ROW_WG) {
        let v = (x[base + i] - mean) * inv * gamma[i] + beta[i];
        out[base + i] = select(v, gelu(v), p.gelu != 0u);
    }
}
