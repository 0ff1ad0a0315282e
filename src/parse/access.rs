//! HTTP access logs in the `combined` shape both sides of a deployment write: nginx's
//! `log_format combined` (`$remote_addr - $remote_user [$time_local] "$request" $status
//! $body_bytes_sent "$http_referer" "$http_user_agent"`) and Gunicorn's default
//! `access_log_format` (`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`), each
//! often with fields appended after the user agent: nginx's `$request_time
//! $upstream_response_time $upstream_status`, Gunicorn's `%(L)s` (request time in decimal
//! seconds) and `%(p)s` (`<pid>`). The first decimal number after the user agent is read as the
//! request time in seconds; a `<N>` token as the worker pid. Integer fields (`%(D)s`
//! microseconds, `%(T)s` seconds, a status) cannot be told apart there and are not read as
//! times.

use chrono::{DateTime, FixedOffset};

/// One access-log line.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLine<'a> {
    pub time: DateTime<FixedOffset>,
    pub method: &'a str,
    /// The request target without its query string.
    pub path: &'a str,
    pub status: u16,
    /// The request time in seconds, when a field gives it.
    pub seconds: Option<f64>,
    /// The worker pid (Gunicorn's `%(p)s`).
    pub pid: Option<u32>,
    /// Fields after the user agent that look like nginx's upstream ones (`$upstream_status`):
    /// the line is the proxy's.
    pub upstream_fields: bool,
}

/// `[02/Dec/2026:12:08:15 +0000]`, read by hand: it is on every line of logs that run to
/// gigabytes.
fn bracket_time(s: &str) -> Option<(DateTime<FixedOffset>, &str)> {
    let start = s.find('[')?;
    let end = start + s[start..].find(']')?;
    let inner = &s.as_bytes()[start + 1..end];
    // dd/Mon/yyyy:HH:MM:SS +zzzz
    if inner.len() != 26 || inner[2] != b'/' || inner[6] != b'/' || inner[11] != b':' {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<u32> {
        let mut v = 0u32;
        for &c in &inner[a..b] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = MONTHS.iter().position(|m| &inner[3..6] == *m)? as u32 + 1;
    let date = chrono::NaiveDate::from_ymd_opt(num(7, 11)? as i32, month, num(0, 2)?)?;
    if inner[14] != b':' || inner[17] != b':' || inner[20] != b' ' {
        return None;
    }
    let time = date.and_hms_opt(num(12, 14)?, num(15, 17)?, num(18, 20)?)?;
    let offset = parse_offset(std::str::from_utf8(&inner[21..]).ok()?)?;
    Some((time.and_local_timezone(offset).single()?, &s[end + 1..]))
}

fn parse_offset(z: &str) -> Option<FixedOffset> {
    let b = z.as_bytes();
    if b.len() != 5 || !(b[0] == b'+' || b[0] == b'-') {
        return None;
    }
    let h: i32 = z.get(1..3)?.parse().ok()?;
    let m: i32 = z.get(3..5)?.parse().ok()?;
    let secs = (h * 3600 + m * 60) * if b[0] == b'-' { -1 } else { 1 };
    FixedOffset::east_opt(secs)
}

/// The next `"..."` field (with `\"` escapes, as nginx writes them) and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    let body = s.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some((&body[..i], &body[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Reads one line; `None` when it is not an access-log line.
pub fn parse_line(line: &str) -> Option<AccessLine<'_>> {
    // Only the host and the two identity fields come before the time.
    let head = &line.as_bytes()[..line.len().min(300)];
    let bracket = memchr::memmem::find(head, b" [")?;
    if memchr::memchr_iter(b' ', &head[..bracket]).count() != 2 {
        return None;
    }
    let (time, rest) = bracket_time(&line[bracket..])?;
    let (request, rest) = quoted(rest)?;
    let mut words = request.split(' ');
    let method = words.next()?;
    let target = words.next()?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let rest = rest.trim_start();
    let (status, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let status: u16 = status.parse().ok()?;
    if !(100..=599).contains(&status) {
        return None;
    }
    let rest = rest.trim_start();
    let (_bytes, mut after_agent) = rest.split_once(' ').unwrap_or((rest, ""));
    // The referrer and the user agent, when there.
    for _ in 0..2 {
        if let Some((_, next)) = quoted(after_agent) {
            after_agent = next;
        }
    }
    let mut seconds = None;
    let mut pid = None;
    let mut trailing: Vec<&str> = Vec::new();
    for token in after_agent.split_ascii_whitespace() {
        if let Some(n) = token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            pid = n.parse().ok();
        } else if seconds.is_none() && token.contains('.') {
            seconds = token
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0);
        }
        trailing.push(token);
    }
    // nginx's `$upstream_status` last: a status code or `-`.
    let upstream_fields = trailing.len() >= 3
        && trailing
            .last()
            .is_some_and(|t| *t == "-" || (t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit())));
    let path = target.split('?').next().unwrap_or(target);
    Some(AccessLine {
        time,
        method,
        path: crate::parse::cap(path, 300),
        status,
        seconds,
        pid,
        upstream_fields,
    })
}

/// True when most of the first lines are access-log lines.
pub fn looks_like_access_log(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).take(50).collect();
    let ours = lines.iter().filter(|l| parse_line(l).is_some()).count();
    !lines.is_empty() && ours * 2 > lines.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nginx_lines_with_the_timing_fields() {
        let l = parse_line("127.0.0.1 - - [02/Dec/2026:12:08:19 +0000] \"GET /sleep?s=20 HTTP/1.1\" 500 141 \"-\" \"curl/7.88.1\" 3.961 3.962 500").unwrap();
        assert_eq!(l.method, "GET");
        assert_eq!(l.path, "/sleep");
        assert_eq!(l.status, 500);
        assert_eq!(l.seconds, Some(3.961));
        assert_eq!(l.pid, None);
        assert!(l.upstream_fields);
        assert_eq!(l.time.to_rfc3339(), "2026-12-02T12:08:19+00:00");
    }

    #[test]
    fn reads_gunicorn_lines_default_and_with_time_and_pid() {
        let l = parse_line("127.0.0.1 - - [02/Dec/2026:15:01:02 +0100] \"GET /ok HTTP/1.0\" 200 2 \"-\" \"curl/7.88.1\" 0.012345 <4242>").unwrap();
        assert_eq!(l.seconds, Some(0.012345));
        assert_eq!(l.pid, Some(4242));
        assert!(!l.upstream_fields);
        assert_eq!(l.time.offset().local_minus_utc(), 3600);
        let d = parse_line(
            "10.0.0.1 - - [02/Dec/2026:15:01:02 -0500] \"POST /x HTTP/1.1\" 502 0 \"-\" \"-\"",
        )
        .unwrap();
        assert_eq!((d.status, d.seconds, d.pid), (502, None, None));
    }

    #[test]
    fn rejects_other_logs() {
        assert!(
            parse_line("[2026-12-02 11:31:46 +0000] [1] [INFO] Starting gunicorn 27.0.1").is_none()
        );
        assert!(parse_line("2026/12/02 11:37:12 [error] 1#1: *3 upstream timed out").is_none());
        assert!(!looks_like_access_log(
            b"2026-12-02 15:01:02,345 WARNING wtapp.slow Slow request: /x took 2.21s\n"
        ));
    }
}
