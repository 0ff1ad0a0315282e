//! Findings and gaps: turns the aggregates into ranked root causes in the shared cause
//! vocabulary (`slow_query`, `lock_wait`, `deadlock`, `n_plus_one`), and says plainly what the
//! log cannot show and which setting would make it show it.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, FixedOffset};

use super::locks::{LockIncident, WaitOutcome};
use super::statements::{cap, round3};
use super::{CancelRecord, DeadlockRecord, PgAnalysis, PgOutcome, UNKNOWN_STATEMENT};
use crate::parse::pg::CancelReason;
use crate::report::{
    BurstSummary, Cause, Confidence, Evidence, Finding, PgInput, PgSummary, Severity, Source,
    SqlstateClassCount, Warning,
};

/// Evidence lines per finding.
const MAX_EVIDENCE: usize = 20;
/// Bursts listed in the `pg` section.
const MAX_BURSTS_LISTED: usize = 1000;
/// Below this shortest duration every statement is logged; above it, fast ones are not.
const FAST_ENOUGH_MS: f64 = 5.0;
/// SQL shown in titles.
const TITLE_SQL: usize = 120;

fn short(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() > TITLE_SQL {
        format!("{}…", cap(&one_line, TITLE_SQL))
    } else {
        one_line
    }
}

fn secs(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

/// Severity by how long one thing held a request: Gunicorn's default timeout is 30 s.
fn severity_by_ms(ms: f64) -> Severity {
    if ms >= 30_000.0 {
        Severity::Critical
    } else if ms >= 5_000.0 {
        Severity::High
    } else if ms >= 1_000.0 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

fn span(
    times: impl Iterator<Item = Option<DateTime<FixedOffset>>>,
) -> (Option<DateTime<FixedOffset>>, Option<DateTime<FixedOffset>>) {
    let mut first = None;
    let mut last = None;
    for t in times.flatten() {
        if first.is_none_or(|f| t < f) {
            first = Some(t);
        }
        if last.is_none_or(|l| t > l) {
            last = Some(t);
        }
    }
    (first, last)
}

pub fn build(mut a: PgAnalysis, inputs: Vec<PgInput>) -> PgOutcome {
    let mut findings: Vec<Finding> = Vec::new();
    let top = a.opts.top.max(1);
    let lock_lines = a.locks.lines() + a.locks.dropped as usize;
    let warnings = gaps(&a, &inputs, lock_lines);

    // slow statements: the slowest shapes by total time, among those with a slow run
    let mut slow: Vec<(usize, &super::statements::StatementStats)> = a
        .statements
        .iter()
        .enumerate()
        .filter(|(i, s)| a.slow_runs.get(*i).copied().unwrap_or(0) > 0 && s.hash != 0)
        .collect();
    slow.sort_by(|x, y| y.1.total_ms.total_cmp(&x.1.total_ms));
    for (i, s) in slow.into_iter().take(top) {
        let slow_runs = a.slow_runs[i];
        findings.push(Finding {
            origins: Vec::new(),
            rank: 0,
            cause: Cause::SlowQuery,
            severity: severity_by_ms(s.max_ms),
            confidence: Confidence::High,
            title: format!(
                "Slow statement: {} ({} run{}, max {}, p95 {}, total {})",
                short(&s.normalized),
                s.count,
                if s.count == 1 { "" } else { "s" },
                secs(s.max_ms),
                secs(s.p95_ms()),
                secs(s.total_ms)
            ),
            count: slow_runs,
            request: None,
            pids: s.max_at.pid.into_iter().collect(),
            first_seen: s.max_at.time,
            last_seen: s.max_at.time,
            reason: format!(
                "{slow_runs} run(s) took {} or more; the slowest ({}) was backend {} at {}",
                secs(a.opts.event_min_ms),
                secs(s.max_ms),
                s.max_at.pid.map_or("?".to_string(), |p| p.to_string()),
                s.max_at
                    .time
                    .map_or("an unknown time".to_string(), |t| t.to_rfc3339())
            ),
            evidence: vec![Evidence {
                path: s.max_at.source.path.to_string(),
                line: Some(s.max_at.source.line),
                text: format!("{} ms: {}", round3(s.max_ms), short(&s.max_query)),
            }],
            advice: Cause::SlowQuery.advice().to_string(),
            ruled_out: Vec::new(),
        });
    }

    // N+1 bursts, one finding per statement shape
    let bursts = a.bursts.finish();
    let mut by_shape: BTreeMap<usize, Vec<&super::bursts::Burst>> = BTreeMap::new();
    for b in &bursts {
        by_shape.entry(b.shape).or_default().push(b);
    }
    for (shape, group) in &by_shape {
        let s = a.statements.get(*shape);
        let largest = group.iter().map(|b| b.count).max().unwrap_or(0);
        let longest = group.iter().map(|b| b.span_ms).fold(0.0, f64::max);
        let runs: u64 = group.iter().map(|b| b.count).sum();
        let mut pids: Vec<u32> = group.iter().map(|b| b.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        let (first_seen, last_seen) = span(
            group
                .iter()
                .flat_map(|b| [Some(b.first_time), Some(b.last_time)]),
        );
        findings.push(Finding {
            origins: Vec::new(),
            rank: 0,
            cause: Cause::NPlusOne,
            severity: if largest >= 100 || longest >= 1000.0 {
                Severity::High
            } else {
                Severity::Medium
            },
            confidence: if group.iter().all(|b| b.coarse_time) {
                Confidence::Low
            } else {
                Confidence::High
            },
            title: format!(
                "N+1: {} run {} times in a row by one backend ({} burst{}, {} runs in all)",
                short(&s.normalized),
                largest,
                group.len(),
                if group.len() == 1 { "" } else { "s" },
                runs
            ),
            count: group.len() as u64,
            request: None,
            pids,
            first_seen,
            last_seen,
            reason: format!(
                "one backend ran the same statement shape with changing values at least {} times, \
                 each within {} of the one before, {} or more in all: a loop of lazy loads",
                a.opts.bursts.min_repeats,
                secs(a.opts.bursts.max_gap_ms),
                secs(a.opts.bursts.min_total_ms)
            ),
            evidence: group
                .iter()
                .take(MAX_EVIDENCE)
                .map(|b| Evidence {
                    path: b.path.to_string(),
                    line: Some(b.first_line),
                    text: format!(
                        "backend {}: {} runs in {} (server time {}): {}",
                        b.pid,
                        b.count,
                        if b.coarse_time {
                            "about a second or less (the log's times are whole seconds)".to_string()
                        } else {
                            secs(b.span_ms)
                        },
                        secs(b.total_ms),
                        short(&s.max_query)
                    ),
                })
                .collect(),
            advice: Cause::NPlusOne.advice().to_string(),
            ruled_out: Vec::new(),
        });
    }

    // lock waits: one finding per incident (linked waits)
    let incidents = std::mem::take(&mut a.locks).incidents();
    let shown: Vec<&LockIncident> = incidents
        .iter()
        .filter(|i| {
            i.episodes
                .iter()
                .any(|e| e.outcome != WaitOutcome::Deadlock)
        })
        .collect();
    for inc in shown.iter().take(top) {
        findings.push(lock_finding(inc));
    }
    if shown.len() > top {
        let rest = &shown[top..];
        let waits: usize = rest.iter().map(|i| i.episodes.len()).sum();
        let max = rest.iter().map(|i| i.max_wait_ms).fold(0.0, f64::max);
        let (first_seen, last_seen) =
            span(rest.iter().flat_map(|i| i.episodes.iter().map(|e| e.start)));
        findings.push(Finding {
            origins: Vec::new(),
            rank: 0,
            cause: Cause::LockWait,
            severity: Severity::Low,
            confidence: Confidence::High,
            title: format!(
                "{} more lock-wait incident(s), {waits} wait(s), the longest {}",
                rest.len(),
                secs(max)
            ),
            count: waits as u64,
            request: None,
            pids: Vec::new(),
            first_seen,
            last_seen,
            reason: format!(
                "beyond the top {top} (--top); --format json lists every lock_wait event"
            ),
            evidence: Vec::new(),
            advice: Cause::LockWait.advice().to_string(),
            ruled_out: Vec::new(),
        });
    }

    // deadlocks, grouped by the statements involved
    let mut groups: Vec<(Vec<u64>, Vec<&DeadlockRecord>)> = Vec::new();
    for d in &a.deadlocks {
        match groups
            .iter_mut()
            .find(|(k, _)| !d.key.is_empty() && *k == d.key)
        {
            Some((_, v)) => v.push(d),
            None => groups.push((d.key.clone(), vec![d])),
        }
    }
    for (_, group) in &groups {
        findings.push(deadlock_finding(group));
    }

    // cancels, by reason and statement shape
    let mut cancel_groups: Vec<((CancelReason, u64), Vec<&CancelRecord>)> = Vec::new();
    for c in &a.cancels {
        let key = (c.reason, c.shape_hash);
        match cancel_groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c),
            None => cancel_groups.push((key, vec![c])),
        }
    }
    for ((reason, _), group) in &cancel_groups {
        findings.push(cancel_finding(*reason, group));
    }

    // temporary files, by statement shape
    let mut temps: Vec<&super::TempFileGroup> = a.temp_files.values().collect();
    temps.sort_by(|x, y| y.bytes.cmp(&x.bytes).then(x.normalized.cmp(&y.normalized)));
    for t in temps.iter().take(top) {
        findings.push(Finding {
            origins: Vec::new(),
            rank: 0,
            cause: Cause::SlowQuery,
            severity: Severity::Low,
            confidence: Confidence::Medium,
            title: format!(
                "Temporary files: {} wrote {} file(s), {} in all",
                short(&t.normalized),
                t.files,
                bytes(t.bytes)
            ),
            count: t.files,
            request: None,
            pids: t.pids.clone(),
            first_seen: t.first,
            last_seen: t.last,
            reason: "its sort or hash did not fit in work_mem and spilled to disk, which makes it slower"
                .to_string(),
            evidence: t.evidence.clone(),
            advice: "EXPLAIN (ANALYZE, BUFFERS) the statement: add an index that gives the order, \
                     select fewer rows or columns, or raise work_mem for this query only (SET LOCAL \
                     work_mem = '64MB' in its transaction)."
                .to_string(),
            ruled_out: Vec::new(),
        });
    }

    // the pg section
    let mut statements: Vec<_> = a
        .statements
        .top(top)
        .into_iter()
        .map(|s| s.summary())
        .collect();
    statements.retain(|s| s.normalized != UNKNOWN_STATEMENT || s.count > 0);
    let bursts_omitted = bursts.len().saturating_sub(MAX_BURSTS_LISTED) as u64;
    let burst_list: Vec<BurstSummary> = bursts
        .iter()
        .take(MAX_BURSTS_LISTED)
        .map(|b| {
            let s = a.statements.get(b.shape);
            BurstSummary {
                pid: b.pid,
                fingerprint: s.fingerprint(),
                normalized: s.normalized.clone(),
                example: s.max_query.clone(),
                count: b.count,
                span_ms: round3(b.span_ms),
                total_ms: round3(b.total_ms),
                first_time: Some(b.first_time),
                last_time: Some(b.last_time),
                first_source: Source {
                    path: b.path.clone(),
                    line: b.first_line,
                },
            }
        })
        .collect();

    let mut events = a.events;
    events.sort_by(|x, y| {
        x.time
            .cmp(&y.time)
            .then_with(|| x.source.path.cmp(&y.source.path))
            .then(x.source.line.cmp(&y.source.line))
    });
    PgOutcome {
        findings,
        warnings,
        events,
        events_omitted: a.events_omitted,
        summary: a.seen,
        pg: PgSummary {
            inputs,
            statements,
            fingerprints: a.statements.len() as u64,
            fingerprint_overflow: a.statements.overflow,
            bursts: burst_list,
            bursts_omitted,
            errors_by_sqlstate: a.errors_by_sqlstate,
            errors_by_sqlstate_class: a
                .errors_by_class
                .into_iter()
                .map(|(class, (errors, inferred))| SqlstateClassCount {
                    name: crate::parse::pg::sqlstate_class_name(&class).map(str::to_string),
                    class,
                    errors,
                    inferred,
                })
                .collect(),
        },
    }
}

fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= MIB {
        format!("{:.1} MiB", n as f64 / MIB)
    } else {
        format!("{:.0} kB", n as f64 / 1024.0)
    }
}

