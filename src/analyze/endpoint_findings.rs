//! Findings from request timings (access logs, slow-request app logs) and the proxy's own
//! timeouts, read against Gunicorn's timeout and its worker class:
//! - `slow_endpoint`: an endpoint whose finished requests take two thirds of the timeout or
//!   more, and that has not timed out yet: the next to time out;
//! - `hung_request`: under gthread or an async worker class, requests that ran past the
//!   timeout (or that the proxy gave up on) without any worker timing out: Gunicorn never
//!   times such a request out;
//! - `proxy_timeout` only where the worker class times requests out (sync), since elsewhere
//!   the proxy giving up first says nothing about the order of the timeouts.

use crate::analyze::endpoints::{EndpointSummary, TimingSource};
use crate::analyze::proxy_join::ProxyLine;
use crate::report::{Cause, Confidence, Evidence, Finding, Severity, Warning};

/// Gunicorn's default `--timeout`.
pub const DEFAULT_TIMEOUT_S: f64 = 30.0;
/// A sync worker's request can outlive the timeout by the master's check interval (about a
/// second) and its kill: only requests longer than this past the timeout say the timeout is
/// not what was assumed.
const SYNC_SLACK_S: f64 = 2.0;
const EVIDENCE: usize = 5;

/// What the worker class does with a request that waits on I/O past the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassTimeouts {
    /// sync: the worker is timed out and killed.
    TimesOut,
    /// gthread, gevent, eventlet, tornado, uvicorn: the request runs on, nothing ends it.
    NeverTimesOut,
    /// `Using worker:` is not in the logs.
    Unknown,
}

impl ClassTimeouts {
    pub fn of(class: Option<&str>) -> ClassTimeouts {
        let Some(class) = class else {
            return ClassTimeouts::Unknown;
        };
        let c = class.to_ascii_lowercase();
        if c == "sync" || c.ends_with("syncworker") {
            ClassTimeouts::TimesOut
        } else if [
            "gthread",
            "threadworker",
            "gevent",
            "eventlet",
            "tornado",
            "uvicorn",
            "asgi",
        ]
        .iter()
        .any(|k| c.contains(k))
        {
            ClassTimeouts::NeverTimesOut
        } else {
            ClassTimeouts::Unknown
        }
    }
}

/// Gunicorn's timeout as the report uses it.
#[derive(Debug, Clone, Copy)]
pub struct Timeout {
    pub seconds: f64,
    /// False when Gunicorn's default was assumed.
    pub given: bool,
}

impl Timeout {
    fn said(self) -> String {
        if self.given {
            format!("{} s timeout", secs(self.seconds))
        } else {
            format!(
                "{} s timeout (Gunicorn's default, assumed: pass --timeout)",
                secs(self.seconds)
            )
        }
    }
}

fn secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.0}")
    } else {
        let t = format!("{s:.1}");
        t.trim_end_matches(".0").to_string()
    }
}

/// What the inputs give these findings.
pub struct Inputs<'a> {
    pub endpoints: &'a [EndpointSummary],
    pub timeout: Timeout,
    pub class: Option<&'a str>,
    /// The proxy's `upstream timed out` lines.
    pub proxy_timeouts: &'a [&'a ProxyLine],
    /// Paths (without the query) whose requests already have worker-timeout findings.
    pub timed_out_paths: &'a [String],
    /// Whether any worker timed out at all.
    pub any_timeout: bool,
    /// Database errors the app log shows per path: (path, exception, evidence).
    pub app_errors: &'a [(String, String, Evidence)],
}

fn path_of(request: &str) -> &str {
    let r = request.rsplit(' ').next().unwrap_or(request);
    r.split('?').next().unwrap_or(r)
}

fn source_says(e: &EndpointSummary, timeout: &str) -> String {
    match e.source {
        TimingSource::AppLog => format!(
            "{} slow request(s) logged, up to {} s, of a {timeout}",
            e.timed,
            secs(e.max_s)
        ),
        _ => format!(
            "p95 {} s of a {timeout} (max {} s, {} request(s))",
            secs(e.p95_s.unwrap_or(e.max_s)),
            secs(e.max_s),
            e.timed
        ),
    }
}

