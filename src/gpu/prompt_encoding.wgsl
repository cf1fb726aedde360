// SAM's prompt encoder (`modeling/prompt_encoder.py`): random Fourier positional encoding
//   pe(x, y) = [sin(2π·((2x−1, 2y−1)·G)), cos(…)]   (G: 2×128 Gaussian matrix, x, y in [0, 1])
// for the dense 64×64 grid and for prompt points, assembled straight into the decoder tokens:
//   out[b, t, :] = fixed[t, :]                                   for t < n_fixed
//                = select(pe, 0, label = −1) + table[label + 1]  for the prompt's points
// (labels: −1 padding point, 0 background, 1 foreground, 2 / 3 box corners; table rows:
// not_a_point, point_embeddings[0..4]). With `use_labels` = 0 the output is pe alone.

struct Params {
    batch: u32,
    tokens: u32,
    n_fixed: u32,
    use_labels: u32,
    dim: u32,
    total: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> coords: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> gauss: array<f32>;
@group(0) @binding(4) var<storage, read> table: array<f32>;
@group(0) @binding(5) var<storage, read> fixed: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

const TAU: f32 = 6.283185307179586;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.y * nwg.x * 256u + gid.x;
    if (i >= p.total) {
        return;
    }
    let c = i % p.dim;
    let row = i / p.dim;
    let t = row % p.tokens;
    let b = row / p.tokens;
    if (t < p.n_fixed) {
        out[i] = fixed[t * p.dim + c];
        return;
    }
    let pt = b * (p.tokens - p.n_fixed) + (t - p.n_fixed);
    let half = p.dim / 2u;
    let f = c % half;
    let x = 2.0 * coords[2u * pt] - 1.0;
    let y = 2.0 * coords[2u * pt + 1u] - 1.0;
    // Reduce to one turn before scaling by 2π: GPU sin/cos are only accurate near zero.
    let turns = x * gauss[f] + y * gauss[half + f];
    let phase = TAU * (turns - round(turns));
    var v = select(cos(phase), sin(phase), c < half);
    if (p.use_labels != 0u) {
        let label = i32(round(labels[pt]));
        if (label == -1) {
            v = 0.0;
        }
        v += table[u32(label + 1) * p.dim + c];
    }
    out[i] = v;
}
