//! The message classifier: an assembled [`Record`] in, a typed [`PgEvent`] out, by the exact
//! wordings of the server (tcop/postgres.c for durations, storage/lmgr/proc.c for lock waits,
//! storage/lmgr/deadlock.c for deadlock reports, storage/file/fd.c for temporary files). Cheap
//! prefix tests first: most messages are statement durations.

use std::collections::HashMap;

use memchr::memmem;

use super::event::{CancelReason, DeadlockParty, LockState, PgEvent, PgEventKind, StatementPhase};
use super::record::{Record, first_line};
use super::severity::Severity;
use super::sqlstate;
use crate::parse::number::parse_ms;
use crate::parse::skips::Skips;

/// Backends whose last logged statement text is remembered (for bare `duration:` lines).
const MAX_REMEMBERED: usize = 4096;

/// A statement log_statement wrote, waiting for its bare duration.
#[derive(Default)]
struct LoggedStatement {
    text: String,
    parameters: String,
}

#[derive(Default)]
pub struct Classifier {
    /// Messages with a duration no real server writes (`inf`, `NaN`, negative, years).
    pub skips: Skips,
    /// The last `statement:`/`execute ...:` text each backend logged without a duration
    /// (log_statement), for the bare `duration: X ms` that log_duration writes after it.
    last_logged: HashMap<u32, LoggedStatement>,
    /// Set once a bare duration has followed its statement: log_statement is on.
    paired_any: bool,
    /// The statement the last bare duration took (the map entry is consumed).
    paired: LoggedStatement,
    /// auto_explain's `Query Text`, unescaped.
    plan_query: String,
    /// auto_explain's `Query Parameters` (PostgreSQL 16+, `log_parameter_max_length`).
    plan_parameters: String,
}

impl Classifier {
    /// The event `r` stands for, if any.
    pub fn classify<'a>(&'a mut self, r: &'a Record) -> Option<PgEvent<'a>> {
        let m = strip_position(&r.message);
        let kind = match r.severity {
            Severity::Log => {
                if let Some(rest) = m.strip_prefix("duration: ") {
                    if unreadable_ms(rest) {
                        self.skips.record(SKIP_OUT_OF_RANGE, r.line);
                        return None;
                    }
                    self.duration(r, rest)?
                } else if let Some(rest) = m.strip_prefix("process ") {
                    if rest.contains(" waiting for ")
                        && rest
                            .rfind(" after ")
                            .is_some_and(|a| unreadable_ms(&rest[a + 7..]))
                    {
                        self.skips.record(SKIP_OUT_OF_RANGE, r.line);
                        return None;
                    }
                    lock_wait(r, rest)?
                } else if let Some(rest) = m.strip_prefix("temporary file: path \"") {
                    temp_file(r, rest)?
                } else {
                    self.remember_logged_statement(r, m);
                    return None;
                }
            }
            Severity::Error | Severity::Fatal | Severity::Panic => {
                if m == "deadlock detected" {
                    deadlock(r)
                } else if let Some(reason) = m.strip_prefix("canceling statement due to ") {
                    let reason = match reason {
                        "statement timeout" => CancelReason::StatementTimeout,
                        "lock timeout" => CancelReason::LockTimeout,
                        "user request" => CancelReason::UserRequest,
                        "conflict with recovery" => CancelReason::RecoveryConflict,
                        _ => return Some(self.error(r, m)),
                    };
                    PgEventKind::Cancel {
                        reason,
                        statement: non_empty(&r.statement),
                    }
                } else {
                    return Some(self.error(r, m));
                }
            }
            _ => return None,
        };
        let pid = match &kind {
            // The message names its own process: lock waits are attributed even without %p.
            PgEventKind::LockWait { .. } => r.pid.or_else(|| message_pid(m)),
            _ => r.pid,
        };
        Some(event(r, pid, kind))
    }

    fn error<'a>(&self, r: &'a Record, message: &'a str) -> PgEvent<'a> {
        let logged = r.sqlstate();
        let inferred = logged.is_none().then(|| sqlstate::infer(message)).flatten();
        event(
            r,
            r.pid,
            PgEventKind::Error {
                severity: r.severity.name(),
                sqlstate: logged.or(inferred),
                sqlstate_inferred: inferred.is_some(),
                message: first_line(message),
                detail: non_empty(&r.detail),
                statement: non_empty(&r.statement),
            },
        )
    }

