//! The stderr format (also what syslog carries after its header): each line starts with the
//! `log_line_prefix`, then a severity. A message's `DETAIL`/`HINT`/`CONTEXT`/`STATEMENT` lines
//! follow it with the same prefix and belong to the open message of the same backend pid; lines
//! that begin with a tab continue the line before them. Messages are handed out once nothing
//! more can belong to them: when their backend starts a new message, or a few lines later.

use super::prefix::{Prefix, PrefixedLine};
use super::record::{Record, TimeCache};
use super::severity::Severity;

/// Lines after which a message of another backend is taken as complete. PostgreSQL writes a
/// message and its parts in one write, so they are adjacent; this leaves room for interleaving.
const OPEN_LINES: u64 = 8;
/// Messages kept open at most (interleaved backends).
const MAX_OPEN: usize = 32;

/// What became of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineUse {
    /// Started a message, added a part to one, or continued one.
    Used,
    /// A `DETAIL:`-like line or a tab line with no open message to belong to.
    Orphan,
    /// Not a line of this prefix.
    NoPrefix,
}

/// Assembles the messages of one stderr stream.
pub struct StderrAssembler {
    prefix: Prefix,
    open: Vec<Record>,
    pool: Vec<Record>,
    /// Index in `open` of the record the previous line went to, for tab continuations.
    last_target: Option<usize>,
    pub(super) times: TimeCache,
    pub lossy_lines: u64,
}

