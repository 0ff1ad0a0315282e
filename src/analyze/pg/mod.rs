//! PostgreSQL log analysis: [`PgEvent`]s in (from [`crate::parse::pg`]), findings out. Nothing
//! here reads text formats. Memory is bounded by the number of statement shapes and backends,
//! never by the number of statements: runs are aggregated per fingerprint ([`statements`]), N+1
//! bursts need only each backend's recent runs ([`bursts`]), and only the events a reader
//! needs (slow statements, lock waits, deadlocks, cancels, ...) are kept, each kind capped.

pub mod bursts;
pub mod events;
mod findings;
pub mod fingerprint;
pub mod locks;
pub mod statements;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use crate::parse::pg::{CancelReason, PgEvent, PgEventKind, StatementPhase};
use crate::report::{Event, Finding, PgInput, PgSummary, Warning};
use bursts::{BurstDetector, BurstRules};
use fingerprint::{Normalizer, hash_bytes};
use locks::{LockLine, LockTracker, relation_of_context};
use statements::{StatementTable, cap};

/// Events of one kind listed at most (the rest are counted in `events_omitted`).
const MAX_LISTED_PER_KIND: u64 = 10_000;
/// Backends whose last statement shape is remembered, to name what a lock holder ran.
const MAX_REMEMBERED_BACKENDS: usize = 16_384;
/// auto_explain plans waiting for their duration line at once.
const MAX_PENDING_PLANS: usize = 4096;
/// SQL kept per deadlock process, cancel and temp-file record.
const MAX_RECORD_SQL: usize = 2048;
/// Normalised text used in place of SQL the log does not show (bare `duration:` lines).
pub const UNKNOWN_STATEMENT: &str = "(statement text not logged)";

#[derive(Debug, Clone, Copy)]
pub struct PgOptions {
    /// Top-N per category.
    pub top: usize,
    /// Statements at least this slow are listed as events and become slow_query findings.
    pub event_min_ms: f64,
    pub bursts: BurstRules,
}

/// A deadlock report, owned.
#[derive(Debug, Clone)]
pub struct DeadlockRecord {
    pub victim: Option<u32>,
    pub time: Option<DateTime<FixedOffset>>,
    pub evidence: crate::report::Evidence,
    /// (pid, waits for, blocked by, statement)
    pub processes: Vec<(u32, String, Option<u32>, Option<String>)>,
    pub relations: Vec<String>,
    /// Sorted fingerprints of the statements involved: deadlocks with the same key repeat one
    /// pattern.
    pub key: Vec<u64>,
    pub shapes: Vec<String>,
}

/// A cancel, owned.
#[derive(Debug, Clone)]
pub struct CancelRecord {
    pub reason: CancelReason,
    pub pid: Option<u32>,
    pub time: Option<DateTime<FixedOffset>>,
    pub evidence: crate::report::Evidence,
    pub shape: Option<String>,
    pub shape_hash: u64,
    pub statement: Option<String>,
}

/// Temporary files per statement shape.
#[derive(Debug, Clone, Default)]
pub struct TempFileGroup {
    pub normalized: String,
    pub files: u64,
    pub bytes: u64,
    pub pids: Vec<u32>,
    pub evidence: Vec<crate::report::Evidence>,
    pub first: Option<DateTime<FixedOffset>>,
    pub last: Option<DateTime<FixedOffset>>,
}

/// A plan logged by auto_explain, held until the backend's next statement says whether it is
/// the same run (the duration line follows the plan) or the plan stands alone.
struct PendingPlan {
    hash: u64,
    normalized: String,
    query: String,
    duration_ms: f64,
    time: Option<DateTime<FixedOffset>>,
    path: Arc<str>,
    line: u64,
    event: Option<Event>,
    values: u64,
}

/// The whole analysis of one `wtdiag pg` run.
pub struct PgAnalysis {
    opts: PgOptions,
    normalizer: Normalizer,
    pub statements: StatementTable,
    slow_runs: Vec<u64>,
    bursts: BurstDetector,
    locks: LockTracker,
    deadlocks: Vec<DeadlockRecord>,
    cancels: Vec<CancelRecord>,
    temp_files: HashMap<u64, TempFileGroup>,
    errors_by_sqlstate: BTreeMap<String, u64>,
    /// Per SQLSTATE class (`23`, or `unknown`): errors, and how many had their code inferred.
    errors_by_class: BTreeMap<String, (u64, u64)>,
    /// Each backend's last statement shape (index into `statements`).
    last_shape: HashMap<u32, usize>,
    pending_plans: HashMap<u32, PendingPlan>,
    /// Pending plans in arrival order (pid, line), to flush the oldest beyond the cap.
    pending_order: VecDeque<(u32, u64)>,
    events: Vec<Event>,
    listed: BTreeMap<&'static str, u64>,
    events_omitted: u64,
    seen: BTreeMap<&'static str, u64>,
    /// Shortest duration of a whole statement run (to tell log_min_duration_statement).
    min_duration_ms: Option<f64>,
    runs: u64,
    lock_lines: u64,
    /// Events with a time, and whether any had a sub-second part (`%m`, not `%t`).
    timed: u64,
    subsecond: bool,
}

