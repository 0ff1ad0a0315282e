//! One server message with all its parts (`DETAIL`, `HINT`, `CONTEXT`, `STATEMENT`), whatever
//! the format it was read from. Its text buffers are reused from message to message, so reading
//! a log allocates per distinct shape, not per line. Text is capped at [`MAX_PART_BYTES`] per
//! part: a runaway multi-line message cannot grow memory.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

use super::severity::{Part, Severity};
use std::sync::Arc;

use crate::parse::timestamp::{self, ZoneText};
use crate::parse::zones::{ZoneBook, ZoneOverrides};

/// Text kept per message part; the rest is dropped and the record marked truncated.
pub const MAX_PART_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub struct Record {
    /// 1-based line number of the first line.
    pub line: u64,
    pub time: Option<DateTime<FixedOffset>>,
    pub pid: Option<u32>,
    pub severity: Severity,
    pub sqlstate: Option<[u8; 5]>,
    pub message: String,
    pub detail: String,
    pub hint: String,
    pub context: String,
    pub statement: String,
    pub user: String,
    pub database: String,
    pub application: String,
    /// Which text the next tab-continuation line extends.
    pub(super) last_part: Option<Part>,
    /// The line this record last took text from (to tell which records are still open).
    pub(super) last_line: u64,
    pub truncated: bool,
    pub lossy: bool,
}

impl Default for Record {
    fn default() -> Record {
        Record {
            line: 0,
            time: None,
            pid: None,
            severity: Severity::Log,
            sqlstate: None,
            message: String::new(),
            detail: String::new(),
            hint: String::new(),
            context: String::new(),
            statement: String::new(),
            user: String::new(),
            database: String::new(),
            application: String::new(),
            last_part: None,
            last_line: 0,
            truncated: false,
            lossy: false,
        }
    }
}

impl Record {
    /// Empties the record for reuse, keeping its buffers.
    pub fn clear(&mut self) {
        self.line = 0;
        self.time = None;
        self.pid = None;
        self.severity = Severity::Log;
        self.sqlstate = None;
        self.message.clear();
        self.detail.clear();
        self.hint.clear();
        self.context.clear();
        self.statement.clear();
        self.user.clear();
        self.database.clear();
        self.application.clear();
        self.last_part = None;
        self.last_line = 0;
        self.truncated = false;
        self.lossy = false;
    }

    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate
            .as_ref()
            .and_then(|s| std::str::from_utf8(s).ok())
    }

    pub fn set_sqlstate(&mut self, code: &[u8]) {
        if let Ok(code) = <[u8; 5]>::try_from(code) {
            self.sqlstate = Some(code);
        }
    }

    /// The buffer of a part (`None` is the message itself).
    pub fn part_mut(&mut self, part: Option<Part>) -> &mut String {
        match part {
            None => &mut self.message,
            Some(Part::Detail) => &mut self.detail,
            Some(Part::Hint) => &mut self.hint,
            Some(Part::Context) => &mut self.context,
            Some(Part::Statement) => &mut self.statement,
            // QUERY (internal query) and LOCATION are not used; keep them out of the others.
            Some(Part::Query) | Some(Part::Location) => &mut self.hint,
        }
    }

    /// Sets a part's text (a second DETAIL line is appended on a new line).
    pub fn set_part(&mut self, part: Option<Part>, text: &[u8]) {
        let mut lossy = false;
        let mut truncated = false;
        let buf = self.part_mut(part);
        if !buf.is_empty() {
            buf.push('\n');
        }
        push_capped(buf, text, &mut lossy, &mut truncated);
        self.lossy |= lossy;
        self.truncated |= truncated;
        self.last_part = part;
    }

    /// Appends a continuation line (its leading tab already removed) to the last part written.
    pub fn continue_part(&mut self, text: &[u8], newline: bool) {
        let part = self.last_part;
        let mut lossy = false;
        let mut truncated = false;
        let buf = self.part_mut(part);
        if newline {
            buf.push('\n');
        }
        push_capped(buf, text, &mut lossy, &mut truncated);
        self.lossy |= lossy;
        self.truncated |= truncated;
    }

    /// Copies a prefix field into one of the record's strings.
    pub fn set_field(target: &mut String, text: Option<&[u8]>, lossy: &mut bool) {
        target.clear();
        if let Some(text) = text {
            let mut truncated = false;
            push_capped(target, text, lossy, &mut truncated);
        }
    }

    /// The message's first line.
    pub fn first_line(&self) -> &str {
        first_line(&self.message)
    }
}

pub fn first_line(s: &str) -> &str {
    match memchr::memchr(b'\n', s.as_bytes()) {
        Some(i) => &s[..i],
        None => s,
    }
}

