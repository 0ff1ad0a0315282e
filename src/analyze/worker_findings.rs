//! Incidents → ranked findings: one finding per (cause, request, basis), with the log lines that
//! show it, how sure we are, and the standard remedy.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset};

use crate::analyze::incident::{Basis, Incident};
use crate::analyze::kernel_join::KernelKill;
use crate::analyze::proxy_join::ProxyLine;
use crate::report::{
    Cause, Confidence, Event, EventDetail, Evidence, Finding, OriginKind, Severity, Warning,
};

/// Evidence rows per finding: enough to see the pattern, few enough to read at 3 a.m.
const EVIDENCE_PER_FINDING: usize = 4;
/// From this many incidents on, a finding is critical.
const CRITICAL_COUNT: u64 = 10;

/// Distinct worker pids listed per finding; more are counted in the title's count only.
pub const MAX_PIDS: usize = 1_000;

/// Incidents grouped into findings as they come, in bounded memory: per (cause, basis, request
/// path) a count, the pids, the time span and the earliest few incidents for evidence. The
/// query string is not part of the request's key, so `GET /orders/?id=1` and `?id=2` make one
/// finding.
#[derive(Debug, Default)]
pub struct Groups {
    /// Keyed by cause, basis, request path and the causes ruled out (so a finding's
    /// `ruled_out` holds for every incident in it).
    /// An origin's incidents are its own findings: a fleet's pods are grouped apart (the
    /// key starts with the origin, a file's rotations being one).
    map: BTreeMap<GroupKey, Group>,
}

/// An origin's kind and its name (a file's: the log its rotations share).
type OriginKey = (OriginKind, String);
/// A finding's incidents: one origin, one cause and basis, one request path, one ruled-out list.
type GroupKey = (OriginKey, Cause, Basis, Option<String>, Vec<Cause>);

#[derive(Debug)]
struct Group {
    count: u64,
    pids: BTreeSet<u32>,
    any_timeout: bool,
    /// Over incidents with a readable time only.
    first_seen: Option<DateTime<FixedOffset>>,
    last_seen: Option<DateTime<FixedOffset>>,
    /// Incidents with an abort record (a traceback, maybe cut).
    aborted: u64,
    confidence: Confidence,
    /// The earliest incidents, in time order.
    samples: Vec<Incident>,
}

impl Groups {
    pub fn add(&mut self, inc: &Incident) {
        let request = inc.attribution.request.as_deref().map(path_only);
        let ruled_out: Vec<Cause> = inc.ruled_out.iter().map(|r| r.cause).collect();
        let (kind, name) = inc.origin.key();
        let g = self
            .map
            .entry((
                (kind, name.to_string()),
                inc.cause(),
                inc.basis,
                request,
                ruled_out,
            ))
            .or_insert_with(|| Group {
                count: 0,
                pids: BTreeSet::new(),
                any_timeout: false,
                first_seen: None,
                last_seen: None,
                aborted: 0,
                confidence: inc.confidence,
                samples: Vec::new(),
            });
        g.count += 1;
        if g.pids.len() < MAX_PIDS {
            g.pids.insert(inc.pid);
        }
        g.any_timeout |= inc.timeout.is_some();
        if inc.timed {
            g.first_seen = Some(g.first_seen.map_or(inc.time, |t| t.min(inc.time)));
            g.last_seen = g.last_seen.max(Some(inc.time));
        }
        g.aborted += u64::from(inc.abort.is_some());
        g.confidence = g.confidence.min(inc.confidence);
        let at = g.samples.partition_point(|s| s.time <= inc.time);
        if at < EVIDENCE_PER_FINDING {
            g.samples.insert(at, inc.clone());
            g.samples.truncate(EVIDENCE_PER_FINDING);
        }
    }

    /// How many incidents were decided on `basis`.
    pub fn count(&self, basis: Basis) -> u64 {
        self.map
            .iter()
            .filter(|((_, _, b, _, _), _)| *b == basis)
            .map(|(_, g)| g.count)
            .sum()
    }

