//! A reading (one request thread, or a worker's main request) with what else is known about the
//! worker → its diagnosis: the cause refined by PostgreSQL's view of its backend (`--pg`) and by
//! memory, the evidence lines, the severity and the row the report shows.

use chrono::{DateTime, FixedOffset};

use super::calls::OutboundCall;
use super::clock::{ClockReading, clock};
use super::database::{
    HOW_TO_TELL_LOCK_FROM_SLOW, database_cause, describe, statement_began_later,
};
use super::reading::{Activity, StackReading, site};
use crate::live::gunicorn_config::WorkerClass;
use crate::live::pg_activity::BackendActivity;
use crate::report::{Cause, Confidence, Severity, WorkerState};

/// Major faults per second from which a worker with pages in swap is thrashing.
pub(super) const THRASHING_FAULTS_PER_SECOND: f64 = 50.0;

/// RSS growth during sampling that is a memory problem in itself: at least this much...
pub(super) const GROWTH_MIN_BYTES: i64 = 100 << 20;

/// ...at least this fast.
pub(super) const GROWTH_MIN_BYTES_PER_SECOND: f64 = (20 << 20) as f64;

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
    /// Several threads of the worker wait on the database: backends are matched per process,
    /// not per thread.
    Ambiguous,
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

/// What is said about a reading, refined by PostgreSQL and memory.
pub(super) struct Explanation {
    pub(super) cause: Option<Cause>,
    pub(super) confidence: Confidence,
    pub(super) reason: String,
    pub(super) evidence: Vec<String>,
    /// What to do beyond the cause's standard remedy.
    pub(super) extra_advice: Option<String>,
    pub(super) database_confirmed: bool,
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
        client_connections: None,
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
pub(super) fn busy_evidence(
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
pub(super) fn refine_with_database(
    reading: &StackReading,
    backend: &BackendLookup,
    x: &mut Explanation,
) {
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
        BackendLookup::Ambiguous => {
            x.reason.push_str(
                "; several threads of this worker wait on the database and PostgreSQL's \
                 backends are matched to a process, not a thread, so a lock wait cannot be told \
                 from a slow statement for this one",
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
pub(super) fn refine_with_memory(
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

pub(super) fn severity(
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

pub(super) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