fn push_capped(buf: &mut String, text: &[u8], lossy: &mut bool, truncated: &mut bool) {
    let room = MAX_PART_BYTES.saturating_sub(buf.len());
    let mut take = text.len().min(room);
    if take < text.len() {
        *truncated = true;
        while take > 0 && !is_char_boundary(text, take) {
            take -= 1;
        }
    }
    match std::str::from_utf8(&text[..take]) {
        Ok(s) => buf.push_str(s),
        Err(_) => {
            *lossy = true;
            buf.push_str(&String::from_utf8_lossy(&text[..take]));
        }
    }
}

fn is_char_boundary(b: &[u8], i: usize) -> bool {
    i >= b.len() || (b[i] as i8) >= -0x40
}

/// Parses prefix timestamps, remembering the last one: consecutive lines often share it. Zone
/// abbreviations go through a [`ZoneBook`], which keeps how each was read for the report.
#[derive(Debug, Default)]
pub struct TimeCache {
    last_text: Vec<u8>,
    last: Option<DateTime<FixedOffset>>,
    /// The abbreviation of the last text (empty when none), to count its reuse.
    last_zone: String,
    /// True when the last text was a well-formed time in a zone that cannot be resolved.
    last_unresolved: bool,
    pub zones: ZoneBook,
}

impl TimeCache {
    pub fn new(overrides: Arc<ZoneOverrides>) -> TimeCache {
        TimeCache {
            zones: ZoneBook::new(overrides),
            ..TimeCache::default()
        }
    }

    /// `2026-11-26 22:38:11.336 UTC` (any of `%m %t`), or epoch seconds (`%n`) when `epoch`.
    /// None for a time whose zone abbreviation cannot be resolved ([`Self::unresolved`]).
    pub fn parse(&mut self, text: &[u8], epoch: bool, line: u64) -> Option<DateTime<FixedOffset>> {
        if text == self.last_text.as_slice() {
            if !self.last_zone.is_empty() {
                self.zones.count_again(&self.last_zone);
            }
            return self.last;
        }
        self.last_zone.clear();
        self.last_unresolved = false;
        let parsed = if epoch {
            parse_epoch(text)
        } else {
            match timestamp::parse_prefix_zoned(text) {
                None => None,
                Some((naive, None, _)) => Some(naive.and_utc().fixed_offset()),
                Some((naive, Some(ZoneText::Offset(o)), _)) => {
                    o.from_local_datetime(&naive).single()
                }
                Some((naive, Some(ZoneText::Abbreviation(name)), _)) => {
                    let offset = self.zones.resolve(name, naive, line);
                    self.last_zone.push_str(name);
                    self.last_unresolved = offset.is_none();
                    offset.and_then(|o| o.from_local_datetime(&naive).single())
                }
            }
        };
        self.last_text.clear();
        self.last_text.extend_from_slice(text);
        self.last = parsed;
        parsed
    }

    /// True when the last time parsed was well formed but its zone could not be resolved.
    pub fn unresolved(&self) -> bool {
        self.last_unresolved
    }
}

fn parse_epoch(text: &[u8]) -> Option<DateTime<FixedOffset>> {
    let s = std::str::from_utf8(text).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: u32 = 0;
    if !frac.is_empty() {
        let digits = frac.get(..frac.len().min(9))?;
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
    }
    Some(Utc.timestamp_opt(secs, nanos).single()?.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_append_and_cap() {
        let mut r = Record::default();
        r.set_part(None, b"duration: 1 ms  statement: SELECT a,");
        r.continue_part(b"       b FROM t", true);
        r.set_part(Some(Part::Detail), b"parameters: $1 = '1'");
        assert_eq!(
            r.message,
            "duration: 1 ms  statement: SELECT a,\n       b FROM t"
        );
        assert_eq!(r.first_line(), "duration: 1 ms  statement: SELECT a,");
        let big = vec![b'x'; MAX_PART_BYTES + 10];
        r.continue_part(&big, true);
        assert!(r.truncated);
        assert!(r.detail.len() <= MAX_PART_BYTES);
        r.clear();
        assert!(r.message.is_empty() && !r.truncated);
    }

    #[test]
    fn epoch_and_cached_times() {
        let mut c = TimeCache::default();
        let t = c.parse(b"1732660691.336", true, 1).unwrap();
        assert_eq!(t.timestamp_subsec_millis(), 336);
        let a = c.parse(b"2026-11-26 22:38:11.336 UTC", false, 1).unwrap();
        let b = c.parse(b"2026-11-26 22:38:11.336 UTC", false, 1).unwrap();
        assert_eq!(a, b);
        assert!(c.parse(b"garbage", false, 1).is_none());
    }
}
