//! nginx's error log, the proxy's side of a worker timeout (ngx_http_upstream.c):
//! `upstream prematurely closed connection while reading response header from upstream` (or
//! `recv() failed (104: Connection reset by peer)`) is a worker that died under a request,
//! and names the request; `upstream timed out (110: Connection timed out) while reading
//! response header from upstream` is nginx giving up first (`proxy_read_timeout`), a 504 while
//! the worker keeps running. Lines look like
//! `2026/12/02 11:38:55 [error] 469#469: *5 MESSAGE, client: 127.0.0.1, server: , request:
//! "GET /native HTTP/1.1", upstream: "http://127.0.0.1:47757/native", host: "..."`; the time
//! is the server's local time, with no zone.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};

/// What an nginx error line says about an upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamEnd {
    /// The worker closed the connection without answering: it died.
    Closed,
    /// nginx stopped waiting (`proxy_read_timeout`) and answered 504.
    TimedOut,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NginxUpstream {
    pub end: UpstreamEnd,
    pub time: Option<DateTime<FixedOffset>>,
    /// `GET /native` (method and target, without the protocol).
    pub request: Option<String>,
}

fn naive_time(line: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(line.get(..19)?, "%Y/%m/%d %H:%M:%S").ok()
}

/// True when most of the first lines are nginx error-log lines.
pub fn looks_like_error_log(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).take(50).collect();
    let ours = lines
        .iter()
        .filter(|l| naive_time(l).is_some() && l.get(19..21) == Some(" ["))
        .count();
    !lines.is_empty() && ours * 2 > lines.len()
}

/// The upstream outcome a line reports, if it is one of the two above.
pub fn parse_line(line: &str, offset: FixedOffset) -> Option<NginxUpstream> {
    let naive = naive_time(line)?;
    let end = if line.contains("upstream prematurely closed connection")
        || (line.contains("(104: Connection reset by peer)") && line.contains("from upstream"))
    {
        UpstreamEnd::Closed
    } else if line.contains("upstream timed out (110: Connection timed out)") {
        UpstreamEnd::TimedOut
    } else {
        return None;
    };
    let request = line
        .split_once(", request: \"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(r, _)| {
            r.rsplit_once(" HTTP/")
                .map_or(r, |(req, _)| req)
                .chars()
                .take(300)
                .collect()
        });
    Some(NginxUpstream {
        end,
        time: offset.from_local_datetime(&naive).single(),
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_upstream_ends_and_the_request() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let closed = "2026/12/02 11:38:55 [error] 469#469: *5 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: \"GET /native HTTP/1.1\", upstream: \"http://127.0.0.1:47757/native\", host: \"127.0.0.1:56263\"";
        let u = parse_line(closed, utc).unwrap();
        assert_eq!(u.end, UpstreamEnd::Closed);
        assert_eq!(u.request.as_deref(), Some("GET /native"));
        assert_eq!(u.time.unwrap().to_rfc3339(), "2026-12-02T11:38:55+00:00");
        let timed = "2026/12/02 11:37:12 [error] 28816#28816: *3 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: , request: \"GET /sleep?s=20 HTTP/1.1\", upstream: \"http://127.0.0.1:42955/sleep?s=20\", host: \"127.0.0.1:56573\"";
        assert_eq!(parse_line(timed, utc).unwrap().end, UpstreamEnd::TimedOut);
        assert!(
            parse_line(
                "2026/12/02 11:37:12 [notice] 1#1: signal process started",
                utc
            )
            .is_none()
        );
        assert!(looks_like_error_log(closed.as_bytes()));
        assert!(!looks_like_error_log(
            b"[2026-12-02 11:31:46 +0000] [1] [INFO] Starting gunicorn 27.0.1\n"
        ));
    }
}
