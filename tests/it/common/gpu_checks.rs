//! The WebGPU kernel parity checks, shared by the native tests (`tests/it/gpu_kernels.rs`, on
//! lavapipe or a GPU) and the browser tests (`tests/wasm_gpu_kernels.rs`, WebGPU in headless
//! Chromium): each kernel against a CPU reference (plain loops, or candle for GELU's erf) on
//! random shapes, including sizes that are not multiples of the tiles. Async, as the browser
//! cannot block on a readback.
#![allow(dead_code)]

use super::gpu::{assert_close, random, ELEMENTWISE, REDUCTION};
use camsam::gpu::matmul::{linear, Epilogue};
use camsam::gpu::{GpuContext, GpuTensor, MatmulKernel};

fn gelu_ref(v: &[f32]) -> Vec<f32> {
    let t = candle_core::Tensor::from_slice(v, v.len(), &candle_core::Device::Cpu)
        .and_then(|t| t.gelu_erf())
        .and_then(|t| t.to_vec1::<f32>());
    t.expect("candle gelu_erf")
}

fn up(ctx: &GpuContext, shape: &[usize], v: &[f32]) -> GpuTensor {
    GpuTensor::upload(ctx, shape, v).expect("upload")
}

async fn read(ctx: &GpuContext, t: &GpuTensor) -> Vec<f32> {
    t.read(ctx).await.expect("readback")
}

/// out = act(a·wᵀ + bias + res), accumulated in f64.
#[allow(clippy::too_many_arguments)]
fn matmul_ref(
    a: &[f32],
    w: &[f32],
    m: usize,
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
    res: Option<&[f32]>,
    act: bool,
) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for l in 0..k {
                s += a[i * k + l] as f64 * w[j * k + l] as f64;
            }
            if let Some(b) = bias {
                s += b[j] as f64;
            }
            if let Some(r) = res {
                s += r[i * n + j] as f64;
            }
            out[i * n + j] = s as f32;
        }
    }
    if act {
        gelu_ref(&out)
    } else {
        out
    }
}

/// One matmul kernel (the device must have been opened with it forced, see
/// [`GpuOptions::matmul`](camsam::gpu::GpuOptions)) against the reference.
pub async fn matmul(ctx: &GpuContext, kernel: MatmulKernel) {
    assert_eq!(ctx.matmul_kernel(), kernel);
    // (m, n, k, bias, residual, gelu): exact tiles, odd sizes, k not a multiple of 16 or 4
    // and multiples of 4 (the only k the texture variant takes), rows and columns not
    // multiples of the register blocks (8×8; for the texture variant 16-row tiles of 64
    // columns, or of 32 where 64 would leave an eighth idle: n = 20, 68, 160).
    let cases = [
        (64, 64, 16, false, false, false),
        (1, 1, 1, false, false, false),
        (67, 33, 29, true, false, false),
        (130, 97, 161, true, false, true),
        (200, 128, 64, true, true, false),
        (37, 250, 300, true, true, true),
        (71, 9, 6, false, true, false),
        (5, 3, 4, true, false, true),
        (300, 37, 20, true, true, false),
        // 17,000 input texels: four full rows of the operand texture and a partial fifth.
        (1000, 68, 68, true, false, true),
        (37, 20, 300, true, true, true),
        // Texture variant: a partial 64-column tile (500 = 7 × 64 + 52), and 32-column tiles
        // filling n = 160 exactly.
        (45, 500, 52, true, true, false),
        (33, 160, 44, true, false, true),
    ];
    // Weights as `upload_weight` makes them (a texture too on CPU adapters when k is a multiple
    // of 4; with n a multiple of 4 and subgroups of 8 the input is then copied into one:
    // `matmul_tex`) and as plain storage buffers (`matmul_blocked`).
    for (seed, &(m, n, k, b, r, act)) in cases.iter().enumerate() {
        for as_weight in [true, false] {
            let seed = seed as u64 * 10;
            let a = random(seed, m * k, 1.0);
            let w = random(seed + 1, n * k, 1.0);
            let bias = random(seed + 2, n, 1.0);
            let res = random(seed + 3, m * n, 1.0);
            let gw = if as_weight {
                GpuTensor::upload_weight(ctx, &[n, k], &w).expect("upload weight")
            } else {
                up(ctx, &[n, k], &w)
            };
            let (ga, gb, gr) = (
                up(ctx, &[m, k], &a),
                up(ctx, &[n], &bias),
                up(ctx, &[m, n], &res),
            );
            let mut rec = ctx.recorder();
            let epi = Epilogue {
                bias: b.then_some(&gb),
                residual: r.then_some(&gr),
                gelu: act,
                relu: false,
            };
            let out = linear(&mut rec, &ga, &gw, epi).expect("matmul");
            rec.submit();
            // With f16 operands (weights uploaded as weights) the products are of the f16
            // roundings of both operands: the reference takes the same roundings.
            let f16 = as_weight && ctx.f16_operands();
            let round = |v: &[f32]| -> Vec<f32> {
                v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
            };
            let (a, w) = if f16 { (round(&a), round(&w)) } else { (a, w) };
            let want = matmul_ref(
                &a,
                &w,
                m,
                n,
                k,
                b.then_some(&bias[..]),
                r.then_some(&res[..]),
                act,
            );
            assert_eq!(out.shape(), &[m, n]);
            assert_close(
            &format!("{kernel:?} matmul m={m} n={n} k={k} bias={b} res={r} gelu={act} weight texture={as_weight} f16 operands={f16}"),
            &read(ctx, &out).await,
            &want,
            REDUCTION,
        );
        }
    }
}