    /// How many incidents were decided on `basis` and have no abort record.
    pub fn count_unaborted(&self, basis: Basis) -> u64 {
        self.map
            .iter()
            .filter(|((_, _, b, _, _), _)| *b == basis)
            .map(|(_, g)| g.count - g.aborted)
            .sum()
    }

    pub fn findings(&self) -> Vec<Finding> {
        self.map
            .iter()
            .map(|(((_, origin), cause, basis, request, _), g)| {
                let mut f = finding(*cause, *basis, request.clone(), g);
                f.origins = vec![origin.clone()];
                f
            })
            .collect()
    }
}

/// `GET /orders/?id=5` → `GET /orders/`.
fn path_only(request: &str) -> String {
    request.split('?').next().unwrap_or(request).to_string()
}

/// What to do about a gthread worker's timeout: the process stopped running Python.
const THREADED_ADVICE: &str = "Under gthread only a stall of the whole process times a worker \
    out: sample it when it happens (`wtdiag live --pid <master>`: py-spy shows the C frame \
    holding the GIL), look for long C calls that keep the GIL (a backtracking regex, a big \
    json/pickle, image or numeric code without GIL release) and move them off the request path, \
    and check whether the container was stopped, CPU-throttled (cpu.stat nr_throttled) or \
    swapping. Requests that merely wait on I/O never cause this.";

