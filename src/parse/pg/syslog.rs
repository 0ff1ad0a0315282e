//! syslog (`log_destination = 'syslog'`) as syslog daemons and log drains write it, told apart
//! by the header:
//! * rsyslog's traditional file format, `Nov 26 22:38:11 host postgres[8776]: [3-1] ...`, or
//!   with an RFC 3339 time first;
//! * RFC 5424, `<134>1 2026-11-26T22:38:11.336512+00:00 host postgres 8776 - - [3-1] ...`
//!   (rsyslog's `RSYSLOG_SyslogProtocol23Format`, journald and most shippers forwarding to a
//!   collector), where `<134>` is the priority, not the pid;
//! * Heroku Postgres through logplex: `heroku logs` prints
//!   `2019-03-14T00:22:56+00:00 app[postgres.4882]: [GREEN] [15-1]  sql_error_code = ...`, a
//!   drain receives the RFC 5424 frame `83 <134>1 ... host app postgres.4882 - [GREEN] [15-1] ...`
//!   (octet count first) or `... d.<uuid> app[postgres.4882] [GREEN] ...`; `[GREEN]` is the
//!   database's attachment name.
//!
//! PostgreSQL splits a message at newlines into chunks `[N-1]`, `[N-2]`, ... (and long lines at
//! 900 bytes); the tab that starts a continuation line reaches the file as `#011`. After the
//! header, the text is read as stderr with the same prefix rules.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};

use crate::parse::timestamp;

/// Which header a line had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// `Mmm dd hh:mm:ss host ident[pid]:` or the same with an RFC 3339 time.
    Traditional,
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD`.
    Rfc5424,
    /// Heroku Postgres through logplex (`app[postgres.N]` or `app postgres.N`, with the
    /// attachment name `[GREEN]` before the chunk).
    Heroku,
}

/// What the syslog header said about one line.
#[derive(Debug, Clone, Copy)]
pub struct SyslogLine<'a> {
    /// The sender's pid; None when the header has none (RFC 5424's `-`).
    pub pid: Option<u32>,
    pub time: Option<DateTime<FixedOffset>>,
    /// `[N-M]`: the message number and the chunk in it (1 for the first).
    pub chunk: Option<(u64, u32)>,
    /// The text after the header (and after `[N-M] `), `#011` not yet replaced.
    pub text: &'a [u8],
    pub header: Header,
    /// The program's name (`postgres`, `systemd`; RFC 5424's APP-NAME).
    pub ident: &'a [u8],
    /// A logplex line of another source than Heroku Postgres (`app[web.1]`,
    /// `heroku[router]`, `app heroku-postgres` metrics): not a server message.
    pub other_source: bool,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Splits a syslog line; None when it has no syslog header with an ident and a pid.
pub fn split(line: &[u8]) -> Option<SyslogLine<'_>> {
    let line = strip_octet_count(line);
    if line.first() == Some(&b'<') {
        let close = memchr::memchr(b'>', &line[..line.len().min(6)])?;
        if !line[1..close].iter().all(u8::is_ascii_digit) || close == 1 {
            return None;
        }
        let rest = &line[close + 1..];
        return match rest.strip_prefix(b"1 ") {
            Some(rest) => rfc5424(rest),
            // RFC 3164 on the wire: `<134>Nov 26 22:38:11 host ident[pid]: `
            None => traditional(rest),
        };
    }
    traditional(line)
}

/// A drain's HTTP body frames each message with its length: `83 <134>1 ...`.
fn strip_octet_count(line: &[u8]) -> &[u8] {
    let digits = line
        .iter()
        .take(8)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits > 0 && line.get(digits) == Some(&b' ') && line.get(digits + 1) == Some(&b'<') {
        &line[digits + 1..]
    } else {
        line
    }
}

