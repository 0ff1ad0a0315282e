//! The report model every subcommand fills and every renderer prints. Its JSON form is a public
//! contract (`schema_version` 1): fields are added, never renamed or removed.

mod cause;
mod event;
mod pg;
mod severity;
mod side;

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

pub use cause::Cause;
pub use event::{
    Attribution, DeadlockProcess, Event, EventDetail, Frame, Origin, OriginKind, Source,
};
pub use pg::{BurstSummary, PgInput, PgSummary, SqlstateClassCount, StatementSummary};
pub use severity::{Confidence, Severity};
pub use side::{MAX_SIDE_EVENTS, SideEvent, SideEvents, SideKind};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    Logs,
    Pg,
    Live,
    Watch,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Bumped only when a field changes meaning; new fields do not bump it.
    pub schema_version: u32,
    /// `logs`, `pg`, `live` or `watch`.
    pub command: CommandName,
    /// wtdiag's own version.
    pub wtdiag_version: &'static str,
    /// What was read, and what of it was skipped and why.
    pub inputs: Vec<InputSummary>,
    /// How many events of each kind were seen (before any event list cap).
    pub summary: BTreeMap<&'static str, u64>,
    /// The events that matter, in time order.
    pub events: Vec<Event>,
    /// Events seen but not listed in `events` (e.g. fast statements), so nothing is lost silently.
    pub events_omitted: u64,
    /// Ranked root causes, most important first.
    pub findings: Vec<Finding>,
    /// What the inputs could not show, and what to change so they do.
    pub warnings: Vec<Warning>,
    /// `live` only: one entry per sampled worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<WorkerState>>,
    /// `pg` only: statement statistics, N+1 bursts, how each input was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg: Option<PgSummary>,
    /// Events of side inputs not listed in `events`, for the timeline (not in JSON).
    #[serde(skip)]
    pub side_events: SideEvents,
    /// `logs` with access or slow-request logs: each endpoint's latency, slowest p95 first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<crate::analyze::endpoints::EndpointSummary>>,
    /// `logs` with access logs: the 5xx answers clients got, per status and path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_impact: Option<crate::analyze::endpoints::ClientImpact>,
    /// The Gunicorn timeout the endpoints' latencies were measured against, for the charts
    /// (not in JSON).
    #[serde(skip)]
    pub endpoint_timeout_s: Option<f64>,
}

impl Report {
    pub fn new(command: CommandName) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            command,
            wtdiag_version: env!("CARGO_PKG_VERSION"),
            inputs: Vec::new(),
            summary: BTreeMap::new(),
            events: Vec::new(),
            events_omitted: 0,
            findings: Vec::new(),
            warnings: Vec::new(),
            workers: None,
            pg: None,
            side_events: SideEvents::default(),
            endpoints: None,
            client_impact: None,
            endpoint_timeout_s: None,
        }
    }

    /// The most severe finding, for `--fail-on`.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Orders findings by how much they explain (count weighted by severity), then severity,
    /// then confidence, and numbers them from 1.
    pub fn rank_findings(&mut self) {
        self.findings.sort_by(|a, b| {
            b.score()
                .cmp(&a.score())
                .then(b.severity.cmp(&a.severity))
                .then(b.confidence.cmp(&a.confidence))
                .then(a.cause.cmp(&b.cause))
                .then(a.title.cmp(&b.title))
        });
        for (i, f) in self.findings.iter_mut().enumerate() {
            f.rank = i + 1;
        }
    }
}

/// One input as read.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    /// As given on the command line; `-` is stdin.
    pub path: String,
    /// The detected format: `gunicorn`, `applog`, `stderr`, `csvlog`, `jsonlog`, `syslog`, ...
    pub format: String,
    /// True when the input was gzip-compressed.
    pub compressed: bool,
    /// Bytes of (decompressed) text read.
    pub bytes: u64,
    pub lines: u64,
    /// Lines that could not be used; `skipped` says why.
    pub skipped_lines: u64,
    pub skipped: Vec<SkippedLines>,
    /// Lines with invalid UTF-8, still read with U+FFFD in place of the bad bytes.
    pub lossy_lines: u64,
    /// For a multi-origin stream (`logs`): its envelope (`kubectl_prefix`, `docker_compose`,
    /// `journal_short`, `journal_json`, `loki_logcli`, `loki_logcli_jsonl`, `ndjson`,
    /// `cloudwatch_tail`) and the origins found in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedLines {
    /// e.g. `line longer than 1 MiB`, `invalid UTF-8`.
    pub reason: String,
    pub count: u64,
    pub first_line: u64,
}

/// A line of evidence: where it is and what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub path: String,
    /// 1-based line number; null for live samples.
    pub line: Option<u64>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// 1 is the most important.
    pub rank: usize,
    pub cause: Cause,
    pub severity: Severity,
    pub confidence: Confidence,
    /// One line a person reads first.
    pub title: String,
    /// How many timeouts, kills, statements or waits this finding explains.
    pub count: u64,
    /// The request (`GET /path` or `/path`) when known.
    pub request: Option<String>,
    /// The processes involved (worker or backend pids).
    pub pids: Vec<u32>,
    pub first_seen: Option<DateTime<FixedOffset>>,
    pub last_seen: Option<DateTime<FixedOffset>>,
    /// Why this cause: what in the evidence says so.
    pub reason: String,
    pub evidence: Vec<Evidence>,
    pub advice: String,
    /// Causes the evidence excludes, with why (empty when none was ruled out).
    pub ruled_out: Vec<RuledOut>,
    /// The files, hosts, pods or containers whose incidents the finding explains (`logs`;
    /// empty for findings not made of worker incidents).
    pub origins: Vec<String>,
}

