//! The `pg` section of a report (`wtdiag pg` only): statement statistics per fingerprint, the
//! N+1 bursts found, and what each input was read as. Findings stay in `findings`; this is the
//! table a DBA reads next, as pgBadger users expect it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::Source;

#[derive(Debug, Clone, Default, Serialize)]
pub struct PgSummary {
    /// How each input was read.
    pub inputs: Vec<PgInput>,
    /// The top statements by total time, count, max and p95 (the union of the four top-N
    /// lists), by total time first.
    pub statements: Vec<StatementSummary>,
    /// Distinct statement shapes seen.
    pub fingerprints: u64,
    /// Statement runs not aggregated because the fingerprint table was full (then `fingerprints`
    /// stopped growing).
    pub fingerprint_overflow: u64,
    /// N+1 bursts: one backend running one statement shape again and again.
    pub bursts: Vec<BurstSummary>,
    /// Bursts found but not listed (the list is capped).
    pub bursts_omitted: u64,
    /// ERROR/FATAL/PANIC messages by SQLSTATE (`unknown` when the log does not say).
    pub errors_by_sqlstate: BTreeMap<String, u64>,
    /// The same errors by SQLSTATE class (the code's first two characters, or `unknown`), in
    /// class order; `inferred` of them had their code read from the message's wording.
    pub errors_by_sqlstate_class: Vec<SqlstateClassCount>,
}

/// Errors of one SQLSTATE class.
#[derive(Debug, Clone, Serialize)]
pub struct SqlstateClassCount {
    /// `23`, or `unknown` when neither the log nor the wording tells.
    pub class: String,
    /// errcodes.txt's name of the class (`Integrity Constraint Violation`); null for `unknown`.
    pub name: Option<String>,
    pub errors: u64,
    pub inferred: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgInput {
    pub path: Arc<str>,
    /// `stderr`, `csvlog`, `jsonlog`, `syslog`, `syslog_rfc5424`, `heroku`, `cloud_logging`,
    /// `cloudnativepg` or `azure`; null when not a PostgreSQL log.
    pub format: Option<&'static str>,
    /// The `log_line_prefix` read (given with --prefix, or detected).
    pub log_line_prefix: Option<String>,
    /// False when lines cannot be told apart by backend.
    pub has_pid: bool,
    /// Server messages read.
    pub messages: u64,
}

/// One statement shape's runs.
#[derive(Debug, Clone, Serialize)]
pub struct StatementSummary {
    /// 16 hex digits; the same as `fingerprint` in statement events.
    pub fingerprint: String,
    pub normalized: String,
    /// One run's SQL as logged (the slowest).
    pub example: String,
    pub count: u64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Estimated from a log-bucket histogram (within about 10%), clamped to the max.
    pub p95_ms: f64,
    /// The slowest run: its backend, time and place in the log.
    pub max_pid: Option<u32>,
    pub max_time: Option<DateTime<FixedOffset>>,
    pub max_source: Source,
}

/// A burst of one statement shape by one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BurstSummary {
    pub pid: u32,
    pub fingerprint: String,
    pub normalized: String,
    /// One of the runs as logged.
    pub example: String,
    /// Runs in the burst.
    pub count: u64,
    /// From the first run's start to the last run's end, by the log's times.
    pub span_ms: f64,
    /// The runs' durations added up (server time).
    pub total_ms: f64,
    pub first_time: Option<DateTime<FixedOffset>>,
    pub last_time: Option<DateTime<FixedOffset>>,
    pub first_source: Source,
}