/// Backends or waits named one by one in a finding's title and reason; the rest are counted.
const LISTED: usize = 20;
/// Pids listed in a finding's `pids`.
const MAX_PIDS: usize = 200;

/// `a, b, c and 12 more`: the first `n` items joined by `sep`, then a count of the rest.
fn first_n_and_more(items: impl Iterator<Item = String>, n: usize, sep: &str) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut more = 0usize;
    for item in items {
        if shown.len() < n {
            shown.push(item);
        } else {
            more += 1;
        }
    }
    let mut text = shown.join(sep);
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

fn lock_finding(inc: &LockIncident) -> Finding {
    let first = &inc.episodes[0];
    let relation = inc
        .episodes
        .iter()
        .find_map(|e| e.relation.clone())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let mut seen: HashSet<u32> = HashSet::new();
    let waiters = first_n_and_more(
        inc.episodes
            .iter()
            .filter(|e| seen.insert(e.pid))
            .map(|e| e.pid.to_string()),
        LISTED,
        ", ",
    );
    let roots = first_n_and_more(inc.roots.iter().map(|p| p.to_string()), LISTED, ", ");
    let chain = if inc.chain.len() > 2 {
        format!(
            ", chain {}",
            inc.chain
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" → ")
        )
    } else {
        String::new()
    };
    let title = format!(
        "Lock wait: backend {} blocked {} for up to {} on {} {}{}{}",
        if roots.is_empty() { "?" } else { &roots },
        waiters,
        secs(inc.max_wait_ms),
        first.mode,
        first.object,
        relation,
        chain
    );
    let mut pids: Vec<u32> = inc.roots.iter().copied().take(MAX_PIDS).collect();
    let mut listed: HashSet<u32> = pids.iter().copied().collect();
    for e in &inc.episodes {
        if pids.len() >= MAX_PIDS {
            break;
        }
        if listed.insert(e.pid) {
            pids.push(e.pid);
        }
    }
    let reasons = first_n_and_more(
        inc.episodes.iter().map(|e| {
            let outcome = match e.outcome {
                WaitOutcome::Acquired => "then got it",
                WaitOutcome::Failed => "and gave up (lock_timeout or failed)",
                WaitOutcome::Deadlock => "until the deadlock check cancelled it",
                WaitOutcome::Open => "and was still waiting when the log ends",
            };
            format!(
                "{} waited {} for {} on {} held by {} {}{}",
                e.pid,
                secs(e.wait_ms),
                e.mode,
                e.object,
                e.holders
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                outcome,
                e.statement
                    .as_deref()
                    .map(|s| format!(", running: {}", short(s)))
                    .unwrap_or_default()
            )
        }),
        LISTED,
        "; ",
    );
    let (first_seen, last_seen) = span(inc.episodes.iter().flat_map(|e| [e.start, e.end]));
    Finding {
        origins: Vec::new(),
        rank: 0,
        cause: Cause::LockWait,
        severity: severity_by_ms(inc.max_wait_ms),
        confidence: Confidence::High,
        title,
        count: inc.episodes.len() as u64,
        request: None,
        pids,
        first_seen,
        last_seen,
        reason: reasons,
        evidence: inc
            .episodes
            .iter()
            .flat_map(|e| e.evidence.iter().cloned())
            .take(MAX_EVIDENCE)
            .collect(),
        advice: Cause::LockWait.advice().to_string(),
        ruled_out: Vec::new(),
    }
}

