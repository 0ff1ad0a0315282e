//! [`PgEvent`] (borrowed, from the parser) → report [`Event`] (owned, for JSON and for other
//! commands such as `wtdiag logs --pg-log`).

use std::sync::Arc;

use super::fingerprint::{Normalizer, fingerprint_id};
use super::locks::{relation_of_context, relation_of_object};
use super::statements::cap;
use crate::parse::pg::{PgEvent, PgEventKind};
use crate::report::{DeadlockProcess, Event, EventDetail, Source};

/// SQL kept per event.
const MAX_EVENT_SQL: usize = 8 << 10;
/// Evidence text kept per event.
pub const MAX_EVIDENCE: usize = 400;

/// The report event for `e`, read from `path`.
pub fn report_event(e: &PgEvent<'_>, path: &Arc<str>, normalizer: &mut Normalizer) -> Event {
    let owned = |s: Option<&str>| s.map(|s| cap(s, MAX_EVENT_SQL).to_string());
    let detail = match &e.kind {
        PgEventKind::Statement {
            duration_ms,
            phase,
            prepared,
            query,
            parameters,
        } => {
            let (normalized, hash) = match query {
                Some(q) => {
                    let (n, h) = normalizer.normalize(q);
                    (n.to_string(), h)
                }
                None => (String::new(), 0),
            };
            EventDetail::Statement {
                duration_ms: *duration_ms,
                fingerprint: if query.is_some() {
                    fingerprint_id(hash)
                } else {
                    String::new()
                },
                query: owned(*query).unwrap_or_default(),
                normalized,
                phase: phase.name(),
                prepared: prepared.map(str::to_string),
                parameters: owned(*parameters),
                database: e.database.map(str::to_string),
                user: e.user.map(str::to_string),
                application: e.application.map(str::to_string),
            }
        }
        PgEventKind::LockWait {
            state,
            mode,
            object,
            wait_ms,
            holders,
            queue,
            context,
            statement,
        } => EventDetail::LockWait {
            state: state.name().to_string(),
            lock: mode.to_string(),
            object: object.to_string(),
            wait_ms: *wait_ms,
            blocked_by: holders.clone(),
            wait_queue: queue.clone(),
            statement: owned(*statement),
            relation: context.and_then(relation_of_context),
            context: context.map(str::to_string),
        },
        PgEventKind::Deadlock {
            processes, context, ..
        } => EventDetail::Deadlock {
            processes: processes
                .iter()
                .map(|p| DeadlockProcess {
                    pid: p.pid,
                    waits_for: p.waits_for.to_string(),
                    blocked_by: p.blocked_by,
                    statement: owned(p.statement),
                })
                .collect(),
            relations: deadlock_relations(e),
            context: context.map(str::to_string),
        },
        PgEventKind::Cancel { reason, statement } => EventDetail::Cancel {
            reason: reason.name().to_string(),
            statement: owned(*statement),
        },
        PgEventKind::TempFile {
            path,
            size,
            statement,
        } => EventDetail::TempFile {
            size: *size,
            path: path.to_string(),
            statement: owned(*statement),
        },
        PgEventKind::Error {
            severity,
            sqlstate,
            sqlstate_inferred,
            message,
            detail,
            statement,
        } => EventDetail::Error {
            severity: severity.to_string(),
            sqlstate: sqlstate.map(str::to_string),
            sqlstate_inferred: *sqlstate_inferred,
            message: message.to_string(),
            detail: owned(*detail),
            statement: owned(*statement),
        },
    };
    Event {
        detail,
        pid: e.pid,
        time: e.time,
        source: Source {
            path: path.clone(),
            line: e.line,
        },
        origin: crate::report::Origin::file(path),
        text: cap(e.message, MAX_EVIDENCE).to_string(),
    }
}

/// Tables a deadlock involved: the CONTEXT's relation, then the lock objects' relation OIDs.
pub fn deadlock_relations(e: &PgEvent<'_>) -> Vec<String> {
    let PgEventKind::Deadlock {
        processes, context, ..
    } = &e.kind
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    if let Some(r) = context.and_then(relation_of_context) {
        out.push(r);
    }
    for p in processes {
        if let Some(r) = relation_of_object(p.waits_for)
            && !out.contains(&r)
        {
            out.push(r);
        }
    }
    out
}