    fn remember_logged_statement(&mut self, r: &Record, m: &str) {
        let Some(pid) = r.pid else { return };
        let text = if let Some(q) = m.strip_prefix("statement: ") {
            q
        } else if let Some(rest) = m.strip_prefix("execute ") {
            match rest.find(": ") {
                Some(i) => &rest[i + 2..],
                None => return,
            }
        } else {
            return;
        };
        if self.last_logged.len() >= MAX_REMEMBERED && !self.last_logged.contains_key(&pid) {
            self.last_logged.clear();
        }
        let slot = self.last_logged.entry(pid).or_default();
        slot.text.clear();
        slot.text.push_str(text);
        slot.parameters.clear();
        if let Some(p) = parameters(&r.detail) {
            slot.parameters.push_str(p);
        }
    }

    fn duration<'a>(&'a mut self, r: &'a Record, rest: &'a str) -> Option<PgEventKind<'a>> {
        let ms_end = memchr::memchr(b' ', rest.as_bytes())?;
        let duration_ms = parse_ms(&rest[..ms_end])?;
        let rest = rest[ms_end..].strip_prefix(" ms")?;
        let parameters = parameters(&r.detail);
        if rest.is_empty() {
            // log_duration: the statement is the one this backend logged last, once.
            let logged = r.pid.and_then(|pid| self.last_logged.remove(&pid));
            return Some(match logged {
                Some(logged) => {
                    self.paired_any = true;
                    self.paired = logged;
                    PgEventKind::Statement {
                        duration_ms,
                        phase: StatementPhase::Duration,
                        prepared: None,
                        query: Some(self.paired.text.as_str()),
                        parameters: non_empty(&self.paired.parameters),
                    }
                }
                None => PgEventKind::Statement {
                    duration_ms,
                    phase: if self.paired_any {
                        StatementPhase::Unpaired
                    } else {
                        StatementPhase::Duration
                    },
                    prepared: None,
                    query: None,
                    parameters,
                },
            });
        }
        // two spaces as the server writes them; one where a shipper collapsed them
        let rest = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(' '))?;
        if let Some(q) = rest.strip_prefix("statement: ") {
            return Some(PgEventKind::Statement {
                duration_ms,
                phase: StatementPhase::Statement,
                prepared: None,
                query: Some(q),
                parameters: None,
            });
        }
        if let Some(plan) = rest.strip_prefix("plan:") {
            let query = plan_query_text(plan, &mut self.plan_query, &mut self.plan_parameters);
            return Some(PgEventKind::Statement {
                duration_ms,
                phase: StatementPhase::Plan,
                prepared: None,
                query: query.then_some(self.plan_query.as_str()),
                parameters: parameters.or(non_empty(&self.plan_parameters)),
            });
        }
        if let Some(call) = rest.strip_prefix("fastpath function call: ") {
            return Some(PgEventKind::Statement {
                duration_ms,
                phase: StatementPhase::Fastpath,
                prepared: None,
                query: Some(call),
                parameters: None,
            });
        }
        let (phase, named) = if let Some(n) = rest.strip_prefix("execute fetch from ") {
            (StatementPhase::Execute, n)
        } else if let Some(n) = rest.strip_prefix("execute ") {
            (StatementPhase::Execute, n)
        } else if let Some(n) = rest.strip_prefix("parse ") {
            (StatementPhase::Parse, n)
        } else if let Some(n) = rest.strip_prefix("bind ") {
            (StatementPhase::Bind, n)
        } else {
            return None;
        };
        let colon = memmem::find(named.as_bytes(), b": ")?;
        Some(PgEventKind::Statement {
            duration_ms,
            phase,
            prepared: Some(&named[..colon]),
            query: Some(&named[colon + 2..]),
            parameters,
        })
    }
}

fn event<'a>(r: &'a Record, pid: Option<u32>, kind: PgEventKind<'a>) -> PgEvent<'a> {
    PgEvent {
        time: r.time,
        pid,
        line: r.line,
        user: non_empty(&r.user),
        database: non_empty(&r.database),
        application: non_empty(&r.application),
        message: strip_position(r.first_line()),
        kind,
    }
}

