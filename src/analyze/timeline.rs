//! The event timeline of one `wtdiag logs` run, kept bounded: abort tracebacks are read into a
//! verdict as they arrive and their frame lists dropped; routine events (worker boots and
//! exits) are listed up to a cap and counted beyond it. What the report needs — every
//! timeout, kill and abort — is kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::analyze::stack;
use crate::parse::traceback;
use crate::report::{Attribution, Event, EventDetail};

/// Routine events listed in the report; the rest are only counted.
pub const MAX_ROUTINE_EVENTS: u64 = 10_000;

#[derive(Debug, Default)]
pub struct Timeline {
    pub events: Vec<Event>,
    /// Every event seen, by kind, listed or not.
    pub counts: BTreeMap<&'static str, u64>,
    /// Events counted but not listed.
    pub omitted: u64,
    routine: u64,
}

impl Timeline {
    pub fn push(&mut self, mut event: Event) {
        *self.counts.entry(event.detail.kind()).or_insert(0) += 1;
        match &mut event.detail {
            EventDetail::RequestAbort {
                exception,
                attribution,
                traceback: text,
            } => {
                if let Some(tb) = traceback::parse(text) {
                    *exception = tb.exception.map(str::to_string);
                    if !tb.frames.is_empty() {
                        let verdict = stack::classify(&tb.frames);
                        *attribution = Arc::new(Attribution {
                            cause: verdict.cause,
                            reason: verdict.reason,
                            request: attribution.request.clone(),
                            stuck_frame: verdict.stuck_frame,
                            call_site: verdict.call_site,
                        });
                    }
                }
                *text = String::new();
            }
            EventDetail::WorkerBoot | EventDetail::WorkerExit { .. } => {
                if self.routine >= MAX_ROUTINE_EVENTS {
                    self.omitted += 1;
                    return;
                }
                self.routine += 1;
                // Routine events are never evidence; their text is not worth keeping.
                event.text = String::new();
            }
            _ => {}
        }
        self.events.push(event);
    }

    /// Puts the events of several inputs in time order (stable: one second's lines keep their
    /// file order).
    pub fn sort(&mut self) {
        self.events.sort_by_key(|e| e.time);
    }
}