/// After `<PRI>1 `: `TIMESTAMP HOST APP-NAME PROCID MSGID STRUCTURED-DATA MSG`.
fn rfc5424(rest: &[u8]) -> Option<SyslogLine<'_>> {
    let mut fields = rest.splitn(6, |b| *b == b' ');
    let time_text = fields.next()?;
    let _host = fields.next()?;
    let app = fields.next()?;
    let procid = fields.next()?;
    let _msgid = fields.next()?;
    let after = fields.next().unwrap_or(b"");
    let time = if time_text == b"-" {
        None
    } else {
        timestamp::parse(std::str::from_utf8(time_text).ok()?)
    };
    let (pid, heroku) = proc_id(procid).unwrap_or((None, false));
    let logplex = app == b"app" || app == b"heroku";
    let heroku = heroku && app == b"app";
    // logplex writes no STRUCTURED-DATA: `app postgres.4882 - [GREEN] [15-1] ...` (the
    // attachment name is not structured data)
    let mut text = if logplex {
        after
    } else {
        skip_structured_data(after).unwrap_or(after)
    };
    // a UTF-8 message may start with a byte order mark; rsyslog keeps the space that the
    // local socket's message had after its tag (`- -  [2-1] ...`)
    text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
    text = text.strip_prefix(b" ").unwrap_or(text);
    let mut line = body(
        pid,
        time,
        text,
        if logplex {
            Header::Heroku
        } else {
            Header::Rfc5424
        },
    );
    line.ident = app;
    line.other_source = logplex && !heroku;
    Some(line)
}