/// The message without the ` at character N` that stderr (not csvlog or jsonlog) appends when
/// the error has a cursor position.
fn strip_position(m: &str) -> &str {
    const AT: &[u8] = b" at character ";
    let b = m.as_bytes();
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || b.len() < digits + AT.len() {
        return m;
    }
    let at = b.len() - digits - AT.len();
    if &b[at..b.len() - digits] == AT {
        &m[..at]
    } else {
        m
    }
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// `parameters: $1 = '...'` (PostgreSQL 16+: `Parameters:`).
fn parameters(detail: &str) -> Option<&str> {
    detail
        .strip_prefix("parameters: ")
        .or_else(|| detail.strip_prefix("Parameters: "))
}

/// The `process N` at the start of a lock-wait message.
fn message_pid(m: &str) -> Option<u32> {
    let rest = m.strip_prefix("process ")?;
    let end = rest.find(' ')?;
    rest[..end].parse().ok()
}

/// Lines whose duration is out of range: counted as skipped, not read.
pub const SKIP_OUT_OF_RANGE: &str =
    "duration out of range (inf, NaN, negative or over 3 years): not from a real server";

/// True when `text` starts with a number of milliseconds (`12.5 ms`) that is not a duration a
/// real server writes.
fn unreadable_ms(text: &str) -> bool {
    let Some(end) = text.find(" ms") else {
        return false;
    };
    let token = &text[..end];
    let numeric = !token.is_empty()
        && !token.contains(' ')
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        && (token.as_bytes()[0].is_ascii_digit()
            || matches!(
                token.as_bytes()[0],
                b'-' | b'+' | b'.' | b'i' | b'I' | b'n' | b'N'
            ));
    numeric && parse_ms(token).is_none()
}

fn lock_wait<'a>(r: &'a Record, rest: &'a str) -> Option<PgEventKind<'a>> {
    let space = rest.find(' ')?;
    rest[..space].parse::<u32>().ok()?;
    let rest = &rest[space + 1..];
    let (state, rest) = if let Some(x) = rest.strip_prefix("still waiting for ") {
        (LockState::Waiting, x)
    } else if let Some(x) = rest.strip_prefix("acquired ") {
        (LockState::Acquired, x)
    } else if let Some(x) = rest.strip_prefix("detected deadlock while waiting for ") {
        (LockState::DeadlockDetected, x)
    } else if let Some(x) = rest.strip_prefix("avoided deadlock for ") {
        (LockState::Avoided, x)
    } else if let Some(x) = rest.strip_prefix("failed to acquire ") {
        (LockState::Failed, x)
    } else {
        return None;
    };
    let on = rest.find(" on ")?;
    let mode = &rest[..on];
    let after = rest.rfind(" after ")?;
    // A PL/pgSQL `RAISE LOG` can read like a lock wait with its words in another order.
    let mut object = rest.get(on + 4..after)?;
    if let Some(o) = object.strip_suffix(" by rearranging queue order") {
        object = o;
    }
    let ms = &rest[after + 7..];
    let wait_ms = parse_ms(&ms[..ms.find(" ms")?])?;
    let (holders, queue) = holders_and_queue(&r.detail);
    Some(PgEventKind::LockWait {
        state,
        mode,
        object,
        wait_ms,
        holders,
        queue,
        context: non_empty(&r.context),
        statement: non_empty(&r.statement),
    })
}

/// `Process holding the lock: 8793. Wait queue: 8794, 8795.` (or `Processes holding ...`).
fn holders_and_queue(detail: &str) -> (Vec<u32>, Vec<u32>) {
    let Some(at) = detail.find("holding the lock: ") else {
        return (Vec::new(), Vec::new());
    };
    let rest = &detail[at + "holding the lock: ".len()..];
    let (holders, queue) = match rest.find(". Wait queue: ") {
        Some(q) => (&rest[..q], &rest[q + ". Wait queue: ".len()..]),
        None => (rest, ""),
    };
    (pid_list(holders), pid_list(queue))
}

fn pid_list(s: &str) -> Vec<u32> {
    s.split(|c: char| c == ',' || c == '.' || c.is_whitespace())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn temp_file<'a>(r: &'a Record, rest: &'a str) -> Option<PgEventKind<'a>> {
    let at = rest.rfind("\", size ")?;
    let size: u64 = rest[at + 8..].trim().parse().ok()?;
    Some(PgEventKind::TempFile {
        path: &rest[..at],
        size,
        statement: non_empty(&r.statement),
    })
}

/// `Process 8818 waits for ShareLock on transaction 784; blocked by process 8819.` lines,
/// then `Process 8818: <statement>` (a statement may span lines).
fn deadlock<'a>(r: &'a Record) -> PgEventKind<'a> {
    let detail: &'a str = r.detail.as_str();
    let mut processes: Vec<DeadlockParty<'a>> = Vec::new();
    let mut open: Option<(usize, usize, usize)> = None; // (party, start, end) of a statement
    let mut offset = 0;
    let close = |processes: &mut Vec<DeadlockParty<'a>>, open: Option<(usize, usize, usize)>| {
        if let Some((i, s, e)) = open {
            processes[i].statement = Some(&detail[s..e]);
        }
    };
    for line in detail.split('\n') {
        let start = offset;
        offset += line.len() + 1;
        if let Some(rest) = line.strip_prefix("Process ")
            && let Some(sp) = rest.find(|c: char| !c.is_ascii_digit())
            && let Ok(pid) = rest[..sp].parse::<u32>()
        {
            let after = &rest[sp..];
            if let Some(w) = after.strip_prefix(" waits for ") {
                let (waits_for, blocked_by) = match w.find("; blocked by process ") {
                    Some(b) => (
                        &w[..b],
                        w[b + "; blocked by process ".len()..]
                            .trim_end_matches('.')
                            .parse()
                            .ok(),
                    ),
                    None => (w.trim_end_matches('.'), None),
                };
                close(&mut processes, open.take());
                processes.push(DeadlockParty {
                    pid,
                    waits_for,
                    blocked_by,
                    statement: None,
                });
                continue;
            }
            if after.starts_with(": ") {
                close(&mut processes, open.take());
                let s = start + "Process ".len() + sp + 2;
                let i = match processes.iter().position(|p| p.pid == pid) {
                    Some(i) => i,
                    None => {
                        processes.push(DeadlockParty {
                            pid,
                            waits_for: "",
                            blocked_by: None,
                            statement: None,
                        });
                        processes.len() - 1
                    }
                };
                open = Some((i, s, start + line.len()));
                continue;
            }
        }
        if let Some((_, _, e)) = open.as_mut() {
            *e = start + line.len();
        }
    }
    close(&mut processes, open.take());
    PgEventKind::Deadlock {
        processes,
        context: non_empty(&r.context),
        statement: non_empty(&r.statement),
    }
}

