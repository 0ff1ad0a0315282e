//! Events of side inputs that the report does not list in `events` (and so not in JSON): the
//! proxy's 5xx and, for `logs --pg-log`, the database's lock waits, slow statements and
//! deadlocks. Only their time and kind are kept, for the timeline.

use chrono::{DateTime, FixedOffset};

use super::Source;

/// Side events kept for the timeline; later ones are counted, so memory stays bounded on a lock
/// storm.
pub const MAX_SIDE_EVENTS: usize = 50_000;

/// The side events of a report, capped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SideEvents {
    pub list: Vec<SideEvent>,
    /// Side events not kept (beyond [`MAX_SIDE_EVENTS`]).
    pub omitted: u64,
}

impl SideEvents {
    pub fn push(&mut self, e: SideEvent) {
        if self.list.len() < MAX_SIDE_EVENTS {
            self.list.push(e);
        } else {
            self.omitted += 1;
        }
    }
}

impl Extend<SideEvent> for SideEvents {
    fn extend<I: IntoIterator<Item = SideEvent>>(&mut self, iter: I) {
        for e in iter {
            self.push(e);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SideEvent {
    pub time: DateTime<FixedOffset>,
    pub kind: SideKind,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideKind {
    /// A lock wait began (`still waiting for`).
    LockWait,
    /// A statement at least as slow as the listing threshold (1 s).
    SlowStatement,
    /// `deadlock detected`.
    Deadlock,
    /// A client got this 5xx status: from an access log (nginx's or Gunicorn's), else from the
    /// proxy's error log (nginx: 502 for `upstream prematurely closed connection`, 504 for
    /// `upstream timed out`).
    ProxyError(u16),
}