/// A matmul whose operands disagree on k is an error, not a dispatch.
pub fn matmul_rejects_mismatched_shapes(ctx: &GpuContext) {
    let a = up(ctx, &[2, 3], &[0.0; 6]);
    let w = up(ctx, &[2, 4], &[0.0; 8]);
    let mut rec = ctx.recorder();
    assert!(linear(&mut rec, &a, &w, Epilogue::default()).is_err());
}

/// Direct convolution reference on a CHW input: `[cout, ho, wo]` → returned channels-last.
#[allow(clippy::too_many_arguments)]
fn conv_ref(
    x: &[f32],
    (cin, h, w): (usize, usize, usize),
    wt: &[f32],
    cout: usize,
    ks: usize,
    stride: usize,
    pad: usize,
) -> Vec<f32> {
    let ho = (h + 2 * pad - ks) / stride + 1;
    let wo = (w + 2 * pad - ks) / stride + 1;
    let mut out = vec![0f32; ho * wo * cout];
    for oy in 0..ho {
        for ox in 0..wo {
            for co in 0..cout {
                let mut s = 0f64;
                for ci in 0..cin {
                    for ky in 0..ks {
                        for kx in 0..ks {
                            let iy = (oy * stride + ky) as isize - pad as isize;
                            let ix = (ox * stride + kx) as isize - pad as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let xv = x[ci * h * w + iy as usize * w + ix as usize];
                            s += xv as f64 * wt[((co * cin + ci) * ks + ky) * ks + kx] as f64;
                        }
                    }
                }
                out[(oy * wo + ox) * cout + co] = s as f32;
            }
        }
    }
    out
}

fn chw_to_hwc(x: &[f32], c: usize, hw: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for ch in 0..c {
        for p in 0..hw {
            out[p * c + ch] = x[ch * hw + p];
        }
    }
    out
}

