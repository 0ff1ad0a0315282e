//! Application logs in the usual Python `logging` formats, with or without a pid:
//! - request lines carrying a time, the worker pid and `METHOD /path`: a line whose message
//!   says `start` opens a request on that pid; any later line of the same pid naming a request
//!   closes it. wtdiag uses them to name the request a worker was serving when it timed out, on
//!   Gunicorn versions that do not log it;
//! - slow-request middleware lines, usually without a pid (`Slow request: /orders/ took
//!   1.40s`, `Request GET /orders/ took 1.40s`): how long requests took;
//! - Django's `django.request` errors (`Internal Server Error: /path`) and the traceback logged
//!   with them, whose last line names the exception (a statement timeout, a deadlock).

use chrono::{FixedOffset, NaiveDateTime};
use memchr::memmem;

use crate::input::{Line, decode};
use crate::parse::timestamp;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One request line of an application log.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLine {
    /// Local time as written.
    pub time: NaiveDateTime,
    /// The UTC offset, when the line gave one (Python logging's default gives none).
    pub offset: Option<FixedOffset>,
    pub pid: u32,
    /// `GET /path`
    pub request: String,
    pub is_start: bool,
    pub line: u64,
}

/// A slow-request line: the request took `seconds` (written when it ended).
#[derive(Debug, Clone, PartialEq)]
pub struct SlowLine {
    pub time: NaiveDateTime,
    pub offset: Option<FixedOffset>,
    /// `GET`, when the line gives it.
    pub method: Option<String>,
    /// The path without its query string.
    pub path: String,
    pub seconds: f64,
    pub line: u64,
}

/// `Internal Server Error: /path` (Django's `django.request` logger, 5xx responses).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLine {
    pub time: NaiveDateTime,
    pub offset: Option<FixedOffset>,
    pub path: String,
    pub line: u64,
}

/// The Django reason phrases `django.request` logs 5xx responses with.
const DJANGO_5XX: &[&str] = &[
    "Internal Server Error: ",
    "Service Unavailable: ",
    "Bad Gateway: ",
    "Gateway Timeout: ",
];

/// The timestamp at the start of a line (within its first 40 bytes) and the text after it.
fn leading_time(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>, &str)> {
    let ts_at = text.find(|c: char| c.is_ascii_digit())?;
    if ts_at > 40 {
        return None;
    }
    let (time, offset, used) = timestamp::parse_prefix_parts(&text.as_bytes()[ts_at..])?;
    Some((time, offset, &text[ts_at + used..]))
}

/// Reads a slow-request line: `... /path took 1.40s` (or `1400ms`), the path with an optional
/// method before it.
pub fn parse_slow(line: &Line<'_>) -> Option<SlowLine> {
    if line.overlong.is_some() {
        return None;
    }
    memmem::find(line.bytes, b" took ")?;
    let (text, _) = decode(line.bytes);
    let (time, offset, rest) = leading_time(&text)?;
    let at = rest.find(" took ")?;
    let before = &rest[..at];
    let after = rest[at + 6..].split_whitespace().next()?;
    let after = after.trim_end_matches(['.', ',', ')']);
    let seconds = if let Some(ms) = after.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1000.0
    } else {
        after
            .strip_suffix("seconds")
            .or_else(|| after.strip_suffix('s'))?
            .parse::<f64>()
            .ok()?
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    let mut words = before.rsplit(' ');
    let target = words.next()?.trim_matches(|c| c == '"' || c == '\'');
    if !target.starts_with('/') {
        return None;
    }
    let method = words
        .next()
        .filter(|m| METHODS.contains(m))
        .map(str::to_string);
    Some(SlowLine {
        time,
        offset,
        method,
        path: crate::parse::cap(target.split('?').next().unwrap_or(target), 300).to_string(),
        seconds,
        line: line.number,
    })
}

