//! The dataset runner shared by `merge`, `cam2label` and `refine`: pick the names (`--list`,
//! `--shard I/N`), skip finished outputs unless `--overwrite`, run the per-name job on all
//! cores (rayon) with a progress bar on stderr, write every output atomically (a temp file in
//! the same folder, then a rename, so a crash never leaves a half-written PNG), report a
//! failing name with its error without losing the others, and fail at the end if any did.
//!
//! A killed run resumes where it stopped: the name's primary output (whose existence marks the
//! name finished) is renamed into place after all its other outputs, and the next run removes
//! the temp files a killed run left (`.<file>.tmp-<host>-<pid>-<n>`: only those of this host
//! whose process is gone and which predate the new run, so concurrent shards writing into a
//! shared folder from other machines or processes are never touched).
//!
//! A subcommand flattens [`BatchArgs`] into its clap arguments and calls:
//! ```ignore
//! let names = batch::select(batch::names_with_extension(&args.pseudo, "png")?, &args.batch)?;
//! let outcome = batch::run(&names, &RunOptions::new("merge", args.batch.overwrite), |name| {
//!     out_dir.join(format!("{name}.png"))
//! }, |name| {
//!     let png = /* … */;
//!     Ok((vec![Output::new(out_dir.join(format!("{name}.png")), png)], report_for_name))
//! });
//! outcome.print_summary();
//! outcome.into_result()?;
//! ```