fn deadlock_finding(group: &[&DeadlockRecord]) -> Finding {
    let d = group[0];
    let mut pids: Vec<u32> = Vec::new();
    for r in group {
        for p in &r.processes {
            if !pids.contains(&p.0) {
                pids.push(p.0);
            }
        }
    }
    let mut relations: Vec<String> = Vec::new();
    for r in group {
        for rel in &r.relations {
            if !relations.contains(rel) {
                relations.push(rel.clone());
            }
        }
    }
    let statements = if d.shapes.is_empty() {
        "statements not in the log".to_string()
    } else {
        d.shapes
            .iter()
            .map(|s| short(s))
            .collect::<Vec<_>>()
            .join(" ⟷ ")
    };
    let title = format!(
        "Deadlock{}: {}{}",
        if group.len() > 1 {
            format!(" ×{}", group.len())
        } else {
            String::new()
        },
        statements,
        if relations.is_empty() {
            String::new()
        } else {
            format!(" on {}", relations.join(", "))
        }
    );
    let mut evidence: Vec<Evidence> = Vec::new();
    for r in group.iter().take(5) {
        evidence.push(r.evidence.clone());
        for (pid, waits, blocked_by, stmt) in &r.processes {
            evidence.push(Evidence {
                path: r.evidence.path.clone(),
                line: r.evidence.line,
                text: format!(
                    "process {pid} waits for {waits}{}: {}",
                    blocked_by
                        .map(|b| format!(", blocked by {b}"))
                        .unwrap_or_default(),
                    stmt.as_deref().map(short).unwrap_or_else(|| "?".into())
                ),
            });
        }
    }
    evidence.truncate(MAX_EVIDENCE);
    let (first_seen, last_seen) = span(group.iter().map(|r| r.time));
    Finding {
        origins: Vec::new(),
        rank: 0,
        cause: Cause::Deadlock,
        severity: if group.len() >= 10 {
            Severity::Critical
        } else {
            Severity::High
        },
        confidence: Confidence::High,
        title,
        count: group.len() as u64,
        request: None,
        pids,
        first_seen,
        last_seen,
        reason: format!(
            "PostgreSQL found a cycle of waits and cancelled backend {} (the statement failed \
             with SQLSTATE 40P01 after deadlock_timeout)",
            d.victim.map_or("?".to_string(), |p| p.to_string())
        ),
        evidence,
        advice: Cause::Deadlock.advice().to_string(),
        ruled_out: Vec::new(),
    }
}

