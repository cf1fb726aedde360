// Softmax over contiguous rows of `len` values: out[r, :] = softmax(x[r, :]), one invocation
// per row (three passes: max, sum of exponentials, normalise). The reordered cross attentions
// of the two-way transformer (`batched_matmul.rs`) normalise their score matrices with it:
// rows of 4096 image tokens (tokens → image) or of one head's few tokens (image → tokens).

// Params and bindings: `softmax_io.wgsl`.

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.y * nwg.x * 64u + gid.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.len;
    var m = -3.0e38;
    for (var i = 0u; i < p.len; i++) {
        m = max(m, x[base + i]);
    }
    var s = 0.0;
    for (var i = 0u; i < p.len; i++) {
        let e = exp(x[base + i] - m);
        out[base + i] = e;
        s += e;
    }
    let inv = 1.0 / s;
    for (var i = 0u; i < p.len; i++) {
        out[base + i] *= inv;
    }
}
