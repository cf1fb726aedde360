//! Stage timings for `camsam bench sam --backend cpu --profile`: the CPU decoder and the
//! mask generator mark their stages with [`time`], and while a recording runs ([`start`] …
//! [`take`]) each call adds its duration and arithmetic to its stage. Durations are thread
//! time: stages that run on several threads at once add up their threads' time, so a stage's
//! share of the total is its share of the work. Off, a stage costs one relaxed atomic load.
//! In the browser (no clock in `wasm32-unknown-unknown`'s std) the clock is
//! `performance.now()` and the page's bench view (`?bench&profile`) shows the stages.
//!
//! ```
//! camsam::profile::start();
//! let x = camsam::profile::time("a stage", 2.0e3, || (0..1000).map(|i| i as f64).sum::<f64>());
//! let stages = camsam::profile::take();
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
    ON.store(true, Ordering::Relaxed);
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
    if ON.load(Ordering::Relaxed) {
        let t = now();
        let out = f();
        add(name, now() - t, flops);
        return out;
    }
    f()
}

/// Seconds from an arbitrary origin.
#[cfg(not(target_arch = "wasm32"))]
fn now() -> f64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}

/// Seconds from the page's time origin (`performance.now()`; 0 where there is none).
#[cfg(target_arch = "wasm32")]
fn now() -> f64 {
    use wasm_bindgen::JsCast;
    let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now = perf
        .as_ref()
        .and_then(|p| js_sys::Reflect::get(p, &"now".into()).ok())
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    match (perf, now) {
        (Some(p), Some(f)) => f.call0(&p).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) / 1e3,
        _ => 0.0,
    }
}

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

/// `stages` as lines of a table: a tree (` › ` separates levels) with time per `unit`, share of the
/// top-level total and GFLOP/s where the stage counted its arithmetic; a parent's time not
/// covered by its children is printed as "(rest)".
pub fn table(stages: &[StageTime], units: usize, unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    // A stage's parent is the longest prefix that is itself a stage; stages without one
    // (e.g. the generator's, whose parent is not timed as a whole) are roots.
    let present = |p: &str| stages.iter().any(|t| t.name == p);
    let ancestors = |name: &'static str| -> Vec<&'static str> {
        prefixes(name)
            .filter(|&p| p != name && present(p))
            .collect()
    };
    let total: f64 = stages
        .iter()
        .filter(|s| ancestors(s.name).is_empty())
        .map(|s| s.seconds)
        .sum();
    out.push(format!(
        "  {:<52} {:>10} {:>7} {:>8}",
        "stage",
        format!("ms/{unit}"),
        "share",
        "GFLOP/s"
    ));
    let line = |name: &str, depth: usize, seconds: f64, flops: f64| -> String {
        let gflops = if flops > 0.0 && seconds > 0.0 {
            format!("{:.1}", flops / seconds / 1e9)
        } else {
            String::new()
        };
        format!(
            "  {:<52} {:>10.3} {:>6.1}% {:>8}",
            format!("{}{}", "  ".repeat(depth), name),
            seconds * 1e3 / units.max(1) as f64,
            100.0 * seconds / total.max(f64::MIN_POSITIVE),
            gflops
        )
    };
    let mut order: Vec<&StageTime> = stages.iter().collect();
    // Parents before their children, siblings in first-seen order.
    order.sort_by_key(|s| {
        let path: Vec<usize> = ancestors(s.name)
            .into_iter()
            .chain(std::iter::once(s.name))
            .map(|p| {
                stages
                    .iter()
                    .position(|t| t.name == p)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        path
    });
    for s in &order {
        let up = ancestors(s.name);
        let shown = match up.last() {
            Some(parent) => &s.name[parent.len() + " › ".len()..],
            None => s.name,
        };
        out.push(line(shown, up.len(), s.seconds, s.flops));
    }
    // The rest of each parent: its time less its direct children's.
    for s in stages {
        let direct: f64 = stages
            .iter()
            .filter(|c| ancestors(c.name).last() == Some(&s.name))
            .map(|c| c.seconds)
            .sum();
        if direct > 0.0 {
            out.push(line(
                &format!("{} (rest: not in a stage below it)", s.name),
                0,
                s.seconds - direct,
                0.0,
            ));
        }
    }
    out
}

/// `"a › b › c"` → `"a"`, `"a › b"`, `"a › b › c"`.
fn prefixes(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(" › ")
        .map(move |(i, _)| &name[..i])
        .chain(std::iter::once(name))
}
