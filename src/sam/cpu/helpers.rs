//! Helper threads for the CPU model where it cannot start its own: the page's helper workers.
//!
//! `wasm32-unknown-unknown` has no threads in one instance, so the page runs the model again in
//! each helper worker (its own wasm instance and copy of the weights) and hands it work through
//! a buffer both sides can see (a `SharedArrayBuffer`). The calling thread writes a job's
//! inputs into a helper's buffer, starts it, does its own share, then waits for the helper and
//! reads its output back. Two kinds of job:
//!
//! - part of a large matrix product ([`kernels::matmul`] of the encoder and the decoder), split
//!   by rows. The wasm32 kernel (`super::simd128`) sums each element over `k` in order whatever
//!   rows it is given, and an accumulating product gets the output rows it adds to, so every
//!   element is computed with the same operations in the same order as on one thread;
//! - a group of up to 16 prompts to decode, the same groups the one-thread decoder forms, with
//!   the image embedding sent once per image.
//!
//! A helper that fails (or a job too large for its buffer) leaves its share to the calling
//! thread, so the results never depend on how many helpers there are. Natively no helpers are
//! ever set: rayon's threads share memory. The registry is per thread (the page's model worker
//! sets it; the helpers themselves never do).

use super::kernels::{self, MatRef};
use super::{CpuEmbedding, CpuSam};
use crate::sam::predictor::{LowResMasks, Prompt, LOW_RES};
use crate::sam::EMBED_LEN;
use crate::{Error, Result};
use std::cell::RefCell;
use std::rc::Rc;

/// The helpers as the calling thread sees them.
pub trait Helpers {
    /// Helper threads besides the calling one.
    fn count(&self) -> usize;
    /// Bytes in each helper's buffer.
    fn capacity(&self) -> usize;
    /// Copies `bytes` into helper `i`'s buffer at byte `at`.
    fn write(&self, i: usize, at: usize, bytes: &[u8]);
    /// Copies helper `i`'s buffer from byte `at` into `out`.
    fn read(&self, i: usize, at: usize, out: &mut [u8]);
    /// Starts the job `header` on helper `i` (its inputs already written).
    fn start(&self, i: usize, header: &[u32]);
    /// Waits until helper `i`'s job ends; `Err(why)` when it failed.
    fn wait(&self, i: usize) -> std::result::Result<(), String>;
}

/// A job's buffer as the helper sees it.
pub trait Buffer {
    fn capacity(&self) -> usize;
    fn read(&self, at: usize, out: &mut [u8]);
    fn write(&self, at: usize, bytes: &[u8]);
}

const MATMUL: u32 = 1;
const DECODE: u32 = 2;
const ROWS: u32 = 3;

/// Row-wise work of the encoder a helper can take: rows are independent, so any split of them
/// gives the same output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowJob {
    /// Block `i`'s window attention (a row is one window's tokens).
    Attention(u32),
    /// Block `i`'s MLP with its residual (a row is one token).
    Mlp(u32),
    /// MBConv `i` (a row is one image row; one row of context either side).
    MbConv(u32),
    /// The patch embedding (a row is four input rows, one output row).
    PatchEmbed,
    /// Patch merging `i` (a row is `stride` input rows, one output row).
    PatchMerging(u32),
    /// The neck (a row is one row of the embedding grid; one row of context either side).
    Neck,
}

impl RowJob {
    fn words(self) -> [u32; 2] {
        match self {
            RowJob::Attention(i) => [1, i],
            RowJob::Mlp(i) => [2, i],
            RowJob::MbConv(i) => [3, i],
            RowJob::PatchEmbed => [4, 0],
            RowJob::PatchMerging(i) => [5, i],
            RowJob::Neck => [6, 0],
        }
    }

    fn from_words(w: [u32; 2]) -> Option<RowJob> {
        match w[0] {
            1 => Some(RowJob::Attention(w[1])),
            2 => Some(RowJob::Mlp(w[1])),
            3 => Some(RowJob::MbConv(w[1])),
            4 => Some(RowJob::PatchEmbed),
            5 => Some(RowJob::PatchMerging(w[1])),
            6 => Some(RowJob::Neck),
            _ => None,
        }
    }
}

/// Products smaller than this stay on the calling thread (a job costs two copies and a wake-up).
const MIN_FLOPS: f64 = 4.0e6;
/// Products with fewer multiply-adds per value of A and C than this stay on the calling
/// thread (moving a value costs about as much as a few dozen multiply-adds).
const MIN_INTENSITY: usize = 24;
/// Fewest rows a helper's share of a product may have.
const MIN_ROWS: usize = 16;

