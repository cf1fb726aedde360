//! Stage timings for `camsam bench sam --backend cpu --profile`: the CPU decoder and the
//! mask generator mark their stages with [`time`], and while a recording runs ([`start`] …
//! [`take`]) each call adds its duration and arithmetic to its stage. Durations are thread
//! time: stages that run on several threads at once add up their threads' time, so a stage's
//! share of the total is its share of the work. Off, a stage costs one relaxed atomic load;
//! in the browser (no clock in `wasm32-unknown-unknown`'s std) nothing is ever recorded.
//!
//! ```
//! camsam::profile::start();
//! let x = camsam::profile::time("a stage", 2.0e3, || (0..1000).map(|i| i as f64).sum::<f64>());
//! let stages = camsam::profile::take();
//! # #[cfg(not(target_arch = "wasm32"))]
//! assert_eq!((stages[0].name, stages[0].calls, stages[0].flops), ("a stage", 1, 2.0e3));
//! # let _ = x;
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One stage's totals over a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTime {
    pub name: &'static str,
    /// Calls made.
    pub calls: u64,
    /// Thread seconds spent, summed over threads.
    pub seconds: f64,
    /// Floating-point operations the calls reported (0 where not counted).
    pub flops: f64,
}

static ON: AtomicBool = AtomicBool::new(false);
static STAGES: Mutex<Vec<StageTime>> = Mutex::new(Vec::new());

/// Starts a recording (clearing the last one).
pub fn start() {
    if let Ok(mut s) = STAGES.lock() {
        s.clear();
    }
    ON.store(cfg!(not(target_arch = "wasm32")), Ordering::Relaxed);
}

/// Ends the recording and returns its stages in the order they were first seen.
pub fn take() -> Vec<StageTime> {
    ON.store(false, Ordering::Relaxed);
    STAGES
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default()
}

/// Runs `f` as (part of) stage `name`, which does `flops` floating-point operations.
#[inline]
pub fn time<T>(name: &'static str, flops: f64, f: impl FnOnce() -> T) -> T {
    #[cfg(not(target_arch = "wasm32"))]
    if ON.load(Ordering::Relaxed) {
        let t = std::time::Instant::now();
        let out = f();
        add(name, t.elapsed().as_secs_f64(), flops);
        return out;
    }
    let _ = (name, flops);
    f()
}

#[cfg(not(target_arch = "wasm32"))]
fn add(name: &'static str, seconds: f64, flops: f64) {
    let Ok(mut stages) = STAGES.lock() else {
        return;
    };
    match stages.iter_mut().find(|s| s.name == name) {
        Some(s) => {
            s.calls += 1;
            s.seconds += seconds;
            s.flops += flops;
        }
        None => stages.push(StageTime {
            name,
            calls: 1,
            seconds,
            flops,
        }),
    }
}