/// The findings and warnings request timings give.
pub fn findings(inp: &Inputs<'_>) -> (Vec<Finding>, Vec<Warning>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let class = ClassTimeouts::of(inp.class);
    let t = inp.timeout.seconds;

    // Requests that outlived the timeout.
    let long: Vec<&EndpointSummary> = inp
        .endpoints
        .iter()
        .filter(|e| {
            let limit = match class {
                ClassTimeouts::NeverTimesOut => t,
                _ => t + SYNC_SLACK_S,
            };
            let timed_out = inp.timed_out_paths.iter().any(|p| p == path_of(&e.request));
            e.max_s > limit && e.over_timeout > 0 && !timed_out
        })
        .collect();
    match class {
        ClassTimeouts::NeverTimesOut => {
            if let Some(f) = hung_requests(inp, &long) {
                out.push(f);
            }
        }
        _ => {
            if !long.is_empty() && !inp.any_timeout {
                let names: Vec<String> = long
                    .iter()
                    .take(5)
                    .map(|e| format!("{} ({} s)", e.request, secs(e.max_s)))
                    .collect();
                let class_said = match class {
                    ClassTimeouts::TimesOut => "the workers are sync, which time requests out",
                    _ => "the logs do not say the worker class (no `Using worker:` line)",
                };
                warnings.push(Warning {
                    code: "requests_outlived_timeout",
                    message: format!(
                        "requests ran longer than the {} and no worker timed out: {}; {class_said}",
                        inp.timeout.said(),
                        names.join(", ")
                    ),
                    advice: "Pass Gunicorn's real --timeout; if the workers are gthread, gevent, \
                             eventlet or uvicorn, requests that wait on I/O are never timed out \
                             (give the Gunicorn error log with its `Using worker:` line)."
                        .into(),
                });
            }
            if let Some(f) = proxy_timeout(inp, class) {
                out.push(f);
            }
        }
    }

    // Endpoints close to the timeout that have not timed out (yet).
    for e in inp.endpoints {
        // Requests between two thirds of the timeout and the timeout: the ones at or past it
        // were timed out (sync) or are hung requests (above).
        let close_ones = e.over_two_thirds_timeout - e.over_timeout;
        let close = close_ones > 0;
        let has_timeouts = inp.timed_out_paths.iter().any(|p| p == path_of(&e.request));
        if !close || has_timeouts || long.iter().any(|l| l.request == e.request) {
            continue;
        }
        let mut evidence: Vec<Evidence> = e.slowest.clone();
        evidence.extend(
            inp.app_errors
                .iter()
                .filter(|(p, _, _)| p == path_of(&e.request))
                .take(2)
                .map(|(_, _, ev)| ev.clone()),
        );
        let db_errors: Vec<&str> = inp
            .app_errors
            .iter()
            .filter(|(p, _, _)| p == path_of(&e.request))
            .map(|(_, exc, _)| exc.as_str())
            .collect();
        let db_note = if db_errors.is_empty() {
            String::new()
        } else {
            format!(
                "; the app log shows {} database error(s) on it ({})",
                db_errors.len(),
                crate::parse::cap(db_errors[0], 120)
            )
        };
        let gthread_note = if class == ClassTimeouts::NeverTimesOut {
            " (under this worker class it will not be timed out: it holds a thread instead)"
        } else {
            ""
        };
        out.push(Finding {
            origins: Vec::new(),
            rank: 0,
            cause: Cause::SlowEndpoint,
            severity: Severity::Medium,
            confidence: Confidence::High,
            title: format!(
                "{}: {}, {close_ones} between {} s and the timeout: the next to time \
                 out{gthread_note}",
                e.request,
                source_says(e, &inp.timeout.said()),
                secs(t * 2.0 / 3.0)
            ),
            count: close_ones,
            request: Some(e.request.clone()),
            pids: Vec::new(),
            first_seen: Some(e.first_seen),
            last_seen: Some(e.last_seen),
            reason: format!(
                "the {} shows requests to it taking two thirds of Gunicorn's timeout or more, \
                 and none of them timed out in the error log{db_note}",
                e.source.name()
            ),
            evidence: evidence.into_iter().take(EVIDENCE).collect(),
            advice: Cause::SlowEndpoint.advice().to_string(),
            ruled_out: Vec::new(),
        });
    }
    (out, warnings)
}

