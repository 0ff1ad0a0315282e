//! One episode → one incident: the episode's samples diagnosed by `analyze::live` (the same
//! diagnosis as `wtdiag live`), written as a JSON Lines object or a table line.
//!
//! The JSON object carries the fields of `live`'s worker objects (`pid`, `state`, `cause`,
//! `frame`, `busy_seconds`, `hot_frames`, `samples`, `view`, `outbound`, ...) and of the
//! report's events (`request`, `reason`, `stuck_frame`, `call_site`), plus watch's own
//! (`kind`, `outcome`, `caught_at`, `ended_at`, `stack_samples`, `pg`, ...). Field names are
//! a contract: added, never renamed.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::episode::{CaughtBy, Episode, MemoryPoint, Outcome};
use crate::analyze::live::{
    self as diagnosis, BackendLookup, LiveContext, MemoryTrend, WorkerDiagnosis, WorkerInput,
};
use crate::live::gunicorn_config::WorkerClass;
use crate::live::pg_activity::{Backend, BackendActivity};
use crate::live::sampler::Sample;
use crate::report::{Cause, Confidence, Frame, Severity, WorkerState};

/// `kind` of every incident object, so a reader tells it from the summary line.
pub const KIND: &str = "watch_incident";
/// Stacks listed per incident (the request thread's latest ones).
pub const STACK_SAMPLES: usize = 5;
/// Frames listed per stack sample (the innermost ones).
pub const STACK_FRAMES: usize = 40;
/// A request in one stack this long is stuck.
const STUCK_MIN_SECONDS: f64 = 1.0;

/// One caught worker's episode, diagnosed.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// Always `watch_incident`.
    pub kind: &'static str,
    /// `live`'s worker fields, read over the episode's samples.
    #[serde(flatten)]
    pub worker: WorkerState,
    /// `killed`, `recovered` or `interrupted` (watch stopped first).
    pub outcome: Outcome,
    /// `heartbeat` (silent past the threshold) or `memory` (RSS growing fast, or pages going
    /// to swap).
    pub caught_by: CaughtBy,
    /// RSS and swap while caught, with the readings that led to a memory catch (negative
    /// `at_seconds`); at most 120 points.
    pub rss_curve: Vec<MemoryPoint>,
    /// When watch saw the heartbeat pass the threshold (UTC).
    pub caught_at: DateTime<FixedOffset>,
    /// When the episode ended: the worker found dead, its heartbeat moving again, or watch
    /// stopping.
    pub ended_at: DateTime<FixedOffset>,
    /// The request line (`GET /path?query`) from the stack's WSGI environ; null when no dump
    /// showed it.
    pub request: Option<String>,
    pub confidence: Confidence,
    pub severity: Severity,
    /// Why this cause.
    pub reason: String,
    /// The innermost frame the request thread was in.
    pub stuck_frame: Option<Frame>,
    /// The innermost application frame: the line to change.
    pub call_site: Option<Frame>,
    pub evidence: Vec<String>,
    /// The request thread's latest stacks (at most 5, innermost 40 frames each).
    pub stack_samples: Vec<StackSample>,
    /// Dumps taken while caught (`samples` counts the ones kept, at most 150).
    pub samples_taken: usize,
    /// PostgreSQL's last view of the worker's backend (`--pg`); null otherwise.
    pub pg: Option<PgView>,
    /// Why a dump failed or sampling stopped, when one did.
    pub sampling_error: Option<String>,
    /// The oldest heartbeat age seen while caught, in seconds.
    pub max_heartbeat_age: f64,
    /// The master's timeout and the heartbeat age at which watch catches a worker, in seconds.
    pub timeout: f64,
    pub threshold_seconds: f64,
    pub master_pid: u32,
}

/// One py-spy dump of the request thread.
#[derive(Debug, Clone, Serialize)]
pub struct StackSample {
    /// Seconds after `caught_at`.
    pub at_seconds: f64,
    pub thread_id: u64,
    /// Running (not blocked in a system call) when sampled.
    pub active: bool,
    /// `file:line in function`, outermost first (the innermost 40).
    pub frames: Vec<String>,
}

/// PostgreSQL's view of a backend (`pg_stat_activity`, `pg_locks`).
#[derive(Debug, Clone, Serialize)]
pub struct PgView {
    pub backend_pid: i32,
    pub state: Option<String>,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
    pub query: Option<String>,
    pub query_seconds: Option<f64>,
    pub xact_seconds: Option<f64>,
    /// The lock it waits for (`ShareLock on transaction 745`).
    pub awaited_lock: Option<String>,
    pub blocked_by: Vec<PgBlocker>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgBlocker {
    pub backend_pid: i32,
    pub state: Option<String>,
    pub query: Option<String>,
}

/// Longest statement text kept in `pg`.
const MAX_QUERY_CHARS: usize = 2000;

fn cut(text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|q| q.chars().take(MAX_QUERY_CHARS).collect())
}