/// auto_explain's `Query Text` (into `out`) and `Query Parameters` (into `params`, PostgreSQL
/// 16+ with `auto_explain.log_parameter_max_length`), text or JSON format. The text format's
/// query runs over lines until the parameters or the first plan node; the parameters line is
/// not part of the query (contrib/auto_explain/auto_explain.c: ExplainQueryText, then
/// ExplainQueryParameters, then ExplainPrintPlan).
fn plan_query_text(plan: &str, out: &mut String, params: &mut String) -> bool {
    out.clear();
    params.clear();
    let plan = plan.trim_start();
    if plan.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(plan)
            && let Some(q) = v.get("Query Text").and_then(|q| q.as_str())
        {
            out.push_str(q);
            if let Some(p) = v.get("Query Parameters").and_then(|p| p.as_str()) {
                params.push_str(p);
            }
            return true;
        }
        return false;
    }
    let Some(at) = memmem::find(plan.as_bytes(), b"Query Text: ") else {
        return false;
    };
    let text = &plan[at + "Query Text: ".len()..];
    for (i, line) in text.split('\n').enumerate() {
        let t = line.trim_start();
        if i > 0
            && let Some(p) = t.strip_prefix("Query Parameters: ")
        {
            params.push_str(p);
            break;
        }
        let plan_node = t.starts_with("->")
            || line.contains("  (cost=")
            || line.contains("  (actual time=")
            || line.contains("  (never executed)");
        if i > 0 && plan_node {
            break;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line);
    }
    while out.ends_with(['\n', ' ']) {
        out.pop();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::pg::severity::Part;

    fn record(sev: Severity, pid: u32, message: &str, parts: &[(Part, &str)]) -> Record {
        let mut r = Record {
            severity: sev,
            pid: Some(pid),
            line: 1,
            ..Record::default()
        };
        r.set_part(None, message.as_bytes());
        for (p, t) in parts {
            r.set_part(Some(*p), t.as_bytes());
        }
        r
    }

    #[test]
    fn execute_with_parameters() {
        let r = record(
            Severity::Log,
            8790,
            "duration: 451.718 ms  execute <unnamed>: SELECT pg_sleep($1)",
            &[(Part::Detail, "parameters: $1 = '0.45'")],
        );
        let mut c = Classifier::default();
        let e = c.classify(&r).unwrap();
        let PgEventKind::Statement {
            duration_ms,
            phase,
            prepared,
            query,
            parameters,
        } = e.kind
        else {
            panic!("{e:?}")
        };
        assert_eq!(duration_ms, 451.718);
        assert_eq!(phase, StatementPhase::Execute);
        assert_eq!(prepared, Some("<unnamed>"));
        assert_eq!(query, Some("SELECT pg_sleep($1)"));
        assert_eq!(parameters, Some("$1 = '0.45'"));
    }

    #[test]
    fn bare_duration_takes_the_logged_statement() {
        let mut c = Classifier::default();
        assert!(
            c.classify(&record(Severity::Log, 7, "statement: SELECT 1", &[]))
                .is_none()
        );
        let r = record(Severity::Log, 7, "duration: 0.250 ms", &[]);
        let e = c.classify(&r).unwrap();
        let PgEventKind::Statement { phase, query, .. } = e.kind else {
            panic!()
        };
        assert_eq!(phase, StatementPhase::Duration);
        assert_eq!(query, Some("SELECT 1"));
        // the text pairs with one duration only (extended protocol: parse and bind durations
        // come before the `execute` line)
        let e = c.classify(&r).unwrap();
        assert!(matches!(
            e.kind,
            PgEventKind::Statement {
                query: None,
                phase: StatementPhase::Unpaired,
                ..
            }
        ));
        let r = record(Severity::Log, 8, "duration: 0.250 ms", &[]);
        let mut fresh = Classifier::default();
        let e = fresh.classify(&r).unwrap();
        assert!(matches!(
            e.kind,
            PgEventKind::Statement {
                query: None,
                phase: StatementPhase::Duration,
                ..
            }
        ));
    }

    #[test]
    fn lock_wait_states_and_holders() {
        let mut c = Classifier::default();
        let r = record(
            Severity::Log,
            8825,
            "process 8825 still waiting for AccessExclusiveLock on relation 16426 of database 16385 after 10000.652 ms at character 15",
            &[(
                Part::Detail,
                "Processes holding the lock: 8823, 8822. Wait queue: 8825.",
            )],
        );
        let e = c.classify(&r).unwrap();
        let PgEventKind::LockWait {
            state,
            mode,
            object,
            wait_ms,
            holders,
            queue,
            ..
        } = e.kind
        else {
            panic!()
        };
        assert_eq!(state, LockState::Waiting);
        assert_eq!(mode, "AccessExclusiveLock");
        assert_eq!(object, "relation 16426 of database 16385");
        assert_eq!(wait_ms, 10000.652);
        assert_eq!(holders, vec![8823, 8822]);
        assert_eq!(queue, vec![8825]);
        let r = record(
            Severity::Log,
            8823,
            "process 8823 avoided deadlock for AccessShareLock on relation 16423 of database 16385 by rearranging queue order after 200.476 ms",
            &[(
                Part::Detail,
                "Process holding the lock: 8822. Wait queue: .",
            )],
        );
        let e = c.classify(&r).unwrap();
        let PgEventKind::LockWait {
            state,
            object,
            queue,
            ..
        } = e.kind
        else {
            panic!()
        };
        assert_eq!(state, LockState::Avoided);
        assert_eq!(object, "relation 16423 of database 16385");
        assert!(queue.is_empty());
        // without %p the message's own pid is used
        let mut r = record(
            Severity::Log,
            0,
            "process 42 acquired ShareLock on transaction 7 after 1.5 ms",
            &[],
        );
        r.pid = None;
        assert_eq!(c.classify(&r).unwrap().pid, Some(42));
    }

    #[test]
    fn deadlock_report_with_multi_line_statement() {
        let r = record(
            Severity::Error,
            8818,
            "deadlock detected",
            &[
                (
                    Part::Detail,
                    "Process 8818 waits for ShareLock on transaction 784; blocked by process 8819.\nProcess 8819 waits for ShareLock on transaction 783; blocked by process 8818.\nProcess 8818: UPDATE a\n  SET x = 1\nProcess 8819: UPDATE b",
                ),
                (
                    Part::Context,
                    "while updating tuple (0,11) in relation \"app_order\"",
                ),
                (Part::Statement, "UPDATE a\n  SET x = 1"),
            ],
        );
        let mut c = Classifier::default();
        let e = c.classify(&r).unwrap();
        let PgEventKind::Deadlock {
            processes, context, ..
        } = e.kind
        else {
            panic!()
        };
        assert_eq!(processes.len(), 2);
        assert_eq!(processes[0].pid, 8818);
        assert_eq!(processes[0].waits_for, "ShareLock on transaction 784");
        assert_eq!(processes[0].blocked_by, Some(8819));
        assert_eq!(processes[0].statement, Some("UPDATE a\n  SET x = 1"));
        assert_eq!(processes[1].statement, Some("UPDATE b"));
        assert!(context.unwrap().contains("app_order"));
    }

    #[test]
    fn cancels_temp_files_and_errors() {
        let mut c = Classifier::default();
        let r = record(
            Severity::Error,
            1,
            "canceling statement due to lock timeout",
            &[(Part::Statement, "UPDATE x")],
        );
        assert!(matches!(
            c.classify(&r).unwrap().kind,
            PgEventKind::Cancel {
                reason: CancelReason::LockTimeout,
                statement: Some("UPDATE x")
            }
        ));
        let r = record(
            Severity::Log,
            1,
            "temporary file: path \"base/pgsql_tmp/pgsql_tmp1.0\", size 163840",
            &[],
        );
        assert!(matches!(
            c.classify(&r).unwrap().kind,
            PgEventKind::TempFile {
                size: 163840,
                path: "base/pgsql_tmp/pgsql_tmp1.0",
                ..
            }
        ));
        let r = record(
            Severity::Error,
            1,
            "relation \"app_review\" does not exist at character 28",
            &[],
        );
        let e = c.classify(&r).unwrap();
        assert!(
            matches!(
                e.kind,
                PgEventKind::Error {
                    sqlstate: Some("42P01"),
                    message: "relation \"app_review\" does not exist",
                    ..
                }
            ),
            "{e:?}"
        );
        let r = record(Severity::Error, 1, "syntax error at or near \"SELEC\"", &[]);
        assert!(matches!(
            c.classify(&r).unwrap().kind,
            PgEventKind::Error {
                sqlstate: Some("42601"),
                ..
            }
        ));
        assert!(
            c.classify(&record(Severity::Warning, 1, "skipping", &[]))
                .is_none()
        );
    }

    #[test]
    fn auto_explain_query_text() {
        let mut out = String::new();
        let mut params = String::new();
        assert!(plan_query_text(
            "\nQuery Text: SELECT a\n  FROM t\nSeq Scan on t  (cost=0.00..1.00 rows=1 width=4)",
            &mut out,
            &mut params
        ));
        assert_eq!(out, "SELECT a\n  FROM t");
        assert_eq!(params, "");
        assert!(plan_query_text(
            "\n{\"Query Text\": \"SELECT 1\", \"Plan\": {}}",
            &mut out,
            &mut params
        ));
        assert_eq!(out, "SELECT 1");
        // PostgreSQL 18's auto_explain (fixtures/pg/pg18-autoexplain-params.log)
        assert!(plan_query_text(
            "\n\tQuery Text: SELECT id, price FROM app_book WHERE title = $1\n\tQuery Parameters: $1 = 'it''s Book 8'\n\tSeq Scan on app_book  (cost=0.00..20.62 rows=4 width=36)\n\t  Filter: (title = 'it''s Book 8'::text)",
            &mut out,
            &mut params
        ));
        assert_eq!(out, "SELECT id, price FROM app_book WHERE title = $1");
        assert_eq!(params, "$1 = 'it''s Book 8'");
    }
}
