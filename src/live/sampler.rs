//! Repeated py-spy dumps of every worker, in parallel, for a fixed duration: one thread per
//! worker takes a dump every `interval` (skipping, not bunching, the ones it is late for), with
//! the worker's memory read at the first and last sample. With a master, its children are
//! looked up again every second, so replacement workers are sampled too.
//!
//! Stopping is cooperative: when `stop` is set (Ctrl-C) no new dump starts and the ones in
//! flight finish (they take milliseconds), so no target is left stopped by a killed py-spy.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::dump::ThreadStack;
use super::procfs::{self, MemoryUse};
use super::pyspy::{PySpy, PySpyError};

/// How to sample.
#[derive(Debug, Clone, Copy)]
pub struct SamplingPlan {
    pub duration: Duration,
    pub interval: Duration,
    /// py-spy `--nonblocking`: never pause the target, accept torn stacks.
    pub nonblocking: bool,
    /// One dump taking longer than this is killed.
    pub dump_deadline: Duration,
}

/// One dump of one worker.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the dump started, from the start of sampling.
    pub at: Duration,
    /// How long py-spy ran (process start to exit).
    pub took: Duration,
    pub threads: Vec<ThreadStack>,
}

/// A memory reading with its time, for rates.
#[derive(Debug, Clone, Copy)]
pub struct MemoryReading {
    pub at: Duration,
    pub memory: MemoryUse,
    pub major_faults: u64,
}

/// Everything sampled from one worker.
#[derive(Debug)]
pub struct WorkerRecord {
    pub pid: u32,
    /// When sampling of this worker began (later than 0 for a worker that appeared meanwhile).
    pub joined_at: Duration,
    pub samples: Vec<Sample>,
    /// Dumps that failed without ending the worker's sampling.
    pub failures: Vec<PySpyError>,
    /// The failure that ended its sampling early (the worker exited, or py-spy cannot read it).
    pub stopped_by: Option<(Duration, PySpyError)>,
    pub memory_first: Option<MemoryReading>,
    pub memory_last: Option<MemoryReading>,
}

/// The result of one sampling run.
#[derive(Debug)]
pub struct SamplingRun {
    /// In pid order.
    pub workers: Vec<WorkerRecord>,
    pub started_at: SystemTime,
    pub elapsed: Duration,
    /// True when `stop` ended it before `duration`.
    pub interrupted: bool,
}

/// What the progress display needs, polled by [`sample`]'s caller.
pub struct Progress {
    pub elapsed: Duration,
    pub workers: usize,
    pub samples: u64,
}

/// Who to sample.
pub enum Targets {
    /// Every child of this master, including the ones that appear while sampling.
    Master { pid: u32, workers: Vec<u32> },
    /// Just these processes.
    Workers(Vec<u32>),
}

/// How often a master's children are listed again.
const RESCAN_EVERY: Duration = Duration::from_secs(1);

pub fn sample(
    pyspy: &PySpy,
    targets: Targets,
    plan: SamplingPlan,
    stop: &AtomicBool,
    on_progress: &dyn Fn(Progress),
) -> SamplingRun {
    let started_at = SystemTime::now();
    let start = Instant::now();
    let deadline = start + plan.duration;
    let samples_taken = AtomicU64::new(0);
    let records: Mutex<BTreeMap<u32, WorkerRecord>> = Mutex::new(BTreeMap::new());
    let (master, initial) = match targets {
        Targets::Master { pid, workers } => (Some(pid), workers),
        Targets::Workers(w) => (None, w),
    };

    std::thread::scope(|s| {
        let mut started: Vec<u32> = Vec::new();
        let spawn = |pid: u32| {
            let records = &records;
            let samples_taken = &samples_taken;
            s.spawn(move || {
                let record = sample_worker(pyspy, pid, plan, start, deadline, stop, samples_taken);
                if let Ok(mut r) = records.lock() {
                    r.insert(pid, record);
                }
            });
        };
        for pid in initial {
            spawn(pid);
            started.push(pid);
        }
        let mut last_scan = Instant::now();
        loop {
            let now = Instant::now();
            on_progress(Progress {
                elapsed: now - start,
                workers: started.len(),
                samples: samples_taken.load(Ordering::Relaxed),
            });
            if now >= deadline || stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(master) = master
                && now - last_scan >= RESCAN_EVERY
            {
                last_scan = now;
                for pid in procfs::children(master) {
                    if !started.contains(&pid) && procfs::is_python(pid).unwrap_or(false) {
                        spawn(pid);
                        started.push(pid);
                    }
                }
            }
            std::thread::sleep(
                Duration::from_millis(50).min(deadline.saturating_duration_since(now)),
            );
        }
    });

    let elapsed = start.elapsed();
    SamplingRun {
        workers: records
            .into_inner()
            .map(|r| r.into_values().collect())
            .unwrap_or_default(),
        started_at,
        elapsed,
        interrupted: stop.load(Ordering::Relaxed) && elapsed < plan.duration,
    }
}

fn read_memory(pid: u32, start: Instant) -> Option<MemoryReading> {
    let memory = procfs::memory(pid).ok()?;
    let stat = procfs::stat(pid).ok()?;
    Some(MemoryReading {
        at: start.elapsed(),
        memory,
        major_faults: stat.major_faults,
    })
}

fn sample_worker(
    pyspy: &PySpy,
    pid: u32,
    plan: SamplingPlan,
    start: Instant,
    deadline: Instant,
    stop: &AtomicBool,
    samples_taken: &AtomicU64,
) -> WorkerRecord {
    let mut record = WorkerRecord {
        pid,
        joined_at: start.elapsed(),
        samples: Vec::new(),
        failures: Vec::new(),
        stopped_by: None,
        memory_first: read_memory(pid, start),
        memory_last: None,
    };
    let mut next = Instant::now();
    loop {
        // Sleep in short steps so that Ctrl-C is answered within 50 ms.
        loop {
            let now = Instant::now();
            if now >= next || now >= deadline || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
        }
        let began = Instant::now();
        if began >= deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        match pyspy.dump(pid, plan.nonblocking, plan.dump_deadline) {
            Ok(threads) => {
                record.samples.push(Sample {
                    at: began - start,
                    took: began.elapsed(),
                    threads,
                });
                samples_taken.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = read_memory(pid, start) {
                    record.memory_first.get_or_insert(m);
                    record.memory_last = Some(m);
                }
            }
            Err(e) if e.is_permanent() => {
                record.stopped_by = Some((began - start, e));
                break;
            }
            Err(e) => record.failures.push(e),
        }
        next += plan.interval;
        let now = Instant::now();
        if next < now {
            // Late (a slow dump, a busy machine): skip the missed ticks rather than bunch them.
            next = now;
        }
    }
    record
}