/// Reads the first line of a `django.request` error record.
pub fn parse_error(line: &Line<'_>) -> Option<ErrorLine> {
    if line.overlong.is_some() {
        return None;
    }
    let (text, _) = decode(line.bytes);
    let (at, phrase) = DJANGO_5XX
        .iter()
        .find_map(|p| text.find(p).map(|at| (at, *p)))?;
    let path = text[at + phrase.len()..].split_whitespace().next()?;
    if !path.starts_with('/') {
        return None;
    }
    let (time, offset, _) = leading_time(&text[..at])?;
    Some(ErrorLine {
        time,
        offset,
        path: crate::parse::cap(path.split('?').next().unwrap_or(path), 300).to_string(),
        line: line.number,
    })
}

/// True for a line that starts a new log record (a timestamp at its start): the end of a
/// traceback logged with the record before.
pub fn starts_record(line: &Line<'_>) -> bool {
    let head = &line.bytes[..line.bytes.len().min(64)];
    let (text, _) = decode(head);
    leading_time(&text).is_some()
}

/// The exception a traceback line names (`django.db.utils.OperationalError: canceling
/// statement due to statement timeout`), for the unindented lines of a traceback.
pub fn exception_line(line: &Line<'_>) -> Option<String> {
    let b = line.bytes;
    if b.is_empty() || b[0] == b' ' || b[0] == b'\t' {
        return None;
    }
    let (text, _) = decode(b);
    let text = text.trim_end();
    if text.starts_with("Traceback ")
        || text.starts_with("The above exception")
        || text.starts_with("During handling")
    {
        return None;
    }
    let (name, _) = text.split_once(':').unwrap_or((text, ""));
    let is_name = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_');
    is_name.then(|| crate::parse::cap(text, 300).to_string())
}

/// A record of an application log.
#[derive(Debug, Clone, PartialEq)]
pub enum AppRecord {
    Request(AppLine),
    Slow(SlowLine),
    /// A `django.request` error and the exception its traceback ends with, when it has one.
    Error(ErrorLine, Option<String>),
}

/// Reads an application log line by line, following `django.request` tracebacks to their
/// exception line.
#[derive(Default)]
pub struct AppLogReader {
    open_error: Option<(ErrorLine, Option<String>)>,
    /// Lines that were none of the records above.
    pub other_lines: u64,
}

impl AppLogReader {
    pub fn push(&mut self, line: &Line<'_>, sink: &mut impl FnMut(AppRecord)) {
        if self.open_error.is_some() && !starts_record(line) {
            if let Some(exc) = exception_line(line)
                && let Some((_, last)) = &mut self.open_error
            {
                *last = Some(exc);
            }
            return;
        }
        if let Some((e, exc)) = self.open_error.take() {
            sink(AppRecord::Error(e, exc));
        }
        if let Some(e) = parse_error(line) {
            self.open_error = Some((e, None));
        } else if let Some(s) = parse_slow(line) {
            sink(AppRecord::Slow(s));
        } else if let Some(r) = parse_line(line) {
            sink(AppRecord::Request(r));
        } else {
            self.other_lines += 1;
        }
    }

    pub fn finish(&mut self, sink: &mut impl FnMut(AppRecord)) {
        if let Some((e, exc)) = self.open_error.take() {
            sink(AppRecord::Error(e, exc));
        }
    }
}

/// Reads one line; `None` when it is not a request line.
pub fn parse_line(line: &Line<'_>) -> Option<AppLine> {
    if line.overlong.is_some() {
        return None;
    }
    let bytes = line.bytes;
    // Cheap rejection: a request line names a path.
    memmem::find(bytes, b" /")?;
    let (text, _) = decode(bytes);
    let text = text.as_ref();
    let ts_at = text.find(|c: char| c.is_ascii_digit())?;
    if ts_at > 40 {
        return None;
    }
    let (time, offset, used) = timestamp::parse_prefix_parts(&text.as_bytes()[ts_at..])?;
    let rest = &text[ts_at + used..];
    let pid = find_pid(rest)?;
    let (request, after) = find_request(rest)?;
    let before = &rest[..rest.len() - after.len()];
    let is_start = before.to_ascii_lowercase().contains("start");
    Some(AppLine {
        time,
        offset,
        pid,
        request,
        is_start,
        line: line.number,
    })
}