pub async fn conv2d_im2col(ctx: &GpuContext) {
    use camsam::gpu::conv::{conv2d, taps_last};
    // (cin, h, w, cout, ks, stride, pad): the stem's 3×3 stride 2 (3 channels, or 4 as the
    // encoder uploads the image), odd sides, the prompt encoder's 2×2, the neck's 3×3.
    let cases = [
        (3, 17, 23, 8, 3, 2, 1),
        (4, 17, 23, 8, 3, 2, 1),
        (5, 9, 7, 70, 3, 1, 1),
        (4, 8, 8, 6, 1, 1, 0),
        (4, 10, 6, 16, 2, 2, 0),
        (32, 12, 10, 64, 3, 2, 1),
    ];
    for (i, &(cin, h, w, cout, ks, stride, pad)) in cases.iter().enumerate() {
        let x = random(100 + i as u64, cin * h * w, 1.0);
        let wt = random(200 + i as u64, cout * cin * ks * ks, 0.5);
        let want = conv_ref(&x, (cin, h, w), &wt, cout, ks, stride, pad);
        let taps = taps_last(&wt, (cout, cin, ks), cin).expect("taps_last");
        // As a plain tensor and as `upload_weight` makes it: on CPU adapters with subgroups
        // of 8 (and cin, cout multiples of 4) the columns are then written as texels for
        // `matmul_tex` (`im2col_to_texels`).
        for as_weight in [false, true] {
            let gw = if as_weight {
                GpuTensor::upload_weight(ctx, &[cout, cin * ks * ks], &taps).expect("upload")
            } else {
                up(ctx, &[cout, cin * ks * ks], &taps)
            };
            let gx = up(ctx, &[h * w, cin], &chw_to_hwc(&x, cin, h * w));
            let mut rec = ctx.recorder();
            let out = conv2d(
                &mut rec,
                &gx,
                (cin, h, w),
                &gw,
                ks,
                stride,
                pad,
                Epilogue::default(),
            )
            .expect("conv2d");
            rec.submit();
            assert_close(
                &format!(
                    "conv cin={cin} {h}×{w} cout={cout} k={ks} s={stride} weight texture={as_weight}"
                ),
                &read(ctx, &out).await,
                &want,
                REDUCTION,
            );
        }
    }
}

pub async fn depthwise3x3(ctx: &GpuContext) {
    use camsam::gpu::conv::depthwise3x3;
    for (i, &(c, h, w, stride, act)) in [
        (3, 5, 7, 1, false),
        (64, 16, 16, 2, true),
        (37, 13, 9, 2, false),
        (160, 7, 7, 1, true),
        // Several groups of 8 output pixels, the last one partial.
        (12, 9, 21, 1, true),
        (8, 10, 19, 2, false),
    ]
    .iter()
    .enumerate()
    {
        let x = random(300 + i as u64, c * h * w, 1.0); // CHW for the reference
        let wt = random(400 + i as u64, c * 9, 0.5);
        let bias = random(500 + i as u64, c, 0.5);
        let ho = (h + 2 - 3) / stride + 1;
        let wo = (w + 2 - 3) / stride + 1;
        let mut want = vec![0f32; ho * wo * c];
        for ch in 0..c {
            let one = conv_ref(
                &x[ch * h * w..(ch + 1) * h * w],
                (1, h, w),
                &wt[ch * 9..ch * 9 + 9],
                1,
                3,
                stride,
                1,
            );
            for (p, v) in one.iter().enumerate() {
                want[p * c + ch] = v + bias[ch];
            }
        }
        if act {
            want = gelu_ref(&want);
        }
        let gx = up(ctx, &[h * w, c], &chw_to_hwc(&x, c, h * w));
        let taps = camsam::gpu::conv::taps_major(&wt, c).expect("taps");
        let (gw, gb) = (up(ctx, &[9, c], &taps), up(ctx, &[c], &bias));
        let mut rec = ctx.recorder();
        let out = depthwise3x3(&mut rec, &gx, (h, w), &gw, &gb, stride, act).expect("dw");
        rec.submit();
        assert_close(
            &format!("depthwise c={c} {h}×{w} stride={stride} gelu={act}"),
            &read(ctx, &out).await,
            &want,
            ELEMENTWISE,
        );
    }
}