/// A cause the evidence excludes, and why (`findings[].ruled_out`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RuledOut {
    pub cause: Cause,
    pub reason: String,
}

impl Finding {
    fn score(&self) -> u64 {
        let weight = match self.severity {
            Severity::Critical => 8,
            Severity::High => 4,
            Severity::Medium => 2,
            Severity::Low => 1,
            Severity::Info => 0,
        };
        self.count.max(1) * weight
    }
}

/// Something the inputs cannot show, with the change that would make them show it.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// Stable identifier, e.g. `no_traceback`, `log_min_duration_too_high`.
    pub code: &'static str,
    pub message: String,
    pub advice: String,
}

/// `live`: one sampled worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerState {
    pub pid: u32,
    /// `idle`, `busy` or `stuck`.
    pub state: String,
    /// The longest time the worker stayed in the same stack during sampling.
    pub stuck_seconds: f64,
    /// Null when idle.
    pub cause: Option<Cause>,
    /// The application call site (`views.py:42 in upstream`).
    pub frame: Option<String>,
    /// Seconds before the master's timeout kills it; null when idle or unknown.
    pub seconds_left: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    /// How long the worker's current request has run: its heartbeat's age for sync workers;
    /// for gthread and event-loop workers, whose heartbeat is not the request's, the time it was
    /// seen busy while sampled (see `busy_seconds_at_least`). Null when idle or unknown.
    pub busy_seconds: Option<f64>,
    /// py-spy samples taken of the worker.
    pub samples: usize,
    /// The innermost frames most often sampled while busy, most frequent first.
    pub hot_frames: Vec<SampledFrame>,
    /// Major page faults (disk reads: swap-ins, evicted code) per second while sampled.
    pub major_faults_per_second: Option<f64>,
    /// True when the worker exited while it was sampled (its samples up to then are used).
    pub exited: bool,
    /// The worker class the clock is read for: `sync`, `gthread`, `gevent`, `eventlet`,
    /// `asyncio` (uvicorn's worker), or the class as configured; null when unknown.
    pub worker_class: Option<String>,
    /// The peer of the outbound call it waits in (`http`, `smtp`, `redis`, `memcached`,
    /// `stdlib_protocol`, `cloud_sdk`, `dns`, `tls_handshake`, `socket`); null otherwise.
    pub outbound: Option<&'static str>,
    /// The view function of the request (`wtapp/views.py:30 in upstream_api_view`).
    pub view: Option<String>,
    /// True when `busy_seconds` is a lower bound: the request was running before sampling began
    /// and nothing dates its start (gthread threads, event loops).
    pub busy_seconds_at_least: bool,
    /// Event-loop workers (gevent, eventlet, asyncio): true when one call has held the loop (and
    /// every other request of the worker) for the stuck threshold or longer; null for the
    /// other classes.
    pub loop_blocked: Option<bool>,
    /// Event-loop workers: established connections from clients on the ports it listens on.
    /// Requests waiting on I/O in suspended greenlets/coroutines are in no stack; these show
    /// they are there. Null for the other classes.
    pub client_connections: Option<usize>,
    /// gthread: request threads busy, and the pool size (`threads`); null for the other classes.
    pub threads_busy: Option<usize>,
    pub threads_total: Option<usize>,
    /// One entry per thread serving a request, each its own diagnosis (a busy sync worker has
    /// one; a gthread worker one per busy pool thread; an event-loop worker the request on its
    /// loop when py-spy can see it).
    pub threads: Vec<ThreadState>,
}

/// `live`: one request thread of a worker, with the fields of [`WorkerState`] read for that
/// thread alone (memory fields are the whole process's).
#[derive(Debug, Clone, Serialize)]
pub struct ThreadState {
    pub pid: u32,
    /// The Python thread id (`threading.get_ident()`).
    pub thread_id: u64,
    /// `ThreadPoolExecutor-0_1`, `MainThread`; null when py-spy could not read it.
    pub thread_name: Option<String>,
    pub state: String,
    pub stuck_seconds: f64,
    pub cause: Option<Cause>,
    pub frame: Option<String>,
    /// Null where the master will not kill for this request (a gthread request thread, an event
    /// loop that is not blocked).
    pub seconds_left: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    pub busy_seconds: Option<f64>,
    pub samples: usize,
    pub hot_frames: Vec<SampledFrame>,
    pub major_faults_per_second: Option<f64>,
    pub exited: bool,
    pub outbound: Option<&'static str>,
    pub view: Option<String>,
    pub busy_seconds_at_least: bool,
}

/// `live`: a frame and how often it was sampled.
#[derive(Debug, Clone, Serialize)]
pub struct SampledFrame {
    /// `socket.py:706 in SocketIO.readinto`
    pub frame: String,
    pub samples: usize,
    /// Fraction of the busy samples, 0 to 1.
    pub share: f64,
}