fn finding(cause: Cause, basis: Basis, request: Option<String>, g: &Group) -> Finding {
    let count = g.count;
    let pids: Vec<u32> = g.pids.iter().copied().collect();
    let first = &g.samples[0];
    let site = first
        .attribution
        .call_site
        .as_ref()
        .or(first.attribution.stuck_frame.as_ref())
        .map(|f| format!(" at {}", f.short()))
        .unwrap_or_default();
    let what = match (basis, g.any_timeout) {
        (Basis::UnprovokedKill | Basis::KernelOom, _) => {
            plural(count, "worker killed", "workers killed")
        }
        (Basis::Crash, _) => plural(count, "worker crash", "worker crashes"),
        (Basis::CutOff, _) => plural(count, "worker killed", "workers killed"),
        (_, _) => plural(count, "worker timeout", "worker timeouts"),
    };
    let on = request
        .as_deref()
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    // Refined from the PostgreSQL log: say what the database was doing.
    let db = first
        .attribution
        .reason
        .split(';')
        .next()
        .map(|r| r.trim_start_matches("PostgreSQL ").to_string())
        .unwrap_or_default();
    let title = match (cause, basis) {
        (Cause::LockWait | Cause::SlowQuery | Cause::Deadlock, Basis::Postgres) => {
            format!("{what}{on}: in the database, {db}")
        }
        (Cause::MissingApiTimeout, _) => {
            let kind = first.attribution.outbound.map_or("HTTP", |k| k.what());
            format!("{what}{on}: outbound {kind} call with no timeout{site}")
        }
        (Cause::NPlusOne, _) => format!("{what}{on}: N+1 queries, lazy ORM loads in a loop{site}"),
        (Cause::SlowQuery, _) => format!("{what}{on}: waiting on a database query{site}"),
        (Cause::LockWait, _) => format!("{what}{on}: waiting on a row/table lock{site}"),
        (Cause::Deadlock, _) => format!("{what}{on}: deadlock in the database{site}"),
        (Cause::CpuBound, _) => format!("{what}{on}: CPU-bound request code{site}"),
        (Cause::Memory, Basis::KernelOom) => {
            format!("{what}: killed by the kernel's OOM killer (pid in the kernel log)")
        }
        (Cause::Memory, _) => {
            format!("{what} by SIGKILL with no timeout before: out of memory (kernel OOM killer)")
        }
        (Cause::Unknown, Basis::Threaded) => format!(
            "{what}{on} of a gthread worker: its main thread could not run Python for the whole \
             timeout (C code holding the GIL, or a stopped or starved process)"
        ),
        (Cause::Unknown, Basis::Escalation) => {
            format!("{what}{on} escalated to SIGKILL: stuck in native code (not an OOM kill)")
        }
        (Cause::Unknown, Basis::NoTraceback) if first.abort.is_some() => {
            format!(
                "{what}{on}: its traceback is cut before the abort frames, cause not in this log"
            )
        }
        (Cause::Unknown, Basis::NoTraceback) => {
            format!("{what}{on} with no traceback: cause not in this log")
        }
        (Cause::Unknown, Basis::Crash) => format!("{what}: killed by a signal in native code"),
        (Cause::Unknown, Basis::CutOff) => {
            format!("{what} by SIGKILL at the start of the input: the timeout may be above the cut")
        }
        (Cause::Unknown, Basis::AbortDefault) => format!(
            "{what}{on} died of SIGABRT's default action: Gunicorn's abort handler never ran"
        ),
        (Cause::BootTimeout, _) => {
            format!("{what} while booting: loading the app takes longer than the timeout")
        }
        (Cause::SlowClient, _) => {
            format!("{what}{on}: waiting on a client, not on the application{site}")
        }
        (Cause::ProxyTimeout, _) => format!("{what}{on}: the proxy gave up before Gunicorn"),
        (Cause::SlowEndpoint, _) => format!("{what}{on}: a slow endpoint{site}"),
        (Cause::HungRequest, _) => format!("{what}{on}: a request that never times out{site}"),
        (Cause::HostStall, _) => {
            format!("{what} in lock-step: the whole process or host stalled, not a request")
        }
        (Cause::Unknown, _) => format!("{what}{on}: cause unknown{site}"),
    };
    let severity = if cause == Cause::Memory || count >= CRITICAL_COUNT {
        Severity::Critical
    } else {
        Severity::High
    };
    let confidence = g.confidence;
    let mut evidence = Vec::new();
    for inc in &g.samples {
        if let Some(m) = &inc.timeout {
            evidence.push(m.evidence(|| format!("WORKER TIMEOUT (pid:{})", inc.pid)));
        }
        if let Some(m) = &inc.abort {
            evidence.push(m.evidence(|| {
                let request = inc.attribution.request.as_deref().unwrap_or("");
                format!("Error handling request {request} (worker {})", inc.pid)
            }));
            if let Some(f) = inc.attribution.stuck_frame.as_ref() {
                evidence.push(Evidence {
                    path: f.file.clone(),
                    line: Some(u64::from(f.line)),
                    text: format!("stuck in {}", f.short()),
                });
            }
        }
        if let Some(m) = &inc.exit {
            evidence.push(m.evidence(|| format!("worker {} exiting", inc.pid)));
        }
        if let Some((m, signal)) = &inc.kill {
            evidence.push(m.evidence(|| format!("worker {} killed by {signal}", inc.pid)));
        }
        evidence.extend(inc.correlated.iter().cloned());
    }
    Finding {
        origins: Vec::new(),
        rank: 0,
        cause,
        severity,
        confidence,
        title,
        count,
        request,
        pids,
        first_seen: g.first_seen,
        last_seen: g.last_seen,
        reason: first.attribution.reason.clone(),
        evidence,
        advice: match (cause, first.attribution.outbound) {
            (Cause::MissingApiTimeout, Some(kind)) => kind.advice().to_string(),
            (Cause::Unknown, _) if basis == Basis::Threaded => THREADED_ADVICE.to_string(),
            _ => cause.advice().to_string(),
        },
        ruled_out: first.ruled_out.to_vec(),
    }
}

