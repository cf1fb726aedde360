// GELU with the exact erf form (PyTorch nn.GELU default), shared by the kernels that fuse it.
// erf: Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7.
fn erf_approx(x: f32) -> f32 {
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    let y = 1.0 - poly * exp(-ax * ax);
    return select(y, -y, x < 0.0);
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}
