//! Live samples → what each worker is doing now, in the cause vocabulary: its state (idle, busy,
//! stuck), the longest time it stayed in one stack, the application call site, the seconds left
//! before the master's timeout kills it, and findings grouped by cause and call site.
//!
//! Each sampled stack is named by [`stack::classify`], the same reading `wtdiag logs` gives an
//! abort traceback. Across samples this module adds what one stack cannot show: whether the
//! worker is blocked (py-spy's `active` flag) or computing, whether the same stack persists (a
//! wait) or changes (a loop), and lazy loads repeated across samples (N+1). PostgreSQL's view of
//! the worker's backend (`--pg`) tells a lock wait from a slow statement.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use crate::analyze::live_calls::{self, OutboundCall, PeerKind};
use crate::analyze::stack::{self, Origin, StackVerdict};
use crate::live::dump::ThreadStack;
use crate::live::gunicorn_config::WorkerClass;
use crate::live::pg_activity::{Backend, BackendActivity};
use crate::live::profile::{self, ThreadPoint};
use crate::live::sampler::Sample;
use crate::report::{
    Cause, Confidence, Evidence, Finding, Frame, SampledFrame, Severity, ThreadState, WorkerState,
};

/// Innermost frames listed per worker.
const HOT_FRAMES: usize = 3;
/// Major faults per second from which a worker with pages in swap is thrashing.
const THRASHING_FAULTS_PER_SECOND: f64 = 50.0;
/// RSS growth during sampling that is a memory problem in itself: at least this much...
const GROWTH_MIN_BYTES: i64 = 100 << 20;
/// ...at least this fast.
const GROWTH_MIN_BYTES_PER_SECOND: f64 = (20 << 20) as f64;
/// Workers listed as evidence per finding.
const EVIDENCE_WORKERS: usize = 4;
/// gthread's main loop notifies the master at least once a second (`ThreadWorker.run`:
/// `self.notify()`, then `poller.select(timeout=1.0)`); a heartbeat older than this means the
/// main thread could not run.
const MAIN_LOOP_SILENT_SECONDS: f64 = 3.0;

/// What the worker is doing, by its stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// In Gunicorn's accept loop (or only in background threads).
    Idle,
    /// Serving a request, its stack changing.
    Busy,
    /// Serving a request, in the same stack for at least the stuck threshold.
    Stuck,
    /// No sample could be taken.
    Unsampled,
}

impl Activity {
    fn name(self) -> &'static str {
        match self {
            Activity::Idle => "idle",
            Activity::Busy => "busy",
            Activity::Stuck => "stuck",
            Activity::Unsampled => "unsampled",
        }
    }
}

/// What a worker's stacks say, before anything else is looked up.
#[derive(Debug, Clone)]
pub struct StackReading {
    pub activity: Activity,
    /// The thread serving the request.
    pub thread_id: Option<u64>,
    pub samples: usize,
    /// Samples of the current request (the trailing run of busy samples).
    pub busy_samples: usize,
    /// The longest time the request's thread stayed in one stack.
    pub stuck_seconds: f64,
    pub cause: Option<Cause>,
    pub confidence: Confidence,
    pub reason: String,
    /// The application line to change.
    pub call_site: Option<Frame>,
    /// The view function of the request (the first application frame under Django's handler).
    pub view: Option<Frame>,
    /// Where the thread was, innermost.
    pub stuck_frame: Option<Frame>,
    pub hot_frames: Vec<SampledFrame>,
    /// Blocked in the database driver: PostgreSQL can say on what.
    pub waits_on_database: bool,
    /// How long the thread has been blocked in the same database call (0 when it is not).
    pub database_block_seconds: f64,
    /// Samples of the request inside a lazy related-object load.
    pub lazy_samples: usize,
    /// When the request's samples start and end (seconds since sampling began).
    pub busy_from: f64,
    pub busy_to: f64,
    /// The request was already running at the first sample: `busy_to - busy_from` is a lower
    /// bound of how long it has run.
    pub busy_from_start: bool,
    /// The thread's name (`ThreadPoolExecutor-0_1`, `MainThread`), when py-spy could read it.
    pub thread_name: Option<String>,
    /// The outbound call the thread waits in, named for its peer.
    pub call: Option<OutboundCall>,
    /// The request was on the thread in every sample for at least the stuck threshold: on an
    /// event loop, which switches only when a call yields, it held the loop that long.
    pub long_run: bool,
}

impl StackReading {
    fn empty(activity: Activity, thread_id: Option<u64>, samples: usize) -> StackReading {
        StackReading {
            activity,
            thread_id,
            samples,
            busy_samples: 0,
            stuck_seconds: 0.0,
            cause: None,
            confidence: Confidence::Low,
            reason: String::new(),
            call_site: None,
            view: None,
            stuck_frame: None,
            hot_frames: Vec::new(),
            waits_on_database: false,
            database_block_seconds: 0.0,
            lazy_samples: 0,
            busy_from: 0.0,
            busy_to: 0.0,
            busy_from_start: false,
            thread_name: None,
            call: None,
            long_run: false,
        }
    }

    fn is_busy(&self) -> bool {
        matches!(self.activity, Activity::Busy | Activity::Stuck)
    }
}

fn method(function: &str) -> &str {
    function.rsplit('.').next().unwrap_or(function)
}

fn is_gunicorn(f: &Frame) -> bool {
    stack::origin(&f.file) == Origin::Package("gunicorn")
}

/// A frame that runs one request whatever the worker class: Django's WSGI/ASGI handler, an ASGI
/// server's per-request task (uvicorn's `RequestResponseCycle.run_asgi`).
fn is_request_entry(f: &Frame) -> bool {
    f.file.contains("/django/core/handlers/")
        || (stack::origin(&f.file) == Origin::Package("uvicorn")
            && f.function.ends_with("run_asgi"))
}

/// True when the thread is inside a request: under Gunicorn's request handler (sync, gthread's
/// pool threads, gevent's greenlets), a WSGI/ASGI request frame, or application code called from
/// the worker's loop (an asyncio callback: uvicorn). The launcher's frames before Gunicorn's
/// first one (`bin/gunicorn`'s `<module>`) do not count as application code.
fn is_serving(frames: &[Frame]) -> bool {
    let app_or_entry = |f: &Frame| stack::origin(&f.file) == Origin::App || is_request_entry(f);
    match frames.iter().position(is_gunicorn) {
        Some(first) => frames[first..].iter().any(|f| {
            (is_gunicorn(f) && matches!(method(&f.function), "handle_request" | "handle"))
                || app_or_entry(f)
        }),
        None => frames.iter().any(app_or_entry),
    }
}

struct PointReading<'a> {
    point: ThreadPoint<'a>,
    serving: bool,
    verdict: Option<StackVerdict>,
    /// The outbound call a blocked request thread waits in.
    call: Option<OutboundCall>,
}

