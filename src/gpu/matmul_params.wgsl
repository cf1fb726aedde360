// The parameters of every matmul kernel (storage and texel variants): an m × k input, an
// n × k weight (PyTorch's Linear layout), and the epilogue's flags:
// bit 0 bias, bit 1 residual, bit 2 GELU, bit 3 ReLU (activations after the residual add).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