fn cancel_finding(reason: CancelReason, group: &[&CancelRecord]) -> Finding {
    let c = group[0];
    let statement = c
        .shape
        .as_deref()
        .map(short)
        .unwrap_or_else(|| "a statement not in the log".into());
    let (cause, severity, confidence, why, advice) = match reason {
        CancelReason::StatementTimeout => (
            Cause::SlowQuery,
            Severity::High,
            Confidence::High,
            "statement_timeout cancelled it: it ran longer than the limit",
            Cause::SlowQuery.advice().to_string(),
        ),
        CancelReason::LockTimeout => (
            Cause::LockWait,
            Severity::High,
            Confidence::High,
            "lock_timeout cancelled it: it waited for a lock another transaction held",
            Cause::LockWait.advice().to_string(),
        ),
        CancelReason::UserRequest => (
            Cause::SlowQuery,
            Severity::Medium,
            Confidence::Low,
            "the client cancelled it (pg_cancel_backend, a client-side timeout, or a worker \
             killed mid-query)",
            Cause::SlowQuery.advice().to_string(),
        ),
        CancelReason::RecoveryConflict => (
            Cause::Unknown,
            Severity::Low,
            Confidence::Medium,
            "a standby cancelled it to replay WAL that conflicted with it",
            "On a hot standby, raise max_standby_streaming_delay or set hot_standby_feedback = \
             on, or run long reads on the primary."
                .to_string(),
        ),
    };
    let mut pids: Vec<u32> = group.iter().filter_map(|c| c.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let (first_seen, last_seen) = span(group.iter().map(|c| c.time));
    Finding {
        origins: Vec::new(),
        rank: 0,
        cause,
        severity,
        confidence,
        title: format!(
            "Cancelled ({}){}: {statement}",
            reason.name(),
            if group.len() > 1 {
                format!(" ×{}", group.len())
            } else {
                String::new()
            }
        ),
        count: group.len() as u64,
        request: None,
        pids,
        first_seen,
        last_seen,
        reason: why.to_string(),
        evidence: group
            .iter()
            .take(MAX_EVIDENCE)
            .map(|c| Evidence {
                path: c.evidence.path.clone(),
                line: c.evidence.line,
                text: format!(
                    "backend {}: {}{}",
                    c.pid.map_or("?".to_string(), |p| p.to_string()),
                    c.evidence.text,
                    c.statement
                        .as_deref()
                        .map(|s| format!(": {}", short(s)))
                        .unwrap_or_default()
                ),
            })
            .collect(),
        advice,
        ruled_out: Vec::new(),
    }
}

/// What the inputs cannot show, with the setting that would make them show it.
fn gaps(a: &PgAnalysis, inputs: &[PgInput], lock_lines: usize) -> Vec<Warning> {
    let mut out = Vec::new();
    let messages: u64 = inputs.iter().map(|i| i.messages).sum();
    for i in inputs {
        if i.format.is_none() {
            out.push(Warning {
                code: "not_pg_log",
                message: format!("{}: no line of it is a PostgreSQL server log line", i.path),
                advice:
                    "Give the server's log (log_directory, or journalctl -u postgresql); for a \
                         custom log_line_prefix give it with --prefix."
                        .into(),
            });
        } else if i.messages == 0 {
            out.push(Warning {
                code: "empty_input",
                message: format!("{} has no server messages", i.path),
                advice: "Check that this is the file the server writes now (the log may have just \
                         rotated)."
                    .into(),
            });
        }
        if i.format.is_some() && !i.has_pid {
            out.push(Warning {
                code: "no_backend_pid",
                message: format!(
                    "{}: log_line_prefix '{}' has no %p (or %c), so lines cannot be told apart by \
                     backend: N+1 bursts cannot be found and statements cannot be tied to lock \
                     waits (lock-wait lines still name their own process)",
                    i.path,
                    i.log_line_prefix.as_deref().unwrap_or("")
                ),
                advice:
                    "Set log_line_prefix = '%m [%p] %q%u@%d ' (or add %p to yours) and reload: \
                         SELECT pg_reload_conf();"
                        .into(),
            });
        }
    }
    if messages == 0 {
        return out;
    }
    if a.runs == 0 {
        out.push(Warning {
            code: "no_statement_durations",
            message: "The log has no statement durations: log_min_duration_statement is off (-1), \
                      so slow statements and N+1 loops cannot be seen"
                .into(),
            advice: "ALTER SYSTEM SET log_min_duration_statement = 0 (or a few ms on a busy \
                     server); SELECT pg_reload_conf();"
                .into(),
        });
    } else if let Some(min) = a.min_duration_ms
        && min > FAST_ENOUGH_MS
    {
        out.push(Warning {
            code: "log_min_duration_too_high",
            message: format!(
                "The fastest statement in this log took {}: log_min_duration_statement is about \
                 that high, so the 1-ms queries an N+1 loop is made of are not logged and N+1 \
                 bursts cannot be found",
                secs(min)
            ),
            advice: "While diagnosing, log every statement: ALTER SYSTEM SET \
                     log_min_duration_statement = 0 (or 1 ms on a busy server; \
                     log_statement_sample_rate samples); SELECT pg_reload_conf();"
                .into(),
        });
    }
    if lock_lines == 0 {
        let hints = a.deadlocks.len()
            + a.cancels
                .iter()
                .filter(|c| c.reason == CancelReason::LockTimeout)
                .count();
        out.push(Warning {
            code: "no_lock_wait_lines",
            message: if hints > 0 {
                format!(
                    "{hints} deadlock(s) or lock timeout(s) were logged but no lock-wait line: \
                     log_lock_waits is off, so who blocked whom, and for how long, is not in this log"
                )
            } else {
                "No lock-wait lines: log_lock_waits is off, or no wait lasted deadlock_timeout \
                 (1 s by default); lock waits shorter than that are never logged"
                    .to_string()
            },
            advice: "ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf(); each wait \
                     longer than deadlock_timeout is then logged with the blocking processes."
                .into(),
        });
    }
    if a.timed > 0 && !a.subsecond {
        out.push(Warning {
            code: "whole_second_times",
            message: "The log's times are whole seconds (%t in log_line_prefix): how long an N+1 \
                      loop took cannot be measured, so bursts are judged by their count alone \
                      (low confidence)"
                .into(),
            advice: "Use %m (milliseconds) instead of %t in log_line_prefix.".into(),
        });
    }
    if a.statements.overflow > 0 {
        out.push(Warning {
            code: "fingerprint_overflow",
            message: format!(
                "More than {} statement shapes: {} runs of new shapes were counted but not \
                 aggregated",
                super::statements::MAX_FINGERPRINTS,
                a.statements.overflow
            ),
            advice: "Narrow the input with --since/--until, or check for SQL built with inline \
                     identifiers (e.g. temporary table names) that defeat fingerprinting."
                .into(),
        });
    }
    out
}
