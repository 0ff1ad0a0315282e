//! What a log is, told from its first lines: every input of `wtdiag logs` goes through
//! [`detect`], so a new source is one more kind here plus its parser and its join.

use crate::input::Line;
use crate::parse::gunicorn::GunicornLog;
use crate::parse::pg::PgLogReader;
use crate::parse::{access, applog, heroku, kernel, nginx};

/// The kinds of log `wtdiag logs` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Gunicorn's error log (also the default: it says so when no line is a record).
    Gunicorn,
    /// `dmesg`, `dmesg -T`, `kern.log`, `journalctl -k`.
    Kernel,
    /// nginx's error log.
    NginxError,
    /// An access log in the combined shape (nginx's or Gunicorn's).
    Access,
    /// An application log: slow-request lines, `django.request` errors, request start/end.
    App,
    /// A PostgreSQL server log.
    Postgres,
}

impl LogKind {
    /// `inputs[].format` in JSON.
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Gunicorn => "gunicorn",
            LogKind::Kernel => "kernel",
            LogKind::NginxError => "nginx_error",
            LogKind::Access => "access",
            LogKind::App => "applog",
            LogKind::Postgres => "postgres",
        }
    }
}

fn head_lines(head: &[u8]) -> impl Iterator<Item = Line<'_>> {
    // The last line of the head may be cut: leave it out unless the head is the whole input.
    let complete = head.last() == Some(&b'\n');
    let mut lines: Vec<&[u8]> = head.split(|b| *b == b'\n').collect();
    if !complete && lines.len() > 1 {
        lines.pop();
    }
    lines
        .into_iter()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, bytes)| Line {
            number: i as u64 + 1,
            bytes,
            overlong: None,
        })
}

/// Gunicorn records among the first lines.
fn gunicorn_records(head: &[u8]) -> u64 {
    let mut log = GunicornLog::new("-");
    let mut sink = |_| {};
    for line in head_lines(head) {
        log.push(line, &mut sink);
    }
    log.finish(&mut sink).records
}

/// True when the first lines read as a PostgreSQL log (any of its formats).
fn is_postgres(head: &[u8]) -> bool {
    let mut reader = PgLogReader::new(None);
    let mut sink = |_: &crate::parse::pg::PgEvent<'_>| {};
    let mut lines = 0u64;
    for line in head_lines(head) {
        lines += 1;
        reader.push(line, &mut sink);
    }
    let read = reader.finish(&mut sink);
    read.format.is_some() && read.messages > 0 && read.skips.total() * 2 < lines
}

/// The app-log lines among the first lines.
fn app_lines(head: &[u8]) -> usize {
    head_lines(head)
        .filter(|l| {
            applog::parse_slow(l).is_some()
                || applog::parse_error(l).is_some()
                || applog::parse_line(l).is_some()
        })
        .count()
}

/// What the input whose first bytes are `head` is. Gunicorn's error log wins whenever its
/// first lines hold Gunicorn records, so that a log of several programs stays one.
pub fn detect(head: &[u8]) -> LogKind {
    if kernel::looks_like_kernel_log(head) {
        return LogKind::Kernel;
    }
    if nginx::looks_like_error_log(head) {
        return LogKind::NginxError;
    }
    // Gunicorn's records first: a container's output mixes them with access lines, and
    // `heroku logs` with the router's, which the Gunicorn pass reads too.
    if gunicorn_records(head) > 0 {
        return LogKind::Gunicorn;
    }
    if access::looks_like_access_log(head) || heroku::looks_like_router_log(head) {
        return LogKind::Access;
    }
    if is_postgres(head) {
        return LogKind::Postgres;
    }
    if app_lines(head) > 0 {
        return LogKind::App;
    }
    LogKind::Gunicorn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_each_kind_apart() {
        let gunicorn = b"[2026-12-02 14:30:44 +0000] [8191] [INFO] Starting gunicorn 27.0.1\n\
            [2026-12-02 14:30:44 +0000] [8206] [INFO] Booting worker with pid: 8206\n";
        assert_eq!(detect(gunicorn), LogKind::Gunicorn);
        let pg = b"2026-12-02 14:30:53.338 UTC [8872] postgres@wtapp ERROR:  canceling statement due to statement timeout\n\
            2026-12-02 14:30:53.338 UTC [8872] postgres@wtapp STATEMENT:  SELECT pg_sleep(5)\n";
        assert_eq!(detect(pg), LogKind::Postgres);
        let app = b"2026-12-02 14:30:47,878 WARNING wtapp.slow Slow request: /slowish took 2.20s\n";
        assert_eq!(detect(app), LogKind::App);
        let access = b"127.0.0.1 - - [02/Dec/2026:14:30:45 +0000] \"GET /ok HTTP/1.0\" 200 2 \"-\" \"curl/7.88.1\" 0.100151 <8207>\n";
        assert_eq!(detect(access), LogKind::Access);
        assert_eq!(detect(b"garbage\n"), LogKind::Gunicorn);
    }
}