use camsam::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The dataset-selection arguments every batch subcommand takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BatchArgs {
    /// Only process the names listed in FILE: one per line, the first whitespace-separated
    /// field (so VOC `ImageSets` files and `<name> <labels…>` lists work); blank lines and
    /// lines starting with '#' are skipped.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,

    /// Process only every N-th name starting at I (0 ≤ I < N) of the sorted name list, so a
    /// cluster scheduler (a Slurm array, a Kubernetes indexed Job) can split a dataset: the
    /// shards 0/N … N−1/N together cover every name exactly once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,

    /// Recompute outputs that already exist (by default finished outputs are skipped, so an
    /// interrupted run can simply be started again).
    #[arg(long)]
    pub overwrite: bool,
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("'{s}': expected I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Every `count`-th name starting at `index`.
pub fn shard_names(names: &[String], shard: Shard) -> Vec<String> {
    names
        .iter()
        .skip(shard.index)
        .step_by(shard.count)
        .cloned()
        .collect()
}

/// The sorted stems of the files `dir/<stem>.<ext>` (extension compared case-insensitively;
/// hidden files skipped).
pub fn names_with_extension(dir: &Path, ext: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let matches = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case(ext));
        let stem = path.file_stem().and_then(|s| s.to_str());
        if let (true, Some(stem)) = (matches, stem) {
            if !stem.starts_with('.') {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Read a `--list` file (see [`BatchArgs::list`]). Names must be plain file stems.
pub fn read_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split_whitespace().next().unwrap_or(line);
        let name = name
            .strip_suffix(".png")
            .or_else(|| name.strip_suffix(".jpg"))
            .unwrap_or(name);
        if name.contains(['/', '\\']) || name == ".." || name == "." {
            return Err(Error::input(
                path.display().to_string(),
                format!(
                    "line {}: '{name}' is a path; expected an image name (a file stem)",
                    i + 1
                ),
            ));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// The names to process: the `--list` names if given (else `all`), sorted and de-duplicated,
/// then the `--shard`.
pub fn select(all: Vec<String>, args: &BatchArgs) -> Result<Vec<String>> {
    let mut names = match &args.list {
        Some(list) => read_list(list)?,
        None => all,
    };
    names.sort();
    names.dedup();
    Ok(match args.shard {
        Some(shard) => shard_names(&names, shard),
        None => names,
    })
}

/// One file a job produces.
pub struct Output {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl Output {
    pub fn new(path: PathBuf, bytes: Vec<u8>) -> Self {
        Output { path, bytes }
    }
}

/// How [`run`] behaves.
pub struct RunOptions {
    /// A word for the progress bar and the summary ("merge").
    pub verb: &'static str,
    pub overwrite: bool,
    /// Draw a progress bar (on stderr, only when it is a terminal).
    pub progress: bool,
    /// Print each failure as it happens (on stderr).
    pub print_errors: bool,
}

impl RunOptions {
    pub fn new(verb: &'static str, overwrite: bool) -> Self {
        RunOptions {
            verb,
            overwrite,
            progress: true,
            print_errors: true,
        }
    }
}

/// What a run did.
pub struct Outcome<T> {
    pub verb: &'static str,
    /// `(name, the job's report, time spent on it)`, in name order.
    pub done: Vec<(String, T, Duration)>,
    /// Names whose output already existed.
    pub skipped: Vec<String>,
    /// Names whose job failed, with the error.
    pub failed: Vec<(String, Error)>,
    pub elapsed: Duration,
    pub threads: usize,
}

/// Fills a report's batch fields: the list, shard and overwrite flags and the number of names
/// (in `inputs`), what was skipped and failed, time and threads. The images are the command's.
pub fn describe<T>(
    report: &mut camsam::refine::Report,
    args: &BatchArgs,
    names: &[String],
    outcome: &Outcome<T>,
) {
    use serde_json::Value;
    let path = |p: &std::path::Path| Value::from(p.display().to_string());
    report
        .inputs
        .insert("list".into(), args.list.as_deref().map(path).into());
    report
        .inputs
        .insert("shard".into(), args.shard.map(|s| s.to_string()).into());
    report
        .inputs
        .insert("overwrite".into(), args.overwrite.into());
    report.inputs.insert("names".into(), names.len().into());
    report.skipped = outcome.skipped.clone();
    for (name, e) in &outcome.failed {
        report.fail(name, e);
    }
    report.seconds = Some(outcome.elapsed.as_secs_f64());
    report.threads = Some(outcome.threads);
}

enum Status<T> {
    Done(T, Duration),
    Skipped,
    Failed(Error),
}

/// Run `job` for every name on the current rayon pool. `primary(name)` is the output whose
/// existence marks the name finished; `job(name)` returns the files to write and a report.
pub fn run<T, P, J>(names: &[String], opts: &RunOptions, primary: P, job: J) -> Outcome<T>
where
    T: Send,
    P: Fn(&str) -> PathBuf + Sync,
    J: Fn(&str) -> Result<(Vec<Output>, T)> + Sync,
{
    let start = Instant::now();
    let bar = if opts.progress {
        let bar = ProgressBar::new(names.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} (failed: {prefix})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(opts.verb);
        bar.set_prefix("0");
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut dirs: Vec<PathBuf> = names
        .iter()
        .filter_map(|n| primary(n).parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    let removed: usize = dirs
        .iter()
        .map(|d| remove_stale_temps(d, std::time::SystemTime::now(), 2))
        .sum();
    if removed > 0 {
        eprintln!(
            "{}: removed {removed} temp file(s) left by an interrupted run",
            opts.verb
        );
    }
    let failures = AtomicU64::new(0);
    let pace = Pace::new(names.len(), opts.progress && bar.is_hidden());
    let statuses: Vec<Status<T>> = names
        .par_iter()
        .map(|name| {
            let status = if !opts.overwrite && primary(name).exists() {
                Status::Skipped
            } else {
                let t = Instant::now();
                let marker = primary(name);
                match job(name).and_then(|(outputs, report)| {
                    // The primary output last: once it exists the name counts as finished.
                    let (last, first): (Vec<&Output>, Vec<&Output>) =
                        outputs.iter().partition(|o| o.path == marker);
                    for out in first.into_iter().chain(last) {
                        write_atomic(&out.path, &out.bytes)?;
                    }
                    Ok(report)
                }) {
                    Ok(report) => Status::Done(report, t.elapsed()),
                    Err(e) => {
                        let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
                        bar.set_prefix(n.to_string());
                        if opts.print_errors {
                            bar.suspend(|| eprintln!("error: {name}: {e}"));
                        }
                        Status::Failed(e)
                    }
                }
            };
            bar.inc(1);
            if let Some(line) = pace.step(!matches!(status, Status::Skipped)) {
                bar.set_message(format!("{}: {line}", opts.verb));
            }
            status
        })
        .collect();
    bar.finish_and_clear();
    let mut outcome = Outcome {
        verb: opts.verb,
        done: Vec::new(),
        skipped: Vec::new(),
        failed: Vec::new(),
        elapsed: start.elapsed(),
        threads: rayon::current_num_threads(),
    };
    for (name, status) in names.iter().zip(statuses) {
        match status {
            Status::Done(report, t) => outcome.done.push((name.clone(), report, t)),
            Status::Skipped => outcome.skipped.push(name.clone()),
            Status::Failed(e) => outcome.failed.push((name.clone(), e)),
        }
    }
    outcome
}

/// Images per hour and the time left, from the images worked on so far (finished or failed;
/// outputs already there are skipped at once and would inflate the rate). Shown in the
/// progress bar, or — when stderr is not a terminal, as in a cluster job's log — printed as a
/// line at most once a minute.
struct Pace {
    start: Instant,
    total: usize,
    counts: std::sync::Mutex<(usize, usize, Instant)>,
    print: bool,
}

impl Pace {
    fn new(total: usize, print: bool) -> Self {
        let now = Instant::now();
        Pace {
            start: now,
            total,
            counts: std::sync::Mutex::new((0, 0, now)),
            print,
        }
    }

    /// One more name processed (`worked`: not skipped); returns the progress text.
    fn step(&self, worked: bool) -> Option<String> {
        let mut c = self.counts.lock().ok()?;
        c.0 += 1;
        c.1 += usize::from(worked);
        let (processed, worked) = (c.0, c.1);
        let elapsed = self.start.elapsed().as_secs_f64();
        if worked == 0 || elapsed <= 0.0 {
            return None;
        }
        let per_hour = worked as f64 * 3600.0 / elapsed;
        let left = (self.total - processed) as f64 * 3600.0 / per_hour;
        let line = if processed == self.total {
            format!("{per_hour:.0} images/hour")
        } else {
            format!("{per_hour:.0} images/hour, ETA {}", duration_text(left))
        };
        if self.print && (c.2.elapsed().as_secs() >= 60 || processed == self.total) {
            c.2 = Instant::now();
            eprintln!("{processed}/{} · {line}", self.total);
        }
        Some(line)
    }
}

/// `3 h 05 min`, `12 min 40 s`, `9 s`.
fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s:02} s"),
        (h, m, _) => format!("{h} h {m:02} min"),
    }
}

impl<T> Outcome<T> {
    /// One line on stderr: how many were done, skipped and failed, and how long it took.
    pub fn print_summary(&self) {
        let n = self.done.len();
        let per = if n > 0 {
            format!(
                " ({:.2} ms per image on {} threads)",
                self.elapsed.as_secs_f64() * 1e3 / n as f64,
                self.threads
            )
        } else {
            String::new()
        };
        let peak = peak_rss_kib()
            .map(|k| format!(", peak RSS {:.0} MiB", k as f64 / 1024.0))
            .unwrap_or_default();
        eprintln!(
            "{}: {} done, {} skipped (already there; --overwrite to redo), {} failed in {:.2} s{per}{peak}",
            self.verb,
            n,
            self.skipped.len(),
            self.failed.len(),
            self.elapsed.as_secs_f64()
        );
    }

    /// `Err` naming the failed names when any failed (the CLI then exits non-zero).
    pub fn into_result(self) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let total = self.done.len() + self.skipped.len() + self.failed.len();
        let mut names: Vec<&str> = self.failed.iter().map(|(n, _)| n.as_str()).collect();
        let more = names.len().saturating_sub(10);
        names.truncate(10);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        Err(Error::input(
            self.verb,
            format!(
                "{} of {total} names failed ({}{tail}); the other outputs were written",
                self.failed.len(),
                names.join(", ")
            ),
        ))
    }
}

/// This process's peak resident set size in KiB (`VmHWM` of `/proc/self/status`; `None` where
/// there is no `/proc`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// This machine's name as temp files carry it (`/proc/sys/kernel/hostname`; "host" where
/// there is none), restricted to `[A-Za-z0-9.]`.
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let name: String = name
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        if name.is_empty() {
            "host".to_string()
        } else {
            name
        }
    })
}

/// `(host, pid)` of a temp file name written by [`write_atomic`].
fn temp_owner(file_name: &str) -> Option<(&str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (_, owner) = rest.rsplit_once(".tmp-")?;
    let mut parts = owner.rsplitn(3, '-');
    let _counter: u64 = parts.next()?.parse().ok()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    Some((parts.next()?, pid))
}

/// Remove the temp files of killed runs from `dir` and its subfolders (`depth` levels): those
/// written on this host by a process that no longer runs (`/proc/<pid>` is gone), last
/// modified before `started`. Returns how many were removed. Where `/proc` does not exist
/// nothing is removed (a live process cannot be told from a dead one).
pub fn remove_stale_temps(dir: &Path, started: std::time::SystemTime, depth: usize) -> usize {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth > 0 {
                removed += remove_stale_temps(&entry.path(), started, depth - 1);
            }
            continue;
        }
        let name = entry.file_name();
        let Some((owner_host, pid)) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        let stale = owner_host == host()
            && pid != std::process::id()
            && !proc_dir.join(pid.to_string()).exists()
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < started);
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Write `bytes` to `path` through a temp file in the same folder and a rename, so `path` is
/// either absent, the old file, or the complete new file. Creates the folder if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::input(path.display().to_string(), "not a file path"))?;
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}-{}",
        host(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_counts_only_images_worked_on() {
        assert_eq!(duration_text(9.4), "9 s");
        assert_eq!(duration_text(760.0), "12 min 40 s");
        assert_eq!(duration_text(3.0 * 3600.0 + 300.0), "3 h 05 min");
        let pace = Pace::new(4, false);
        // A skipped name first: no rate yet.
        assert_eq!(pace.step(false), None);
        let line = pace.step(true).unwrap_or_default();
        assert!(line.contains("images/hour, ETA"), "{line}");
        pace.step(true);
        let last = pace.step(true).unwrap_or_default();
        assert!(last.ends_with("images/hour"), "{last}");
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("camsam-batch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn quiet(overwrite: bool) -> RunOptions {
        RunOptions {
            verb: "test",
            overwrite,
            progress: false,
            print_errors: false,
        }
    }

    #[test]
    fn shards_partition_the_names_exactly_once() {
        let names: Vec<String> = (0..23).map(|i| format!("n{i:02}")).collect();
        for count in 1..=7 {
            let mut seen: Vec<String> = (0..count)
                .flat_map(|index| shard_names(&names, Shard { index, count }))
                .collect();
            seen.sort();
            assert_eq!(seen, names, "{count} shards");
        }
        assert_eq!(
            shard_names(&names, "1/10".parse().unwrap()),
            vec!["n01", "n11", "n21"]
        );
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
        for bad in ["5/5", "0/0", "1", "a/b", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn list_files_take_the_first_field_and_refuse_paths() {
        let dir = scratch("list");
        let list = dir.join("l.txt");
        std::fs::write(&list, "# names\nb 3 5\n\na.png\nb\n").unwrap();
        let args = BatchArgs {
            list: Some(list.clone()),
            ..Default::default()
        };
        assert_eq!(select(vec![], &args).unwrap(), vec!["a", "b"]);
        std::fs::write(&list, "ok\n../etc/passwd\n").unwrap();
        let err = read_list(&list).unwrap_err().to_string();
        assert!(err.contains("l.txt") && err.contains("line 2"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn finished_outputs_are_skipped_unless_overwrite_and_no_temp_files_remain() {
        let dir = scratch("skip");
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let primary = |n: &str| dir.join(format!("{n}.out"));
        let job = |n: &str| -> Result<(Vec<Output>, usize)> {
            Ok((
                vec![Output::new(primary(n), n.as_bytes().to_vec())],
                n.len(),
            ))
        };
        let first = run(&names, &quiet(false), primary, job);
        assert_eq!(first.done.len(), 3);
        std::fs::write(primary("b"), "old").unwrap();
        let second = run(&names, &quiet(false), primary, job);
        assert_eq!((second.done.len(), second.skipped.len()), (0, 3));
        assert_eq!(std::fs::read_to_string(primary("b")).unwrap(), "old");
        let third = run(&names, &quiet(true), primary, job);
        assert_eq!(third.done.len(), 3);
        assert_eq!(std::fs::read_to_string(primary("b")).unwrap(), "b");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, vec!["a.out", "b.out", "c.out"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_temps_of_dead_processes_on_this_host_are_removed() {
        let dir = scratch("stale");
        std::fs::create_dir_all(dir.join("overlay")).unwrap();
        let h = host();
        let me = std::process::id();
        // No process has a pid over 2^22 on Linux (pid_max's ceiling).
        let dead = 999_999_999u32;
        let files = [
            (format!(".a.png.tmp-{h}-{dead}-0"), false),
            (format!("overlay/.a.png.tmp-{h}-{dead}-1"), false),
            (format!(".b.png.tmp-{h}-{me}-2"), true),
            (format!(".c.png.tmp-other.host-{dead}-3"), true),
            (format!(".d.png.tmp-{h}-1-4"), true),
            ("a.png".to_string(), true),
        ];
        for (f, _) in &files {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let later = std::time::SystemTime::now() + Duration::from_secs(1);
        // Temps newer than the run's start are kept whatever their owner.
        let earlier = std::time::SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(remove_stale_temps(&dir, earlier, 2), 0);
        assert_eq!(remove_stale_temps(&dir, later, 2), 2);
        for (f, kept) in &files {
            assert_eq!(dir.join(f).exists(), *kept, "{f}");
        }
        assert_eq!(temp_owner(".x.png.tmp-my-host-12-3"), Some(("my-host", 12)));
        assert_eq!(temp_owner("x.png"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_primary_output_is_written_last() {
        let dir = scratch("order");
        // "blocker" is a file, so the overlay cannot be written there.
        std::fs::write(dir.join("blocker"), "").unwrap();
        let names = vec!["a".to_string()];
        let primary = |n: &str| dir.join(format!("{n}.png"));
        // The job lists the primary first; it must not be in place while the overlay is not.
        let outcome = run(&names, &quiet(false), primary, |n| {
            Ok((
                vec![
                    Output::new(primary(n), vec![1]),
                    Output::new(dir.join("blocker").join(format!("{n}.png")), vec![2]),
                ],
                (),
            ))
        });
        assert_eq!(outcome.failed.len(), 1);
        assert!(
            !primary("a").exists(),
            "the name looks finished without its overlay"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failing_name_is_reported_and_the_others_are_kept() {
        let dir = scratch("fail");
        let names: Vec<String> = ["a", "bad", "c"].iter().map(|s| s.to_string()).collect();
        let primary = |n: &str| dir.join(format!("{n}.out"));
        let outcome = run(&names, &quiet(false), primary, |n| {
            if n == "bad" {
                return Err(Error::input(format!("{n}.png"), "broken"));
            }
            Ok((vec![Output::new(primary(n), vec![1])], ()))
        });
        assert_eq!(outcome.done.len(), 2);
        assert_eq!(outcome.failed.len(), 1);
        assert_eq!(outcome.failed[0].0, "bad");
        assert!(primary("a").exists() && primary("c").exists() && !primary("bad").exists());
        let err = outcome.into_result().unwrap_err().to_string();
        assert!(err.contains("1 of 3") && err.contains("bad"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_are_the_sorted_stems_with_the_extension() {
        let dir = scratch("names");
        for f in ["b.png", "a.PNG", "c.txt", ".hidden.png"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        std::fs::create_dir(dir.join("d.png")).unwrap();
        assert_eq!(names_with_extension(&dir, "png").unwrap(), vec!["a", "b"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
