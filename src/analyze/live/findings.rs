//! Diagnosed requests → findings grouped by cause and call site, with advice written for live
//! mode and for the worker class.

use std::collections::BTreeMap;

use super::calls::PeerKind;
use super::diagnosis::WorkerDiagnosis;
use crate::live::gunicorn_config::WorkerClass;
use crate::report::{Cause, Confidence, Evidence, Finding, RuledOut, Severity};

/// Workers listed as evidence per finding.
pub(super) const EVIDENCE_WORKERS: usize = 4;

/// Live advice for a cause: what to change, and for the causes whose standard remedy is written
/// for logs (`unknown`, `memory`), what to look at next with `wtdiag live`.
pub(super) fn live_advice(cause: Cause) -> String {
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
pub(super) fn class_advice(d: &WorkerDiagnosis) -> Option<&'static str> {
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

/// The causes what py-spy (and PostgreSQL, with --pg) saw of a request excludes, with why: the
/// sampled stack is direct evidence of where the request was, so the causes whose signature it
/// lacks are out.
pub(super) fn ruled_out(cause: Cause, d: &WorkerDiagnosis) -> Vec<RuledOut> {
    let out = |causes: &[Cause], reason: &str| -> Vec<RuledOut> {
        causes
            .iter()
            .map(|&c| RuledOut {
                cause: c,
                reason: reason.to_string(),
            })
            .collect()
    };
    let mut list = match cause {
        Cause::MissingApiTimeout => out(
            &[
                Cause::SlowQuery,
                Cause::LockWait,
                Cause::Deadlock,
                Cause::NPlusOne,
            ],
            "the sampled stack waits in an outbound client's read, with no database driver \
             frame in it",
        ),
        Cause::LockWait if d.database_confirmed => out(
            &[Cause::SlowQuery],
            "PostgreSQL (pg_locks) shows the request's backend waiting for a lock, not running \
             its statement",
        ),
        Cause::SlowQuery if d.database_confirmed => out(
            &[Cause::LockWait, Cause::Deadlock],
            "PostgreSQL (pg_stat_activity, pg_locks) shows the request's backend running its \
             statement, not waiting for a lock",
        ),
        _ => Vec::new(),
    };
    if matches!(
        cause,
        Cause::MissingApiTimeout | Cause::LockWait | Cause::SlowQuery
    ) {
        list.extend(out(
            &[Cause::CpuBound],
            "the sampled stack sits in the same blocking call sample after sample: waiting, \
             not computing",
        ));
    }
    if cause.is_database() {
        list.extend(out(
            &[Cause::MissingApiTimeout],
            "the sampled stack is in the database driver, not in an outbound client",
        ));
    }
    if cause == Cause::CpuBound {
        list.extend(out(
            &[Cause::MissingApiTimeout, Cause::SlowQuery, Cause::LockWait],
            "the sampled stack runs code without waiting in a socket read or the database \
             driver",
        ));
    }
    list
}

pub(super) fn thread_label(d: &WorkerDiagnosis) -> String {
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

pub(super) fn finding(cause: Cause, workers: &[&WorkerDiagnosis]) -> Finding {
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
        Cause::BootTimeout => "still loading the application",
        Cause::SlowClient => "waiting on a client",
        Cause::HostStall => "stalled with the whole process",
        Cause::ProxyTimeout => "outlasting the proxy's timeout",
        Cause::SlowEndpoint => "on a slow endpoint",
        Cause::HungRequest => "on a request that never times out",
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
        origins: Vec::new(),
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
        ruled_out: ruled_out(cause, first),
    }
}
