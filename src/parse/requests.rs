//! One request as any access-style log tells it: nginx's and Gunicorn's access logs
//! ([`access`]) and Heroku's router ([`heroku`]), in one shape for the joins.

use chrono::{DateTime, FixedOffset};

use crate::parse::nginx::UpstreamEnd;
use crate::parse::{access, heroku};

/// Who wrote the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A reverse proxy or router: what the client saw.
    Proxy,
    /// Gunicorn's access log (`%(p)s`).
    Gunicorn,
    /// The combined shape, without a field that says whose.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine<'a> {
    pub time: Option<DateTime<FixedOffset>>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: Option<u16>,
    pub seconds: Option<f64>,
    pub writer: Writer,
    /// The proxy's side of a request it did not get an answer for: Heroku's H12 (it gave up)
    /// or H13/H18 (the dyno closed the connection).
    pub proxy_end: Option<UpstreamEnd>,
}

/// Reads a line of any access-style log.
pub fn parse_line(text: &str) -> Option<RequestLine<'_>> {
    if let Some(a) = access::parse_line(text) {
        let writer = if a.upstream_fields {
            Writer::Proxy
        } else if a.pid.is_some() {
            Writer::Gunicorn
        } else {
            Writer::Unknown
        };
        return Some(RequestLine {
            time: Some(a.time),
            method: a.method,
            path: a.path,
            status: Some(a.status),
            seconds: a.seconds,
            writer,
            proxy_end: None,
        });
    }
    let r = heroku::parse_line(text)?;
    let proxy_end = match r.code {
        Some("H12") => Some(UpstreamEnd::TimedOut),
        Some("H13" | "H18") => Some(UpstreamEnd::Closed),
        _ => None,
    };
    Some(RequestLine {
        time: r.time,
        method: r.method,
        path: r.path,
        status: r.status,
        seconds: r.seconds,
        writer: Writer::Proxy,
        proxy_end,
    })
}

/// True when some of the first lines are request lines (a log that mixes them with others,
/// as `heroku logs` or a container's output does).
pub fn some_in(head: &[u8]) -> bool {
    String::from_utf8_lossy(head)
        .lines()
        .take(200)
        .any(|l| parse_line(l).is_some())
}
