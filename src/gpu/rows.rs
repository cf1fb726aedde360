//! Strided row copies (`rows.wgsl`): pick token rows out of a batch (the IoU token, each mask
//! token) and interleave per-prompt results, on the device.
//!
//! ```no_run
//! # async fn demo(ctx: &camsam::gpu::GpuContext) -> camsam::Result<()> {
//! use camsam::gpu::{rows::{copy_rows, RowMap}, GpuTensor};
//! let x = GpuTensor::upload(ctx, &[4, 1], &[0., 1., 2., 3.])?;
//! let out = GpuTensor::upload(ctx, &[2, 1], &[0., 0.])?;
//! let mut rec = ctx.recorder();
//! // Rows 1 and 3 (stride 2, offset 1) into rows 0 and 1.
//! copy_rows(&mut rec, &x, &out, RowMap { rows: 2, cols: 1, in_stride: 2, in_offset: 1, out_stride: 1, out_offset: 0 })?;
//! rec.submit();
//! assert_eq!(out.read(ctx).await?, vec![1., 3.]);
//! # Ok(()) }
//! ```

use super::context::Recorder;
use super::GpuTensor;
use crate::{Error, Result};

/// Row `r < rows` of the output (`r·out_stride + out_offset`) takes input row
/// `r·in_stride + in_offset`; rows are `cols` wide.
#[derive(Clone, Copy, Debug)]
pub struct RowMap {
    pub rows: usize,
    pub cols: usize,
    pub in_stride: usize,
    pub in_offset: usize,
    pub out_stride: usize,
    pub out_offset: usize,
}

/// Copies rows of `x` into `out` (which keeps its other rows).
pub fn copy_rows(rec: &mut Recorder, x: &GpuTensor, out: &GpuTensor, m: RowMap) -> Result<()> {
    if m.rows == 0 {
        return Ok(());
    }
    let last_in = ((m.rows - 1) * m.in_stride + m.in_offset + 1) * m.cols;
    let last_out = ((m.rows - 1) * m.out_stride + m.out_offset + 1) * m.cols;
    if last_in > x.len() || last_out > out.len() {
        return Err(Error::Model(format!(
            "copy_rows: {m:?} reaches past input {:?} or output {:?}",
            x.shape(),
            out.shape()
        )));
    }
    let total = m.rows * m.cols;
    let params = [
        m.rows,
        m.cols,
        m.in_stride,
        m.in_offset,
        m.out_stride,
        m.out_offset,
        total,
        0,
    ]
    .map(|v| v as u32);
    rec.dispatch_1d("rows", &params, &[x.buffer(), out.buffer()], total, 256)
}