pub async fn layer_norm(ctx: &GpuContext) {
    use camsam::gpu::norm::{layer_norm, layer_norm_act};
    for (i, &(rows, c, eps)) in [
        (1, 1, 1e-5),
        (77, 128, 1e-5),
        (130, 320, 1e-6),
        (5, 33, 1e-6),
    ]
    .iter()
    .enumerate()
    {
        let mut x = random(600 + i as u64, rows * c, 2.0);
        for v in x.iter_mut().step_by(3) {
            *v += 3.0; // a non-zero mean
        }
        let g = random(700 + i as u64, c, 1.0);
        let b = random(800 + i as u64, c, 1.0);
        let mut want = vec![0f32; rows * c];
        for r in 0..rows {
            let row = &x[r * c..(r + 1) * c];
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
            for j in 0..c {
                want[r * c + j] = ((row[j] as f64 - mean) / (var + eps as f64).sqrt() * g[j] as f64
                    + b[j] as f64) as f32;
            }
        }
        let (gx, gg, gb) = (
            up(ctx, &[rows, c], &x),
            up(ctx, &[c], &g),
            up(ctx, &[c], &b),
        );
        let mut rec = ctx.recorder();
        let out = layer_norm(&mut rec, &gx, &gg, &gb, eps).expect("layer_norm");
        let out_gelu = layer_norm_act(&mut rec, &gx, &gg, &gb, eps, true).expect("layer_norm");
        rec.submit();
        assert_close(
            &format!("layer_norm rows={rows} c={c}"),
            &read(ctx, &out).await,
            &want,
            ELEMENTWISE,
        );
        assert_close(
            &format!("layer_norm + GELU rows={rows} c={c}"),
            &read(ctx, &out_gelu).await,
            &gelu_ref(&want),
            ELEMENTWISE,
        );
    }
}

pub async fn window_attention(ctx: &GpuContext) {
    use camsam::gpu::window_attention::{window_attention, HEAD_DIM};
    // (h, w, ws, heads): padded on both sides, exact windows, one window = whole map.
    for (i, &(h, w, ws, heads)) in [(9, 11, 7, 2), (14, 14, 7, 1), (7, 7, 7, 3), (16, 5, 14, 2)]
        .iter()
        .enumerate()
    {
        let row = heads * 3 * HEAD_DIM;
        let n = ws * ws;
        let qkv = random(900 + i as u64, h * w * row, 1.0);
        let pad = random(950 + i as u64, row, 1.0);
        let bias = random(990 + i as u64, heads * n * n, 1.0);
        let scale = 1.0 / (HEAD_DIM as f64).sqrt();
        let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
        let mut want = vec![0f32; h * w * heads * HEAD_DIM];
        let token = |y: usize, x: usize| -> &[f32] {
            if y < h && x < w {
                &qkv[(y * w + x) * row..(y * w + x + 1) * row]
            } else {
                &pad[..]
            }
        };
        for wy in 0..nh {
            for wx in 0..nw {
                for hd in 0..heads {
                    for q in 0..n {
                        let (qy, qx) = (wy * ws + q / ws, wx * ws + q % ws);
                        if qy >= h || qx >= w {
                            continue;
                        }
                        let qv = &token(qy, qx)[hd * 3 * HEAD_DIM..][..HEAD_DIM];
                        let scores: Vec<f64> = (0..n)
                            .map(|k| {
                                let kv = &token(wy * ws + k / ws, wx * ws + k % ws)
                                    [hd * 3 * HEAD_DIM + HEAD_DIM..][..HEAD_DIM];
                                let d: f64 =
                                    qv.iter().zip(kv).map(|(&a, &b)| a as f64 * b as f64).sum();
                                d * scale + bias[(hd * n + q) * n + k] as f64
                            })
                            .collect();
                        let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                        let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                        let z: f64 = e.iter().sum();
                        for dd in 0..HEAD_DIM {
                            let v: f64 = (0..n)
                                .map(|k| {
                                    let vv = token(wy * ws + k / ws, wx * ws + k % ws)
                                        [hd * 3 * HEAD_DIM + 2 * HEAD_DIM + dd];
                                    e[k] * vv as f64
                                })
                                .sum();
                            want[(qy * w + qx) * heads * HEAD_DIM + hd * HEAD_DIM + dd] =
                                (v / z) as f32;
                        }
                    }
                }
            }
        }
        let gq = up(ctx, &[h * w, row], &qkv);
        let gp = up(ctx, &[row], &pad);
        let keyed = camsam::gpu::window_attention::keyed_bias(&bias, heads, n).expect("keyed");
        let gb = up(ctx, &[keyed.len()], &keyed);
        let mut rec = ctx.recorder();
        let out = window_attention(&mut rec, &gq, &gp, &gb, (h, w), ws, heads).expect("attn");
        rec.submit();
        assert_close(
            &format!("window attention {h}×{w} ws={ws} heads={heads}"),
            &read(ctx, &out).await,
            &want,
            REDUCTION,
        );
    }
}