impl PgView {
    fn of(a: &BackendActivity) -> PgView {
        let b: &Backend = &a.backend;
        PgView {
            backend_pid: b.pid,
            state: b.state.clone(),
            wait_event_type: b.wait_event_type.clone(),
            wait_event: b.wait_event.clone(),
            query: cut(&b.query),
            query_seconds: b.query_seconds.map(round1),
            xact_seconds: b.xact_seconds.map(round1),
            awaited_lock: a.awaited_lock.clone(),
            blocked_by: a
                .blockers
                .iter()
                .take(20)
                .map(|x| PgBlocker {
                    backend_pid: x.pid,
                    state: x.state.clone(),
                    query: cut(&x.query),
                })
                .collect(),
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// What the diagnosis needs besides the episode.
pub struct Setting {
    pub master: u32,
    pub timeout: f64,
    pub threshold: f64,
    pub class: WorkerClass,
    pub threads: u32,
}

fn to_fixed(t: std::time::SystemTime) -> DateTime<FixedOffset> {
    let utc: DateTime<Utc> = t.into();
    // Milliseconds are enough, and keep the lines short.
    DateTime::from_timestamp_millis(utc.timestamp_millis())
        .unwrap_or(utc)
        .fixed_offset()
}

/// An episode diagnosed: the incident and the diagnosis findings are made of. None when the
/// worker was idle in every dump and recovered (a heartbeat that aged while nothing ran: not
/// an incident).
pub fn diagnose(episode: &Episode, setting: &Setting) -> Option<(Incident, WorkerDiagnosis)> {
    // A killed worker's last dumps may show it leaving (its abort handler ran): the request is
    // what it served before.
    let samples = &episode.samples[..diagnosis::serving_samples(&episode.samples)];
    let killed = episode.outcome == Outcome::Killed;
    let span = samples
        .last()
        .zip(samples.first())
        .map(|(l, f)| (l.at - f.at).as_secs_f64())
        .unwrap_or(0.0);
    let stuck_min = STUCK_MIN_SECONDS.min((span / 2.0).max(0.2));
    let input = WorkerInput {
        pid: episode.caught.pid,
        exited: killed,
        heartbeat_age: Some(episode.max_age),
        memory: memory_trend(episode),
        backend: episode.backend.clone(),
        class: setting.class.clone(),
        threads: setting.threads,
        request_thread: false,
    };
    let ctx = LiveContext {
        timeout: Some(setting.timeout),
        system_swap_used: crate::live::procfs::system_swap().map(|(used, _)| used),
        started_at: to_fixed(episode.caught.at),
    };
    let (reading, outcome) = diagnosis::diagnose_samples(samples, &input, &ctx, stuck_min);
    let busy = matches!(outcome.worker.state.state.as_str(), "busy" | "stuck");
    if !busy && episode.outcome != Outcome::Killed && outcome.worker.cause.is_none() {
        return None;
    }
    let mut d = outcome.worker.clone();
    if samples.is_empty() {
        d.cause = Some(Cause::Unknown);
        d.confidence = Confidence::Low;
        d.reason = format!(
            "no py-spy sample of the worker could be taken while it was caught ({})",
            episode
                .first_failure
                .as_deref()
                .unwrap_or("it ended before the first dump")
        );
    } else if d.cause.is_none() {
        // Killed while every dump showed it idle: the whole process stalled, or the master
        // killed it for another reason.
        d.cause = Some(Cause::Unknown);
        d.confidence = Confidence::Low;
        d.reason = "its heartbeat went stale while py-spy saw no request in its stacks (the \
                    process stalled as a whole, or it was killed for another reason)"
            .into();
    }
    if killed {
        // A request was lost: the client got a 502.
        d.severity = Severity::Critical;
    }
    let mut state = outcome.state();
    state.cause = d.cause;
    // How close it came: the timeout minus the oldest heartbeat seen (null once killed).
    state.seconds_left = (!killed && setting.timeout > 0.0)
        .then(|| round1((setting.timeout - episode.max_age).max(0.0)));
    let request = episode.request.as_ref().map(|(_, r)| r.clone());
    // The thread the diagnosis read the request from, else the one whose environ named it.
    let request_thread = reading
        .thread_id
        .or_else(|| episode.request.as_ref().map(|(t, _)| *t));
    let incident = Incident {
        kind: KIND,
        worker: state,
        outcome: episode.outcome,
        caught_by: episode.caught.by,
        rss_curve: episode.memory_curve.clone(),
        caught_at: to_fixed(episode.caught.at),
        ended_at: to_fixed(episode.ended_at),
        request,
        confidence: d.confidence,
        severity: d.severity,
        reason: d.reason.clone(),
        stuck_frame: reading.stuck_frame.clone(),
        call_site: reading.call_site.clone(),
        evidence: d.evidence.clone(),
        stack_samples: stack_samples(samples, request_thread, reading.call_site.as_ref()),
        samples_taken: episode.samples_taken,
        pg: match &episode.backend {
            BackendLookup::Found(a) => Some(PgView::of(a)),
            _ => None,
        },
        sampling_error: episode
            .sampling_stopped
            .clone()
            .or_else(|| episode.first_failure.clone())
            .or_else(|| episode.pg_error.clone()),
        max_heartbeat_age: round1(episode.max_age),
        timeout: setting.timeout,
        threshold_seconds: round1(setting.threshold),
        master_pid: setting.master,
    };
    Some((incident, d))
}

fn memory_trend(e: &Episode) -> Option<MemoryTrend> {
    let first = e.memory_first?;
    let last = e.memory_last.unwrap_or(first);
    let seconds = (last.at - first.at).as_secs_f64();
    let faults = last.major_faults.saturating_sub(first.major_faults) as f64;
    Some(MemoryTrend {
        rss_bytes: last.memory.rss_bytes,
        swap_bytes: last.memory.swap_bytes,
        rss_growth_bytes: last.memory.rss_bytes as i64 - first.memory.rss_bytes as i64,
        major_faults_per_second: if seconds >= 0.5 {
            faults / seconds
        } else {
            0.0
        },
        seconds,
    })
}

/// The request thread's latest stacks that pass through the call site (after an abort, the
/// worker's last dumps show Gunicorn closing the connection), innermost frames kept.
fn stack_samples(
    samples: &[Sample],
    thread: Option<u64>,
    site: Option<&Frame>,
) -> Vec<StackSample> {
    let through_site = |frames: &[Frame]| {
        site.is_none_or(|c| {
            frames
                .iter()
                .any(|f| f.file == c.file && f.function == c.function)
        })
    };
    let thread_of = |s: &Sample| match thread {
        Some(id) => s.threads.iter().find(|t| t.thread_id == id).cloned(),
        None => s.threads.first().cloned(),
    };
    let any_through = samples
        .iter()
        .filter_map(thread_of)
        .any(|t| through_site(&t.frames));
    let mut out: Vec<StackSample> = samples
        .iter()
        .rev()
        .filter_map(|s| {
            let t = thread_of(s)?;
            if any_through && !through_site(&t.frames) {
                return None;
            }
            let skip = t.frames.len().saturating_sub(STACK_FRAMES);
            Some(StackSample {
                at_seconds: round1(s.at.as_secs_f64()),
                thread_id: t.thread_id,
                active: t.active,
                frames: t.frames[skip..]
                    .iter()
                    .map(|f| {
                        let file = f.file.rsplit('/').next().unwrap_or(&f.file);
                        format!("{file}:{} in {}", f.line, f.function)
                    })
                    .collect(),
            })
        })
        .take(STACK_SAMPLES)
        .collect();
    out.reverse();
    out
}

/// The table line of an incident: when, what happened to whom, the cause, the request, where.
pub fn table_line(i: &Incident) -> String {
    let cause = i
        .worker
        .cause
        .map(|c| c.to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut line = format!(
        "{} {:<11} pid {} {} ({} confidence), {:.1} s without heartbeat",
        i.caught_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        i.outcome.name(),
        i.worker.pid,
        cause,
        i.confidence.to_string().to_lowercase(),
        i.max_heartbeat_age,
    );
    if let Some(r) = &i.request {
        line.push_str(&format!(", {r}"));
    }
    if let Some(f) = &i.worker.frame {
        line.push_str(&format!(", at {f}"));
    }
    line.push_str(&format!(": {}", i.reason));
    line
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::live::dump;
    use crate::watch::episode::{Caught, CaughtBy};

    /// The recorded dumps of a worker stuck in `requests.get` (fixtures/pyspy/upstream).
    fn upstream_samples() -> Vec<Sample> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pyspy/upstream");
        let times = std::fs::read_to_string(dir.join("times.txt")).unwrap();
        times
            .lines()
            .enumerate()
            .map(|(i, ms)| Sample {
                at: Duration::from_millis(ms.trim().parse().unwrap()),
                took: Duration::ZERO,
                threads: dump::parse(&std::fs::read(dir.join(format!("{i:02}.json"))).unwrap())
                    .unwrap(),
            })
            .collect()
    }

    fn episode(outcome: Outcome, samples: Vec<Sample>) -> Episode {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        Episode {
            caught: Caught {
                by: CaughtBy::Heartbeat,
                memory_before: Vec::new(),
                pid: 4242,
                at,
                inode: 7,
                heartbeat: at - Duration::from_secs(6),
                age: 6.0,
            },
            outcome,
            ended_at: at + Duration::from_millis(3500),
            samples_taken: samples.len(),
            samples,
            request: Some((0, "GET /api/upstream?user=42".into())),
            backend: BackendLookup::NotAsked,
            pg_error: None,
            failures: 0,
            first_failure: None,
            sampling_stopped: None,
            max_age: 9.6,
            memory_first: None,
            memory_last: None,
            memory_curve: Vec::new(),
        }
    }

    fn setting() -> Setting {
        Setting {
            master: 4200,
            timeout: 10.0,
            threshold: 6.0,
            class: WorkerClass::Sync,
            threads: 1,
        }
    }

    #[test]
    fn an_incident_carries_lives_worker_fields_and_watchs_own() {
        let (incident, diagnosis) =
            diagnose(&episode(Outcome::Killed, upstream_samples()), &setting()).unwrap();
        assert_eq!(diagnosis.severity, Severity::Critical, "a lost request");
        let json = serde_json::to_value(&incident).unwrap();
        for key in [
            // live's workers[] fields
            "pid",
            "state",
            "stuck_seconds",
            "cause",
            "frame",
            "seconds_left",
            "rss_bytes",
            "swap_bytes",
            "busy_seconds",
            "samples",
            "hot_frames",
            "exited",
            "worker_class",
            "outbound",
            "view",
            "threads",
            // the report's events' fields
            "request",
            "reason",
            "stuck_frame",
            "call_site",
            // watch's own
            "kind",
            "outcome",
            "caught_by",
            "caught_at",
            "ended_at",
            "confidence",
            "severity",
            "stack_samples",
            "samples_taken",
            "pg",
            "rss_curve",
            "max_heartbeat_age",
        ] {
            assert!(json.get(key).is_some(), "no {key} in {json:#}");
        }
        assert_eq!(json["kind"], "watch_incident");
        assert_eq!(json["outcome"], "killed");
        assert_eq!(json["cause"], "missing_api_timeout");
        assert_eq!(json["request"], "GET /api/upstream?user=42");
        assert_eq!(json["caught_at"], "2026-11-30T00:53:20Z");
        assert!(json["seconds_left"].is_null(), "killed: nothing left");
        let stacks = json["stack_samples"].as_array().unwrap();
        assert!(!stacks.is_empty() && stacks.len() <= STACK_SAMPLES);
        assert!(stacks.iter().all(|s| {
            let frames = s["frames"].as_array().unwrap();
            frames.len() <= STACK_FRAMES
                && frames
                    .iter()
                    .any(|f| f.as_str().unwrap().contains("upstream_api_view"))
        }));
        let line = table_line(&incident);
        assert!(
            line.starts_with("2026-11-30T00:53:20.000Z killed      pid 4242 missing_api_timeout"),
            "{line}"
        );
        assert!(line.contains("GET /api/upstream?user=42"), "{line}");
    }

    #[test]
    fn an_idle_worker_that_recovered_is_no_incident_and_one_never_sampled_says_why() {
        // Only the first dump: keep its threads but make them idle (Gunicorn's accept loop).
        let mut idle = upstream_samples();
        for s in &mut idle {
            for t in &mut s.threads {
                let keep = t
                    .frames
                    .iter()
                    .position(|f| f.function.ends_with("run_for_one"))
                    .unwrap_or(t.frames.len() - 1);
                t.frames.truncate(keep + 1);
            }
        }
        assert!(diagnose(&episode(Outcome::Recovered, idle), &setting()).is_none());
        let mut never = episode(Outcome::Killed, Vec::new());
        never.first_failure = Some("pid 4242: py-spy failed".into());
        let (incident, _) = diagnose(&never, &setting()).unwrap();
        assert_eq!(incident.worker.cause, Some(Cause::Unknown));
        assert!(
            incident.reason.contains("py-spy failed"),
            "{}",
            incident.reason
        );
    }
}
