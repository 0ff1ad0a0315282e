//! `wtdiag live`'s sources: a running Gunicorn seen through the external py-spy binary and
//! /proc. [`target`] finds the master and its workers, [`pyspy`] runs one dump, [`dump`] parses
//! it, [`sampler`] repeats dumps of every worker in parallel, [`profile`] regroups a worker's
//! samples per thread (streaks, hot frames), [`procfs`] reads memory, heartbeats and sockets,
//! [`gunicorn_config`] the master's timeout, [`pg_activity`] PostgreSQL's view of a backend and
//! [`source`] the application's lines of code; [`trust`] says what may be run and read when
//! wtdiag has more rights than its target. Nothing here decides a cause: that is
//! `analyze::live`.

pub mod dump;
pub mod gunicorn_config;
pub mod pg_activity;
pub mod procfs;
pub mod profile;
pub mod pyspy;
pub mod sampler;
pub mod source;
pub mod target;
pub mod trust;

use std::time::Duration;

/// Parses `10s`, `500ms`, `1m`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    let seconds = value * scale;
    (seconds.is_finite() && seconds > 0.0 && seconds < 86_400.0)
        .then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