/// `pid=N`, `pid:N`, `[N]`, or the first bare number token.
fn find_pid(s: &str) -> Option<u32> {
    for key in ["pid=", "pid:", "pid "] {
        if let Some(at) = s.find(key) {
            let digits: String = s[at + key.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(pid) = digits.parse() {
                return Some(pid);
            }
        }
    }
    s.split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_matches(|c| c == '[' || c == ']' || c == ':'))
        .find(|t| !t.is_empty() && t.len() <= 10 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
}

/// `METHOD /path` as a request string, and the text after it.
fn find_request(s: &str) -> Option<(String, &str)> {
    for m in METHODS {
        let needle = format!("{m} /");
        if let Some(at) = s.find(&needle) {
            let boundary = at == 0 || !s.as_bytes()[at - 1].is_ascii_alphanumeric();
            if !boundary {
                continue;
            }
            let path_start = at + m.len() + 1;
            let path_end = s[path_start..]
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .map_or(s.len(), |p| path_start + p);
            return Some((format!("{m} {}", &s[path_start..path_end]), &s[path_end..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Option<AppLine> {
        parse_line(&Line {
            number: 1,
            bytes: s.as_bytes(),
            overlong: None,
        })
    }

    #[test]
    fn python_logging_default_shape() {
        let l = line("2026-11-26 22:32:47,123 4242 INFO request start GET /db/lock").unwrap();
        assert_eq!(l.pid, 4242);
        assert_eq!(l.request, "GET /db/lock");
        assert!(l.is_start);
        let l = line("2026-11-26 22:32:48,001 4242 INFO request end GET /ok 200 3ms").unwrap();
        assert!(!l.is_start);
    }

    #[test]
    fn bracketed_pid_and_non_request_lines() {
        let l =
            line("[2026-11-26 22:32:47 +0000] [77] slow request POST /checkout?x=1 35.2s").unwrap();
        assert_eq!(l.pid, 77);
        assert_eq!(l.request, "POST /checkout?x=1");
        assert!(line("2026-11-26 22:32:47,123 4242 INFO cache warmed").is_none());
    }

    #[test]
    fn slow_request_lines_without_pid() {
        let l = Line {
            number: 3,
            bytes: b"2026-12-02 14:30:47,878 WARNING wtapp.slow Slow request: /slowish took 2.20s",
            overlong: None,
        };
        let s = parse_slow(&l).unwrap();
        assert_eq!(
            (s.path.as_str(), s.seconds, s.method),
            ("/slowish", 2.2, None)
        );
        let l = Line {
            number: 4,
            bytes: b"2026-12-02 14:30:47 CRITICAL: Request POST /orders/export?x=1 took 27100ms",
            overlong: None,
        };
        let s = parse_slow(&l).unwrap();
        assert_eq!(s.method.as_deref(), Some("POST"));
        assert_eq!((s.path.as_str(), s.seconds), ("/orders/export", 27.1));
        let no = Line {
            number: 5,
            bytes: b"2026-12-02 14:30:47 INFO migration took ages",
            overlong: None,
        };
        assert!(parse_slow(&no).is_none());
    }

    #[test]
    fn django_request_errors_and_their_exception() {
        let l = Line {
            number: 4,
            bytes: b"2026-12-02 14:30:53,342 ERROR django.request Internal Server Error: /db/statement-timeout",
            overlong: None,
        };
        let e = parse_error(&l).unwrap();
        assert_eq!(e.path, "/db/statement-timeout");
        assert!(starts_record(&l));
        let exc = |b: &'static [u8]| {
            exception_line(&Line {
                number: 9,
                bytes: b,
                overlong: None,
            })
        };
        assert_eq!(
            exc(b"django.db.utils.OperationalError: canceling statement due to statement timeout")
                .as_deref(),
            Some("django.db.utils.OperationalError: canceling statement due to statement timeout")
        );
        assert!(exc(b"Traceback (most recent call last):").is_none());
        assert!(exc(b"  File \"x.py\", line 1, in f").is_none());
        assert!(
            exc(b"The above exception was the direct cause of the following exception:").is_none()
        );
    }
}