/// `postgres.4882` (Heroku's dyno-like name) → 4882, a number → itself, `-` → none; the flag
/// says it was Heroku's form.
fn proc_id(procid: &[u8]) -> Option<(Option<u32>, bool)> {
    if procid == b"-" {
        return Some((None, false));
    }
    if let Some(n) = procid.strip_prefix(b"postgres.") {
        return Some((parse_u32(n), true));
    }
    Some((Some(parse_u32(procid)?), false))
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// STRUCTURED-DATA is `-` or one or more `[id param="value" ...]` (values may hold `\]`).
fn skip_structured_data(sd: &[u8]) -> Option<&[u8]> {
    if sd == b"-" {
        return Some(b"");
    }
    if let Some(rest) = sd.strip_prefix(b"- ") {
        return Some(rest);
    }
    let mut i = 0;
    while sd.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match sd.get(i)? {
                b'\\' => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    Some(
        sd.get(i..)
            .map_or(&b""[..], |r| r.strip_prefix(b" ").unwrap_or(r)),
    )
}

/// `TIME host ident[pid]: `; the host is absent in `heroku logs` output
/// (`TIME app[postgres.4882]: `), and a drain writes `ident[pid] ` without the colon.
fn traditional(line: &[u8]) -> Option<SyslogLine<'_>> {
    let (time, after_time) = header_time(line)?;
    let mut rest = line.get(after_time..)?.strip_prefix(b" ")?;
    let first_space = memchr::memchr(b' ', rest)?;
    // the first word is the host unless it is already `ident[pid]`
    if !rest[..first_space].ends_with(b"]") && !rest[..first_space].ends_with(b"]:") {
        rest = &rest[first_space + 1..];
    }
    let open = memchr::memchr(b'[', &rest[..rest.len().min(64)])?;
    if rest[..open].contains(&b' ') || open == 0 {
        return None;
    }
    let close = open + 1 + memchr::memchr(b']', &rest[open + 1..])?;
    let ident = &rest[..open];
    let logplex = ident == b"app" || ident == b"heroku";
    let (pid, heroku) = match proc_id(&rest[open + 1..close]) {
        Some(p) => p,
        None if logplex => (None, false),
        None => return None,
    };
    let heroku = heroku && ident == b"app";
    let after = &rest[close + 1..];
    let text = after
        .strip_prefix(b": ")
        .or_else(|| after.strip_prefix(b":"))
        .or_else(|| after.strip_prefix(b" "))?;
    let mut line = body(
        pid,
        time,
        text,
        if logplex {
            Header::Heroku
        } else {
            Header::Traditional
        },
    );
    line.ident = ident;
    line.other_source = logplex && !heroku;
    Some(line)
}

/// The message after the header: Heroku's attachment name `[GREEN] `, then the chunk `[N-M] `.
fn body(
    pid: Option<u32>,
    time: Option<DateTime<FixedOffset>>,
    mut text: &[u8],
    header: Header,
) -> SyslogLine<'_> {
    if header == Header::Heroku
        && text.first() == Some(&b'[')
        && let Some(end) = memchr::memchr(b']', &text[..text.len().min(64)])
        && text[1..end]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        && text.get(end + 1) == Some(&b' ')
    {
        text = &text[end + 2..];
    }
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
    // Heroku's log_line_prefix starts with a space: `[15-1]  sql_error_code = ...` (a
    // continuation keeps its tab or its indentation)
    if header == Header::Heroku
        && text.first() == Some(&b' ')
        && !matches!(text.get(1), Some(b' ' | b'\t') | None)
    {
        text = &text[1..];
    }
    SyslogLine {
        pid,
        time,
        chunk,
        text,
        header,
        ident: b"",
        other_source: false,
    }
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
        assert_eq!(l.pid, Some(8787));
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
    fn rfc5424_priority_is_not_the_pid() {
        // fixtures/pg/pg15-k-syslog5424.log (rsyslog's RSYSLOG_SyslogProtocol23Format)
        let l = split(b"<134>1 2026-12-02T14:35:02.953525+00:00 db1 postgres 24033 - -  [2-1] user=,db=,app=,client= LOG:  ending log output to stderr").unwrap();
        assert_eq!(l.header, Header::Rfc5424);
        assert_eq!(l.pid, Some(24033));
        assert_eq!(l.chunk, Some((2, 1)));
        assert_eq!(l.time.unwrap().timestamp_subsec_micros(), 953525);
        assert!(l.text.starts_with(b"user=,db=,app=,client= LOG:"));
        assert!(!l.other_source);
    }

    #[test]
    fn heroku_logplex_lines_in_its_three_shapes() {
        // `heroku logs` (pgBadger's t/fixtures/logplex.gz)
        let l = split(b"2019-03-14T00:22:56+00:00 app[postgres.4882]: [GREEN] [15-1]  sql_error_code = 00000 LOG:  process 4882 still waiting").unwrap();
        assert_eq!(
            (l.header, l.pid, l.chunk),
            (Header::Heroku, Some(4882), Some((15, 1)))
        );
        assert!(l.text.starts_with(b"sql_error_code = 00000 LOG:"));
        let l = split(
            b"2019-03-14T00:23:00+00:00 app[postgres.4849]: [GREEN] [19-3] \tProcess 4821 waits",
        )
        .unwrap();
        assert_eq!(l.text, b"\tProcess 4821 waits");
        // a drain with a host (same fixture)
        let l = split(b"2021-09-07T04:01:27+00:00 d.af28b93f-a129-45a1-87be-3f8a0cb710be app[postgres.5925] [AQUA] [921320-2]         (").unwrap();
        assert_eq!((l.pid, l.chunk), (Some(5925), Some((921320, 2))));
        assert_eq!(l.text, b"        (");
        // a drain's RFC 5424 frame, octet count first (pganalyze collector's test)
        let l = split(b"85 <134>1 2023-06-05T19:33:14+00:00 host app postgres.1105947 - [YELLOW] [12-2] \tSELECT").unwrap();
        assert_eq!(
            (l.header, l.pid, l.chunk),
            (Header::Heroku, Some(1105947), Some((12, 2)))
        );
        assert_eq!(l.text, b"\tSELECT");
        let l = split(b"408 <134>1 2023-06-05T19:35:51+00:00 host app heroku-redis - source=REDIS addon=redis-closed-12345").unwrap();
        assert!(l.other_source);
    }

    #[test]
    fn not_syslog() {
        assert!(split(b"2026-11-26 22:38:11.336 UTC [8776] LOG:  x").is_none());
        assert!(split(b"Nov 26 22:38:11 host no pid here").is_none());
        let mut buf = Vec::new();
        assert_eq!(unescape_tabs(b"plain", &mut buf), b"plain");
    }
}
