//! PostgreSQL's view of a worker's backend (`pg_stat_activity`, `pg_locks`) → lock wait or slow
//! statement, with the blocker and the statement as evidence.

use crate::live::pg_activity::{Backend, BackendActivity};
use crate::report::{Cause, Confidence};

/// True when the backend's current (or last) statement began well after the worker entered the
/// stack it is blocked in, or the backend is not running anything: the stack spanned several
/// statements.
pub(super) fn statement_began_later(activity: &BackendActivity, block_seconds: f64) -> bool {
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

pub(super) const HOW_TO_TELL_LOCK_FROM_SLOW: &str = "To tell a lock wait from a slow statement, rerun with \
     --pg 'host=... dbname=... user=...' or run in psql: SELECT pid, wait_event_type, wait_event, \
     pg_blocking_pids(pid), now() - query_start, query FROM pg_stat_activity WHERE state <> \
     'idle'; wait_event_type 'Lock' is a lock wait (pg_blocking_pids names the holder), anything \
     else a slow statement.";

pub(super) struct DatabaseCause {
    pub(super) cause: Cause,
    pub(super) confidence: Confidence,
    pub(super) confirmed: bool,
    pub(super) reason: String,
    pub(super) evidence: Vec<String>,
    pub(super) advice: Option<String>,
}

pub(super) fn one_line(q: &str) -> String {
    let flat = q.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        let cut: String = flat.chars().take(200).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

pub(super) fn describe(b: &Backend) -> String {
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
pub(super) fn database_cause(a: &BackendActivity) -> DatabaseCause {
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
