//! Typed events: one thing that happened, read from one line (or block) of one input. Parsers
//! produce them, analysis attributes causes to them, renderers print them. In JSON every event
//! is an object with `kind` first, the kind's own fields, then `pid`, `time` and `source`.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::Cause;

/// Where an event was read: the input's path as given on the command line (`-` for stdin) and
/// the 1-based line number of its first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Shared by every event of one input.
    pub path: Arc<str>,
    pub line: u64,
}

/// What kind of place an [`Origin`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OriginKind {
    /// A single-origin input: the file itself (rotated files of one log are one origin).
    File,
    /// A machine: journald's `_HOSTNAME`, syslog's host, an aggregator's `host.name`.
    Host,
    /// A Kubernetes pod (and container): `kubectl logs --prefix`, aggregator pod labels.
    Pod,
    /// A container or service replica: docker compose's `web-1`.
    Container,
    /// A stream an aggregator names (a CloudWatch log stream, a Loki label set).
    Stream,
}

/// The process namespace an event came from: the file of a single-origin input, or the host,
/// pod or container label of a multi-origin stream. Pids are only meaningful within one origin
/// (every pod has a master `[1]` and workers `[7]`), so incidents never join across origins.
/// In JSON it is the label (or the path) as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub kind: OriginKind,
    pub name: Arc<str>,
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl Origin {
    /// The origin of a single-origin input.
    pub fn file(path: &Arc<str>) -> Origin {
        Origin {
            kind: OriginKind::File,
            name: path.clone(),
        }
    }

    pub fn labelled(kind: OriginKind, name: &str) -> Origin {
        Origin {
            kind,
            name: Arc::from(name),
        }
    }

    /// What incidents are keyed by: the label, or for a file the log it is a rotation of
    /// (`error.log.2.gz`, `error.log.1` and `error.log` are one log, so a timeout at the end of
    /// one and its kill at the start of the next stay one incident).
    pub fn key(&self) -> (OriginKind, &str) {
        match self.kind {
            OriginKind::File => (OriginKind::File, rotation_stem(&self.name)),
            kind => (kind, &self.name),
        }
    }

    /// Whether evidence of `other` may be joined to an incident of `self` by pid or time: not
    /// when both carry a label of the same kind and the labels differ (a pod's OOM kill is not
    /// another pod's timeout). A file carries no label: a `dmesg` file or an nginx log given on
    /// its own joins as before.
    pub fn may_join(&self, other: &Origin) -> bool {
        self.kind == OriginKind::File
            || other.kind == OriginKind::File
            || self.kind != other.kind
            || self.name == other.name
    }
}

/// `error.log.2.gz` → `error.log`; `error.log-20261126.gz` → `error.log`: what logrotate adds.
fn rotation_stem(path: &str) -> &str {
    let mut s = path;
    for suffix in [".gz", ".bz2", ".xz", ".zst"] {
        s = s.strip_suffix(suffix).unwrap_or(s);
    }
    // `.1`, `.12`
    if let Some(dot) = s.rfind('.') {
        let tail = &s[dot + 1..];
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            s = &s[..dot];
        }
    }
    // `-20261126` (dateext)
    if let Some(dash) = s.rfind('-') {
        let tail = &s[dash + 1..];
        if tail.len() >= 8 && tail.bytes().all(|b| b.is_ascii_digit()) {
            s = &s[..dash];
        }
    }
    s
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(flatten)]
    pub detail: EventDetail,
    /// The process the event is about: a Gunicorn worker, or a PostgreSQL backend.
    pub pid: Option<u32>,
    /// When it happened, with the UTC offset the log gave.
    pub time: Option<DateTime<FixedOffset>>,
    pub source: Source,
    /// The file, host, pod or container the event came from.
    pub origin: Origin,
    /// The log text the event was read from, for evidence (not in JSON: `source` points to it).
    #[serde(skip)]
    pub text: String,
}

/// One frame of a Python stack, innermost last.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Frame {
    pub file: String,
    pub line: u32,
    pub function: String,
    /// The source line Python printed under the frame, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Frame {
    /// `views.py:42 in upstream (requests.get(url))`, the short form for tables and titles.
    pub fn short(&self) -> String {
        let file = self.file.rsplit('/').next().unwrap_or(&self.file);
        match &self.code {
            Some(code) => format!("{file}:{} in {}: {code}", self.line, self.function),
            None => format!("{file}:{} in {}", self.line, self.function),
        }
    }
}

/// What a worker incident is attributed to. One value is shared (`Arc`) by the timeout, abort
/// and kill events of an incident; in JSON its fields sit in each event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Attribution {
    pub cause: Cause,
    /// One sentence: why this cause.
    pub reason: String,
    /// The request the worker was serving (`GET /path` or `/path`), when known.
    pub request: Option<String>,
    /// The innermost frame the worker was in (not Gunicorn's signal handler).
    pub stuck_frame: Option<Frame>,
    /// The innermost frame of the application: the line to change.
    pub call_site: Option<Frame>,
    /// The view that served the request (the first application frame under Django's handler).
    pub view: Option<Frame>,
    /// For `missing_api_timeout`: what the outbound call was (`http`, `smtp`, `redis`, `dns`,
    /// `tls`, `cloud_sdk`, `llm_sdk`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<crate::analyze::stack::OutboundKind>,
}

