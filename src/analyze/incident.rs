//! Worker incidents: a WORKER TIMEOUT, the abort traceback that followed it, the SIGKILL that
//! escalated it, or a SIGKILL on its own. Built from Gunicorn events in time order; each
//! incident gets one cause of the vocabulary.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset};

use crate::report::{Attribution, Cause, Confidence, Event, EventDetail, Evidence};

/// How long after a WORKER TIMEOUT a kill or an abort traceback of the same pid still belongs
/// to it. The master re-checks about once a second; a busy host can take longer.
const FOLLOW_WINDOW_SECS: i64 = 60;

/// How an incident's cause was decided, which also groups findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Basis {
    /// From the traceback Gunicorn ≥ 22 logs when the worker handles SIGABRT.
    Traceback,
    /// The worker ignored SIGABRT and was SIGKILLed: native code held it.
    Escalation,
    /// A timeout with neither traceback nor kill (Gunicorn < 22).
    NoTraceback,
    /// A SIGKILL with no timeout before it.
    UnprovokedKill,
    /// Died of another signal (SIGSEGV, SIGBUS, ...) with no timeout before it.
    Crash,
    /// Refined from the PostgreSQL log around the incident's time.
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Incident {
    pub pid: u32,
    pub time: DateTime<FixedOffset>,
    /// Indexes into the event list.
    pub timeout: Option<usize>,
    pub abort: Option<usize>,
    pub kill: Option<usize>,
    pub basis: Basis,
    pub confidence: Confidence,
    pub attribution: Attribution,
    /// Extra evidence found by correlation (app log line, PostgreSQL statement).
    pub correlated: Vec<Evidence>,
}

/// Groups `events` (sorted by time) into incidents and attributes a cause to each.
pub fn build(events: &[Event]) -> Vec<Incident> {
    let mut incidents: Vec<Incident> = Vec::new();
    // pid → index of its latest incident that may still take an abort or a kill.
    let mut open: HashMap<u32, usize> = HashMap::new();
    let within = |inc: &Incident, t: DateTime<FixedOffset>| {
        t >= inc.time - Duration::seconds(2)
            && t <= inc.time + Duration::seconds(FOLLOW_WINDOW_SECS)
    };

    for (i, e) in events.iter().enumerate() {
        let (Some(pid), Some(time)) = (e.pid, e.time) else {
            continue;
        };
        match &e.detail {
            EventDetail::WorkerTimeout { .. } => {
                if let Some(&j) = open.get(&pid)
                    && incidents[j].timeout.is_none()
                    && incidents[j].abort.is_some()
                    && within(&incidents[j], time)
                {
                    // The abort traceback was logged before the master's line.
                    incidents[j].timeout = Some(i);
                    incidents[j].time = time;
                    continue;
                }
                let mut inc = Incident::new(pid, time);
                inc.timeout = Some(i);
                open.insert(pid, incidents.len());
                incidents.push(inc);
            }
            EventDetail::RequestAbort { exception, .. } => {
                let is_abort = exception
                    .as_deref()
                    .is_some_and(|x| x.starts_with("SystemExit"));
                if let Some(&j) = open.get(&pid)
                    && incidents[j].abort.is_none()
                    && incidents[j].kill.is_none()
                    && within(&incidents[j], time)
                {
                    incidents[j].abort = Some(i);
                } else if is_abort {
                    let mut inc = Incident::new(pid, time);
                    inc.abort = Some(i);
                    open.insert(pid, incidents.len());
                    incidents.push(inc);
                }
            }
            EventDetail::WorkerKilled { signal, .. } => {
                if let Some(&j) = open.get(&pid)
                    && incidents[j].kill.is_none()
                    && within(&incidents[j], time)
                {
                    incidents[j].kill = Some(i);
                    open.remove(&pid);
                } else if is_fatal(signal) {
                    let mut inc = Incident::new(pid, time);
                    inc.kill = Some(i);
                    incidents.push(inc);
                }
            }
            EventDetail::WorkerBoot => {
                open.remove(&pid);
            }
            _ => {}
        }
    }
    for inc in &mut incidents {
        attribute(inc, events);
    }
    incidents
}

fn is_fatal(signal: &str) -> bool {
    matches!(
        signal,
        "SIGKILL" | "SIGSEGV" | "SIGBUS" | "SIGILL" | "SIGFPE" | "SIGABRT"
    )
}

impl Incident {
    fn new(pid: u32, time: DateTime<FixedOffset>) -> Incident {
        Incident {
            pid,
            time,
            timeout: None,
            abort: None,
            kill: None,
            basis: Basis::NoTraceback,
            confidence: Confidence::Low,
            attribution: Attribution::default(),
            correlated: Vec::new(),
        }
    }

    pub fn cause(&self) -> Cause {
        self.attribution.cause
    }
}

fn attribute(inc: &mut Incident, events: &[Event]) {
    if let Some(a) = inc.abort
        && let EventDetail::RequestAbort { attribution, .. } = &events[a].detail
    {
        if !attribution.reason.is_empty() {
            inc.attribution = Attribution {
                reason: format!("aborted while {}", attribution.reason),
                ..(**attribution).clone()
            };
            inc.basis = Basis::Traceback;
            inc.confidence = match attribution.cause {
                Cause::MissingApiTimeout | Cause::NPlusOne => Confidence::High,
                Cause::Unknown => Confidence::Low,
                _ => Confidence::Medium,
            };
            return;
        }
        inc.attribution.request.clone_from(&attribution.request);
    }
    let kill = inc.kill.and_then(|k| match &events[k].detail {
        EventDetail::WorkerKilled { signal, .. } => Some((signal.as_str(), events[k].time)),
        _ => None,
    });
    let a = &mut inc.attribution;
    match (inc.timeout.is_some(), kill) {
        (true, Some((signal, at))) => {
            let waited = (at.unwrap_or(inc.time) - inc.time).num_seconds();
            inc.basis = Basis::Escalation;
            a.reason = format!(
                "ignored the master's SIGABRT and got {signal} {waited}s later: stuck in native \
                 code (most often the database driver waiting on PostgreSQL; sometimes a C \
                 extension or a regex holding the GIL); a timeout escalation, not an \
                 out-of-memory kill"
            );
        }
        (true, None) => {
            inc.basis = Basis::NoTraceback;
            a.reason = "timed out; the log has no traceback of what it was doing".into();
        }
        (false, Some(("SIGKILL", _))) => {
            inc.basis = Basis::UnprovokedKill;
            a.cause = Cause::Memory;
            inc.confidence = Confidence::Medium;
            a.reason = "got SIGKILL with no WORKER TIMEOUT before it: the kernel's OOM killer \
                        (or an operator's kill -9)"
                .into();
        }
        (false, Some((signal, _))) => {
            inc.basis = Basis::Crash;
            a.reason =
                format!("died of {signal} with no timeout before it: a crash in native code");
        }
        (false, None) => {}
    }
}

/// Writes each incident's attribution into its timeout, abort and kill events (one shared
/// value per incident).
pub fn annotate(events: &mut [Event], incidents: &[Incident]) {
    for inc in incidents {
        let shared = Arc::new(inc.attribution.clone());
        for idx in [inc.timeout, inc.kill].into_iter().flatten() {
            match &mut events[idx].detail {
                EventDetail::WorkerTimeout { attribution, .. } => {
                    *attribution = shared.clone();
                }
                EventDetail::WorkerKilled {
                    attribution,
                    after_timeout,
                    ..
                } => {
                    *attribution = shared.clone();
                    *after_timeout = inc.timeout.is_some();
                }
                _ => {}
            }
        }
    }
}
