// Parameters of the LayerNorm kernels (`layer_norm.wgsl`, `layer_norm_rows.wgsl`,
// `layer_norm_tex.wgsl`), as `norm.rs` writes them: rows, channels, ε (f32 bits), GELU after.

struct Params {
    rows: u32,
    c: u32,
    eps: f32,
    gelu: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