/// What the analysis found.
pub struct PgOutcome {
    pub findings: Vec<Finding>,
    pub warnings: Vec<Warning>,
    pub events: Vec<Event>,
    pub events_omitted: u64,
    pub summary: BTreeMap<&'static str, u64>,
    pub pg: PgSummary,
}

impl PgAnalysis {
    pub fn new(opts: PgOptions) -> PgAnalysis {
        PgAnalysis {
            opts,
            normalizer: Normalizer::default(),
            statements: StatementTable::default(),
            slow_runs: Vec::new(),
            bursts: BurstDetector::new(opts.bursts),
            locks: LockTracker::default(),
            deadlocks: Vec::new(),
            cancels: Vec::new(),
            temp_files: HashMap::new(),
            errors_by_sqlstate: BTreeMap::new(),
            errors_by_class: BTreeMap::new(),
            last_shape: HashMap::new(),
            pending_plans: HashMap::new(),
            pending_order: VecDeque::new(),
            events: Vec::new(),
            listed: BTreeMap::new(),
            events_omitted: 0,
            seen: BTreeMap::new(),
            min_duration_ms: None,
            runs: 0,
            lock_lines: 0,
            timed: 0,
            subsecond: false,
        }
    }

    /// Takes one event read from `path`.
    pub fn observe(&mut self, e: &PgEvent<'_>, path: &Arc<str>) {
        let kind = match &e.kind {
            PgEventKind::Statement { .. } => "statement",
            PgEventKind::LockWait { .. } => "lock_wait",
            PgEventKind::Deadlock { .. } => "deadlock",
            PgEventKind::Cancel { .. } => "cancel",
            PgEventKind::TempFile { .. } => "temp_file",
            PgEventKind::Error { .. } => "error",
        };
        *self.seen.entry(kind).or_insert(0) += 1;
        if let Some(t) = e.time {
            self.timed += 1;
            self.subsecond |= t.timestamp_subsec_nanos() != 0;
        }
        match &e.kind {
            PgEventKind::Statement { .. } => self.statement(e, path),
            PgEventKind::LockWait {
                state,
                mode,
                object,
                wait_ms,
                holders,
                context,
                statement,
                ..
            } => {
                self.lock_lines += 1;
                let holder_shapes: Vec<String> = holders
                    .iter()
                    .filter_map(|h| {
                        let s = self.statements.get(*self.last_shape.get(h)?);
                        Some(format!("{h}: {}", cap(&s.normalized, 200)))
                    })
                    .collect();
                let mut text = cap(e.message, events::MAX_EVIDENCE).to_string();
                if !holder_shapes.is_empty() {
                    text.push_str(&format!(" [holder last ran {}]", holder_shapes.join("; ")));
                }
                if let Some(pid) = e.pid {
                    self.locks.push(LockLine {
                        pid,
                        state: *state,
                        mode: mode.to_string(),
                        object: object.to_string(),
                        relation: context.and_then(relation_of_context),
                        wait_ms: *wait_ms,
                        holders: holders.clone(),
                        statement: statement.map(|s| cap(s, MAX_RECORD_SQL).to_string()),
                        time: e.time,
                        evidence: locks::evidence(path, e.line, text),
                    });
                }
                self.list(e, path, "lock_wait");
            }
            PgEventKind::Deadlock { processes, .. } => {
                let mut shapes: Vec<(u64, String)> = processes
                    .iter()
                    .filter_map(|p| {
                        let (n, h) = self.normalizer.normalize(p.statement?);
                        Some((h, n.to_string()))
                    })
                    .collect();
                shapes.sort();
                shapes.dedup();
                let relations = events::deadlock_relations(e);
                if self.deadlocks.len() < MAX_LISTED_PER_KIND as usize {
                    self.deadlocks.push(DeadlockRecord {
                        victim: e.pid,
                        time: e.time,
                        evidence: locks::evidence(path, e.line, e.message.to_string()),
                        processes: processes
                            .iter()
                            .map(|p| {
                                (
                                    p.pid,
                                    p.waits_for.to_string(),
                                    p.blocked_by,
                                    p.statement.map(|s| cap(s, MAX_RECORD_SQL).to_string()),
                                )
                            })
                            .collect(),
                        relations,
                        key: shapes.iter().map(|(h, _)| *h).collect(),
                        shapes: shapes.into_iter().map(|(_, n)| n).collect(),
                    });
                }
                self.list(e, path, "deadlock");
            }
            PgEventKind::Cancel { reason, statement } => {
                if *reason == CancelReason::LockTimeout
                    && let Some(pid) = e.pid
                {
                    self.locks.lock_timeout(pid, e.time);
                }
                let (shape, shape_hash) = match statement {
                    Some(s) => {
                        let (n, h) = self.normalizer.normalize(s);
                        (Some(n.to_string()), h)
                    }
                    None => (None, 0),
                };
                if self.cancels.len() < MAX_LISTED_PER_KIND as usize {
                    self.cancels.push(CancelRecord {
                        reason: *reason,
                        pid: e.pid,
                        time: e.time,
                        evidence: locks::evidence(path, e.line, e.message.to_string()),
                        shape,
                        shape_hash,
                        statement: statement.map(|s| cap(s, MAX_RECORD_SQL).to_string()),
                    });
                }
                self.list(e, path, "cancel");
            }
            PgEventKind::TempFile {
                size, statement, ..
            } => {
                // Without a STATEMENT line (extended protocol: the file is logged when the portal
                // is dropped, after the execute's duration line) it is the backend's last one.
                let last = e
                    .pid
                    .and_then(|p| self.last_shape.get(&p))
                    .map(|&i| self.statements.get(i));
                let (normalized, hash) = match (statement, last) {
                    (Some(s), _) => {
                        let (n, h) = self.normalizer.normalize(s);
                        (n.to_string(), h)
                    }
                    (None, Some(last)) => (last.normalized.clone(), last.hash),
                    (None, None) => (UNKNOWN_STATEMENT.to_string(), 0),
                };
                let g = self
                    .temp_files
                    .entry(hash)
                    .or_insert_with(|| TempFileGroup {
                        normalized,
                        ..TempFileGroup::default()
                    });
                g.files += 1;
                g.bytes += size;
                if let Some(pid) = e.pid
                    && !g.pids.contains(&pid)
                    && g.pids.len() < 64
                {
                    g.pids.push(pid);
                }
                if g.evidence.len() < 20 {
                    g.evidence
                        .push(locks::evidence(path, e.line, e.message.to_string()));
                }
                g.first = g.first.or(e.time);
                g.last = e.time.or(g.last);
                self.list(e, path, "temp_file");
            }
            PgEventKind::Error {
                sqlstate,
                sqlstate_inferred,
                ..
            } => {
                *self
                    .errors_by_sqlstate
                    .entry(sqlstate.unwrap_or("unknown").to_string())
                    .or_insert(0) += 1;
                let class = sqlstate.and_then(|c| c.get(..2)).unwrap_or("unknown");
                let counts = self.errors_by_class.entry(class.to_string()).or_default();
                counts.0 += 1;
                counts.1 += u64::from(*sqlstate_inferred);
                self.list(e, path, "error");
            }
        }
    }

