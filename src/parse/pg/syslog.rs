//! syslog (`log_destination = 'syslog'`) as rsyslog or journald write it:
//! `Nov 26 22:38:11 host postgres[8776]: [3-1] <log_line_prefix>LOG:  ...`, or with an
//! RFC 3339 time first. PostgreSQL splits a message at newlines into chunks `[N-1]`, `[N-2]`,
//! ... (and long lines at 900 bytes); the tab that starts a continuation line reaches the file
//! as `#011`. After the header, the text is read as stderr with the same prefix rules.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};

use crate::parse::timestamp;

/// What the syslog header said about one line.
#[derive(Debug, Clone, Copy)]
pub struct SyslogLine<'a> {
    pub pid: u32,
    pub time: Option<DateTime<FixedOffset>>,
    /// `[N-M]`: the message number and the chunk in it (1 for the first).
    pub chunk: Option<(u64, u32)>,
    /// The text after the header (and after `[N-M] `), `#011` not yet replaced.
    pub text: &'a [u8],
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Splits a syslog line; None when it has no `ident[pid]: ` header.
pub fn split(line: &[u8]) -> Option<SyslogLine<'_>> {
    let (time, after_time) = header_time(line)?;
    let rest = line.get(after_time..)?.strip_prefix(b" ")?;
    // host
    let host_end = memchr::memchr(b' ', rest)?;
    let rest = &rest[host_end + 1..];
    // ident[pid]:
    let open = memchr::memchr(b'[', &rest[..rest.len().min(64)])?;
    if rest[..open].contains(&b' ') {
        return None;
    }
    let close = open + 1 + memchr::memchr(b']', &rest[open + 1..])?;
    let pid: u32 = std::str::from_utf8(&rest[open + 1..close])
        .ok()?
        .parse()
        .ok()?;
    let mut text = rest[close + 1..]
        .strip_prefix(b": ")
        .or_else(|| rest[close + 1..].strip_prefix(b":"))?;
    let mut chunk = None;
    if text.first() == Some(&b'[')
        && let Some(end) = memchr::memchr(b']', &text[..text.len().min(24)])
        && let Some((n, m)) = std::str::from_utf8(&text[1..end])
            .ok()
            .and_then(|s| s.split_once('-'))
        && let (Ok(n), Ok(m)) = (n.parse::<u64>(), m.parse::<u32>())
    {
        chunk = Some((n, m));
        text = &text[end + 1..];
        text = text.strip_prefix(b" ").unwrap_or(text);
    }
    Some(SyslogLine {
        pid,
        time,
        chunk,
        text,
    })
}

/// The header time and where it ends: `Mmm dd hh:mm:ss` (no year: this year, or last year
/// when that would be in the future) or RFC 3339.
fn header_time(line: &[u8]) -> Option<(Option<DateTime<FixedOffset>>, usize)> {
    if line.len() >= 15 && line[3] == b' ' && line[6] == b' ' && line[9] == b':' {
        let month = MONTHS.iter().position(|m| &line[..3] == *m)? as u32 + 1;
        let day: u32 = std::str::from_utf8(&line[4..6]).ok()?.trim().parse().ok()?;
        let hms = std::str::from_utf8(&line[7..15]).ok()?;
        let mut parts = hms.split(':').map(|p| p.parse::<u32>().ok());
        let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
        let now = Utc::now();
        let at = |year: i32| {
            NaiveDate::from_ymd_opt(year, month, day)
                .and_then(|d| d.and_hms_opt(h, m, s))
                .and_then(|t| Utc.from_local_datetime(&t).single())
        };
        let time = at(now.year()).and_then(|t| {
            if t > now + chrono::Duration::days(1) {
                at(now.year() - 1)
            } else {
                Some(t)
            }
        });
        return Some((time.map(|t| t.fixed_offset()), 15));
    }
    if line.len() >= 19 && line[4] == b'-' && line[10] == b'T' {
        let end = memchr::memchr(b' ', line)?;
        let text = std::str::from_utf8(&line[..end]).ok()?;
        return Some((timestamp::parse(text), end));
    }
    None
}

/// Replaces rsyslog's `#011` escapes with tabs, into `out`. Returns `text` itself when it has
/// none.
pub fn unescape_tabs<'a>(text: &'a [u8], out: &'a mut Vec<u8>) -> &'a [u8] {
    if memchr::memmem::find(text, b"#011").is_none() {
        return text;
    }
    out.clear();
    let mut rest = text;
    while let Some(at) = memchr::memmem::find(rest, b"#011") {
        out.extend_from_slice(&rest[..at]);
        out.push(b'\t');
        rest = &rest[at + 4..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_header_with_chunk_and_tab_escape() {
        let l = split(b"Nov 26 22:38:11 db1 postgres[8787]: [5-2] #011    id serial PRIMARY KEY,")
            .unwrap();
        assert_eq!(l.pid, 8787);
        assert_eq!(l.chunk, Some((5, 2)));
        let mut buf = Vec::new();
        assert_eq!(
            unescape_tabs(l.text, &mut buf),
            b"\t    id serial PRIMARY KEY,"
        );
        assert!(l.time.is_some());
    }

    #[test]
    fn rfc3339_header_without_sequence_numbers() {
        let l = split(b"2026-11-26T22:38:11.336512+00:00 db1 postgres[8776]: 2026-11-26 22:38:11.336 UTC [8776] LOG:  x").unwrap();
        assert_eq!(l.chunk, None);
        assert_eq!(l.time.unwrap().timestamp_subsec_micros(), 336512);
        assert!(
            l.text
                .starts_with(b"2026-11-26 22:38:11.336 UTC [8776] LOG:")
        );
    }

    #[test]
    fn not_syslog() {
        assert!(split(b"2026-11-26 22:38:11.336 UTC [8776] LOG:  x").is_none());
        assert!(split(b"Nov 26 22:38:11 host no pid here").is_none());
        let mut buf = Vec::new();
        assert_eq!(unescape_tabs(b"plain", &mut buf), b"plain");
    }
}
