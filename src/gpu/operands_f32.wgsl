// The matmuls' operand precision (`op`): f32 (this file) or f16 (`operands_f16.wgsl`).
// Products are accumulated in f32 either way.

alias op = f32;