thread_local! {
    static HELPERS: RefCell<Option<Rc<dyn Helpers>>> = const { RefCell::new(None) };
    /// The embedding id each helper holds.
    static SENT: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    /// Whether the helpers are decoding (a product must not use their buffers meanwhile).
    static BUSY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets (or with `None` removes) this thread's helpers.
pub fn set(helpers: Option<Rc<dyn Helpers>>) {
    SENT.with(|s| *s.borrow_mut() = vec![0; helpers.as_ref().map_or(0, |h| h.count())]);
    HELPERS.with(|h| *h.borrow_mut() = helpers);
}

/// Threads the CPU model uses on this thread: 1 + its helpers.
pub fn threads() -> usize {
    1 + current().map_or(0, |h| h.count())
}

fn current() -> Option<Rc<dyn Helpers>> {
    if BUSY.with(|b| b.get()) {
        return None;
    }
    HELPERS.with(|h| h.borrow().clone())
}

/// Marks the helpers busy while it lives.
struct Busy;

impl Busy {
    fn new() -> Busy {
        BUSY.with(|b| b.set(true));
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(false));
    }
}

fn bytes(x: &[f32]) -> &[u8] {
    bytemuck::cast_slice(x)
}

/// `kernels::matmul` with helpers: `true` when the product was done here (split by rows),
/// `false` when the caller should do it alone (no helpers, or too small to be worth it).
pub(super) fn matmul(c: &mut [f32], c_rs: usize, accumulate: bool, a: MatRef, b: MatRef) -> bool {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // Worth two copies of A's and C's rows: enough arithmetic per value moved.
    if (2.0 * (m * k * n) as f64) < MIN_FLOPS || m < 2 * MIN_ROWS || k * n < MIN_INTENSITY * (k + n)
    {
        return false;
    }
    let Some(h) = current() else {
        return false;
    };
    let b_bytes = 4 * k * n;
    let row_bytes = 4 * (k + n);
    let fit = h.capacity().saturating_sub(b_bytes) / row_bytes;
    let parts = (h.count() + 1).min(m / MIN_ROWS);
    let share = m.div_ceil(parts).min(fit);
    if parts < 2 || share < MIN_ROWS {
        return false;
    }
    // Rows [0, own) here; the rest in shares of `share` rows, one per helper.
    let mut jobs = Vec::new();
    let mut end = m;
    for i in 0..parts - 1 {
        let start = end.saturating_sub(share).max(MIN_ROWS);
        if start >= end {
            break;
        }
        jobs.push((i, start, end));
        end = start;
    }
    let own = end;
    let b_packed = pack(b);
    for &(i, r0, r1) in &jobs {
        let rows = r1 - r0;
        let a_part = MatRef {
            data: &a.data[r0 * a.rs..],
            rows,
            ..a
        };
        if a.cs == 1 && a.rs == k {
            h.write(i, 0, bytes(&a_part.data[..rows * k]));
        } else {
            h.write(i, 0, bytes(&pack(a_part)));
        }
        h.write(i, 4 * rows * k, bytes(&b_packed));
        if accumulate {
            let c_part: Vec<f32> = (r0..r1)
                .flat_map(|r| c[r * c_rs..r * c_rs + n].iter().copied())
                .collect();
            h.write(i, 4 * rows * k + b_bytes, bytes(&c_part));
        }
        h.start(
            i,
            &[MATMUL, rows as u32, k as u32, n as u32, accumulate as u32],
        );
    }
    kernels::gemm_local(c, c_rs, accumulate, MatRef { rows: own, ..a }, b);
    for &(i, r0, r1) in &jobs {
        let rows = r1 - r0;
        let at = 4 * rows * k + b_bytes;
        let done = h.wait(i).map(|()| {
            if c_rs == n {
                h.read(i, at, bytemuck::cast_slice_mut(&mut c[r0 * n..r1 * n]));
                return;
            }
            let mut part = vec![0f32; rows * n];
            h.read(i, at, bytemuck::cast_slice_mut(&mut part));
            for (r, row) in (r0..r1).zip(part.chunks_exact(n)) {
                c[r * c_rs..r * c_rs + n].copy_from_slice(row);
            }
        });
        if done.is_err() {
            let c_part = &mut c[r0 * c_rs..];
            let a_part = MatRef {
                data: &a.data[r0 * a.rs..],
                rows,
                ..a
            };
            kernels::gemm_local(c_part, c_rs, accumulate, a_part, b);
        }
    }
    true
}

