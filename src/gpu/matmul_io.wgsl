// What the storage-buffer matmuls (`matmul.wgsl`, in both operand precisions, and
// `matmul_blocked.wgsl`) share: the epilogue's bindings and the epilogue itself. Parameters
// (binding 0): `matmul_params.wgsl`; bindings 1 and 2 (the operands) are declared by each kernel.

@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// Stores output (row, col) = act(acc + bias + residual); outside the matrix it stores nothing.
fn store_output(row: u32, col: u32, acc: f32) {
    if (row >= p.m || col >= p.n) {
        return;
    }
    var v = acc;
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
