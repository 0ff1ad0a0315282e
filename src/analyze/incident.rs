//! Worker incidents: a WORKER TIMEOUT, the abort traceback that followed it, the SIGKILL that
//! escalated it, or a SIGKILL on its own. Built from Gunicorn events in time order; each
//! incident gets one cause of the vocabulary.

use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset};

use crate::analyze::stack;
use crate::report::{Cause, Confidence, Event, EventDetail, Frame};

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
    pub timeout: Option<usize>,
    pub abort: Option<usize>,
    pub kill: Option<usize>,
    pub cause: Cause,
    pub basis: Basis,
    pub confidence: Confidence,
    pub reason: String,
    pub request: Option<String>,
    pub stuck_frame: Option<Frame>,
    pub call_site: Option<Frame>,
    /// Extra evidence found by correlation (app log line, PostgreSQL statement).
    pub correlated: Vec<crate::report::Evidence>,
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
                incidents.push(Incident::new(pid, time));
                let j = incidents.len() - 1;
                incidents[j].timeout = Some(i);
                open.insert(pid, j);
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
                    incidents.push(Incident::new(pid, time));
                    let j = incidents.len() - 1;
                    incidents[j].abort = Some(i);
                    open.insert(pid, j);
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
                    incidents.push(Incident::new(pid, time));
                    let j = incidents.len() - 1;
                    incidents[j].kill = Some(i);
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
            cause: Cause::Unknown,
            basis: Basis::NoTraceback,
            confidence: Confidence::Low,
            reason: String::new(),
            request: None,
            stuck_frame: None,
            call_site: None,
            correlated: Vec::new(),
        }
    }
}

fn attribute(inc: &mut Incident, events: &[Event]) {
    let kill_signal = inc.kill.and_then(|k| match &events[k].detail {
        EventDetail::WorkerKilled { signal, .. } => Some(signal.clone()),
        _ => None,
    });
    if let Some(a) = inc.abort
        && let EventDetail::RequestAbort {
            request, frames, ..
        } = &events[a].detail
    {
        inc.request.clone_from(request);
        if !frames.is_empty() {
            let v = stack::classify(frames);
            inc.cause = v.cause;
            inc.reason = format!("aborted while {}", v.reason);
            inc.stuck_frame = v.stuck_frame;
            inc.call_site = v.call_site;
            inc.basis = Basis::Traceback;
            inc.confidence = match v.cause {
                Cause::MissingApiTimeout | Cause::NPlusOne => Confidence::High,
                Cause::Unknown => Confidence::Low,
                _ => Confidence::Medium,
            };
            return;
        }
    }
    match (inc.timeout.is_some(), kill_signal.as_deref()) {
        (true, Some(signal)) => {
            let waited = (events[inc.kill.unwrap_or_default()]
                .time
                .unwrap_or(inc.time)
                - inc.time)
                .num_seconds();
            inc.basis = Basis::Escalation;
            inc.cause = Cause::Unknown;
            inc.confidence = Confidence::Low;
            inc.reason = format!(
                "ignored the master's SIGABRT and got {signal} {waited}s later: stuck in native code \
                 (most often the database driver waiting on PostgreSQL; sometimes a C extension or \
                 a regex holding the GIL); this is a timeout escalation, not an out-of-memory kill"
            );
        }
        (true, None) => {
            inc.basis = Basis::NoTraceback;
            inc.reason = "timed out; the log has no traceback of what it was doing".into();
        }
        (false, Some("SIGKILL")) => {
            inc.basis = Basis::UnprovokedKill;
            inc.cause = Cause::Memory;
            inc.confidence = Confidence::Medium;
            inc.reason = "got SIGKILL with no WORKER TIMEOUT before it: the kernel's OOM killer \
                          (or an operator's kill -9)"
                .into();
        }
        (false, Some(signal)) => {
            inc.basis = Basis::Crash;
            inc.reason =
                format!("died of {signal} with no timeout before it: a crash in native code");
        }
        (false, None) => {}
    }
}

/// Writes each incident's attribution back into its timeout and kill events.
pub fn annotate(events: &mut [Event], incidents: &[Incident]) {
    for inc in incidents {
        for idx in [inc.timeout, inc.kill].into_iter().flatten() {
            match &mut events[idx].detail {
                EventDetail::WorkerTimeout {
                    cause,
                    reason,
                    request,
                    stuck_frame,
                    call_site,
                    ..
                } => {
                    *cause = inc.cause;
                    reason.clone_from(&inc.reason);
                    request.clone_from(&inc.request);
                    stuck_frame.clone_from(&inc.stuck_frame);
                    call_site.clone_from(&inc.call_site);
                }
                EventDetail::WorkerKilled {
                    cause,
                    reason,
                    request,
                    stuck_frame,
                    call_site,
                    after_timeout,
                    ..
                } => {
                    *cause = inc.cause;
                    *after_timeout = inc.timeout.is_some();
                    reason.clone_from(&inc.reason);
                    request.clone_from(&inc.request);
                    stuck_frame.clone_from(&inc.stuck_frame);
                    call_site.clone_from(&inc.call_site);
                }
                _ => {}
            }
        }
        if let Some(a) = inc.abort
            && let EventDetail::RequestAbort { stuck_frame, .. } = &mut events[a].detail
        {
            stuck_frame.clone_from(&inc.stuck_frame);
        }
    }
}