fn hung_requests(inp: &Inputs<'_>, long: &[&EndpointSummary]) -> Option<Finding> {
    if long.is_empty() && inp.proxy_timeouts.is_empty() {
        return None;
    }
    let class = inp.class.unwrap_or("gthread");
    let mut proxy_requests: Vec<String> = inp
        .proxy_timeouts
        .iter()
        .filter_map(|l| l.up.request.as_deref())
        .map(|r| r.split('?').next().unwrap_or(r).to_string())
        .collect();
    proxy_requests.sort();
    proxy_requests.dedup();
    let gave_up = |path: &str| proxy_requests.iter().any(|r| path_of(r) == path);
    let mut parts: Vec<String> = long
        .iter()
        .map(|e| {
            let proxy = if gave_up(path_of(&e.request)) {
                ", the proxy gave up"
            } else {
                ""
            };
            format!("{} ({} s{proxy})", e.request, secs(e.max_s))
        })
        .collect();
    let proxy_only: Vec<&&ProxyLine> = inp
        .proxy_timeouts
        .iter()
        .filter(|l| {
            let r = l.up.request.as_deref().unwrap_or("");
            !long.iter().any(|e| path_of(&e.request) == path_of(r))
        })
        .collect();
    for r in &proxy_requests {
        if !long.iter().any(|e| path_of(&e.request) == path_of(r)) {
            parts.push(format!("{r} (the proxy gave up)"));
        }
    }
    let count = long.iter().map(|e| e.over_timeout).sum::<u64>() + proxy_only.len() as u64;
    let mut evidence: Vec<Evidence> = inp.proxy_timeouts.iter().map(|l| l.evidence()).collect();
    for e in long {
        evidence.extend(e.slowest.iter().cloned());
    }
    let request = match (long, &proxy_requests[..]) {
        ([one], []) => Some(one.request.clone()),
        ([], [one]) => Some(one.clone()),
        _ => None,
    };
    let times = long
        .iter()
        .map(|e| e.first_seen)
        .chain(inp.proxy_timeouts.iter().filter_map(|l| l.up.time));
    let first_seen = times.clone().min();
    let last_seen = times.max();
    Some(Finding {
        origins: Vec::new(),
        rank: 0,
        cause: Cause::HungRequest,
        severity: Severity::High,
        confidence: Confidence::High,
        title: format!(
            "{count} request(s) ran past the {} under {class} workers and were never timed out: {}",
            inp.timeout.said(),
            parts.join(", ")
        ),
        count,
        request,
        pids: Vec::new(),
        first_seen,
        last_seen,
        reason: format!(
            "the error log says `Using worker: {class}`: its heartbeat comes from the main thread \
             (or the event loop), which a request waiting on I/O, a lock or a query does not \
             stop, so Gunicorn's timeout never ends such a request; the access/app/proxy logs \
             show these requests running past it with no WORKER TIMEOUT for them"
        ),
        evidence: evidence.into_iter().take(EVIDENCE).collect(),
        advice: Cause::HungRequest.advice().to_string(),
        ruled_out: Vec::new(),
    })
}

fn proxy_timeout(inp: &Inputs<'_>, class: ClassTimeouts) -> Option<Finding> {
    let mut f = crate::analyze::worker_findings::proxy_timeout_finding(inp.proxy_timeouts)?;
    if class == ClassTimeouts::Unknown {
        f.confidence = Confidence::Medium;
        f.reason.push_str(
            " — if the workers are sync: the logs do not say the worker class, and under gthread \
             or an async class the proxy giving up says only that the request hung",
        );
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_classes() {
        assert_eq!(ClassTimeouts::of(Some("sync")), ClassTimeouts::TimesOut);
        assert_eq!(
            ClassTimeouts::of(Some("gthread")),
            ClassTimeouts::NeverTimesOut
        );
        assert_eq!(
            ClassTimeouts::of(Some("uvicorn.workers.UvicornWorker")),
            ClassTimeouts::NeverTimesOut
        );
        assert_eq!(
            ClassTimeouts::of(Some("gevent")),
            ClassTimeouts::NeverTimesOut
        );
        assert_eq!(ClassTimeouts::of(None), ClassTimeouts::Unknown);
    }
}
