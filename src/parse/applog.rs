//! Application request logs (a slow-request middleware, or any log whose lines carry a time, the
//! worker pid and `METHOD /path`). A line whose message says `start` opens a request on that
//! pid; any later line of the same pid naming a request closes it. wtdiag uses them to name
//! the request a worker was serving when it timed out, on Gunicorn versions that do not log it.

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
}