/// Row-wise work over the rows of `input` (`row_in` values each, giving `row_out` each),
/// shared with the helpers in contiguous parts of at least `min_rows`. `local(x, lead, count)`
/// computes output rows `lead .. lead + count` of `x`, a run of input rows that has up to
/// `halo` rows of context either side of them (`lead` of them before).
pub(super) fn rows(
    job: RowJob,
    input: &[f32],
    (row_in, row_out): (usize, usize),
    (min_rows, halo): (usize, usize),
    local: impl Fn(&[f32], usize, usize) -> Vec<f32>,
) -> Vec<f32> {
    let n = input.len() / row_in.max(1);
    let min_rows = min_rows.max(1);
    let part = |r0: usize, r1: usize| {
        let (a, b) = (r0.saturating_sub(halo), (r1 + halo).min(n));
        (&input[a * row_in..b * row_in], r0 - a)
    };
    let Some(h) = current().filter(|_| n >= 2 * min_rows) else {
        return local(input, 0, n);
    };
    let fit = (h.capacity() / (4 * (row_in + row_out))).saturating_sub(2 * halo);
    let parts = (h.count() + 1).min(n / min_rows);
    let share = n.div_ceil(parts).min(fit);
    if parts < 2 || share < min_rows {
        return local(input, 0, n);
    }
    let mut jobs = Vec::new();
    let mut end = n;
    for i in 0..parts - 1 {
        let start = end.saturating_sub(share).max(min_rows);
        if start >= end {
            break;
        }
        let [kind, arg] = job.words();
        let (x, lead) = part(start, end);
        h.write(i, 0, bytes(x));
        let sizes = [x.len() / row_in, row_in, row_out, lead, end - start];
        let [a, b, c, d, e] = sizes.map(|w| w as u32);
        h.start(i, &[ROWS, kind, arg, a, b, c, d, e]);
        jobs.push((i, start, end, x.len()));
        end = start;
    }
    let busy = Busy::new();
    let (x, lead) = part(0, end);
    let mut out = local(x, lead, end);
    drop(busy);
    out.resize(n * row_out, 0.0);
    for &(i, r0, r1, sent) in jobs.iter().rev() {
        let dst = &mut out[r0 * row_out..r1 * row_out];
        match h.wait(i) {
            Ok(()) => h.read(i, 4 * sent, bytemuck::cast_slice_mut(dst)),
            Err(_) => {
                let (x, lead) = part(r0, r1);
                dst.copy_from_slice(&local(x, lead, r1 - r0));
            }
        }
    }
    out
}

/// A strided matrix as a contiguous row-major one.
fn pack(x: MatRef) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.rows * x.cols);
    for i in 0..x.rows {
        out.extend((0..x.cols).map(|j| x.data[i * x.rs + j * x.cs]));
    }
    out
}