fn read_point(point: ThreadPoint<'_>) -> PointReading<'_> {
    let serving = is_serving(&point.stack.frames);
    PointReading {
        point,
        serving,
        verdict: serving.then(|| stack::classify(&point.stack.frames)),
        call: (serving && !point.stack.active)
            .then(|| live_calls::outbound_call(&point.stack.frames))
            .flatten(),
    }
}

/// `wtapp/views.py:30 in upstream_api_view`: the last two path components, so a Django app's
/// name stays in sight.
pub fn site(f: &Frame) -> String {
    let mut parts = f.file.rsplit('/');
    let file = parts.next().unwrap_or(&f.file);
    let path = match parts.next() {
        Some(dir) if !dir.is_empty() && stack::origin(&f.file) == Origin::App => {
            format!("{dir}/{file}")
        }
        _ => file.to_string(),
    };
    format!("{path}:{} in {}", f.line, f.function)
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Reads a worker's samples. `stuck_min` is the streak from which a request counts as stuck.
pub fn read_stacks(samples: &[Sample], stuck_min: f64) -> StackReading {
    let idle = |activity, thread_id| StackReading::empty(activity, thread_id, samples.len());
    if samples.is_empty() {
        return idle(Activity::Unsampled, None);
    }
    // The request thread: the one busy at the end, with the longest busy run, then most busy.
    let timelines = profile::threads(samples);
    let mut best: Option<(usize, usize, usize, u64, Vec<PointReading<'_>>)> = None;
    for t in &timelines {
        let readings: Vec<PointReading<'_>> = t.points.iter().copied().map(read_point).collect();
        let trailing = readings.iter().rev().take_while(|r| r.serving).count();
        let total = readings.iter().filter(|r| r.serving).count();
        let busy_now = usize::from(trailing > 0);
        let better = best
            .as_ref()
            .is_none_or(|b| (busy_now, trailing, total) > (b.0, b.1, b.2));
        if better {
            best = Some((busy_now, trailing, total, t.thread_id, readings));
        }
    }
    let Some((_, trailing, _, thread_id, readings)) = best else {
        return idle(Activity::Idle, None);
    };
    if trailing == 0 {
        return idle(Activity::Idle, Some(thread_id));
    }
    let run = &readings[readings.len() - trailing..];
    let name = timelines
        .iter()
        .find(|t| t.thread_id == thread_id)
        .and_then(|t| t.name);
    with_thread(
        read_request(run, samples.len(), thread_id, stuck_min),
        name,
        readings.len() == trailing && run[0].point.at <= samples[0].at.as_secs_f64(),
    )
}

fn with_thread(mut reading: StackReading, name: Option<&str>, from_start: bool) -> StackReading {
    reading.thread_name = name.map(str::to_string);
    reading.busy_from_start = from_start;
    reading
}

/// Every thread of a worker that is serving a request at the end of sampling, each read on its
/// own (gthread's pool threads; one thread for the other classes), in order of first appearance.
pub fn read_threads(samples: &[Sample], stuck_min: f64) -> Vec<StackReading> {
    let Some(first_at) = samples.first().map(|s| s.at.as_secs_f64()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in profile::threads(samples) {
        let readings: Vec<PointReading<'_>> = t.points.iter().copied().map(read_point).collect();
        let trailing = readings.iter().rev().take_while(|r| r.serving).count();
        if trailing == 0 {
            continue;
        }
        let run = &readings[readings.len() - trailing..];
        let reading = read_request(run, samples.len(), t.thread_id, stuck_min);
        if reading.is_busy() {
            let from_start = readings.len() == trailing && run[0].point.at <= first_at;
            out.push(with_thread(reading, t.name, from_start));
        }
    }
    out
}

/// The worker class by the frames its threads run: the stacks say what runs, whatever the
/// config says (a class set by an expression, a custom subclass).
pub fn class_from_stacks(samples: &[Sample]) -> Option<WorkerClass> {
    for sample in samples.iter().take(3) {
        for t in &sample.threads {
            for f in &t.frames {
                let file = f.file.as_str();
                let class = if file.ends_with("gunicorn/workers/gthread.py") {
                    WorkerClass::Gthread
                } else if file.ends_with("gunicorn/workers/ggevent.py")
                    || file.ends_with("gevent/hub.py")
                {
                    WorkerClass::Gevent
                } else if file.ends_with("gunicorn/workers/geventlet.py")
                    || file.contains("/eventlet/hubs/")
                {
                    WorkerClass::Eventlet
                } else if file.ends_with("uvicorn/workers.py")
                    || file.ends_with("uvicorn_worker/_workers.py")
                    || file.ends_with("gunicorn/workers/gasgi.py")
                {
                    WorkerClass::Asyncio
                } else if file.ends_with("gunicorn/workers/sync.py") {
                    WorkerClass::Sync
                } else {
                    continue;
                };
                return Some(class);
            }
        }
    }
    None
}

/// The cause of one request from its run of busy samples.
fn read_request(
    run: &[PointReading<'_>],
    samples: usize,
    thread_id: u64,
    stuck_min: f64,
) -> StackReading {
    let points: Vec<ThreadPoint<'_>> = run.iter().map(|r| r.point).collect();
    let verdicts: Vec<&StackVerdict> = run.iter().filter_map(|r| r.verdict.as_ref()).collect();
    let n = verdicts.len();
    let streaks = profile::streaks(&points);
    let longest = profile::longest(&streaks).map(|s| s.seconds).unwrap_or(0.0);
    let (Some(current), Some(last)) = (streaks.last().copied(), verdicts.last().copied()) else {
        return StackReading::empty(Activity::Idle, Some(thread_id), samples);
    };
    let current_points = &run[current.first..=current.last];
    let current_blocked = current_points.iter().all(|r| !r.point.stack.active);
    let stuck_now = current.seconds >= stuck_min;
    let is_db = |v: &StackVerdict| matches!(v.cause, Cause::SlowQuery | Cause::NPlusOne);
    let db_points: Vec<usize> = (0..n).filter(|i| is_db(verdicts[*i])).collect();
    // Separate visits to the database: runs of database samples broken by a change of stack.
    let db_visits = streaks
        .iter()
        .filter(|s| (s.first..=s.last).any(|i| db_points.contains(&i)))
        .count();
    let db_sites: Vec<Option<String>> = db_points
        .iter()
        .map(|i| verdicts[*i].call_site.as_ref().map(site))
        .collect();
    let one_db_site = db_sites.windows(2).all(|w| w[0] == w[1]);

    let mut reading = StackReading {
        activity: if longest >= stuck_min {
            Activity::Stuck
        } else {
            Activity::Busy
        },
        busy_samples: n,
        stuck_seconds: longest,
        confidence: Confidence::Medium,
        call_site: last.call_site.clone(),
        view: last.view.clone(),
        stuck_frame: last.stuck_frame.clone(),
        hot_frames: hot_frames(run.iter().map(|r| r.point.stack)),
        busy_from: points[0].at,
        busy_to: points[n - 1].at,
        ..StackReading::empty(Activity::Busy, Some(thread_id), samples)
    };
    let samples_of = |k: usize| format!("{k} of {n} samples");
    reading.long_run = reading.busy_to - reading.busy_from >= stuck_min;

    let lazy_points: Vec<usize> = (0..n)
        .filter(|i| verdicts[*i].cause == Cause::NPlusOne)
        .collect();
    let lazy_visits = streaks
        .iter()
        .filter(|s| (s.first..=s.last).any(|i| lazy_points.contains(&i)))
        .count();
    // Lazy loads seen in separate visits, or while the thread ran: a loop of queries. (Each lazy
    // query has the same stack, so a busy machine that slows PostgreSQL can show one blocked
    // stack for a second; that alone is no single slow statement.)
    let repeated_lazy = lazy_points.len() >= 2
        && (lazy_visits >= 2 || lazy_points.iter().any(|i| run[*i].point.stack.active));
    let repeated_queries = n >= 3 && db_points.len() >= 3 && db_visits >= 2 && one_db_site;
    let blocked_in_db = is_db(last) && current_blocked && stuck_now;
    reading.database_block_seconds = if blocked_in_db { current.seconds } else { 0.0 };
    reading.lazy_samples = lazy_points.len();

    if blocked_in_db && !repeated_lazy && !repeated_queries {
        // One statement the thread is blocked on: a lock or a slow query, even inside a lazy load.
        reading.cause = Some(Cause::SlowQuery);
        reading.confidence = Confidence::Low;
        reading.waits_on_database = true;
        let inside = if last.cause == Cause::NPlusOne {
            " (inside a lazy related-object load)"
        } else {
            ""
        };
        reading.reason = format!(
            "blocked for {:.1} s in one database call{inside}, the same stack in {}: \
             the worker waits for PostgreSQL to answer",
            current.seconds,
            samples_of(current.points())
        );
        return reading;
    }
    if repeated_lazy || repeated_queries {
        let lazy_verdict = verdicts
            .iter()
            .rev()
            .find(|v| v.cause == Cause::NPlusOne)
            .or_else(|| db_points.last().map(|i| &verdicts[*i]))
            .copied()
            .unwrap_or(last);
        reading.cause = Some(Cause::NPlusOne);
        // Each query of the loop has the same stack, so samples look alike; the worker is
        // making progress, not stuck.
        reading.activity = Activity::Busy;
        reading.call_site = lazy_verdict.call_site.clone();
        reading.view = lazy_verdict.view.clone();
        reading.confidence = if lazy_points.len() >= 3 {
            Confidence::High
        } else {
            Confidence::Medium
        };
        // Blocked in the database right now: PostgreSQL can still say it is a lock.
        reading.waits_on_database = blocked_in_db;
        reading.reason = if repeated_lazy {
            format!(
                "lazy related-object loads (related_descriptors __get__) in {}, {} separate \
                 visit(s) to the database: one query per row of a loop",
                samples_of(lazy_points.len()),
                lazy_visits
            )
        } else {
            format!(
                "{} separate database calls from the same line in {}: a query per iteration \
                 of a loop",
                db_visits,
                samples_of(db_points.len())
            )
        };
        return reading;
    }

    // The stack it is stuck in now, else the most frequent cause (ties: the latest).
    let dominant: &StackVerdict = if stuck_now {
        last
    } else {
        let mut counts: BTreeMap<Cause, (usize, usize)> = BTreeMap::new();
        for (i, v) in verdicts.iter().enumerate() {
            let e = counts.entry(v.cause).or_default();
            e.0 += 1;
            e.1 = i;
        }
        counts
            .values()
            .max_by_key(|(count, latest)| (*count, *latest))
            .map_or(last, |(_, at)| verdicts[*at])
    };
    let with_cause: Vec<usize> = (0..n)
        .filter(|i| verdicts[*i].cause == dominant.cause)
        .collect();
    let active = with_cause
        .iter()
        .filter(|i| run[**i].point.stack.active)
        .count();
    let active_share = share(active, with_cause.len());
    let cause_share = share(with_cause.len(), n);
    reading.call_site = dominant.call_site.clone();
    reading.view = dominant.view.clone();
    reading.stuck_frame = dominant.stuck_frame.clone();
    reading.reason = format!("{} ({})", dominant.reason, samples_of(with_cause.len()));
    // The latest blocked sample of the dominant cause that waits in an outbound call.
    let call = with_cause.iter().rev().find_map(|i| run[*i].call.clone());
    let call_reason = |call: &OutboundCall, k: usize| {
        let at = dominant
            .call_site
            .as_ref()
            .map(|f| format!(" at {}", site(f)))
            .unwrap_or_default();
        format!(
            "waiting for {}{at}: an outbound call with no (or a long) timeout ({})",
            call.waits_for,
            samples_of(k)
        )
    };
    if dominant.cause == Cause::CpuBound
        && active_share < 0.5
        && let Some(call) = call.clone()
    {
        // A socket call in application code: no library frame says "network", the line does.
        reading.cause = Some(Cause::MissingApiTimeout);
        reading.confidence = if cause_share >= 0.6 && active_share <= 0.2 {
            Confidence::High
        } else {
            Confidence::Medium
        };
        reading.reason = call_reason(&call, with_cause.len());
        reading.call = Some(call);
        return reading;
    }
    match dominant.cause {
        Cause::MissingApiTimeout => {
            reading.cause = Some(Cause::MissingApiTimeout);
            reading.confidence = if cause_share >= 0.6 && active_share <= 0.2 {
                Confidence::High
            } else {
                Confidence::Medium
            };
            if let Some(call) = call {
                reading.reason = call_reason(&call, with_cause.len());
                reading.call = Some(call);
            }
        }

        Cause::SlowQuery | Cause::LockWait => {
            reading.cause = Some(Cause::SlowQuery);
            reading.confidence = Confidence::Low;
            reading.waits_on_database = active_share < 0.5;
        }
        Cause::CpuBound if active_share >= 0.5 => {
            reading.cause = Some(Cause::CpuBound);
            reading.confidence = if active_share >= 0.8 && cause_share >= 0.6 {
                Confidence::High
            } else {
                Confidence::Medium
            };
            reading.reason = format!(
                "{} ({}, the thread running in {:.0}% of them)",
                dominant.reason,
                samples_of(with_cause.len()),
                active_share * 100.0
            );
        }
        Cause::CpuBound => {
            reading.cause = Some(Cause::Unknown);
            reading.confidence = Confidence::Low;
            reading.reason = format!(
                "blocked in a C call that does not run Python (time.sleep, a lock, a subprocess, \
                 I/O outside the HTTP and database libraries wtdiag knows) at {} ({})",
                dominant
                    .call_site
                    .as_ref()
                    .or(dominant.stuck_frame.as_ref())
                    .map(site)
                    .unwrap_or_else(|| "?".into()),
                samples_of(with_cause.len())
            );
        }
        other => {
            reading.cause = Some(other);
            reading.confidence = Confidence::Low;
        }
    }
    reading
}

/// The innermost frames the request's samples were in, the Gunicorn signal handler skipped.
fn hot_frames<'a>(stacks: impl Iterator<Item = &'a ThreadStack>) -> Vec<SampledFrame> {
    let stacks: Vec<&ThreadStack> = stacks.collect();
    let total = stacks.len();
    profile::hot_frames(
        stacks.iter().copied(),
        |s| {
            s.frames
                .iter()
                .rev()
                .find(|f| !(is_gunicorn(f) && method(&f.function).starts_with("handle_")))
                .cloned()
        },
        HOT_FRAMES,
    )
    .into_iter()
    .map(|h| SampledFrame {
        frame: site(&h.frame),
        samples: h.samples,
        share: share(h.samples, total),
    })
    .collect()
}

/// Memory readings over the sampling window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryTrend {
    pub rss_bytes: u64,
    pub swap_bytes: u64,
    /// RSS at the last reading minus the first.
    pub rss_growth_bytes: i64,
    pub major_faults_per_second: f64,
    pub seconds: f64,
}

/// What PostgreSQL said about the worker's backend.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendLookup {
    /// No `--pg`, or the worker does not wait on the database.
    NotAsked,
    /// `--pg` failed (a warning says why).
    Failed,
    /// No backend with the worker's client port (a Unix socket, a pooler or NAT in between).
    Unmatched,
    Found(Box<BackendActivity>),
}

/// One worker, with everything read about it.
#[derive(Debug, Clone)]
pub struct WorkerInput {
    pub pid: u32,
    pub exited: bool,
    /// Seconds since the worker's last heartbeat (the start of its current request).
    pub heartbeat_age: Option<f64>,
    pub memory: Option<MemoryTrend>,
    pub backend: BackendLookup,
    /// Which clock applies (by its stacks, else the master's settings).
    pub class: WorkerClass,
    /// gthread's pool size.
    pub threads: u32,
    /// The reading is one request thread of the worker, not the worker as a whole.
    pub request_thread: bool,
}

/// Run-wide facts.
#[derive(Debug, Clone)]
pub struct LiveContext {
    /// The master's timeout in seconds; 0: it never kills; None: unknown.
    pub timeout: Option<f64>,
    /// Swap in use on the machine.
    pub system_swap_used: Option<u64>,
    pub started_at: DateTime<FixedOffset>,
}

/// A worker's diagnosis: its row, and what a finding says about it.
#[derive(Debug, Clone)]
pub struct WorkerDiagnosis {
    pub state: WorkerState,
    pub cause: Option<Cause>,
    pub confidence: Confidence,
    pub severity: Severity,
    pub reason: String,
    pub site: Option<String>,
    /// The call site with its line of code, for titles.
    pub site_with_code: Option<String>,
    pub evidence: Vec<String>,
    /// What to do beyond the cause's standard remedy.
    pub extra_advice: Option<String>,
    pub first_seen: Option<DateTime<FixedOffset>>,
    pub last_seen: Option<DateTime<FixedOffset>>,
    /// Set when the database cause was told by PostgreSQL itself.
    pub database_confirmed: bool,
    pub class: WorkerClass,
    /// The request thread (id, name) this diagnosis is about; None for a whole worker.
    pub thread: Option<(u64, Option<String>)>,
    pub call: Option<OutboundCall>,
}

/// What the master's clock means for a busy reading.
struct ClockReading {
    /// How long the request has run.
    busy_seconds: Option<f64>,
    /// `busy_seconds` is a lower bound.
    at_least: bool,
    seconds_left: Option<f64>,
    /// Event-loop classes: the loop is held by one call.
    loop_blocked: Option<bool>,
    /// What the clock means, for the evidence line.
    note: Option<String>,
}

/// The request's age as sampled: from its first busy sample to its last.
fn sampled_age(reading: &StackReading) -> f64 {
    (reading.busy_to - reading.busy_from).max(reading.stuck_seconds)
}

/// Which clock a busy request runs against, by worker class (see ATTRIBUTION: the master aborts
/// a worker whose heartbeat is older than `timeout`; who beats the heart depends on the class).
/// - sync: the worker notifies between requests, so the heartbeat's age is the request's age.
/// - gthread: only the main thread's loop notifies (`ThreadWorker.run`); request threads are
///   never timed out. The worker is aborted only when the main thread cannot run.
/// - gevent/eventlet/asyncio: the loop notifies (gevent: `GeventWorker.run`'s `notify();
///   gevent.sleep(1.0)`; uvicorn: `Server.on_tick` every `timeout / 2`); a call that does not
///   yield holds the loop, and then the heartbeat ages towards `timeout`.
fn clock(reading: &StackReading, input: &WorkerInput, ctx: &LiveContext) -> ClockReading {
    let left = |age: f64| match ctx.timeout {
        Some(t) if t > 0.0 && !input.exited => Some((t - age).max(0.0)),
        _ => None,
    };
    let sampled = Some(sampled_age(reading));
    let at_least = reading.busy_from_start;
    // gthread: a heartbeat this old means the main thread could not run; the master then aborts
    // the whole worker, request threads included.
    let starved = input
        .heartbeat_age
        .filter(|age| *age >= MAIN_LOOP_SILENT_SECONDS);
    match &input.class {
        WorkerClass::Gthread if input.request_thread => ClockReading {
            busy_seconds: sampled,
            at_least,
            seconds_left: starved.and_then(left),
            loop_blocked: None,
            note: Some(match starved {
                Some(age) => format!(
                    "gthread: the worker's main thread has not notified the master for {age:.1} \
                     s (a thread holds the GIL in C code, or the process is stopped): the master \
                     aborts the worker, this request with it, when that reaches the timeout"
                ),
                None => "gthread: the master never times out a request thread (only the main \
                         thread notifies it); this request holds its thread until it returns or \
                         the client goes away"
                    .into(),
            }),
        },
        WorkerClass::Gthread => ClockReading {
            busy_seconds: sampled,
            at_least,
            seconds_left: starved.and_then(left),
            loop_blocked: None,
            note: Some(match starved {
                Some(age) => format!(
                    "gthread: the main thread has not notified the master for {age:.1} s \
                         (GIL-holding C code, or the process is stopped): the master aborts the \
                         worker when this reaches the timeout"
                ),
                None => "gthread: the main thread notifies the master, so no WORKER \
                             TIMEOUT comes of a hung request"
                    .into(),
            }),
        },
        class if class.is_event_loop() => {
            let blocked = reading.activity == Activity::Stuck || reading.long_run;
            ClockReading {
                busy_seconds: sampled,
                at_least,
                seconds_left: input.heartbeat_age.filter(|_| blocked).and_then(left),
                loop_blocked: Some(blocked),
                note: Some(if blocked {
                    format!(
                        "{}: this call holds the event loop; no other request of the worker \
                         runs and the worker cannot notify the master",
                        class.name()
                    )
                } else {
                    format!(
                        "{}: the loop runs between samples (other requests go on)",
                        class.name()
                    )
                }),
            }
        }
        _ => {
            let age = input.heartbeat_age;
            ClockReading {
                busy_seconds: age,
                at_least: false,
                seconds_left: age.and_then(left),
                loop_blocked: None,
                note: None,
            }
        }
    }
}

/// What is said about a reading, refined by PostgreSQL and memory.
struct Explanation {
    cause: Option<Cause>,
    confidence: Confidence,
    reason: String,
    evidence: Vec<String>,
    /// What to do beyond the cause's standard remedy.
    extra_advice: Option<String>,
    database_confirmed: bool,
}

pub fn diagnose(reading: &StackReading, input: &WorkerInput, ctx: &LiveContext) -> WorkerDiagnosis {
    let busy = reading.is_busy();
    let clock = clock(reading, input, ctx);
    let busy_seconds = clock.busy_seconds.filter(|_| busy);
    let seconds_left = clock.seconds_left.filter(|_| busy);
    let mut x = Explanation {
        cause: reading.cause.filter(|_| busy),
        confidence: reading.confidence,
        reason: reading.reason.clone(),
        evidence: if busy {
            busy_evidence(reading, &clock, ctx, busy_seconds, seconds_left)
        } else {
            Vec::new()
        },
        extra_advice: None,
        database_confirmed: false,
    };
    if busy && reading.waits_on_database {
        refine_with_database(reading, &input.backend, &mut x);
    }
    let thrashing = input
        .memory
        .is_some_and(|m| refine_with_memory(m, busy, input.pid, ctx, &mut x));
    let severity = severity(reading, busy, thrashing, seconds_left, ctx);

    let at =
        |secs: f64| ctx.started_at + chrono::Duration::milliseconds((secs * 1000.0).round() as i64);
    let frame = reading.call_site.as_ref().map(site);
    let state = WorkerState {
        pid: input.pid,
        state: match reading.activity {
            Activity::Unsampled => "idle".to_string(),
            a => a.name().to_string(),
        },
        stuck_seconds: round1(reading.stuck_seconds),
        cause: if busy || thrashing { x.cause } else { None },
        frame: frame.clone().filter(|_| busy),
        seconds_left: seconds_left.map(round1),
        rss_bytes: input.memory.map(|m| m.rss_bytes),
        swap_bytes: input.memory.map(|m| m.swap_bytes),
        busy_seconds: busy_seconds.map(round1),
        samples: reading.samples,
        hot_frames: reading.hot_frames.clone(),
        major_faults_per_second: input.memory.map(|m| round1(m.major_faults_per_second)),
        exited: input.exited,
        worker_class: Some(input.class.name().to_string()),
        outbound: reading
            .call
            .as_ref()
            .filter(|_| busy && x.cause == Some(Cause::MissingApiTimeout))
            .map(|c| c.kind.name()),
        view: reading.view.as_ref().filter(|_| busy).map(site),
        busy_seconds_at_least: busy && clock.at_least,
        loop_blocked: clock
            .loop_blocked
            .map(|b| b && busy)
            .or_else(|| input.class.is_event_loop().then_some(false)),
        threads_busy: None,
        threads_total: None,
        threads: Vec::new(),
    };
    WorkerDiagnosis {
        state,
        cause: if busy || thrashing { x.cause } else { None },
        confidence: x.confidence,
        severity,
        reason: x.reason,
        site: frame,
        site_with_code: reading.call_site.as_ref().map(|f| {
            let mut s = match &f.code {
                Some(code) => format!("{}: {code}", site(f)),
                None => site(f),
            };
            // A helper's line is the one to change; the view says which endpoint it serves.
            if let Some(view) = reading
                .view
                .as_ref()
                .filter(|v| v.file != f.file || v.function != f.function)
            {
                s.push_str(&format!(" (view {})", site(view)));
            }
            s
        }),
        evidence: x.evidence,
        extra_advice: x.extra_advice,
        first_seen: busy.then(|| at(reading.busy_from)),
        last_seen: busy.then(|| at(reading.busy_to)),
        database_confirmed: x.database_confirmed,
        class: input.class.clone(),
        thread: input
            .request_thread
            .then(|| {
                reading
                    .thread_id
                    .map(|id| (id, reading.thread_name.clone()))
            })
            .flatten(),
        call: reading
            .call
            .clone()
            .filter(|_| x.cause == Some(Cause::MissingApiTimeout)),
    }
}

/// The evidence lines of a busy reading: where it is, for how long, against which clock.
fn busy_evidence(
    reading: &StackReading,
    clock: &ClockReading,
    ctx: &LiveContext,
    busy_seconds: Option<f64>,
    seconds_left: Option<f64>,
) -> Vec<String> {
    let mut evidence = Vec::new();
    let frame = reading
        .stuck_frame
        .as_ref()
        .map(site)
        .unwrap_or_else(|| "?".into());
    let mut line = format!(
        "{} {:.1} s in {frame} ({} of {} samples busy)",
        reading.activity.name(),
        reading.stuck_seconds,
        reading.busy_samples,
        reading.samples
    );
    if let Some(age) = busy_seconds {
        let least = if clock.at_least { "at least " } else { "" };
        line.push_str(&format!("; request running for {least}{age:.1} s"));
    }
    match (seconds_left, ctx.timeout) {
        (Some(left), Some(t)) => {
            line.push_str(&format!("; {left:.0} s left of the {t:.0} s timeout"))
        }
        (None, Some(0.0)) => line.push_str("; the master's timeout is off (0)"),
        _ => {}
    }
    if let Some(note) = &clock.note {
        line.push_str(&format!("; {note}"));
    }
    evidence.push(line);
    if !reading.hot_frames.is_empty() {
        let hot: Vec<String> = reading
            .hot_frames
            .iter()
            .map(|h| format!("{:.0}% {}", h.share * 100.0, h.frame))
            .collect();
        evidence.push(format!("hottest frames: {}", hot.join(", ")));
    }
    evidence
}

/// A database wait told apart by PostgreSQL's view of the worker's backend (`--pg`), or the
/// reason saying why it could not be.
fn refine_with_database(reading: &StackReading, backend: &BackendLookup, x: &mut Explanation) {
    match backend {
        BackendLookup::Found(activity) if reading.cause == Some(Cause::NPlusOne) => {
            // A loop of queries blocked right now: only a lock, or one statement as old as
            // the block, outweighs the loop.
            let told = database_cause(activity);
            let statement_age = activity.backend.query_seconds.unwrap_or(0.0);
            let one_long_statement = told.cause == Cause::SlowQuery
                && told.confirmed
                && statement_age + 0.5 >= reading.database_block_seconds;
            if told.cause == Cause::LockWait || one_long_statement {
                x.cause = Some(told.cause);
                x.confidence = told.confidence;
                x.database_confirmed = told.confirmed;
                x.reason = format!("{}; {}", told.reason, reading.reason);
                x.extra_advice = told.advice;
            }
            x.evidence.extend(told.evidence);
        }
        BackendLookup::Found(activity)
            if statement_began_later(activity, reading.database_block_seconds) =>
        {
            // The worker sat in one stack for longer than its backend's statement has run:
            // several statements in a row from the same line, each quick.
            let statement_age = activity.backend.query_seconds.unwrap_or(0.0);
            let lazy = reading.lazy_samples > 0;
            x.cause = Some(if lazy {
                Cause::NPlusOne
            } else {
                Cause::SlowQuery
            });
            x.confidence = if lazy {
                Confidence::Medium
            } else {
                Confidence::Low
            };
            x.reason = format!(
                "{:.1} s in the same database call{}, but its backend {} is {} with a \
                 statement only {statement_age:.1} s old: one query after another from \
                 the same line{}",
                reading.database_block_seconds,
                if lazy {
                    " (a lazy related-object load)"
                } else {
                    ""
                },
                activity.backend.pid,
                activity.backend.state.as_deref().unwrap_or("?"),
                if lazy { ", one per row of a loop" } else { "" }
            );
            x.evidence
                .push(format!("pg_stat_activity: {}", describe(&activity.backend)));
        }
        BackendLookup::Found(activity) => {
            let told = database_cause(activity);
            x.cause = Some(told.cause);
            x.confidence = told.confidence;
            x.database_confirmed = told.confirmed;
            x.reason = told.reason;
            x.evidence.extend(told.evidence);
            x.extra_advice = told.advice;
        }
        _ if reading.cause == Some(Cause::NPlusOne) => {}
        BackendLookup::Unmatched => {
            x.reason.push_str(
                "; no backend in pg_stat_activity has this worker's client port (a Unix \
                 socket, PgBouncer or NAT in between), so a lock wait cannot be told from a \
                 slow statement",
            );
            x.extra_advice = Some(HOW_TO_TELL_LOCK_FROM_SLOW.to_string());
        }
        BackendLookup::NotAsked | BackendLookup::Failed => {
            x.reason.push_str(
                ": a slow statement or a lock wait; without --pg wtdiag cannot tell which",
            );
            x.extra_advice = Some(HOW_TO_TELL_LOCK_FROM_SLOW.to_string());
        }
    }
}

/// Memory as a cause: swap thrashing (whatever the stack says), or fast RSS growth during a
/// request whose stack names nothing else. True when the worker is thrashing.
fn refine_with_memory(
    m: MemoryTrend,
    busy: bool,
    pid: u32,
    ctx: &LiveContext,
    x: &mut Explanation,
) -> bool {
    let mut thrashing = false;
    let swap_in_use = ctx.system_swap_used.is_some_and(|s| s > 0) || m.swap_bytes > 0;
    if m.major_faults_per_second >= THRASHING_FAULTS_PER_SECOND && m.swap_bytes > 0 && swap_in_use {
        thrashing = true;
        let was = x
            .cause
            .map(|c| format!(" (its stack says {c})"))
            .unwrap_or_default();
        x.cause = Some(Cause::Memory);
        x.confidence = if m.major_faults_per_second >= 4.0 * THRASHING_FAULTS_PER_SECOND {
            Confidence::High
        } else {
            Confidence::Medium
        };
        x.reason = format!(
            "swap thrashing: {:.0} major page faults/s with {} MiB of the worker in swap \
             and swap in use on the machine{was}: every access to a swapped-out page waits \
             for the disk",
            m.major_faults_per_second,
            m.swap_bytes >> 20
        );
    } else if busy
        && m.rss_growth_bytes >= GROWTH_MIN_BYTES
        && m.seconds > 0.0
        && m.rss_growth_bytes as f64 / m.seconds >= GROWTH_MIN_BYTES_PER_SECOND
    {
        let growth = format!(
            "RSS grew by {} MiB in {:.1} s ({:.0} MiB/s) to {} MiB",
            m.rss_growth_bytes >> 20,
            m.seconds,
            m.rss_growth_bytes as f64 / m.seconds / f64::from(1 << 20),
            m.rss_bytes >> 20
        );
        if matches!(x.cause, None | Some(Cause::Unknown) | Some(Cause::CpuBound)) {
            x.cause = Some(Cause::Memory);
            x.confidence = Confidence::Medium;
            x.extra_advice = Some(format!(
                "See what the request accumulates while it runs: `py-spy dump --locals --pid \
                 {}` shows the growing locals; tracemalloc or memray in a test shows where \
                 the memory is allocated.",
                pid
            ));
            x.reason = format!(
                "{growth} during one request: at this rate the kernel's OOM killer (or a \
                 container memory limit) ends it"
            );
        } else {
            x.reason.push_str(&format!("; {growth}"));
        }
    }
    if thrashing || m.major_faults_per_second >= THRASHING_FAULTS_PER_SECOND {
        x.evidence.push(format!(
            "memory: RSS {} MiB, swap {} MiB, {:.0} major faults/s",
            m.rss_bytes >> 20,
            m.swap_bytes >> 20,
            m.major_faults_per_second
        ));
    }
    thrashing
}

fn severity(
    reading: &StackReading,
    busy: bool,
    thrashing: bool,
    seconds_left: Option<f64>,
    ctx: &LiveContext,
) -> Severity {
    if thrashing {
        Severity::Critical
    } else if !busy {
        Severity::Info
    } else {
        let close = match (seconds_left, ctx.timeout) {
            (Some(left), Some(t)) => left <= (0.25 * t).max(5.0),
            _ => false,
        };
        match reading.activity {
            _ if close => Severity::Critical,
            Activity::Stuck => Severity::High,
            _ => Severity::Medium,
        }
    }
}

/// A worker's diagnosis as a whole, and one per request it serves.
#[derive(Debug, Clone)]
pub struct WorkerOutcome {
    /// The worker's row: for gthread, a summary of its threads (busy / total, the longest stuck).
    pub worker: WorkerDiagnosis,
    /// One diagnosis per request thread: what findings are made of.
    pub requests: Vec<WorkerDiagnosis>,
}

impl WorkerOutcome {
    /// The worker's row with its threads, for the report.
    pub fn state(&self) -> WorkerState {
        let mut state = self.worker.state.clone();
        state.threads = self
            .requests
            .iter()
            .filter(|r| r.state.state != "idle")
            .map(thread_state)
            .collect();
        state
    }
}

fn thread_state(d: &WorkerDiagnosis) -> ThreadState {
    let s = &d.state;
    let (thread_id, thread_name) = d.thread.clone().unwrap_or((0, None));
    ThreadState {
        pid: s.pid,
        thread_id,
        thread_name,
        state: s.state.clone(),
        stuck_seconds: s.stuck_seconds,
        cause: s.cause,
        frame: s.frame.clone(),
        seconds_left: s.seconds_left,
        rss_bytes: s.rss_bytes,
        swap_bytes: s.swap_bytes,
        busy_seconds: s.busy_seconds,
        samples: s.samples,
        hot_frames: s.hot_frames.clone(),
        major_faults_per_second: s.major_faults_per_second,
        exited: s.exited,
        outbound: s.outbound,
        view: s.view.clone(),
        busy_seconds_at_least: s.busy_seconds_at_least,
    }
}

/// Diagnoses a worker and each request thread it serves. `primary` is the worker's request
/// thread as [`read_stacks`] picks it; `threads` every serving thread ([`read_threads`]).
pub fn diagnose_worker(
    primary: &StackReading,
    threads: &[StackReading],
    input: &WorkerInput,
    ctx: &LiveContext,
) -> WorkerOutcome {
    let mut worker = diagnose(primary, input, ctx);
    if input.class != WorkerClass::Gthread {
        // One request at a time is visible: the worker's diagnosis is its request's.
        let mut request = worker.clone();
        request.thread = primary
            .thread_id
            .map(|id| (id, primary.thread_name.clone()));
        let requests = if primary.is_busy() {
            vec![request]
        } else {
            Vec::new()
        };
        return WorkerOutcome { worker, requests };
    }
    let database_waits = threads.iter().filter(|t| t.waits_on_database).count();
    let mut requests: Vec<WorkerDiagnosis> = threads
        .iter()
        .map(|t| {
            let thread_input = WorkerInput {
                memory: None,
                request_thread: true,
                // PostgreSQL's backend is matched per process: with one waiting thread it is
                // that thread's.
                backend: if t.waits_on_database && database_waits == 1 {
                    input.backend.clone()
                } else {
                    BackendLookup::Unmatched
                },
                ..input.clone()
            };
            let mut d = diagnose(t, &thread_input, ctx);
            // Memory is the process's: each thread shows the worker's.
            d.state.rss_bytes = worker.state.rss_bytes;
            d.state.swap_bytes = worker.state.swap_bytes;
            d.state.major_faults_per_second = worker.state.major_faults_per_second;
            d
        })
        .collect();
    // The row summarises: the longest-stuck request names the worker's state and cause.
    if let Some(longest) = requests.iter().max_by(|a, b| {
        a.state
            .stuck_seconds
            .total_cmp(&b.state.stuck_seconds)
            .then(b.state.pid.cmp(&a.state.pid))
    }) && worker.cause != Some(Cause::Memory)
    {
        let s = &longest.state;
        worker.state.state = s.state.clone();
        worker.state.stuck_seconds = s.stuck_seconds;
        worker.state.cause = s.cause;
        worker.state.frame = s.frame.clone();
        worker.state.outbound = s.outbound;
        worker.state.view = s.view.clone();
        worker.state.hot_frames = s.hot_frames.clone();
        worker.state.busy_seconds = s.busy_seconds;
        worker.state.busy_seconds_at_least = s.busy_seconds_at_least;
        worker.cause = longest.cause;
    }
    // Every thread held: the worker's queue grows behind them, an outage for its clients.
    if requests.len() >= input.threads.max(1) as usize {
        for r in requests.iter_mut().filter(|r| r.state.state == "stuck") {
            r.severity = r.severity.max(Severity::Critical);
        }
    }
    worker.state.threads_busy = Some(requests.len());
    worker.state.threads_total = Some(input.threads.max(1) as usize);
    WorkerOutcome { worker, requests }
}

/// Live advice for a cause: what to change, and for the causes whose standard remedy is written
/// for logs (`unknown`, `memory`), what to look at next with `wtdiag live`.
fn live_advice(cause: Cause) -> String {
    match cause {
        Cause::Unknown => "The stacks do not name a cause: the thread waits in a call wtdiag does \
             not know (the frame above). Sample longer (--duration 30s) to see whether it moves, \
             look at its C frames with `py-spy dump --native --pid PID`, and rerun with --pg if \
             it may be the database."
            .into(),
        Cause::SlowQuery => "EXPLAIN ANALYZE the statement (--pg shows it, with the backend's \
             wait; else pg_stat_activity.query), add the missing index or narrow the query; set \
             statement_timeout (e.g. OPTIONS {'options': '-c statement_timeout=5000'} in \
             DATABASES) below Gunicorn's timeout so a runaway query fails cleanly; move long \
             reports to a background task."
            .into(),
        Cause::CpuBound => "The request computes without waiting on anything: profile it \
             (py-spy record --pid PID --duration 30 draws where the time goes), cache the \
             result, paginate, or move the work to a background task (Celery/RQ); give \
             legitimately long endpoints their own worker pool rather than a longer timeout."
            .into(),
        Cause::Memory => "The worker is short of memory while it runs: stream large querysets \
             with .iterator(), paginate, cap per-request data, set max_requests to recycle \
             leaking workers, and size workers to the RAM you have; watch it with a longer \
             --duration to see the growth rate."
            .into(),
        other => other.advice().to_string(),
    }
}

/// What the worker class adds to a cause's remedy.
fn class_advice(d: &WorkerDiagnosis) -> Option<&'static str> {
    let cause = d.cause?;
    match &d.class {
        WorkerClass::Gthread if d.thread.is_some() => Some(
            "Under gthread nothing times a hung request out: it holds one of the worker's \
             threads until it returns; when every thread of every worker is held, new requests \
             queue and the proxy answers 504. Bound the call (above) rather than adding threads.",
        ),
        WorkerClass::Gevent | WorkerClass::Eventlet if cause.is_database() => Some(
            "psycopg2 does not yield to the hub without a wait callback: call \
             psycogreen.gevent.patch_psycopg() (eventlet: psycogreen.eventlet) in the post_fork \
             hook, or every query blocks all greenlets of the worker and its heartbeat.",
        ),
        WorkerClass::Gevent | WorkerClass::Eventlet if cause == Cause::CpuBound => Some(
            "CPU work never yields to the hub: every other request of the worker waits and its \
             heartbeat stops. Run it in a sync/gthread worker pool or a background task.",
        ),
        WorkerClass::Asyncio if d.state.loop_blocked == Some(true) => Some(
            "A sync call inside `async def` blocks the event loop: every request of the worker \
             waits and the worker stops notifying the master. Await an async client \
             (httpx.AsyncClient(timeout=10), asyncpg/psycopg 3 async) or move the call off the \
             loop: await asyncio.to_thread(fn, ...) (Django: sync_to_async).",
        ),
        _ => None,
    }
}

/// True when the backend's current (or last) statement began well after the worker entered the
/// stack it is blocked in, or the backend is not running anything: the stack spanned several
/// statements.
fn statement_began_later(activity: &BackendActivity, block_seconds: f64) -> bool {
    let b = &activity.backend;
    if block_seconds <= 0.0 || b.wait_event_type.as_deref() == Some("Lock") {
        return false;
    }
    match (b.state.as_deref(), b.query_seconds) {
        (Some("active"), Some(age)) => age + 0.5 < block_seconds,
        (Some(_), _) => true,
        (None, _) => false,
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

const HOW_TO_TELL_LOCK_FROM_SLOW: &str = "To tell a lock wait from a slow statement, rerun with \
     --pg 'host=... dbname=... user=...' or run in psql: SELECT pid, wait_event_type, wait_event, \
     pg_blocking_pids(pid), now() - query_start, query FROM pg_stat_activity WHERE state <> \
     'idle'; wait_event_type 'Lock' is a lock wait (pg_blocking_pids names the holder), anything \
     else a slow statement.";

struct DatabaseCause {
    cause: Cause,
    confidence: Confidence,
    confirmed: bool,
    reason: String,
    evidence: Vec<String>,
    advice: Option<String>,
}

fn one_line(q: &str) -> String {
    let flat = q.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        let cut: String = flat.chars().take(200).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

fn describe(b: &Backend) -> String {
    let mut s = format!("backend {}", b.pid);
    if let Some(app) = &b.application_name {
        s.push_str(&format!(" ({app})"));
    }
    if let Some(state) = &b.state {
        s.push_str(&format!(", {state}"));
    }
    if let Some(x) = b.xact_seconds {
        s.push_str(&format!(", transaction open {x:.1} s"));
    }
    if let Some(q) = &b.query {
        let label = if b.state.as_deref() == Some("active") {
            "running"
        } else {
            "last statement"
        };
        s.push_str(&format!(", {label}: {}", one_line(q)));
    }
    s
}

/// pg_stat_activity's view of the backend → lock wait or slow statement.
fn database_cause(a: &BackendActivity) -> DatabaseCause {
    let b = &a.backend;
    let query = b.query.as_deref().map(one_line).unwrap_or_default();
    let mut evidence = vec![format!("pg_stat_activity: {}", describe(b))];
    if b.wait_event_type.as_deref() == Some("Lock") {
        let lock = a
            .awaited_lock
            .clone()
            .or_else(|| b.wait_event.clone().map(|w| format!("a {w} lock")))
            .unwrap_or_else(|| "a lock".into());
        let blockers: Vec<String> = a.blockers.iter().map(describe).collect();
        evidence.extend(blockers.iter().map(|d| format!("blocked by {d}")));
        let by = match a.blockers.first() {
            Some(first) => format!(
                ", held by backend {}{}",
                first.pid,
                first
                    .state
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        let advice = a.blockers.first().map(|first| {
            format!(
                "The blocker is backend {}: find the code that keeps its transaction open \
                 (its last statement above); if it is stuck, end it with SELECT \
                 pg_terminate_backend({}).",
                first.pid, first.pid
            )
        });
        return DatabaseCause {
            cause: Cause::LockWait,
            confidence: Confidence::High,
            confirmed: true,
            reason: format!(
                "its backend {} waits for {lock}{by} ({:.1} s into: {query})",
                b.pid,
                b.query_seconds.unwrap_or(0.0)
            ),
            evidence,
            advice,
        };
    }
    if b.state.as_deref() == Some("active") {
        let waiting = match (&b.wait_event_type, &b.wait_event) {
            (Some(t), Some(e)) => format!(", waiting on {t}/{e}"),
            _ => String::new(),
        };
        return DatabaseCause {
            cause: Cause::SlowQuery,
            confidence: Confidence::High,
            confirmed: true,
            reason: format!(
                "its backend {} has been running one statement for {:.1} s{waiting}: {query}",
                b.pid,
                b.query_seconds.unwrap_or(0.0)
            ),
            evidence,
            advice: None,
        };
    }
    DatabaseCause {
        cause: Cause::SlowQuery,
        confidence: Confidence::Low,
        confirmed: false,
        reason: format!(
            "blocked in the database driver, but its backend {} was {} when looked up (the \
             statement had just finished, or the connection is stuck on the network)",
            b.pid,
            b.state.as_deref().unwrap_or("in an unknown state")
        ),
        evidence,
        advice: Some(HOW_TO_TELL_LOCK_FROM_SLOW.to_string()),
    }
}

fn thread_label(d: &WorkerDiagnosis) -> String {
    match &d.thread {
        Some((_, Some(name))) => name.clone(),
        Some((id, None)) => format!("{id:#x}"),
        None => "?".into(),
    }
}

/// Busy requests (and workers short of memory) grouped by (cause, call site), one finding per
/// group.
pub fn findings(diagnoses: &[WorkerDiagnosis]) -> Vec<Finding> {
    let mut groups: BTreeMap<(Cause, Option<String>), Vec<&WorkerDiagnosis>> = BTreeMap::new();
    for d in diagnoses {
        if let Some(cause) = d.cause {
            groups.entry((cause, d.site.clone())).or_default().push(d);
        }
    }
    groups
        .into_iter()
        .map(|((cause, _), workers)| finding(cause, &workers))
        .collect()
}

fn finding(cause: Cause, workers: &[&WorkerDiagnosis]) -> Finding {
    let first = workers[0];
    let count = workers.len() as u64;
    let threaded = workers
        .iter()
        .any(|w| w.thread.is_some() && w.class == WorkerClass::Gthread);
    let who = match (count, threaded) {
        (1, false) => format!("worker {}", first.state.pid),
        (_, false) => format!("{count} workers"),
        (1, true) => format!(
            "a request in worker {} (thread {})",
            first.state.pid,
            thread_label(first)
        ),
        (_, true) => {
            let mut pids: Vec<u32> = workers.iter().map(|w| w.state.pid).collect();
            pids.dedup();
            format!(
                "{count} requests in worker{} {}",
                if pids.len() == 1 { "" } else { "s" },
                pids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    let at = first
        .site_with_code
        .as_deref()
        .map(|s| format!(" at {s}"))
        .unwrap_or_default();
    let confirmed = workers.iter().all(|w| w.database_confirmed);
    let call_what = first
        .call
        .as_ref()
        .filter(|c| c.kind != PeerKind::Http)
        .map(|c| format!("stuck waiting for {} with no timeout", c.waits_for));
    let what = match cause {
        Cause::MissingApiTimeout if call_what.is_some() => call_what.as_deref().unwrap_or_default(),
        Cause::MissingApiTimeout => "stuck in an outbound HTTP call with no timeout",
        Cause::LockWait => "waiting for a PostgreSQL lock",
        Cause::SlowQuery if confirmed => "waiting on a slow SQL statement",
        Cause::SlowQuery => "waiting on the database (a slow statement or a lock wait)",
        Cause::NPlusOne => "running N+1 queries (lazy ORM loads in a loop)",
        Cause::CpuBound => "burning CPU in Python",
        Cause::Memory => "short of memory",
        Cause::Deadlock => "in a deadlock",
        Cause::Unknown => "busy, cause unclear",
    };
    let least_left = workers
        .iter()
        .filter_map(|w| w.state.seconds_left)
        .reduce(f64::min);
    let longest_run = workers
        .iter()
        .filter_map(|w| w.state.busy_seconds)
        .reduce(f64::max);
    let left = match (least_left, &first.class) {
        (Some(s), _) => format!("; {s:.0} s before the master's timeout kills it"),
        (None, WorkerClass::Gthread) if threaded => format!(
            "; running for {}{:.0} s, and the master never kills it (gthread)",
            if first.state.busy_seconds_at_least {
                "at least "
            } else {
                ""
            },
            longest_run.unwrap_or(0.0)
        ),
        (None, class) if class.is_event_loop() && first.state.loop_blocked == Some(true) => {
            "; the event loop is blocked".to_string()
        }
        _ => String::new(),
    };
    let title = format!("{who} {what}{at}{left}");
    let mut reason = first.reason.clone();
    if count > 1 {
        reason.push_str(&format!(" (worker {}; the others alike)", first.state.pid));
    }
    let mut evidence = Vec::new();
    for w in workers.iter().take(EVIDENCE_WORKERS) {
        for text in &w.evidence {
            evidence.push(Evidence {
                path: match &w.thread {
                    Some(_) if w.class == WorkerClass::Gthread => {
                        format!("pid {} thread {}", w.state.pid, thread_label(w))
                    }
                    _ => format!("pid {}", w.state.pid),
                },
                line: None,
                text: text.clone(),
            });
        }
    }
    let mut advice = match &first.call {
        Some(call) if cause == Cause::MissingApiTimeout => format!(
            "{} Move long calls to a background task (Celery/RQ).",
            call.advice
        ),
        _ => live_advice(cause),
    };
    for extra in [first.extra_advice.as_deref(), class_advice(first)]
        .into_iter()
        .flatten()
    {
        advice.push(' ');
        advice.push_str(extra);
    }
    let mut pids: Vec<u32> = workers.iter().map(|w| w.state.pid).collect();
    pids.sort_unstable();
    Finding {
        rank: 0,
        cause,
        severity: workers
            .iter()
            .map(|w| w.severity)
            .max()
            .unwrap_or(Severity::Info),
        confidence: workers
            .iter()
            .map(|w| w.confidence)
            .min()
            .unwrap_or(Confidence::Low),
        title,
        count,
        request: None,
        pids,
        first_seen: workers.iter().filter_map(|w| w.first_seen).min(),
        last_seen: workers.iter().filter_map(|w| w.last_seen).max(),
        reason,
        evidence,
        advice,
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::live::dump;

    fn captures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pyspy")
    }

    /// The samples of one recorded state (fixtures/pyspy/<state>/NN.json + times.txt).
    fn recorded(state: &str) -> Vec<Sample> {
        let dir = captures().join(state);
        let times = std::fs::read_to_string(dir.join("times.txt")).unwrap();
        times
            .lines()
            .enumerate()
            .map(|(i, ms)| {
                let json = std::fs::read(dir.join(format!("{i:02}.json"))).unwrap();
                Sample {
                    at: Duration::from_millis(ms.trim().parse().unwrap()),
                    took: Duration::ZERO,
                    threads: dump::parse(&json).unwrap(),
                }
            })
            .collect()
    }

    fn context(timeout: f64) -> LiveContext {
        LiveContext {
            timeout: Some(timeout),
            system_swap_used: Some(0),
            started_at: DateTime::parse_from_rfc3339("2026-11-26T22:43:50Z").unwrap(),
        }
    }

    fn input(pid: u32, heartbeat_age: Option<f64>, backend: BackendLookup) -> WorkerInput {
        WorkerInput {
            pid,
            exited: false,
            heartbeat_age,
            memory: None,
            backend,
            class: WorkerClass::Sync,
            threads: 1,
            request_thread: false,
        }
    }

    #[test]
    fn every_recorded_state_reads_as_expected() {
        let mut states: Vec<String> = std::fs::read_dir(captures())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("expect.json").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        states.sort();
        assert!(states.len() >= 6, "captures missing: {states:?}");
        for state in states {
            let expect: serde_json::Value = serde_json::from_slice(
                &std::fs::read(captures().join(&state).join("expect.json")).unwrap(),
            )
            .unwrap();
            let reading = read_stacks(&recorded(&state), 1.0);
            let d = diagnose(
                &reading,
                &input(1, Some(5.0), BackendLookup::NotAsked),
                &context(30.0),
            );
            let got_cause = d.state.cause.map(|c| c.name().to_string());
            assert_eq!(
                got_cause.as_deref(),
                expect["cause"].as_str(),
                "{state}: cause ({})",
                d.reason
            );
            let states: Vec<&str> = match &expect["state"] {
                serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
                v => v.as_str().into_iter().collect(),
            };
            assert!(
                states.contains(&d.state.state.as_str()),
                "{state}: state {} not in {states:?}",
                d.state.state
            );
            assert_eq!(
                reading.waits_on_database,
                expect["waits_on_database"].as_bool().unwrap(),
                "{state}: waits_on_database"
            );
            match expect["site_contains"].as_str() {
                Some(part) => {
                    let frame = d.state.frame.clone().unwrap_or_default();
                    assert!(
                        frame.contains(part),
                        "{state}: frame {frame:?} lacks {part:?}"
                    );
                }
                None => assert_eq!(d.state.frame, None, "{state}: frame"),
            }
            if d.state.state == "idle" {
                assert_eq!(d.state.seconds_left, None, "{state}: idle has no deadline");
                assert!(d.cause.is_none());
            } else {
                assert_eq!(d.state.seconds_left, Some(25.0), "{state}: 30 s - 5 s");
                assert!(!d.state.hot_frames.is_empty(), "{state}: hot frames");
            }
        }
    }

    fn backend(pid: i32, state: &str, wait: Option<(&str, &str)>, query: &str) -> Backend {
        Backend {
            pid,
            state: Some(state.into()),
            wait_event_type: wait.map(|w| w.0.into()),
            wait_event: wait.map(|w| w.1.into()),
            query: Some(query.into()),
            query_seconds: Some(4.2),
            xact_seconds: Some(4.2),
            application_name: None,
        }
    }

    #[test]
    fn postgres_tells_a_lock_wait_from_a_slow_statement() {
        let lock = read_stacks(&recorded("db_lock"), 1.0);
        let waiting = BackendActivity {
            backend: backend(
                4242,
                "active",
                Some(("Lock", "transactionid")),
                "SELECT ... FOR UPDATE",
            ),
            awaited_lock: Some("ShareLock on transaction 745".into()),
            blockers: vec![backend(
                4200,
                "idle in transaction",
                None,
                "SELECT pg_sleep(600)",
            )],
        };
        let d = diagnose(
            &lock,
            &input(7, Some(28.0), BackendLookup::Found(Box::new(waiting))),
            &context(30.0),
        );
        assert_eq!(d.cause, Some(Cause::LockWait));
        assert_eq!(d.confidence, Confidence::High);
        assert!(
            d.reason.contains("ShareLock on transaction 745"),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("held by backend 4200"), "{}", d.reason);
        assert_eq!(d.state.seconds_left, Some(2.0));
        assert_eq!(d.severity, Severity::Critical, "2 s left");
        assert!(
            d.extra_advice
                .unwrap()
                .contains("pg_terminate_backend(4200)")
        );

        let slow = read_stacks(&recorded("db_slow"), 1.0);
        let running = BackendActivity {
            backend: backend(
                4243,
                "active",
                Some(("Timeout", "PgSleep")),
                "SELECT pg_sleep(120)",
            ),
            awaited_lock: None,
            blockers: vec![],
        };
        let d = diagnose(
            &slow,
            &input(8, Some(4.0), BackendLookup::Found(Box::new(running))),
            &context(30.0),
        );
        assert_eq!(d.cause, Some(Cause::SlowQuery));
        assert!(d.reason.contains("SELECT pg_sleep(120)"), "{}", d.reason);
        assert_eq!(d.severity, Severity::High);

        // Without --pg: the database wait is named with low confidence and how to tell.
        let d = diagnose(
            &slow,
            &input(8, None, BackendLookup::NotAsked),
            &context(30.0),
        );
        assert_eq!(d.cause, Some(Cause::SlowQuery));
        assert_eq!(d.confidence, Confidence::Low);
        assert!(d.reason.contains("a slow statement or a lock wait"));
        assert!(d.extra_advice.unwrap().contains("pg_blocking_pids"));
        assert_eq!(d.state.seconds_left, None, "no heartbeat, no deadline");
    }

    /// A loop of lazy loads on a busy machine: PostgreSQL answers slowly, so the thread sits
    /// blocked in the same lazy-load stack for over a second. Still N+1, unless PostgreSQL says
    /// the backend waits on a lock.
    #[test]
    fn an_n_plus_one_loop_blocked_for_a_moment_stays_n_plus_one() {
        let mut samples = recorded("nplus1");
        let blocked = samples[0].threads.clone();
        for (i, s) in samples.iter_mut().enumerate() {
            s.threads = blocked.clone();
            for t in &mut s.threads {
                t.active = false;
                if i == 1 {
                    // Between two queries: building the next one.
                    if let Some(f) = t.frames.last_mut() {
                        f.line += 1;
                    }
                }
            }
        }
        let reading = read_stacks(&samples, 1.0);
        assert_eq!(reading.cause, Some(Cause::NPlusOne), "{}", reading.reason);
        assert!(reading.waits_on_database);
        assert!(reading.database_block_seconds >= 1.0);

        let quick = BackendActivity {
            backend: backend(
                4300,
                "active",
                Some(("Client", "ClientRead")),
                "SELECT ... author",
            ),
            awaited_lock: None,
            blockers: vec![],
        };
        let mut quick = quick;
        quick.backend.query_seconds = Some(0.01);
        let d = diagnose(
            &reading,
            &input(11, Some(6.0), BackendLookup::Found(Box::new(quick))),
            &context(30.0),
        );
        assert_eq!(d.cause, Some(Cause::NPlusOne), "{}", d.reason);

        let locked = BackendActivity {
            backend: backend(
                4300,
                "active",
                Some(("Lock", "transactionid")),
                "SELECT ... author",
            ),
            awaited_lock: Some("ShareLock on transaction 9".into()),
            blockers: vec![backend(
                4100,
                "idle in transaction",
                None,
                "UPDATE author ...",
            )],
        };
        let d = diagnose(
            &reading,
            &input(11, Some(6.0), BackendLookup::Found(Box::new(locked))),
            &context(30.0),
        );
        assert_eq!(d.cause, Some(Cause::LockWait), "{}", d.reason);
    }

    /// Every sample in the same lazy-load stack, blocked: the stacks alone cannot tell a loop
    /// from one slow load, PostgreSQL can: its statement is younger than the block.
    #[test]
    fn postgres_tells_a_loop_of_quick_queries_from_one_slow_one() {
        let mut samples = recorded("nplus1");
        let blocked = samples[0].threads.clone();
        for s in samples.iter_mut() {
            s.threads = blocked.clone();
            for t in &mut s.threads {
                t.active = false;
            }
        }
        let reading = read_stacks(&samples, 1.0);
        assert_eq!(reading.cause, Some(Cause::SlowQuery));
        assert!(reading.waits_on_database && reading.lazy_samples > 0);
        let mut fresh = BackendActivity {
            backend: backend(4300, "idle", None, "SELECT ... author"),
            awaited_lock: None,
            blockers: vec![],
        };
        let d = diagnose(
            &reading,
            &input(12, Some(6.0), BackendLookup::Found(Box::new(fresh.clone()))),
            &context(30.0),
        );
        assert_eq!(d.cause, Some(Cause::NPlusOne), "{}", d.reason);
        fresh.backend.state = Some("active".into());
        fresh.backend.query_seconds = Some(reading.database_block_seconds + 2.0);
        let d = diagnose(
            &reading,
            &input(12, Some(6.0), BackendLookup::Found(Box::new(fresh))),
            &context(30.0),
        );
        assert_eq!(
            d.cause,
            Some(Cause::SlowQuery),
            "one statement as old as the block"
        );
    }

    #[test]
    fn swap_thrashing_is_memory_and_fast_growth_names_a_sleeping_request() {
        let idle = read_stacks(&recorded("idle"), 1.0);
        let mut w = input(9, None, BackendLookup::NotAsked);
        w.memory = Some(MemoryTrend {
            rss_bytes: 900 << 20,
            swap_bytes: 300 << 20,
            rss_growth_bytes: 0,
            major_faults_per_second: 400.0,
            seconds: 3.0,
        });
        let d = diagnose(&idle, &w, &context(30.0));
        assert_eq!(d.cause, Some(Cause::Memory));
        assert_eq!(d.severity, Severity::Critical);
        assert_eq!(d.state.state, "idle");

        let memory = read_stacks(&recorded("memory"), 1.0);
        let mut w = input(10, Some(3.0), BackendLookup::NotAsked);
        w.memory = Some(MemoryTrend {
            rss_bytes: 400 << 20,
            swap_bytes: 0,
            rss_growth_bytes: 300 << 20,
            major_faults_per_second: 0.0,
            seconds: 3.0,
        });
        let d = diagnose(&memory, &w, &context(30.0));
        assert_eq!(d.cause, Some(Cause::Memory));
        assert!(d.reason.contains("RSS grew by 300 MiB"), "{}", d.reason);
    }

    #[test]
    fn findings_group_workers_by_cause_and_call_site() {
        let ctx = context(30.0);
        let up = read_stacks(&recorded("upstream"), 1.0);
        let cpu = read_stacks(&recorded("cpu"), 1.0);
        let idle = read_stacks(&recorded("idle"), 1.0);
        let ds = vec![
            diagnose(&up, &input(1, Some(10.0), BackendLookup::NotAsked), &ctx),
            diagnose(&up, &input(2, Some(12.0), BackendLookup::NotAsked), &ctx),
            diagnose(&cpu, &input(3, Some(1.0), BackendLookup::NotAsked), &ctx),
            diagnose(&idle, &input(4, Some(0.1), BackendLookup::NotAsked), &ctx),
        ];
        let f = findings(&ds);
        assert_eq!(f.len(), 2, "{f:#?}");
        let api = f
            .iter()
            .find(|f| f.cause == Cause::MissingApiTimeout)
            .unwrap();
        assert_eq!(api.pids, vec![1, 2]);
        assert_eq!(api.count, 2);
        assert!(
            api.title.contains("wtapp/views.py:30 in upstream_api_view"),
            "{}",
            api.title
        );
        assert!(
            api.title.contains("18 s before the master's timeout"),
            "{}",
            api.title
        );
        assert!(
            api.evidence
                .iter()
                .any(|e| e.text.contains("socket.py:706"))
        );
        assert!(
            f.iter().all(|f| !f.pids.contains(&4)),
            "idle workers are no finding"
        );
    }

    const SP: &str = "/venv/lib/python3.11/site-packages";
    const LIB: &str = "/usr/lib/python3.11";

    fn frame(file: &str, function: &str, line: u32, code: Option<&str>) -> Frame {
        Frame {
            file: file.into(),
            line,
            function: function.into(),
            code: code.map(str::to_string),
        }
    }

    fn thread(id: u64, name: &str, active: bool, frames: Vec<Frame>) -> ThreadStack {
        ThreadStack {
            thread_id: id,
            os_thread_id: None,
            thread_name: Some(name.into()),
            active,
            owns_gil: active,
            frames,
        }
    }

    /// gthread's main thread, idle in its selector.
    fn gthread_main() -> ThreadStack {
        thread(
            1,
            "MainThread",
            false,
            vec![
                frame("/venv/bin/gunicorn", "<module>", 8, None),
                frame(
                    &format!("{SP}/gunicorn/workers/gthread.py"),
                    "ThreadWorker.run",
                    425,
                    None,
                ),
                frame(
                    &format!("{LIB}/selectors.py"),
                    "EpollSelector.select",
                    468,
                    None,
                ),
            ],
        )
    }

    /// A pool thread in `handle_request`, then the given innermost frames.
    fn pool_thread(id: u64, active: bool, inner: Vec<Frame>) -> ThreadStack {
        let mut frames = vec![
            frame(
                &format!("{LIB}/threading.py"),
                "Thread._bootstrap",
                1002,
                None,
            ),
            frame(
                &format!("{SP}/gunicorn/workers/gthread.py"),
                "ThreadWorker.handle_request",
                771,
                None,
            ),
            frame(
                &format!("{SP}/django/core/handlers/base.py"),
                "BaseHandler._get_response",
                197,
                None,
            ),
        ];
        frames.extend(inner);
        thread(id, &format!("ThreadPoolExecutor-0_{id}"), active, frames)
    }

    fn samples_of(threads: impl Fn(usize) -> Vec<ThreadStack>) -> Vec<Sample> {
        (0..10)
            .map(|i| Sample {
                at: Duration::from_millis(200 * i as u64),
                took: Duration::ZERO,
                threads: threads(i),
            })
            .collect()
    }

    fn gthread_samples() -> Vec<Sample> {
        samples_of(|i| {
            vec![
                pool_thread(
                    2,
                    false,
                    vec![frame(
                        "/srv/app/shop/views.py",
                        "raw_socket_view",
                        42,
                        Some("reply = conn.recv(1024)"),
                    )],
                ),
                pool_thread(
                    3,
                    true,
                    vec![frame(
                        "/srv/app/shop/views.py",
                        "primes",
                        59 + (i % 3) as u32,
                        Some("found += 1"),
                    )],
                ),
                gthread_main(),
            ]
        })
    }

    fn gthread_input(heartbeat_age: f64) -> WorkerInput {
        WorkerInput {
            class: WorkerClass::Gthread,
            threads: 4,
            ..input(20, Some(heartbeat_age), BackendLookup::NotAsked)
        }
    }

    #[test]
    fn gthread_threads_are_diagnosed_one_by_one_with_no_deadline() {
        let samples = gthread_samples();
        assert_eq!(class_from_stacks(&samples), Some(WorkerClass::Gthread));
        let primary = read_stacks(&samples, 1.0);
        let threads = read_threads(&samples, 1.0);
        assert_eq!(threads.len(), 2, "the main thread serves nothing");
        let o = diagnose_worker(&primary, &threads, &gthread_input(0.4), &context(30.0));
        let mut causes: Vec<Option<Cause>> = o.requests.iter().map(|r| r.cause).collect();
        causes.sort();
        assert_eq!(
            causes,
            vec![Some(Cause::MissingApiTimeout), Some(Cause::CpuBound)]
        );
        let raw = o
            .requests
            .iter()
            .find(|r| r.cause == Some(Cause::MissingApiTimeout))
            .unwrap();
        assert_eq!(raw.state.outbound, Some("socket"), "{}", raw.reason);
        assert!(raw.reason.contains("raw socket"), "{}", raw.reason);
        for r in &o.requests {
            assert_eq!(r.state.seconds_left, None, "{}", r.reason);
            assert!(r.state.busy_seconds_at_least);
            assert!(r.evidence[0].contains("never times out a request thread"));
        }
        let state = o.state();
        assert_eq!(
            (state.threads_busy, state.threads_total),
            (Some(2), Some(4))
        );
        assert_eq!(state.seconds_left, None, "the main thread notifies");
        assert_eq!(state.threads.len(), 2);
        let mut names: Vec<&str> = state
            .threads
            .iter()
            .filter_map(|t| t.thread_name.as_deref())
            .collect();
        names.sort();
        assert_eq!(names, ["ThreadPoolExecutor-0_2", "ThreadPoolExecutor-0_3"]);

        let f = findings(&o.requests);
        assert_eq!(f.len(), 2, "{f:#?}");
        for finding in &f {
            assert!(
                finding.title.contains("never kills it (gthread)"),
                "{}",
                finding.title
            );
            assert!(!finding.advice.contains("The log does not say"));
        }
        let raw = f
            .iter()
            .find(|f| f.cause == Cause::MissingApiTimeout)
            .unwrap();
        assert!(raw.advice.contains("settimeout"), "{}", raw.advice);

        // The main thread silent for 5 s: the master will abort the worker, threads and all.
        let o = diagnose_worker(&primary, &threads, &gthread_input(5.0), &context(30.0));
        assert_eq!(o.worker.state.seconds_left, Some(25.0));
        assert!(
            o.requests
                .iter()
                .all(|r| r.state.seconds_left == Some(25.0))
        );
    }

    #[test]
    fn an_exhausted_pool_makes_its_stuck_requests_critical() {
        let samples = gthread_samples();
        let threads = read_threads(&samples, 1.0);
        let mut input = gthread_input(0.4);
        input.threads = 2;
        let o = diagnose_worker(
            &read_stacks(&samples, 1.0),
            &threads,
            &input,
            &context(30.0),
        );
        let stuck: Vec<&WorkerDiagnosis> = o
            .requests
            .iter()
            .filter(|r| r.state.state == "stuck")
            .collect();
        assert!(!stuck.is_empty());
        assert!(stuck.iter().all(|r| r.severity == Severity::Critical));
    }

    /// uvicorn's main thread: the loop's callback running the app.
    fn asyncio_samples(blocked: bool) -> Vec<Sample> {
        samples_of(|i| {
            let mut frames = vec![
                frame("/venv/bin/gunicorn", "<module>", 8, None),
                frame(
                    &format!("{SP}/gunicorn/arbiter.py"),
                    "Arbiter.run",
                    247,
                    None,
                ),
                frame(
                    &format!("{SP}/uvicorn/workers.py"),
                    "UvicornWorker.run",
                    104,
                    None,
                ),
                frame(
                    &format!("{LIB}/asyncio/base_events.py"),
                    "BaseEventLoop._run_once",
                    1922,
                    None,
                ),
            ];
            if blocked || i == 9 {
                frames.extend([
                    frame(&format!("{LIB}/asyncio/events.py"), "Handle._run", 80, None),
                    frame(
                        "/srv/app/asgiapp.py",
                        "blocking_view",
                        34,
                        Some("requests.get(url)"),
                    ),
                    frame(&format!("{SP}/requests/api.py"), "get", 87, None),
                    frame(&format!("{LIB}/socket.py"), "SocketIO.readinto", 706, None),
                ]);
            } else {
                frames.push(frame(
                    &format!("{LIB}/selectors.py"),
                    "EpollSelector.select",
                    468,
                    None,
                ));
            }
            vec![thread(1, "MainThread", false, frames)]
        })
    }

    #[test]
    fn an_event_loop_is_blocked_only_when_one_call_holds_it() {
        let ctx = context(30.0);
        let samples = asyncio_samples(true);
        assert_eq!(class_from_stacks(&samples), Some(WorkerClass::Asyncio));
        let mut w = input(30, Some(12.0), BackendLookup::NotAsked);
        w.class = WorkerClass::Asyncio;
        let reading = read_stacks(&samples, 1.0);
        let o = diagnose_worker(&reading, &read_threads(&samples, 1.0), &w, &ctx);
        assert_eq!(o.worker.cause, Some(Cause::MissingApiTimeout));
        assert_eq!(o.worker.state.loop_blocked, Some(true));
        assert_eq!(o.worker.state.seconds_left, Some(18.0));
        assert_eq!(o.requests.len(), 1);
        let f = findings(&o.requests);
        assert!(f[0].advice.contains("asyncio.to_thread"), "{}", f[0].advice);

        // Seen once, between samples of an idle loop: running, not holding it.
        let samples = asyncio_samples(false);
        let reading = read_stacks(&samples, 1.0);
        let o = diagnose_worker(&reading, &read_threads(&samples, 1.0), &w, &ctx);
        assert_eq!(
            o.worker.state.loop_blocked,
            Some(false),
            "{:?}",
            o.worker.state
        );
        assert_eq!(o.worker.state.seconds_left, None);
    }

    #[test]
    fn live_advice_is_never_the_logs_text() {
        for cause in Cause::ALL {
            assert!(
                !live_advice(cause).contains("The log does not say"),
                "{cause}"
            );
        }
    }
}
