// Where texel t of an operand copied by `Recorder::texels_of` lies: the texture is 4096
// (`TEXELS_WIDTH`) texels wide, so x = t mod 4096 and y = t / 4096 (a mask and a shift; a
// vector integer division would be eight scalar ones on a CPU adapter).
fn texel(t: u32) -> vec2<i32> {
    return vec2<i32>(i32(t & 4095u), i32(t >> 12u));
}