/// Decodes `groups` (prompt indices, each a group the one-thread decoder would decode as one
/// batch) with the helpers taking whole groups; `None` without helpers.
pub(super) fn decode_groups(
    model: &CpuSam,
    emb: &CpuEmbedding,
    prompts: &[Prompt],
    groups: &[Vec<usize>],
    multimask: bool,
) -> Option<Result<Vec<Vec<LowResMasks>>>> {
    let h = current()?;
    let mut out: Vec<Option<Vec<LowResMasks>>> = vec![None; groups.len()];
    let mut g = 0;
    while g < groups.len() {
        // One group here, the next ones on the helpers (those without mask inputs).
        let mut started = Vec::new();
        let mut next = g + 1;
        for i in 0..h.count() {
            let Some(group) = groups.get(next) else { break };
            if group.iter().any(|&p| prompts[p].mask_input.is_some()) {
                break;
            }
            if start_decode(&*h, i, emb, group.iter().map(|&p| &prompts[p]), multimask) {
                started.push((i, next));
            }
            next += 1;
        }
        let refs: Vec<&Prompt> = groups[g].iter().map(|&p| &prompts[p]).collect();
        let busy = (!started.is_empty()).then(Busy::new);
        let own = model.decode_group(emb, &refs, multimask);
        drop(busy);
        out[g] = match own {
            Ok(r) => Some(r),
            Err(e) => {
                // Let the started helpers finish before giving up.
                for &(i, _) in &started {
                    let _ = h.wait(i);
                }
                return Some(Err(e));
            }
        };
        for (i, gi) in started {
            out[gi] = finish_decode(&*h, i, groups[gi].len(), multimask);
        }
        // Groups a helper could not take are done here.
        for gi in g + 1..next {
            if out[gi].is_none() {
                let refs: Vec<&Prompt> = groups[gi].iter().map(|&p| &prompts[p]).collect();
                match model.decode_group(emb, &refs, multimask) {
                    Ok(r) => out[gi] = Some(r),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        g = next;
    }
    Some(Ok(out.into_iter().flatten().collect()))
}

fn masks_per_prompt(multimask: bool) -> usize {
    if multimask {
        3
    } else {
        1
    }
}

fn start_decode<'a>(
    h: &dyn Helpers,
    i: usize,
    emb: &CpuEmbedding,
    prompts: impl Iterator<Item = &'a Prompt>,
    multimask: bool,
) -> bool {
    let encoded = encode_prompts(prompts);
    let n = encoded.0;
    let out_bytes = n * masks_per_prompt(multimask) * (LOW_RES * LOW_RES + 1) * 4;
    let in_bytes = EMBED_LEN * 4 + encoded.1.len();
    if in_bytes.max(out_bytes) > h.capacity() {
        return false;
    }
    let held = SENT.with(|s| s.borrow().get(i).copied() == Some(emb.id));
    if !held {
        h.write(i, 0, bytes(&emb.embedding));
    }
    h.write(i, EMBED_LEN * 4, &encoded.1);
    SENT.with(|s| {
        if let Some(v) = s.borrow_mut().get_mut(i) {
            *v = emb.id;
        }
    });
    h.start(
        i,
        &[
            DECODE,
            emb.id as u32,
            (emb.id >> 32) as u32,
            !held as u32,
            encoded.1.len() as u32,
            multimask as u32,
        ],
    );
    true
}

fn finish_decode(h: &dyn Helpers, i: usize, n: usize, multimask: bool) -> Option<Vec<LowResMasks>> {
    if h.wait(i).is_err() {
        SENT.with(|s| {
            if let Some(v) = s.borrow_mut().get_mut(i) {
                *v = 0;
            }
        });
        return None;
    }
    let count = masks_per_prompt(multimask);
    let mut flat = vec![0f32; n * count * (LOW_RES * LOW_RES + 1)];
    h.read(i, 0, bytemuck::cast_slice_mut(&mut flat));
    let per = count * LOW_RES * LOW_RES;
    Some(
        flat.chunks_exact(per + count)
            .map(|c| LowResMasks {
                count,
                logits: c[..per].to_vec(),
                iou: c[per..].to_vec(),
            })
            .collect(),
    )
}

/// Prompts without mask inputs as bytes: per prompt, the point count, whether it has a box,
/// the points (f64 x, y), labels (i32), and the box (4 × f64).
fn encode_prompts<'a>(prompts: impl Iterator<Item = &'a Prompt>) -> (usize, Vec<u8>) {
    let mut out = Vec::new();
    let mut n = 0;
    for p in prompts {
        n += 1;
        out.extend((p.points.len() as u32).to_le_bytes());
        out.extend((p.bbox.is_some() as u32).to_le_bytes());
        for &(x, y) in &p.points {
            out.extend(x.to_le_bytes());
            out.extend(y.to_le_bytes());
        }
        for &l in &p.labels {
            out.extend(l.to_le_bytes());
        }
        for v in p.bbox.iter().flatten() {
            out.extend(v.to_le_bytes());
        }
    }
    (n, out)
}

fn decode_prompts(mut b: &[u8]) -> Result<Vec<Prompt>> {
    fn take<const N: usize>(b: &mut &[u8]) -> Result<[u8; N]> {
        let (head, rest) = b
            .split_first_chunk::<N>()
            .ok_or_else(|| Error::Model("a helper's prompt bytes end early".into()))?;
        *b = rest;
        Ok(*head)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = u32::from_le_bytes(take(&mut b)?) as usize;
        let has_box = u32::from_le_bytes(take(&mut b)?) != 0;
        let mut p = Prompt::default();
        for _ in 0..n {
            let x = f64::from_le_bytes(take(&mut b)?);
            let y = f64::from_le_bytes(take(&mut b)?);
            p.points.push((x, y));
        }
        for _ in 0..n {
            p.labels.push(i32::from_le_bytes(take(&mut b)?));
        }
        if has_box {
            let mut v = [0.0; 4];
            for x in &mut v {
                *x = f64::from_le_bytes(take(&mut b)?);
            }
            p.bbox = Some(v);
        }
        out.push(p);
    }
    Ok(out)
}

/// What a helper keeps between jobs: the last image embedding it was sent.
#[derive(Default)]
pub struct Served {
    embedding: Option<CpuEmbedding>,
}

/// Runs the job `header` on a helper: reads its inputs from `buf`, writes its output there.
pub fn serve(model: &CpuSam, served: &mut Served, header: &[u32], buf: &dyn Buffer) -> Result<()> {
    let word = |i: usize| header.get(i).copied().unwrap_or(0) as usize;
    match header.first() {
        Some(&MATMUL) => {
            let (m, k, n, accumulate) = (word(1), word(2), word(3), word(4) != 0);
            if 4 * (m * k + k * n + m * n) > buf.capacity() {
                return Err(Error::Model(
                    "a helper's product does not fit its buffer".into(),
                ));
            }
            let mut a = vec![0f32; m * k];
            let mut b = vec![0f32; k * n];
            let mut c = vec![0f32; m * n];
            buf.read(0, bytemuck::cast_slice_mut(&mut a));
            buf.read(4 * m * k, bytemuck::cast_slice_mut(&mut b));
            let at = 4 * (m * k + k * n);
            if accumulate {
                buf.read(at, bytemuck::cast_slice_mut(&mut c));
            }
            kernels::gemm_local(
                &mut c,
                n,
                accumulate,
                MatRef::rows(&a, m, k),
                MatRef::rows(&b, k, n),
            );
            buf.write(at, bytes(&c));
            Ok(())
        }
        Some(&DECODE) => {
            let id = word(1) as u64 | (word(2) as u64) << 32;
            let (with_embedding, prompt_len, multimask) = (word(3) != 0, word(4), word(5) != 0);
            if 4 * EMBED_LEN + prompt_len > buf.capacity() {
                return Err(Error::Model(
                    "a helper's prompts do not fit its buffer".into(),
                ));
            }
            if with_embedding {
                let mut e = vec![0f32; EMBED_LEN];
                buf.read(0, bytemuck::cast_slice_mut(&mut e));
                served.embedding = Some(model.wrap_with_id(e, id));
            }
            let emb = served
                .embedding
                .as_ref()
                .filter(|e| e.id == id)
                .ok_or_else(|| {
                    Error::Model("a helper was sent prompts for an image it does not hold".into())
                })?;
            let mut raw = vec![0u8; prompt_len];
            buf.read(4 * EMBED_LEN, &mut raw);
            let prompts = decode_prompts(&raw)?;
            let refs: Vec<&Prompt> = prompts.iter().collect();
            let out = model.decode_group(emb, &refs, multimask)?;
            let mut at = 0;
            for r in &out {
                buf.write(at, bytes(&r.logits));
                at += 4 * r.logits.len();
                buf.write(at, bytes(&r.iou));
                at += 4 * r.iou.len();
            }
            Ok(())
        }
        Some(&ROWS) => {
            let job = RowJob::from_words([word(1) as u32, word(2) as u32]).ok_or_else(|| {
                Error::Model(format!("a helper got an unknown row job {header:?}"))
            })?;
            let (n, row_in, row_out, lead, count) = (word(3), word(4), word(5), word(6), word(7));
            if 4 * (n * row_in + count * row_out) > buf.capacity() || lead + count > n {
                return Err(Error::Model("a helper's rows do not fit its buffer".into()));
            }
            let mut input = vec![0f32; n * row_in];
            buf.read(0, bytemuck::cast_slice_mut(&mut input));
            let out = model.encoder.rows(job, &input, lead, count)?;
            if out.len() != count * row_out {
                return Err(Error::Model(format!(
                    "a helper's {job:?} gave {} values, expected {}",
                    out.len(),
                    count * row_out
                )));
            }
            buf.write(4 * n * row_in, bytes(&out));
            Ok(())
        }
        _ => Err(Error::Model(format!(
            "a helper got an unknown job {header:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_round_trip_exactly() {
        let ps = vec![
            Prompt {
                points: vec![(0.1, 1.0 / 3.0), (1e-300, 1023.999)],
                labels: vec![1, 0],
                bbox: Some([0.5, 2.0 / 7.0, 10.0, 11.25]),
                mask_input: None,
            },
            Prompt {
                points: vec![(5.0, 6.0)],
                labels: vec![-1],
                ..Default::default()
            },
        ];
        let (n, b) = encode_prompts(ps.iter());
        assert_eq!(n, 2);
        assert_eq!(decode_prompts(&b).unwrap(), ps);
        assert!(decode_prompts(&b[..b.len() - 1]).is_err());
    }
}
