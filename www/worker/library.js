// Which build of the library (pkg/) this browser runs. www/build.sh makes two from one source:
// pkg/camsam.js (WebAssembly SIMD128) and pkg/camsam_relaxed.js (SIMD128 and relaxed SIMD: the
// CPU model's matrix products use f32x4.relaxed_madd, a fused multiply-add where the CPU has
// one; Chrome and Edge 114+). Detected here (`?simd=128` asks for the SIMD128 build anyway); the
// model worker hands its choice to its helper workers, so that every thread of the model
// computes with the same instructions.

// A module with one SIMD instruction (i8x16.splat, i8x16.popcnt): valid where the browser has
// WebAssembly SIMD (Chrome 91, Firefox 89, Safari 16.4 and later).
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

// A module returning f32x4.relaxed_madd of three f32x4.splat(0): valid where the browser has
// relaxed SIMD.
const RELAXED_SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 28, 1, 26, 0,
  67, 0, 0, 0, 0, 253, 19, 67, 0, 0, 0, 0, 253, 19, 67, 0, 0, 0, 0, 253, 19, 253, 133, 2, 11]);

/** Whether this browser runs WebAssembly SIMD, which both builds need. */
export const hasSimd = () => WebAssembly.validate(SIMD_PROBE);

/** Whether this browser runs relaxed SIMD (the faster build). */
const hasRelaxedSimd = () => WebAssembly.validate(RELAXED_SIMD_PROBE);

/** The module URL of the build for this browser (the SIMD128 one with `simd128`). */
export function buildUrl({ simd128 = false } = {}) {
  const relaxed = !simd128 && hasRelaxedSimd();
  return new URL(relaxed ? '../../pkg/camsam_relaxed.js' : '../../pkg/camsam.js', import.meta.url).href;
}