/// Fields a wrapper (syslog) knows about a line when the prefix may not.
#[derive(Debug, Default, Clone, Copy)]
pub struct Envelope {
    pub pid: Option<u32>,
    pub time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl StderrAssembler {
    pub fn new(prefix: Prefix) -> StderrAssembler {
        StderrAssembler {
            prefix,
            open: Vec::new(),
            pool: Vec::new(),
            last_target: None,
            times: TimeCache::default(),
            lossy_lines: 0,
        }
    }

    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Reads one line; `emit` gets every message that this line completes.
    pub fn push(
        &mut self,
        number: u64,
        bytes: &[u8],
        envelope: Envelope,
        emit: &mut dyn FnMut(&Record),
    ) -> LineUse {
        if let Some(rest) = bytes.strip_prefix(b"\t") {
            return self.continue_last(rest, true);
        }
        let Some(split) = self.prefix.split(bytes) else {
            // A continuation whose tab a shipper turned into spaces.
            if bytes.starts_with(b" ") {
                let rest = &bytes[bytes.iter().take_while(|c| **c == b' ').count()..];
                return self.continue_last(rest, true);
            }
            return LineUse::NoPrefix;
        };
        let pid = split.fields.pid.or(envelope.pid);
        match split.severity {
            Severity::Part(part) => {
                let target = self
                    .open
                    .iter()
                    .rposition(|r| pid.is_none() || r.pid.is_none() || r.pid == pid);
                let Some(i) = target else {
                    self.last_target = None;
                    return LineUse::Orphan;
                };
                let record = &mut self.open[i];
                record.set_part(Some(part), split.message);
                record.last_line = number;
                if record.sqlstate.is_none()
                    && let Some(code) = split.verbose_sqlstate.or(split.fields.sqlstate)
                {
                    record.set_sqlstate(code);
                }
                self.last_target = Some(i);
                LineUse::Used
            }
            _ => {
                self.flush_before(number, pid, emit);
                let mut record = self.pool.pop().unwrap_or_default();
                self.fill(&mut record, number, &split, pid, envelope);
                self.open.push(record);
                self.last_target = Some(self.open.len() - 1);
                LineUse::Used
            }
        }
    }

    /// A line that continues the previous one: a tab line (`newline`), or a syslog chunk split
    /// mid-line (`!newline`).
    pub fn continue_last(&mut self, text: &[u8], newline: bool) -> LineUse {
        match self.last_target.and_then(|i| self.open.get_mut(i)) {
            Some(record) => {
                record.continue_part(text, newline);
                LineUse::Used
            }
            None => LineUse::Orphan,
        }
    }

    fn fill(
        &mut self,
        record: &mut Record,
        number: u64,
        split: &PrefixedLine<'_>,
        pid: Option<u32>,
        envelope: Envelope,
    ) {
        record.line = number;
        record.last_line = number;
        record.pid = pid;
        record.severity = split.severity;
        record.time = match split.fields.time {
            Some(t) => self.times.parse(t, split.fields.epoch, number),
            None => envelope.time,
        };
        if let Some(code) = split.verbose_sqlstate.or(split.fields.sqlstate)
            && code != b"00000"
        {
            record.set_sqlstate(code);
        }
        let mut lossy = false;
        Record::set_field(&mut record.user, split.fields.user, &mut lossy);
        Record::set_field(&mut record.database, split.fields.database, &mut lossy);
        Record::set_field(
            &mut record.application,
            split.fields.application,
            &mut lossy,
        );
        record.set_part(None, split.message);
        if lossy || record.lossy {
            self.lossy_lines += 1;
        }
    }

    /// Hands out the open messages that a new message of `pid` at line `number` closes.
    fn flush_before(&mut self, number: u64, pid: Option<u32>, emit: &mut dyn FnMut(&Record)) {
        let mut i = 0;
        while i < self.open.len() {
            let r = &self.open[i];
            let done = pid.is_none()
                || r.pid.is_none()
                || r.pid == pid
                || r.last_line + OPEN_LINES < number
                || self.open.len() >= MAX_OPEN;
            if done {
                let mut record = self.open.remove(i);
                emit(&record);
                record.clear();
                self.pool.push(record);
            } else {
                i += 1;
            }
        }
        self.last_target = None;
    }

    /// Hands out every open message (end of input).
    pub fn finish(&mut self, emit: &mut dyn FnMut(&Record)) {
        for mut record in self.open.drain(..) {
            emit(&record);
            record.clear();
            self.pool.push(record);
        }
        self.last_target = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &[&str]) -> Vec<(u64, Option<u32>, String, String, String)> {
        let mut a = StderrAssembler::new(Prefix::compile("%m [%p] ").unwrap());
        let mut out = Vec::new();
        let mut emit = |r: &Record| {
            out.push((
                r.line,
                r.pid,
                r.message.clone(),
                r.detail.clone(),
                r.statement.clone(),
            ))
        };
        for (i, l) in lines.iter().enumerate() {
            a.push(i as u64 + 1, l.as_bytes(), Envelope::default(), &mut emit);
        }
        a.finish(&mut emit);
        out.sort_by_key(|r| r.0);
        out
    }

    #[test]
    fn parts_join_their_backends_message_across_interleaving() {
        let got = read(&[
            "2026-11-26 22:38:15.674 UTC [8794] LOG:  process 8794 still waiting for ShareLock on transaction 779 after 200.131 ms",
            "2026-11-26 22:38:15.674 UTC [8790] LOG:  duration: 0.1 ms  statement: SELECT a,",
            "\t  b FROM t",
            "2026-11-26 22:38:15.674 UTC [8794] DETAIL:  Process holding the lock: 8793. Wait queue: 8794.",
            "2026-11-26 22:38:15.674 UTC [8794] STATEMENT:  UPDATE app_order",
            "\tSET x = 1",
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, Some(8794));
        assert_eq!(
            got[0].3,
            "Process holding the lock: 8793. Wait queue: 8794."
        );
        assert_eq!(got[0].4, "UPDATE app_order\nSET x = 1");
        assert_eq!(
            got[1].2,
            "duration: 0.1 ms  statement: SELECT a,\n  b FROM t"
        );
    }

    #[test]
    fn orphans_and_foreign_lines_are_reported() {
        let mut a = StderrAssembler::new(Prefix::compile("%m [%p] ").unwrap());
        let mut emit = |_: &Record| {};
        assert_eq!(
            a.push(1, b"\tstray", Envelope::default(), &mut emit),
            LineUse::Orphan
        );
        assert_eq!(
            a.push(
                2,
                b"2026-11-26 22:38:15.674 UTC [1] DETAIL:  x",
                Envelope::default(),
                &mut emit
            ),
            LineUse::Orphan
        );
        assert_eq!(
            a.push(3, b"random text", Envelope::default(), &mut emit),
            LineUse::NoPrefix
        );
    }
}
