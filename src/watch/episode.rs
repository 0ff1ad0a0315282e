//! One caught worker, followed until its episode ends: py-spy dumps every `interval` (the first
//! ones with the frames' locals, for the request line; see [`crate::live::dump::requests`]), its
//! memory at each dump, and with `--pg` its PostgreSQL backend while its stack waits on the
//! database, until its heartbeat moves again (recovered), it dies (killed by the master), or
//! watch stops (interrupted).
//!
//! A failing py-spy ends the sampling of this worker only: the episode still waits for the
//! worker's end and reports what it could not see. Memory is bounded: at most
//! [`MAX_SAMPLES`] dumps are kept (the latest), whatever the episode's length.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::analyze::live::{self as diagnosis, BackendLookup};
use crate::live::pg_activity::PgLookup;
use crate::live::procfs;
use crate::live::pyspy::{DumpOptions, PySpy, PySpyError};
use crate::live::sampler::{MemoryReading, Sample};
use crate::report::Cause;

/// Dumps kept per episode: the latest ones (at 200 ms, the last 30 s).
pub const MAX_SAMPLES: usize = 150;
/// Dumps with locals tried for the request line before giving up on it.
const REQUEST_TRIES: usize = 3;
/// PostgreSQL is asked about the worker's backend at most this often.
const PG_EVERY: Duration = Duration::from_secs(1);
/// After a failed connection, wait this long before trying again.
const PG_RETRY: Duration = Duration::from_secs(5);
/// A dump taking longer than this is killed.
const DUMP_DEADLINE: Duration = Duration::from_secs(5);

/// How episodes sample.
#[derive(Debug, Clone)]
pub struct EpisodeConfig {
    pub pyspy: PySpy,
    pub interval: Duration,
    pub dsn: Option<String>,
}

/// Why a worker was caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaughtBy {
    /// Its heartbeat passed the threshold.
    Heartbeat,
    /// Its RSS grew fast, or its pages went to swap, before any timeout.
    Memory,
}

/// One memory reading of a caught worker, for the incident's RSS curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemoryPoint {
    /// Seconds from `caught_at` (negative: read before it was caught).
    pub at_seconds: f64,
    pub rss_bytes: u64,
    pub swap_bytes: u64,
}

/// Memory points kept per episode (the latest).
pub const MAX_MEMORY_POINTS: usize = 120;

/// A worker whose heartbeat passed the threshold, or whose memory grew fast.
#[derive(Debug, Clone)]
pub struct Caught {
    pub by: CaughtBy,
    /// The memory readings that led to the catch (memory catches), oldest first.
    pub memory_before: Vec<MemoryPoint>,
    pub pid: u32,
    /// When watch saw the heartbeat past the threshold.
    pub at: SystemTime,
    /// The heartbeat file (inode) and its ctime then: a later ctime is the worker's next notify.
    pub inode: u64,
    pub heartbeat: SystemTime,
    /// Its age then, in seconds.
    pub age: f64,
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The worker died while caught: the master's SIGABRT/SIGKILL (or another kill).
    Killed,
    /// Its heartbeat moved again: the request finished before the timeout.
    Recovered,
    /// watch stopped (Ctrl-C, SIGTERM, --duration) while the worker was still caught.
    Interrupted,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Killed => "killed",
            Outcome::Recovered => "recovered",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Everything read about one caught worker.
#[derive(Debug)]
pub struct Episode {
    pub caught: Caught,
    pub outcome: Outcome,
    pub ended_at: SystemTime,
    /// The latest [`MAX_SAMPLES`] dumps, `at` counted from `caught.at`.
    pub samples: Vec<Sample>,
    /// Dumps taken in all (the ones beyond [`MAX_SAMPLES`] were dropped, oldest first).
    pub samples_taken: usize,
    /// The request line read from the stack's WSGI environ, with the thread serving it.
    pub request: Option<(u64, String)>,
    /// PostgreSQL's last view of the worker's backend (with `--pg`).
    pub backend: BackendLookup,
    /// Why `--pg` gave nothing, when it failed.
    pub pg_error: Option<String>,
    /// Dumps that failed, and the first failure.
    pub failures: usize,
    pub first_failure: Option<String>,
    /// A failure that ended the sampling of this worker (py-spy cannot read it).
    pub sampling_stopped: Option<String>,
    /// The oldest heartbeat age seen while caught, in seconds.
    pub max_age: f64,
    pub memory_first: Option<MemoryReading>,
    pub memory_last: Option<MemoryReading>,
    /// RSS and swap over the episode (with the readings before the catch), at most
    /// [`MAX_MEMORY_POINTS`].
    pub memory_curve: Vec<MemoryPoint>,
}

/// Follows `caught` until its episode ends. Returns within about `interval` of `stop` being set,
/// with any py-spy it runs stopped and the worker left running.
pub fn follow(caught: Caught, config: &EpisodeConfig, stop: &AtomicBool) -> Episode {
    let start = Instant::now();
    let pid = caught.pid;
    let mut episode = Episode {
        outcome: Outcome::Interrupted,
        ended_at: caught.at,
        samples: Vec::new(),
        samples_taken: 0,
        request: None,
        backend: BackendLookup::NotAsked,
        pg_error: None,
        failures: 0,
        first_failure: None,
        sampling_stopped: None,
        max_age: caught.age,
        memory_first: None,
        memory_last: None,
        memory_curve: caught.memory_before.clone(),
        caught,
    };
    let mut pg = PgState::default();
    let mut request_tries = 0;
    let mut next = Instant::now();
    episode.outcome = loop {
        if stop.load(Ordering::SeqCst) {
            break Outcome::Interrupted;
        }
        if !procfs::is_alive(pid) {
            break Outcome::Killed;
        }
        match heartbeat_now(pid, episode.caught.inode) {
            Some(changed) if changed > episode.caught.heartbeat => break Outcome::Recovered,
            Some(changed) => {
                let age = SystemTime::now()
                    .duration_since(changed)
                    .unwrap_or_default()
                    .as_secs_f64();
                episode.max_age = episode.max_age.max(age);
            }
            None => {}
        }
        if episode.sampling_stopped.is_none() {
            let began = Instant::now();
            let options = DumpOptions {
                nonblocking: false,
                requests: episode.request.is_none() && request_tries < REQUEST_TRIES,
                deadline: DUMP_DEADLINE,
            };
            request_tries += usize::from(options.requests);
            match config.pyspy.dump_until(pid, &options, Some(stop)) {
                Ok(dump) => {
                    if episode.request.is_none() {
                        episode.request = dump.requests.into_iter().next();
                    }
                    if episode.samples.len() == MAX_SAMPLES {
                        episode.samples.remove(0);
                    }
                    episode.samples.push(Sample {
                        at: began - start,
                        took: began.elapsed(),
                        threads: dump.threads,
                    });
                    episode.samples_taken += 1;
                    if let Some(m) = read_memory(pid, start) {
                        episode.memory_first.get_or_insert(m);
                        episode.memory_last = Some(m);
                        if episode.memory_curve.len() == MAX_MEMORY_POINTS {
                            episode.memory_curve.remove(0);
                        }
                        episode.memory_curve.push(MemoryPoint {
                            at_seconds: (m.at.as_secs_f64() * 100.0).round() / 100.0,
                            rss_bytes: m.memory.rss_bytes,
                            swap_bytes: m.memory.swap_bytes,
                        });
                    }
                }
                Err(PySpyError::Exited { .. }) => break Outcome::Killed,
                Err(PySpyError::Interrupted { .. }) => break Outcome::Interrupted,
                Err(e) => {
                    episode.failures += 1;
                    if episode.first_failure.is_none() {
                        episode.first_failure = Some(e.to_string());
                    }
                    if e.is_permanent() {
                        episode.sampling_stopped = Some(e.to_string());
                    }
                }
            }
            if let Some(dsn) = &config.dsn {
                pg.look_up(dsn, pid, &mut episode);
            }
        }
        next += config.interval;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        // Short sleeps: stop is answered within 20 ms.
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(20)));
        }
    };
    episode.ended_at = SystemTime::now();
    episode
}

