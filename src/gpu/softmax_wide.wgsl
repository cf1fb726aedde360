// Softmax over long contiguous rows (as `softmax.wgsl`), one workgroup per row: the GPU kernel
// family's softmax for the tokens → image attentions' rows of 4096 image tokens, which one
// invocation per row walks serially (2.5 ms for 1792 rows on an H200). Short rows (the image →
// tokens attentions' few tokens) stay one invocation per row.

// Params and bindings: `softmax_io.wgsl`.

@compute @workgroup_size(ROW_WG, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let r = wg.y * nwg.x + wg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.len;
    var m = -3.0e38;
    for (var i = lid; i < p.len; i += ROW_WG) {
        m = max(m, x[base + i]);
    }
    m = row_max(lid, m);
    var s = 0.0;
    for (var i = lid; i < p.len; i += ROW_WG) {
        s += exp(x[base + i] - m);
    }
    let inv = 1.0 / row_sum(lid, s);
    for (var i = lid; i < p.len; i += ROW_WG) {
        out[base + i] = exp(x[base + i] - m) * inv;
    }
}