/// The strided batched matmul against plain loops (f64): heads and batches with shared
/// (stride 0) and transposed operands, sizes off the 8×8 register blocks and 64×64 tiles, a
/// per-batch/per-head bias and a residual.
pub async fn batched_matmul(ctx: &GpuContext) {
    use camsam::gpu::batched_matmul::{batched_matmul, Operand, Product};
    // (m, n, k, batch, heads, a transposed, b row-major (n contiguous; else k contiguous),
    // b shared over the batch, bias, residual).
    let cases = [
        (1, 1, 1, 1, 1, false, false, false, false, false),
        (7, 130, 16, 3, 4, false, false, true, true, false),
        (67, 9, 29, 2, 1, true, false, false, true, true),
        (65, 71, 3, 1, 3, true, true, true, false, true),
        (5, 256, 70, 2, 2, false, true, false, true, true),
        (70, 67, 36, 2, 2, false, false, false, true, true),
        (9, 20, 12, 2, 1, false, true, true, false, false),
        // Long k: split along k on GPUs (4 and 2 ways, the last split shorter).
        (9, 70, 1037, 2, 3, false, true, false, true, true),
        (20, 9, 600, 1, 2, true, false, true, false, true),
    ];
    for (seed, &(m, n, k, batch, heads, a_t, b_rows, b_shared, bias, res)) in
        cases.iter().enumerate()
    {
        let seed = 100 + seed as u64 * 10;
        let z = batch * heads;
        // A: per (b, h) an m×k matrix, row-major or stored transposed (k×m).
        let a = random(seed, z * m * k, 1.0);
        let a_strides = if a_t {
            [heads * m * k, m * k, 1, m]
        } else {
            [heads * m * k, m * k, k, 1]
        };
        // B: k×n per head, row-major or stored as n×k rows, shared over the batch or not.
        let b_batches = if b_shared { 1 } else { batch };
        let bm = random(seed + 1, b_batches * heads * k * n, 1.0);
        let b_sb = if b_shared { 0 } else { heads * k * n };
        let b_strides = if b_rows {
            [b_sb, k * n, n, 1]
        } else {
            [b_sb, k * n, 1, k]
        };
        let bias_v = random(seed + 2, batch * heads * n, 1.0);
        // Output interleaves heads within a row: [batch, m, heads·n].
        let out_shape = [batch, m, heads * n];
        let c = [m * heads * n, n, heads * n];
        let res_v = random(seed + 3, batch * m * heads * n, 1.0);
        let alpha = 0.75f32;
        let mut want = vec![0f32; batch * m * heads * n];
        for bi in 0..batch {
            for h in 0..heads {
                for i in 0..m {
                    for j in 0..n {
                        let mut s = 0f64;
                        for l in 0..k {
                            let ai = bi * a_strides[0]
                                + h * a_strides[1]
                                + i * a_strides[2]
                                + l * a_strides[3];
                            let bj = bi * b_strides[0]
                                + h * b_strides[1]
                                + l * b_strides[2]
                                + j * b_strides[3];
                            s += a[ai] as f64 * bm[bj] as f64;
                        }
                        s *= alpha as f64;
                        let o = bi * c[0] + h * c[1] + i * c[2] + j;
                        if bias {
                            s += bias_v[bi * heads * n + h * n + j] as f64;
                        }
                        if res {
                            s += res_v[o] as f64;
                        }
                        want[o] = s as f32;
                    }
                }
            }
        }
        let (ga, gb) = (up(ctx, &[a.len()], &a), up(ctx, &[bm.len()], &bm));
        let (gbias, gres) = (
            up(ctx, &[bias_v.len()], &bias_v),
            up(ctx, &out_shape, &res_v),
        );
        let mut rec = ctx.recorder();
        let p = Product {
            m,
            n,
            k,
            batch,
            heads,
            alpha,
        };
        let out = batched_matmul(
            &mut rec,
            &p,
            Operand::new(&ga, a_strides),
            Operand::new(&gb, b_strides),
            (&out_shape, c),
            bias.then_some((&gbias, [heads * n, n])),
            res.then_some(&gres),
        )
        .expect("batched matmul");
        rec.submit();
        assert_eq!(out.shape(), &out_shape);
        assert_close(
            &format!(
                "batched matmul {p:?} a transposed={a_t} b shared={b_shared} bias={bias} res={res}"
            ),
            &read(ctx, &out).await,
            &want,
            REDUCTION,
        );
    }
    // Operands that reach past their tensors are errors, not dispatches.
    let small = up(ctx, &[6], &[0.0; 6]);
    let p = Product {
        m: 2,
        n: 2,
        k: 4,
        batch: 1,
        heads: 1,
        alpha: 1.0,
    };
    let mut rec = ctx.recorder();
    let r = batched_matmul(
        &mut rec,
        &p,
        Operand::new(&small, [0, 0, 4, 1]),
        Operand::new(&small, [0, 0, 2, 1]),
        (&[2, 2], [0, 0, 2]),
        None,
        None,
    );
    assert!(r.is_err(), "a 2×4 operand over 6 values must be rejected");
}