    fn list(&mut self, e: &PgEvent<'_>, path: &Arc<str>, kind: &'static str) {
        let listed = self.listed.entry(kind).or_insert(0);
        if *listed >= MAX_LISTED_PER_KIND {
            self.events_omitted += 1;
            return;
        }
        *listed += 1;
        self.events
            .push(events::report_event(e, path, &mut self.normalizer));
    }

    fn statement(&mut self, e: &PgEvent<'_>, path: &Arc<str>) {
        let PgEventKind::Statement { query, .. } = &e.kind else {
            return;
        };
        // The normaliser's buffer is borrowed through the statement's handling; moving it out
        // (and back) avoids copying the normalised text per statement.
        let mut normalizer = std::mem::take(&mut self.normalizer);
        let (normalized, hash) = match query {
            Some(q) => normalizer.normalize(q),
            None => (UNKNOWN_STATEMENT, 0),
        };
        self.statement_shaped(e, path, normalized, hash);
        self.normalizer = normalizer;
    }

    fn statement_shaped(&mut self, e: &PgEvent<'_>, path: &Arc<str>, normalized: &str, hash: u64) {
        let PgEventKind::Statement {
            duration_ms,
            phase,
            query,
            parameters,
            ..
        } = &e.kind
        else {
            return;
        };
        let listed = *duration_ms >= self.opts.event_min_ms;
        if !phase.is_execution() {
            if listed {
                self.list(e, path, "statement");
            } else {
                self.events_omitted += 1;
            }
            return;
        }
        let values = {
            let mut h = hash_bytes(query.unwrap_or("").as_bytes());
            if let Some(p) = parameters {
                h ^= hash_bytes(p.as_bytes()).rotate_left(17);
            }
            h
        };
        // auto_explain: the plan comes first; the duration line of the same run follows it.
        if let Some(pid) = e.pid {
            if let Some(plan) = self.pending_plans.remove(&pid)
                && plan.hash != hash
            {
                self.flush_plan(pid, plan);
            }
            if *phase == StatementPhase::Plan {
                let event = listed.then(|| events::report_event(e, path, &mut self.normalizer));
                self.make_room_for_a_plan();
                self.pending_order.push_back((pid, e.line));
                self.pending_plans.insert(
                    pid,
                    PendingPlan {
                        hash,
                        normalized: normalized.to_string(),
                        query: cap(query.unwrap_or(""), statements::MAX_EXAMPLE).to_string(),
                        duration_ms: *duration_ms,
                        time: e.time,
                        path: path.clone(),
                        line: e.line,
                        event,
                        values,
                    },
                );
                return;
            }
        }
        if listed {
            self.list(e, path, "statement");
        } else {
            self.events_omitted += 1;
        }
        self.run(
            e.pid,
            hash,
            normalized,
            query.unwrap_or(""),
            *duration_ms,
            e.time,
            path,
            e.line,
            values,
        );
    }

