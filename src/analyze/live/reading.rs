//! One worker's samples → what each of its threads is doing: which thread serves a request
//! (Gunicorn's request handler, a WSGI/ASGI request frame, application code run by an event
//! loop), and for each request its activity (busy, stuck), the longest time in one stack, the
//! cause its stacks point to, the call site and the outbound call it waits in.
//!
//! Each sampled stack is named by [`stack::classify`], the same reading `wtdiag logs` gives an
//! abort traceback. Across samples this adds what one stack cannot show: whether the thread is
//! blocked (py-spy's `active` flag) or computing, whether the same stack persists (a wait) or
//! changes (a loop), and lazy loads repeated across samples (N+1).

use std::collections::BTreeMap;

use super::calls::{self, OutboundCall};
use crate::analyze::stack::{self, Origin, StackVerdict};
use crate::live::dump::ThreadStack;
use crate::live::gunicorn_config::WorkerClass;
use crate::live::profile::{self, ThreadPoint};
use crate::live::sampler::Sample;
use crate::report::{Cause, Confidence, Frame, SampledFrame};

/// Innermost frames listed per worker.
pub(super) const HOT_FRAMES: usize = 3;

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
    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn is_busy(&self) -> bool {
        matches!(self.activity, Activity::Busy | Activity::Stuck)
    }
}

pub(super) fn method(function: &str) -> &str {
    function.rsplit('.').next().unwrap_or(function)
}

pub(super) fn is_gunicorn(f: &Frame) -> bool {
    stack::origin(&f.file) == Origin::Package("gunicorn")
}

/// A frame that runs one request whatever the worker class: Django's WSGI/ASGI handler, an ASGI
/// server's per-request task (uvicorn's `RequestResponseCycle.run_asgi`).
pub(super) fn is_request_entry(f: &Frame) -> bool {
    f.file.contains("/django/core/handlers/")
        || (stack::origin(&f.file) == Origin::Package("uvicorn")
            && f.function.ends_with("run_asgi"))
}

/// True when the thread is inside a request: under Gunicorn's request handler (sync, gthread's
/// pool threads, gevent's greenlets), a WSGI/ASGI request frame, or application code called from
/// the worker's loop (an asyncio callback: uvicorn). The launcher's frames before Gunicorn's
/// first one (`bin/gunicorn`'s `<module>`) do not count as application code.
pub(super) fn is_serving(frames: &[Frame]) -> bool {
    let app_or_entry = |f: &Frame| stack::origin(&f.file) == Origin::App || is_request_entry(f);
    match frames.iter().position(is_gunicorn) {
        Some(first) => frames[first..].iter().any(|f| {
            (is_gunicorn(f) && matches!(method(&f.function), "handle_request" | "handle"))
                || app_or_entry(f)
        }),
        None => frames.iter().any(app_or_entry),
    }
}

pub(super) struct PointReading<'a> {
    pub(super) point: ThreadPoint<'a>,
    pub(super) serving: bool,
    pub(super) verdict: Option<StackVerdict>,
    /// The outbound call a blocked request thread waits in.
    pub(super) call: Option<OutboundCall>,
}

pub(super) fn read_point(point: ThreadPoint<'_>) -> PointReading<'_> {
    let serving = is_serving(&point.stack.frames);
    PointReading {
        point,
        serving,
        verdict: serving.then(|| stack::classify(&point.stack.frames)),
        call: (serving && !point.stack.active)
            .then(|| calls::outbound_call(&point.stack.frames))
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

pub(super) fn share(part: usize, whole: usize) -> f64 {
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

pub(super) fn with_thread(
    mut reading: StackReading,
    name: Option<&str>,
    from_start: bool,
) -> StackReading {
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

/// How many threads of a `concurrent.futures` pool the worker has (gthread's request threads;
/// the pool starts them as requests come, up to `threads`).
pub fn pool_threads(samples: &[Sample]) -> usize {
    let mut ids: Vec<u64> = samples
        .iter()
        .flat_map(|s| &s.threads)
        .filter(|t| {
            t.frames
                .iter()
                .any(|f| f.file.ends_with("concurrent/futures/thread.py"))
        })
        .map(|t| t.thread_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
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
pub(super) fn read_request(
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

    // Blocked on a peer in the last samples: that is what the request waits for now, whatever
    // ran before it (a fresh worker's first request spends its first tenths of a second
    // importing modules, which would otherwise outvote a short sampling window).
    let waiting_on_peer_now = current_blocked
        && current.points() >= 2
        && (last.cause == Cause::MissingApiTimeout || run.last().is_some_and(|r| r.call.is_some()));
    // The stack it is stuck in now, else the most frequent cause (ties: the latest).
    let dominant: &StackVerdict = if stuck_now || waiting_on_peer_now {
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
pub(super) fn hot_frames<'a>(stacks: impl Iterator<Item = &'a ThreadStack>) -> Vec<SampledFrame> {
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

/// How many of `samples` to read for the request a worker was serving when it was stopped: up
/// to the last sample in which a thread is inside the request (application code or Django's
/// handler), else up to the last in which one serves at all. The samples after it show the
/// worker leaving: Gunicorn's abort handler ran `sys.exit`, the exception unwound the request,
/// and Gunicorn answered 500 and lingered in `close_graceful` (22+) for the client to close,
/// which would otherwise read as a worker stuck in Gunicorn's own code.
pub fn serving_samples(samples: &[Sample]) -> usize {
    // The launcher's frames before Gunicorn's first one (`bin/gunicorn`) are no request.
    let in_request = |frames: &[Frame]| {
        let from = frames.iter().position(is_gunicorn).unwrap_or(0);
        is_serving(frames)
            && frames[from..]
                .iter()
                .any(|f| stack::origin(&f.file) == Origin::App || is_request_entry(f))
    };
    samples
        .iter()
        .rposition(|s| s.threads.iter().any(|t| in_request(&t.frames)))
        .or_else(|| {
            samples
                .iter()
                .rposition(|s| s.threads.iter().any(|t| is_serving(&t.frames)))
        })
        .map_or(samples.len(), |last| last + 1)
}