/// Row softmax against a f64 reference, on long rows (4096, as the image tokens), short ones
/// and odd lengths, with large logits (the max is subtracted).
pub async fn softmax(ctx: &GpuContext) {
    use camsam::gpu::softmax::softmax_rows;
    // Long rows (≥ 64) take the one-workgroup-per-row kernel on GPUs.
    let shapes = [(1, 1), (3, 4096), (130, 7), (65, 33), (70, 64), (4, 300)];
    for (seed, &(rows, len)) in shapes.iter().enumerate() {
        let x = random(200 + seed as u64, rows * len, 30.0);
        let mut want = vec![0f32; x.len()];
        for r in 0..rows {
            let row = &x[r * len..(r + 1) * len];
            let m = row.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            for (i, &v) in row.iter().enumerate() {
                want[r * len + i] = ((v as f64 - m).exp() / s) as f32;
            }
        }
        let gx = up(ctx, &[rows, len], &x);
        let mut rec = ctx.recorder();
        let out = softmax_rows(&mut rec, &gx, len).expect("softmax");
        rec.submit();
        assert_close(
            &format!("softmax rows={rows} len={len}"),
            &read(ctx, &out).await,
            &want,
            ELEMENTWISE,
        );
    }
    let mut rec = ctx.recorder();
    assert!(softmax_rows(&mut rec, &up(ctx, &[5], &[0.0; 5]), 2).is_err());
}