/// The ctime of the caught heartbeat file, if the worker still holds it.
fn heartbeat_now(pid: u32, inode: u64) -> Option<SystemTime> {
    procfs::heartbeat_files(pid)
        .ok()?
        .into_iter()
        .find(|(i, _)| *i == inode)
        .map(|(_, h)| h.changed)
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

/// One episode's PostgreSQL connection, opened when first needed.
#[derive(Default)]
struct PgState {
    client: Option<PgLookup>,
    last_asked: Option<Instant>,
    last_failed: Option<Instant>,
}

impl PgState {
    /// Asks PostgreSQL about the worker's backend when its stacks wait on the database (at most
    /// every [`PG_EVERY`]); keeps the latest answer that found it.
    fn look_up(&mut self, dsn: &str, pid: u32, episode: &mut Episode) {
        if self.last_asked.is_some_and(|t| t.elapsed() < PG_EVERY)
            || self.last_failed.is_some_and(|t| t.elapsed() < PG_RETRY)
        {
            return;
        }
        let reading = diagnosis::read_stacks(&episode.samples, 0.5);
        let on_database = reading.waits_on_database
            || matches!(
                reading.cause,
                Some(Cause::SlowQuery | Cause::NPlusOne | Cause::LockWait)
            );
        if !on_database {
            return;
        }
        self.last_asked = Some(Instant::now());
        let locals: Vec<SocketAddr> = procfs::tcp_connections(pid)
            .map(|c| c.into_iter().map(|c| c.local).collect())
            .unwrap_or_default();
        if locals.is_empty() {
            return;
        }
        if self.client.is_none() {
            match PgLookup::connect(dsn) {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    self.last_failed = Some(Instant::now());
                    episode.pg_error = Some(e.to_string());
                    if matches!(episode.backend, BackendLookup::NotAsked) {
                        episode.backend = BackendLookup::Failed;
                    }
                    return;
                }
            }
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        match client.by_client(&locals) {
            Ok(found) => {
                match locals.iter().find_map(|l| found.get(l).cloned()) {
                    Some(b) => episode.backend = BackendLookup::Found(Box::new(b)),
                    None if !matches!(episode.backend, BackendLookup::Found(_)) => {
                        episode.backend = BackendLookup::Unmatched
                    }
                    None => {}
                }
                episode.pg_error = None;
            }
            Err(e) => {
                // The connection may be broken: open a new one next time.
                self.client = None;
                self.last_failed = Some(Instant::now());
                episode.pg_error = Some(e.to_string());
                if matches!(episode.backend, BackendLookup::NotAsked) {
                    episode.backend = BackendLookup::Failed;
                }
            }
        }
    }
}
