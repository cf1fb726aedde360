use camsam::gpu::conv::{depthwise3x3, im2col, Layout};
use camsam::gpu::matmul::{linear, Epilogue};
use camsam::gpu::norm::layer_norm;
use camsam::gpu::window_attention::window_attention;
use camsam::gpu::{GpuContext, GpuTensor};
use std::time::Instant;

fn main() -> camsam::Result<()> {
    let ctx = pollster::block_on(GpuContext::new())?;
    println!("{}", ctx.adapter_name());
    let t = |ctx: &GpuContext,
             name: &str,
             f: &dyn Fn(&mut camsam::gpu::Recorder) -> camsam::Result<GpuTensor>,
             flops: f64|
     -> camsam::Result<()> {
        for it in 0..2 {
            let s = Instant::now();
            let mut rec = ctx.recorder();
            let out = f(&mut rec)?;
            rec.submit();
            let _ = pollster::block_on(out.read(ctx))?;
            let e = s.elapsed().as_secs_f64();
            if it == 1 {
                println!("{name}: {:.1} ms, {:.2} GFLOP/s", e * 1e3, flops / e / 1e9);
            }
        }
        Ok(())
    };
    let tiny = GpuTensor::upload(&ctx, &[4], &[1.0; 4])?;
    t(
        &ctx,
        "add 4",
        &|r| camsam::gpu::add::add(r, &tiny, &tiny, &[4]),
        4.0,
    )?;
    let big = GpuTensor::upload(&ctx, &[1 << 22], &vec![1.0; 1 << 22])?;
    t(
        &ctx,
        "add 4M",
        &|r| camsam::gpu::add::add(r, &big, &big, &[1 << 22]),
        4194304.0,
    )?;
    let (m, k, n) = (16384usize, 128usize, 512usize);
    let a = GpuTensor::upload(&ctx, &[m, k], &vec![0.5; m * k])?;
    let w = GpuTensor::upload(&ctx, &[n, k], &vec![0.25; n * k])?;
    t(
        &ctx,
        "matmul 16384x128x512",
        &|r| linear(r, &a, &w, Epilogue::default()),
        2.0 * (m * k * n) as f64,
    )?;
    let x = GpuTensor::upload(&ctx, &[128 * 128, 128], &vec![0.5; 128 * 128 * 128])?;
    let dw = GpuTensor::upload(&ctx, &[128, 9], &vec![0.1; 128 * 9])?;
    let db = GpuTensor::upload(&ctx, &[128], &vec![0.1; 128])?;
    t(
        &ctx,
        "depthwise 128x128x128",
        &|r| depthwise3x3(r, &x, (128, 128), &dw, &db, 1, true),
        2.0 * 9.0 * 128.0 * 16384.0,
    )?;
    t(
        &ctx,
        "layernorm 16384x128",
        &|r| layer_norm(r, &x, &db, &db, 1e-5),
        5.0 * 16384.0 * 128.0,
    )?;
    t(
        &ctx,
        "im2col neck 64x64x256",
        &|r| {
            im2col(
                r,
                &GpuTensor::upload(&ctx, &[4096, 256], &vec![0.5; 4096 * 256])?,
                Layout::Hwc,
                (256, 64, 64),
                3,
                1,
                1,
            )
        },
        4096.0 * 2304.0,
    )?;
    let qkv = GpuTensor::upload(&ctx, &[4096, 480], &vec![0.01; 4096 * 480])?;
    let pad = GpuTensor::upload(&ctx, &[480], &vec![0.01; 480])?;
    let bias = GpuTensor::upload(&ctx, &[5, 196, 196], &vec![0.01; 5 * 196 * 196])?;
    t(
        &ctx,
        "window attn 64x64 ws14 5h",
        &|r| window_attention(r, &qkv, &pad, &bias, (64, 64), 14, 5),
        25.0 * 5.0 * 196.0 * 196.0 * 32.0 * 4.0,
    )?;
    Ok(())
}
