// The matmuls' operands in f16 (adapters with `shader-f16`, `GpuOptions::f16`): weights
// stored as f16, activations rounded to f16 where they are staged in workgroup memory, products
// accumulated in f32. Must come first in a kernel: `enable` precedes every declaration.

enable f16;
alias op = f16;