/// One process's part in a PostgreSQL deadlock report.
#[derive(Debug, Clone, Serialize)]
pub struct DeadlockProcess {
    pub pid: u32,
    /// `ShareLock on transaction 745`
    pub waits_for: String,
    pub blocked_by: Option<u32>,
    pub statement: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventDetail {
    /// `Starting gunicorn 23.0.0`
    GunicornStart { version: String },
    /// `Booting worker with pid: N`
    WorkerBoot,
    /// `WORKER TIMEOUT (pid:N)` (or `DIRTY WORKER TIMEOUT`), logged by the master.
    WorkerTimeout {
        dirty: bool,
        #[serde(flatten)]
        attribution: Arc<Attribution>,
    },
    /// A worker that died from a signal (`Worker (pid:N) was sent SIGKILL!`,
    /// `Worker with pid N was terminated due to signal 9`).
    WorkerKilled {
        signal: String,
        /// True when a WORKER TIMEOUT of the same pid came before: the master escalated.
        after_timeout: bool,
        #[serde(flatten)]
        attribution: Arc<Attribution>,
    },
    /// `Worker (pid:N) exited with code C`, or `Worker exiting (pid: N)` (code null).
    WorkerExit { exit_code: Option<i32> },
    /// `Worker failed to boot` / `App failed to load` / `Exception in worker process`.
    BootFailure { message: String },
    /// `Error handling request PATH` and its traceback, ending in `SystemExit: 1` when the
    /// worker was aborted for a timeout.
    RequestAbort {
        exception: Option<String>,
        /// The request and, set by analysis, what the stack says.
        #[serde(flatten)]
        attribution: Arc<Attribution>,
        /// The traceback's raw text; analysis reads it, then drops it to keep memory bounded
        /// (`stuck_frame` and `call_site` stay).
        #[serde(skip)]
        traceback: String,
    },
    /// A statement's duration line from PostgreSQL.
    Statement {
        duration_ms: f64,
        /// 16 hex digits identifying the statement's shape (see `normalized`).
        fingerprint: String,
        query: String,
        /// The query with literals, parameters and value lists replaced by `?`/`(...)`.
        normalized: String,
        /// `statement`, `execute`, `parse`, `bind`, `plan` (auto_explain), `duration`
        /// (log_duration) or `fastpath`.
        phase: &'static str,
        /// The prepared statement (and portal) of `execute`/`parse`/`bind`.
        #[serde(skip_serializing_if = "Option::is_none")]
        prepared: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        parameters: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        database: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        application: Option<String>,
    },
    /// A PostgreSQL lock wait line: waiting, acquired, deadlock detected, avoided, failed.
    LockWait {
        /// `waiting`, `acquired`, `deadlock_detected`, `avoided` or `failed`.
        state: String,
        /// The lock mode: `ShareLock`, `AccessExclusiveLock`, ...
        lock: String,
        /// `transaction 779`, `tuple (0,1) of relation 16413 of database 16385`, ...
        object: String,
        wait_ms: f64,
        /// The processes holding the lock.
        blocked_by: Vec<u32>,
        wait_queue: Vec<u32>,
        statement: Option<String>,
        /// The table, when the CONTEXT line names it (`while updating tuple (0,1) in relation
        /// "app_order"`).
        #[serde(skip_serializing_if = "Option::is_none")]
        relation: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
    /// `ERROR:  deadlock detected`.
    Deadlock {
        processes: Vec<DeadlockProcess>,
        /// Tables named by the CONTEXT line, and the relation OIDs of the lock objects.
        relations: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
    /// `canceling statement due to statement timeout | lock timeout | user request`.
    Cancel {
        /// `statement_timeout`, `lock_timeout`, `user_request` or `recovery_conflict`.
        reason: String,
        statement: Option<String>,
    },
    /// `temporary file: path "...", size N`.
    TempFile {
        size: u64,
        path: String,
        statement: Option<String>,
    },
    /// Any other ERROR/FATAL/PANIC, by SQLSTATE when the log carries it (or the wording is a
    /// common one).
    Error {
        severity: String,
        sqlstate: Option<String>,
        /// True when the log did not carry the SQLSTATE (no `%e`) and it was read from the
        /// message's wording (added with the SQLSTATE table; false otherwise).
        sqlstate_inferred: bool,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        statement: Option<String>,
    },
}

impl EventDetail {
    /// The `kind` string of this event, as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            EventDetail::GunicornStart { .. } => "gunicorn_start",
            EventDetail::WorkerBoot => "worker_boot",
            EventDetail::WorkerTimeout { .. } => "worker_timeout",
            EventDetail::WorkerKilled { .. } => "worker_killed",
            EventDetail::WorkerExit { .. } => "worker_exit",
            EventDetail::BootFailure { .. } => "boot_failure",
            EventDetail::RequestAbort { .. } => "request_abort",
            EventDetail::Statement { .. } => "statement",
            EventDetail::LockWait { .. } => "lock_wait",
            EventDetail::Deadlock { .. } => "deadlock",
            EventDetail::Cancel { .. } => "cancel",
            EventDetail::TempFile { .. } => "temp_file",
            EventDetail::Error { .. } => "error",
        }
    }
}