fn line_evidence(e: &Event) -> Evidence {
    Evidence {
        path: e.source.path.to_string(),
        line: Some(e.source.line),
        text: e.text.clone(),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// OOM kills of Python processes that no Gunicorn record explains: before 20.1 Gunicorn logs
/// nothing when a worker is SIGKILLed (only the next `Booting worker`), and an excerpt may not
/// hold the record.
pub fn silent_oom_finding(kills: &[&KernelKill]) -> Option<Finding> {
    let ours: Vec<&&KernelKill> = kills
        .iter()
        .filter(|k| {
            let c = k.kill.comm.to_ascii_lowercase();
            c.contains("gunicorn") || c.starts_with("python") || c.contains("uvicorn")
        })
        .collect();
    let first = ours.first()?;
    let count = ours.len() as u64;
    let mut pids: Vec<u32> = ours.iter().map(|k| k.kill.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids.truncate(MAX_PIDS);
    Some(Finding {
        origins: Vec::new(),
        rank: 0,
        cause: Cause::Memory,
        severity: Severity::Critical,
        confidence: Confidence::High,
        title: format!(
            "{} by the kernel's OOM killer with no Gunicorn record of it",
            plural(count, "process killed", "processes killed")
        ),
        count,
        request: None,
        pids,
        first_seen: ours.iter().filter_map(|k| k.kill.time).min(),
        last_seen: ours.iter().filter_map(|k| k.kill.time).max(),
        reason: format!(
            "the kernel log shows the OOM killer killing {} ({}); the Gunicorn log has no \
             SIGKILL record for it (Gunicorn before 20.1 logs only the next `Booting worker`, \
             or the error log given does not cover it)",
            first.kill.pid, first.kill.comm
        ),
        evidence: ours
            .iter()
            .take(EVIDENCE_PER_FINDING)
            .map(|k| Evidence {
                path: k.path.clone(),
                line: Some(k.line),
                text: k.kill.text.clone(),
            })
            .collect(),
        advice: Cause::Memory.advice().to_string(),
        ruled_out: Vec::new(),
    })
}

/// The proxy gave up before Gunicorn (nginx `upstream timed out`, a 504): `proxy_read_timeout`
/// is below Gunicorn's `timeout`, so clients get 504s while the workers keep running.
pub fn proxy_timeout_finding(lines: &[&ProxyLine]) -> Option<Finding> {
    if lines.is_empty() {
        return None;
    }
    let count = lines.len() as u64;
    let mut requests: Vec<String> = lines
        .iter()
        .filter_map(|l| l.up.request.as_deref().map(path_only))
        .collect();
    requests.sort();
    requests.dedup();
    let request = (requests.len() == 1).then(|| requests[0].clone());
    let on = request
        .as_deref()
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    Some(Finding {
        origins: Vec::new(),
        rank: 0,
        cause: Cause::ProxyTimeout,
        severity: Severity::High,
        confidence: Confidence::High,
        title: format!(
            "{}{on}: the proxy gave up before Gunicorn (the client got a 504/503 while the workers kept running)",
            plural(count, "proxy timeout", "proxy timeouts")
        ),
        count,
        request,
        pids: Vec::new(),
        first_seen: lines.iter().filter_map(|l| l.up.time).min(),
        last_seen: lines.iter().filter_map(|l| l.up.time).max(),
        reason: "the proxy logged that it stopped waiting (nginx's 'upstream timed out (110: \
                 Connection timed out) while reading response header from upstream' after \
                 proxy_read_timeout, Heroku's H12 after its fixed 30 s) and answered 504/503 \
                 while the worker was still on the request, so the proxy's timeout is below \
                 Gunicorn's"
            .into(),
        evidence: lines
            .iter()
            .take(EVIDENCE_PER_FINDING)
            .map(|l| l.evidence())
            .collect(),
        advice: Cause::ProxyTimeout.advice().to_string(),
        ruled_out: Vec::new(),
    })
}

/// Workers that never came up: the app is down, every request fails.
pub fn boot_failure_finding(events: &[Event]) -> Option<Finding> {
    let failures: Vec<(&Event, &str)> = events
        .iter()
        .filter_map(|e| match &e.detail {
            EventDetail::BootFailure { message } => Some((e, message.as_str())),
            _ => None,
        })
        .collect();
    if failures.is_empty() {
        return None;
    }
    // The master's `Reason: ...` line ends each failed start; the worker's exception (with the
    // traceback's last line) says what to fix.
    let halts = failures
        .iter()
        .filter(|(_, m)| m.starts_with("Reason: "))
        .count();
    let count = if halts > 0 { halts } else { failures.len() } as u64;
    let exception = failures
        .iter()
        .find(|(_, m)| m.starts_with("Exception in worker process: "))
        .map(|(_, m)| m.trim_start_matches("Exception in worker process: "));
    let reason = failures
        .iter()
        .find(|(_, m)| m.starts_with("Reason: "))
        .map(|(_, m)| m.trim_start_matches("Reason: ").trim_end_matches('.'));
    let what = match (exception, reason) {
        (Some(exc), _) => format!("workers failed to boot: {exc}"),
        (None, Some(reason)) => reason.to_string(),
        (None, None) => failures[0].1.to_string(),
    };
    Some(Finding {
        origins: Vec::new(),
        rank: 0,
        cause: Cause::Unknown,
        severity: Severity::Critical,
        confidence: Confidence::High,
        title: format!("{}: {what}", plural(count, "failed start", "failed starts")),
        count,
        request: None,
        pids: failures.iter().filter_map(|(e, _)| e.pid).collect(),
        first_seen: failures.iter().filter_map(|(e, _)| e.time).min(),
        last_seen: failures.iter().filter_map(|(e, _)| e.time).max(),
        reason: "the application raised while loading; no request can be served".into(),
        evidence: failures
            .iter()
            .take(EVIDENCE_PER_FINDING)
            .map(|(e, _)| line_evidence(e))
            .collect(),
        advice: "Run the app's import by hand (`python -c 'import yourproject.wsgi'`) or start \
                 Gunicorn with --preload --log-level debug to see the exception (\"App failed \
                 to load\" prints it on Gunicorn's stderr, not in the error log); fix the import \
                 or configuration error it names."
            .into(),
        ruled_out: Vec::new(),
    })
}

/// Replacement workers beyond which unexplained boots make a restart loop.
const RESTART_LOOP_MIN: usize = 3;

/// Workers booted to replace others whose end the log never shows: they died silently (before
/// Gunicorn 20.1 a worker killed by a signal — the kernel's OOM killer — leaves no line), so
/// the log cannot say why. A note, not a finding: it names no cause.
pub fn restart_loop_warning(events: &[Event]) -> Option<Warning> {
    use std::collections::HashSet;
    let mut replacements: Vec<&Event> = Vec::new();
    let mut ended: HashSet<u32> = HashSet::new();
    // The master's first boots come together: a boot more than 1 s after the previous one of
    // the wave, or after a worker ended, replaces a worker. A master (re)start opens a wave.
    let mut wave_open = true;
    let mut wave_last: Option<chrono::DateTime<chrono::FixedOffset>> = None;
    for e in events {
        match &e.detail {
            EventDetail::GunicornStart { .. } => {
                wave_open = true;
                wave_last = e.time;
            }
            EventDetail::WorkerBoot => {
                if e.pid.is_none() {
                    continue;
                }
                let close = match (wave_last, e.time) {
                    (Some(l), Some(t)) => (t - l).num_seconds() <= 1,
                    _ => true,
                };
                if wave_open && close {
                    wave_last = e.time.or(wave_last);
                } else {
                    wave_open = false;
                    replacements.push(e);
                }
            }
            EventDetail::WorkerExit { .. }
            | EventDetail::WorkerKilled { .. }
            | EventDetail::WorkerTimeout { .. }
            | EventDetail::BootFailure { .. } => {
                wave_open = false;
                if let Some(pid) = e.pid {
                    ended.insert(pid);
                }
            }
            _ => {}
        }
    }
    let unexplained = replacements.len().saturating_sub(ended.len());
    if unexplained < RESTART_LOOP_MIN {
        return None;
    }
    let span = match (
        replacements.first().and_then(|e| e.time),
        replacements.last().and_then(|e| e.time),
    ) {
        (Some(a), Some(b)) => format!(" in {} s", (b - a).num_seconds().max(1)),
        _ => String::new(),
    };
    let first = replacements[0];
    Some(Warning {
        code: "restart_loop",
        message: format!(
            "{} workers were booted{span} to replace workers whose end the log does not show \
             (first at {}:{}): they died without a line — Gunicorn before 20.1 logs nothing when \
             a worker is killed by a signal, such as the kernel's OOM killer",
            unexplained, first.source.path, first.source.line
        ),
        advice: "Give the kernel log of the same period (`wtdiag logs error.log <(dmesg -T)` or \
                 `journalctl -k`): an OOM kill names the pid; check the worker's own stderr for a \
                 crash (a segfault in a C extension), and upgrade Gunicorn to 20.1+ so that a \
                 worker's death by signal is logged."
            .into(),
    })
}
