//! Heroku's router lines, the proxy of an app on Heroku (devcenter.heroku.com/articles/
//! error-codes): `2017-08-29T21:16:13.878824+00:00 heroku[router]: at=error code=H12
//! desc="Request timeout" method=GET path="/x/" host=... dyno=web.1 connect=0ms
//! service=30000ms status=503 bytes=0 protocol=http`. `at=info` lines are every request with
//! its time (`service`); `H12` is the router giving up after 30 s while the dyno keeps running
//! the request; `H13` is the dyno closing the connection without answering (a worker killed
//! under its request); `H18` the same after part of a response.

use chrono::{DateTime, FixedOffset};

/// One router line.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterLine<'a> {
    pub time: Option<DateTime<FixedOffset>>,
    /// `H12`, `H13`, `H18`, ... (`None` for `at=info`).
    pub code: Option<&'a str>,
    pub method: &'a str,
    /// The path without its query string.
    pub path: &'a str,
    pub status: Option<u16>,
    /// `service=30000ms`, in seconds.
    pub seconds: Option<f64>,
}

/// The value of `key=` in a logfmt line (quoted or bare).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = line[from..].find(key) {
        let at = from + at;
        from = at + key.len();
        if at > 0 && !line.as_bytes()[at - 1].is_ascii_whitespace() {
            continue;
        }
        let rest = &line[at + key.len()..];
        return Some(match rest.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or(q),
            None => rest.split_ascii_whitespace().next().unwrap_or(""),
        });
    }
    None
}

/// True when the line is a router line (cheap: the marker or `at=... method=... path=`).
pub fn is_router_line(line: &str) -> bool {
    line.contains("heroku[router]:")
        || (line.starts_with("at=") && line.contains(" method=") && line.contains(" path="))
}

/// Reads one router line; `None` when it is not one.
pub fn parse_line(line: &str) -> Option<RouterLine<'_>> {
    if !is_router_line(line) {
        return None;
    }
    let body_at = line.find("heroku[router]:").map_or(0, |i| i + 15);
    let body = &line[body_at..];
    let method = field(body, "method=")?;
    let target = field(body, "path=")?;
    let time = line[..body_at]
        .split_ascii_whitespace()
        .next()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let ms = |v: &str| {
        v.strip_suffix("ms")
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    Some(RouterLine {
        time,
        code: field(body, "code="),
        method: crate::parse::cap(method, 16),
        path: crate::parse::cap(target.split('?').next().unwrap_or(target), 300),
        status: field(body, "status=").and_then(|s| s.parse().ok()),
        seconds: field(body, "service=").and_then(ms).map(|m| m / 1000.0),
    })
}

/// True when most of the first lines are router lines.
pub fn looks_like_router_log(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).take(50).collect();
    let ours = lines.iter().filter(|l| parse_line(l).is_some()).count();
    !lines.is_empty() && ours * 2 > lines.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_h12_h13_and_info_lines() {
        // github.com/Forum-Informationsfreiheit/offenewahlen_api/issues/173
        let h12 = parse_line("2017-08-29T21:16:13.878824+00:00 heroku[router]: at=error code=H12 desc=\"Request timeout\" method=GET path=\"/de/api/result/nrw13/\" host=nrw17-staging.offenewahlen.at request_id=3239f1eb-db5c-4516-bf8d-b641d77337eb fwd=\"85.236.242.92\" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=http").unwrap();
        assert_eq!(h12.code, Some("H12"));
        assert_eq!(h12.method, "GET");
        assert_eq!(h12.path, "/de/api/result/nrw13/");
        assert_eq!((h12.status, h12.seconds), (Some(503), Some(30.0)));
        assert_eq!(
            h12.time.unwrap().to_rfc3339(),
            "2017-08-29T21:16:13.878824+00:00"
        );
        // An unquoted path with a query string (rails-girls-summer-of-code/rgsoc-teams#49).
        let bare = parse_line("2013-08-27T16:10:37.244807+00:00 heroku[router]: at=error code=H12 desc=\"Request timeout\" method=GET path=/users?sort=&direction=&role= host=teams.railsgirlssummerofcode.org fwd=\"xxx.xxx.xxx.xxx\" dyno=web.1 connect=65ms service=30008ms status=503 bytes=0").unwrap();
        assert_eq!(bare.path, "/users");
        assert_eq!(bare.seconds, Some(30.008));
        let info = parse_line("2019-05-10T18:41:06.847732+00:00 heroku[router]: at=info method=GET path=\"/?request_thread=1\" host=ruby-h13.herokuapp.com request_id=d2f9b0fe-2250-47d5-8aea-84d3ecd79ae7 fwd=\"<ip>\" dyno=web.1 connect=1ms service=2ms status=200 bytes=104 protocol=https").unwrap();
        assert_eq!((info.code, info.status), (None, Some(200)));
        assert!(parse_line("2019-05-10T18:41:06.848018+00:00 app[web.1]: [4] - Gracefully shutting down workers...").is_none());
    }
}