    fn flush_plan(&mut self, pid: u32, plan: PendingPlan) {
        match plan.event {
            Some(ev) => {
                let listed = self.listed.entry("statement").or_insert(0);
                if *listed < MAX_LISTED_PER_KIND {
                    *listed += 1;
                    self.events.push(ev);
                } else {
                    self.events_omitted += 1;
                }
            }
            None => self.events_omitted += 1,
        }
        self.run(
            Some(pid),
            plan.hash,
            &plan.normalized,
            &plan.query,
            plan.duration_ms,
            plan.time,
            &plan.path,
            plan.line,
            plan.values,
        );
    }

    /// One whole statement run: aggregated, and looked at for bursts.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        pid: Option<u32>,
        hash: u64,
        normalized: &str,
        query: &str,
        duration_ms: f64,
        time: Option<DateTime<FixedOffset>>,
        path: &Arc<str>,
        line: u64,
        values: u64,
    ) {
        self.runs += 1;
        if hash != 0 {
            self.min_duration_ms = Some(
                self.min_duration_ms
                    .map_or(duration_ms, |m| m.min(duration_ms)),
            );
        }
        let Some(shape) =
            self.statements
                .record(hash, normalized, query, duration_ms, pid, time, path, line)
        else {
            return;
        };
        if self.slow_runs.len() <= shape {
            self.slow_runs.resize(shape + 1, 0);
        }
        if duration_ms >= self.opts.event_min_ms {
            self.slow_runs[shape] += 1;
        }
        if let Some(pid) = pid {
            if self.last_shape.len() >= MAX_REMEMBERED_BACKENDS
                && !self.last_shape.contains_key(&pid)
            {
                self.last_shape.clear();
            }
            self.last_shape.insert(pid, shape);
            if let Some(time) = time
                && hash != 0
            {
                self.bursts
                    .observe(pid, shape, values, duration_ms, time, path, line);
            }
        }
    }

    /// A plan waits for the duration line of its run, which the same backend logs next; one
    /// that none followed (auto_explain without log_min_duration_statement, one plan per
    /// short-lived backend) is flushed on its own once [`MAX_PENDING_PLANS`] wait.
    fn make_room_for_a_plan(&mut self) {
        while self.pending_plans.len() >= MAX_PENDING_PLANS {
            let Some((pid, line)) = self.pending_order.pop_front() else {
                break;
            };
            if self.pending_plans.get(&pid).is_some_and(|p| p.line == line)
                && let Some(plan) = self.pending_plans.remove(&pid)
            {
                self.flush_plan(pid, plan);
            }
        }
        // entries of plans already flushed by their own duration line
        if self.pending_order.len() > 2 * MAX_PENDING_PLANS {
            let plans = &self.pending_plans;
            self.pending_order
                .retain(|(pid, line)| plans.get(pid).is_some_and(|p| p.line == *line));
        }
    }

    /// Ends the analysis. `inputs` says how each input was read (for the gap warnings).
    pub fn finish(mut self, inputs: Vec<PgInput>) -> PgOutcome {
        let pending: Vec<(u32, PendingPlan)> = self.pending_plans.drain().collect();
        let mut pending = pending;
        pending.sort_by_key(|(_, p)| p.line);
        for (pid, plan) in pending {
            self.flush_plan(pid, plan);
        }
        findings::build(self, inputs)
    }
}
