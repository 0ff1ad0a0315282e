//! Gunicorn error-log parser. Knows the default record format
//! `[%Y-%m-%d %H:%M:%S %z] [PID] [LEVEL] message` (after any `docker logs -t` or journald
//! prefix) and the arbiter's and workers' wordings of every release from 19.9 to today, and
//! turns them into typed events. Lines of other loggers are passed over; tracebacks after
//! `Error handling request` are read into the request's abort event.

use std::sync::{Arc, LazyLock};

use memchr::{memchr, memmem};

use crate::input::{Line, decode};
use crate::parse::number::{leading_u32, parse_u32};
use crate::parse::skips::{self, Skips};
use crate::parse::timestamp;
use crate::parse::traceback::{self, TracebackBuilder};
use crate::report::{Attribution, Cause, Event, EventDetail, Origin, Source};

/// A record header found in a line.
struct Header<'a> {
    /// The time text (`2026-11-26 22:49:00 +0000`); `None` when the record has none.
    timestamp: Option<&'a [u8]>,
    /// The process that logged the record, when the line says.
    pid: Option<u32>,
    level: &'a [u8],
    message: &'a [u8],
    /// Where the record starts in the line: what is before it is a container, journald or
    /// syslog prefix that its continuation lines carry too.
    start: usize,
}

/// Words at least one of which every line that can make an event holds (every wording
/// `classify` reads contains one): `Worker`/`worker`/`WORKER` and the four others.
const MATTERS: [&str; 6] = [
    "orker",
    "ORKER",
    "Starting gunicorn",
    "Error handling",
    "App failed",
    "Reason: ",
];

/// True when a line may be a record `classify` makes an event of.
fn may_matter(line: &[u8]) -> bool {
    static SEARCHER: std::sync::LazyLock<aho_corasick::packed::Searcher> =
        std::sync::LazyLock::new(|| {
            aho_corasick::packed::Searcher::new(MATTERS).expect("a packed searcher for 6 words")
        });
    SEARCHER.find(line).is_some()
}

/// How far into a line a prefix (docker, journald, syslog) may push the `[` of the header.
const MAX_PREFIX: usize = 160;
/// How far into a line a message is looked for when the line has no standard header.
const MAX_LOOSE_PREFIX: usize = 240;
/// Continuation lines read into one traceback at most; the rest are counted, not kept.
const MAX_TRACEBACK_LINES: u32 = 20_000;
/// Bytes of a line kept as evidence text.
pub const MAX_EVIDENCE: usize = 400;

/// The standard record `[%Y-%m-%d %H:%M:%S %z] [PID] [LEVEL] message` (Gunicorn's default
/// `access_log_format`-independent error-log format, glogging.py `CONFIG_DEFAULTS`), after any
/// prefix.
fn header(line: &[u8]) -> Option<Header<'_>> {
    let start = if line.first() == Some(&b'[') {
        0
    } else {
        let window = &line[..line.len().min(MAX_PREFIX)];
        let mut from = 0;
        loop {
            let at = from + memchr(b'[', &window[from..])?;
            if window.get(at + 1).is_some_and(u8::is_ascii_digit)
                && window.get(at + 5) == Some(&b'-')
            {
                break at;
            }
            from = at + 1;
        }
    };
    let rest = &line[start + 1..];
    let close = memchr(b']', rest)?;
    let timestamp = &rest[..close];
    let rest = rest[close + 1..].strip_prefix(b" [")?;
    let close = memchr(b']', rest)?;
    let pid = parse_u32(&rest[..close])?;
    let rest = rest[close + 1..].strip_prefix(b" [")?;
    let close = memchr(b']', rest)?;
    let level = &rest[..close];
    let message = rest[close + 1..]
        .strip_prefix(b" ")
        .unwrap_or(&rest[close + 1..]);
    Some(Header {
        timestamp: Some(timestamp),
        pid: Some(pid),
        level,
        message,
        start,
    })
}

/// The start of every message a record can be read for, as Gunicorn words it (WORDINGS.md).
const MESSAGE_STARTS: &[&[u8]] = &[
    b"WORKER TIMEOUT (pid:",
    b"DIRTY WORKER TIMEOUT",
    b"Worker (pid:",
    b"Worker with pid ",
    b"Booting worker with pid: ",
    b"Worker exiting (pid: ",
    b"Error handling request",
    b"Starting gunicorn ",
    b"Exception in worker process",
    b"Dirty worker (pid:",
];

const LEVELS: &[&[u8]] = &[b"CRITICAL", b"ERROR", b"WARNING", b"INFO", b"DEBUG"];

/// Any other shape a Gunicorn record is pasted or shipped in: no timestamp
/// (`[1] [CRITICAL] WORKER TIMEOUT (pid:13)`), the pre-19 `2013-06-06 22:24:29 [26219] [LEVEL]`,
/// `logconfig`/`dictConfig` formats that print the logger name and the level elsewhere
/// (`[ERROR] gunicorn.error: …`, `CRITICAL [gunicorn.error] …`, `[ERROR] 2024-05-10
/// 10:15:49,532 gunicorn.error: …`), the bare message, and lines whose header a shipper mangled
/// (`Error: 1-19 00:48:32 +0000] [2973] [ERROR] Worker …`). The message is found by its own
/// wording; only text that ends a header (`]`, `:` or a level name) may come before it.
fn loose_header(line: &[u8]) -> Option<Header<'_>> {
    // A message starts the line or follows `] ` or `: ` (the end of a header, a logger name
    // or a shipper's prefix); most lines (access lines, other loggers) have no such place
    // where a Gunicorn wording starts, and are rejected after one memchr2 pass.
    let window = &line[..line.len().min(MAX_LOOSE_PREFIX)];
    let starts_message = |at: usize| {
        matches!(line.get(at), Some(b'W' | b'D' | b'B' | b'E' | b'S'))
            && MESSAGE_STARTS.iter().any(|m| line[at..].starts_with(m))
    };
    let at = if starts_message(0) {
        0
    } else {
        memchr::memchr2_iter(b']', b':', window)
            .map(|p| p + 2)
            .find(|&at| line.get(at - 1) == Some(&b' ') && starts_message(at))?
    };
    let before = line[..at].trim_ascii_end();
    // The record's pid: the nearest `[digits]` before the message.
    let mut pid = None;
    let mut end = before.len();
    while let Some(close) = before[..end].iter().rposition(|&b| b == b']') {
        let Some(open) = before[..close].iter().rposition(|&b| b == b'[') else {
            break;
        };
        if let Some(p) = parse_u32(&before[open + 1..close]) {
            pid = Some(p);
            break;
        }
        end = open;
    }
    let level = LEVELS
        .iter()
        .find(|l| memmem::find(before, l).is_some())
        .copied()
        .unwrap_or(b"");
    // The first timestamp at the start of a word before the message.
    let timestamp = (0..before.len().saturating_sub(18)).find_map(|i| {
        let word_start = i == 0 || !before[i - 1].is_ascii_alphanumeric();
        if !word_start || !before[i].is_ascii_digit() {
            return None;
        }
        let (_, used) = timestamp::parse_prefix(&before[i..])?;
        Some(&before[i..i + used])
    });
    Some(Header {
        timestamp,
        pid,
        level,
        message: &line[at..],
        start: 0,
    })
}

fn leading_i32(b: &[u8]) -> Option<i32> {
    match b.first() {
        Some(b'-') => leading_u32(&b[1..]).map(|v| -(v as i32)),
        _ => leading_u32(b).map(|v| v as i32),
    }
}

/// The text of a line after a `docker logs -t` prefix (`2026-11-26T22:49:00.000423456Z `) or a
/// journald one (`2026-11-26T22:49:00+0000 host gunicorn[6391]: `); the line itself when it has
/// neither.
fn strip_line_prefix(line: &[u8]) -> &[u8] {
    let Some((_, used)) = timestamp::parse_prefix(line) else {
        return line;
    };
    let rest = line[used..].strip_prefix(b" ").unwrap_or(&line[used..]);
    let window = &rest[..rest.len().min(MAX_PREFIX)];
    match memmem::find(window, b"]: ") {
        // `host ident[pid]: ` has exactly one space before the ident.
        Some(at) if window[..at].iter().filter(|&&b| b == b' ').count() == 1 => &rest[at + 3..],
        _ => rest,
    }
}

/// Linux signal numbers to names, for 20.x's `terminated due to signal N`.
pub fn signal_name(n: u32) -> String {
    let name = match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {n}"),
    };
    name.to_string()
}

/// An event whose record goes on in the following lines (a traceback).
struct PendingTraceback {
    event: Event,
    builder: TracebackBuilder,
    lines: u32,
}

/// Streaming parser of one Gunicorn error log: lines in, events out through a sink.
pub struct GunicornLog {
    path: Arc<str>,
    /// Set on every event: the file, or the pod/host/container of a multi-origin stream.
    origin: Origin,
    version: Option<String>,
    worker_class: Option<String>,
    skips: Skips,
    lossy_lines: u64,
    records: u64,
    pending: Option<PendingTraceback>,
    /// (pid, code, line) of the last `exited with code` record, to count 21–23's double line once.
    last_exit: Option<(u32, i32, u64)>,
    /// What came before the last record in its line (a docker compose `web-1  | `, k9s `│ `,
    /// journald, syslog or `docker logs -t` prefix): its continuation lines carry the same
    /// prefix, which is stripped before reading them; lines with another prefix are another
    /// container's.
    prefix: Option<Box<[u8]>>,
}

/// What one log gave besides its events.
pub struct ParsedGunicornLog {
    pub version: Option<String>,
    /// The last `Using worker: CLASS` (`sync`, `gthread`, `gevent`, a dotted class path).
    pub worker_class: Option<String>,
    pub skips: Skips,
    pub lossy_lines: u64,
    /// Lines that were Gunicorn records (not other loggers, not traceback text); after the
    /// first, only those that can make an event are counted (see `GunicornLog::push`), so this
    /// says whether the input is a Gunicorn log, not how many records it holds.
    pub records: u64,
}

impl GunicornLog {
    pub fn new(path: &str) -> GunicornLog {
        let path: Arc<str> = Arc::from(path);
        GunicornLog::with_origin(path.clone(), Origin::file(&path))
    }

    /// A parser for the lines of one origin of a multi-origin stream.
    pub fn with_origin(path: Arc<str>, origin: Origin) -> GunicornLog {
        GunicornLog {
            path,
            origin,
            version: None,
            worker_class: None,
            skips: Skips::default(),
            lossy_lines: 0,
            records: 0,
            pending: None,
            last_exit: None,
            prefix: None,
        }
    }

    /// Reads one line; the events it completes go to `sink`, in log order.
    pub fn push(&mut self, line: Line<'_>, sink: &mut impl FnMut(Event)) {
        if line.overlong.is_some() {
            self.skips.record(skips::OVERLONG, line.number);
            return;
        }
        // Most lines of a busy server's log are other records and other loggers' lines. Once
        // the log has shown a record, and while no traceback is being read, a line that holds
        // none of the words any event is read from can change nothing: it is passed over after
        // one SIMD scan, without reading its header.
        if self.records > 0 && self.pending.is_none() && !may_matter(line.bytes) {
            return;
        }
        let Some(h) = header(line.bytes).or_else(|| {
            // Traceback lines (indented, after the record's prefix) are never records: they
            // skip the search for a message.
            let body = self
                .prefix
                .as_deref()
                .and_then(|p| line.bytes.strip_prefix(p))
                .unwrap_or(line.bytes);
            if matches!(body.first(), Some(b' ' | b'\t')) {
                return None;
            }
            loose_header(line.bytes)
        }) else {
            self.continuation(line);
            return;
        };
        self.records += 1;
        self.finish_traceback(sink);
        self.prefix = (h.start > 0).then(|| line.bytes[..h.start].into());
        let Some(detail) = self.classify(&h, line.number) else {
            return;
        };
        // A record without a readable time is still an event: it is ordered by its position.
        let time = h.timestamp.and_then(|ts| {
            let (ts, lossy) = decode(ts);
            if lossy {
                self.lossy_lines += 1;
            }
            timestamp::parse(&ts)
        });
        let (pid, detail) = detail;
        let wants_traceback = matches!(
            detail,
            EventDetail::RequestAbort { .. } | EventDetail::BootFailure { .. }
        );
        let event = Event {
            detail,
            pid: pid.or(h.pid),
            time,
            source: Source {
                path: self.path.clone(),
                line: line.number,
            },
            origin: self.origin.clone(),
            text: decode(&line.bytes[..line.bytes.len().min(MAX_EVIDENCE)])
                .0
                .into_owned(),
        };
        if wants_traceback {
            self.pending = Some(PendingTraceback {
                event,
                builder: TracebackBuilder::default(),
                lines: 0,
            });
        } else {
            sink(event);
        }
    }

    /// The event a record's message stands for, if any, with the pid it is about when that is
    /// not the record's own pid.
    fn classify(&mut self, h: &Header<'_>, line: u64) -> Option<(Option<u32>, EventDetail)> {
        let m = h.message;
        let level = h.level;
        // Cheap rejection: every message that matters starts with one of these letters.
        if !matches!(
            m.first(),
            Some(b'W' | b'D' | b'B' | b'S' | b'E' | b'A' | b'R' | b'U')
        ) {
            return None;
        }
        if let Some(rest) = m.strip_prefix(b"WORKER TIMEOUT (pid:") {
            return Some((leading_u32(rest), timeout(false)));
        }
        if let Some(rest) = m.strip_prefix(b"DIRTY WORKER TIMEOUT") {
            let pid = memmem::find(rest, b"pid")
                .and_then(|at| {
                    rest[at + 3..]
                        .iter()
                        .position(u8::is_ascii_digit)
                        .map(|d| at + 3 + d)
                })
                .and_then(|at| leading_u32(&rest[at..]));
            return Some((pid, timeout(true)));
        }
        if let Some(rest) = m.strip_prefix(b"Worker (pid:") {
            let pid = leading_u32(rest)?;
            let after = &rest[memchr(b')', rest)? + 1..];
            if let Some(sig) = after.strip_prefix(b" was sent ") {
                let end = memchr(b'!', sig).unwrap_or(sig.len());
                let signal = decode(&sig[..end]).0.into_owned();
                return Some((Some(pid), killed(signal)));
            }
            if let Some(code) = after.strip_prefix(b" exited with code ") {
                let code = leading_i32(code)?;
                let duplicate = self
                    .last_exit
                    .is_some_and(|(p, c, l)| p == pid && c == code && line <= l + 2);
                self.last_exit = Some((pid, code, line));
                if duplicate {
                    return None;
                }
                return Some((
                    Some(pid),
                    EventDetail::WorkerExit {
                        exit_code: Some(code),
                    },
                ));
            }
            return None;
        }
        if let Some(rest) = m.strip_prefix(b"Dirty worker (pid:") {
            // 25.0+: the dirty arbiter's `Dirty worker (pid:N) killed by signal S`.
            let pid = leading_u32(rest)?;
            let at = memmem::find(rest, b"killed by signal ")?;
            let sig = decode(&rest[at + b"killed by signal ".len()..])
                .0
                .trim()
                .to_string();
            let signal = sig.parse().map(signal_name).unwrap_or(sig);
            return Some((Some(pid), killed(signal)));
        }
        if let Some(rest) = m.strip_prefix(b"Worker with pid ") {
            let pid = leading_u32(rest)?;
            let at = memmem::find(rest, b"due to signal ")?;
            let n = leading_u32(&rest[at + b"due to signal ".len()..])?;
            return Some((Some(pid), killed(signal_name(n))));
        }
        if let Some(rest) = m.strip_prefix(b"Booting worker with pid: ") {
            return Some((leading_u32(rest), EventDetail::WorkerBoot));
        }
        if let Some(rest) = m.strip_prefix(b"Worker exiting (pid: ") {
            return Some((
                leading_u32(rest),
                EventDetail::WorkerExit { exit_code: None },
            ));
        }
        if let Some(rest) = m.strip_prefix(b"Using worker: ") {
            // arbiter.py `start`: `self.log.info("Using worker: %s", self.cfg.worker_class_str)`.
            let class = decode(rest).0.trim().to_string();
            if !class.is_empty() && class.len() <= 200 {
                self.worker_class = Some(class);
            }
            return None;
        }
        if let Some(rest) = m.strip_prefix(b"Starting gunicorn ") {
            let version = decode(rest).0.trim().to_string();
            self.version = Some(version.clone());
            return Some((None, EventDetail::GunicornStart { version }));
        }
        if let Some(rest) = m.strip_prefix(b"Error handling request") {
            let request = decode(rest).0.trim().to_string();
            return Some((
                None,
                EventDetail::RequestAbort {
                    exception: None,
                    attribution: Arc::new(if request == "(no URI read)" {
                        // 22+: the worker was aborted before the client sent a request line
                        // (workers/base.py `handle_error`, `hasattr(req, "uri")` false).
                        Attribution {
                            cause: Cause::SlowClient,
                            reason: "waiting for a client to send its request (no URI read): \
                                     a connection opened and left silent"
                                .into(),
                            ..Attribution::default()
                        }
                    } else {
                        Attribution {
                            request: (!request.is_empty()).then_some(request),
                            ..Attribution::default()
                        }
                    }),
                    traceback: String::new(),
                },
            ));
        }
        let boot_failure = m.starts_with(b"Exception in worker process")
            || m.starts_with(b"Worker failed to boot")
            || m.starts_with(b"App failed to load")
            || (m.starts_with(b"Reason: ") && level != b"DEBUG");
        if boot_failure {
            let message = super::cap(decode(m).0.trim(), traceback::MAX_SHOWN).to_string();
            return Some((None, EventDetail::BootFailure { message }));
        }
        None
    }

    fn continuation(&mut self, line: Line<'_>) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        p.lines += 1;
        if p.lines > MAX_TRACEBACK_LINES {
            self.skips
                .record("traceback longer than 20000 lines", line.number);
            return;
        }
        let text = match self.prefix.as_deref() {
            None => line.bytes,
            Some(prefix) => match line.bytes.strip_prefix(prefix) {
                Some(rest) => rest,
                None => {
                    let stripped = if prefix.ends_with(b"]: ") {
                        // journald/syslog `… ident[pid]: `: the time and pid change by line.
                        let window = &line.bytes[..line.bytes.len().min(MAX_PREFIX)];
                        memmem::find(window, b"]: ").map_or(line.bytes, |at| &line.bytes[at + 3..])
                    } else {
                        strip_line_prefix(line.bytes)
                    };
                    if stripped.len() == line.bytes.len() {
                        // Another container's line, or no prefix where the record had one.
                        return;
                    }
                    stripped
                }
            },
        };
        p.builder.push_bytes(text);
    }

    fn finish_traceback(&mut self, sink: &mut impl FnMut(Event)) {
        let Some(PendingTraceback {
            mut event, builder, ..
        }) = self.pending.take()
        else {
            return;
        };
        let (text, lossy) = builder.into_text();
        self.lossy_lines += lossy;
        match &mut event.detail {
            // Read lazily by analysis (`traceback::parse`), which keeps only what it needs.
            EventDetail::RequestAbort { traceback, .. } => *traceback = text,
            EventDetail::BootFailure { message } => {
                if let Some(exc) = traceback::parse(&text).and_then(|tb| tb.exception) {
                    message.push_str(": ");
                    message.push_str(exc);
                }
            }
            _ => {}
        }
        sink(event);
    }

    /// Ends the log: a record still open (a traceback at the end of the file) is emitted.
    pub fn finish(mut self, sink: &mut impl FnMut(Event)) -> ParsedGunicornLog {
        self.finish_traceback(sink);
        ParsedGunicornLog {
            version: self.version,
            worker_class: self.worker_class,
            skips: self.skips,
            lossy_lines: self.lossy_lines,
            records: self.records,
        }
    }
}

/// The attribution of an event not yet analysed: one shared value, no allocation per event.
fn unattributed() -> Arc<Attribution> {
    static UNATTRIBUTED: LazyLock<Arc<Attribution>> = LazyLock::new(Arc::default);
    UNATTRIBUTED.clone()
}

fn timeout(dirty: bool) -> EventDetail {
    EventDetail::WorkerTimeout {
        dirty,
        attribution: unattributed(),
    }
}

fn killed(signal: String) -> EventDetail {
    EventDetail::WorkerKilled {
        signal,
        after_timeout: false,
        attribution: unattributed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Parsed {
        events: Vec<Event>,
    }

    fn parse(text: &str) -> Parsed {
        let mut log = GunicornLog::new("t.log");
        let mut events = Vec::new();
        let mut sink = |e| events.push(e);
        for (i, l) in text.lines().enumerate() {
            let line = Line {
                number: i as u64 + 1,
                bytes: l.as_bytes(),
                overlong: None,
            };
            log.push(line, &mut sink);
        }
        log.finish(&mut sink);
        Parsed { events }
    }

    #[test]
    fn header_after_docker_prefix() {
        let h = header(b"2026-11-26T22:32:47.123456789Z [2026-11-26 22:32:47 +0000] [7] [CRITICAL] WORKER TIMEOUT (pid:9)").unwrap();
        assert_eq!(h.pid, Some(7));
        assert_eq!(h.level, b"CRITICAL");
        assert_eq!(h.message, b"WORKER TIMEOUT (pid:9)");
    }

    #[test]
    fn exited_with_code_twice_counts_once() {
        let log = parse(
            "[2026-11-26 22:32:47 +0000] [7] [ERROR] Worker (pid:9) exited with code 1\n\
             [2026-11-26 22:32:47 +0000] [7] [ERROR] Worker (pid:9) exited with code 1.",
        );
        assert_eq!(log.events.len(), 1);
        assert_eq!(log.events[0].pid, Some(9));
    }

    #[test]
    fn dirty_worker_wordings() {
        let log = parse(
            "[2026-11-26 22:32:47 +0000] [8] [CRITICAL] DIRTY WORKER TIMEOUT (pid:31)\n\
             [2026-11-26 22:32:48 +0000] [8] [WARNING] Dirty worker (pid:31) killed by signal 9",
        );
        assert_eq!(log.events.len(), 2);
        assert!(matches!(
            log.events[0].detail,
            EventDetail::WorkerTimeout { dirty: true, .. }
        ));
        assert_eq!(log.events[0].pid, Some(31));
        match &log.events[1].detail {
            EventDetail::WorkerKilled { signal, .. } => assert_eq!(signal, "SIGKILL"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn old_signal_wording() {
        let log = parse(
            "[2021-01-01 00:00:00 +0000] [7] [WARNING] Worker with pid 12 was terminated due to signal 9",
        );
        match &log.events[0].detail {
            EventDetail::WorkerKilled { signal, .. } => assert_eq!(signal, "SIGKILL"),
            other => panic!("{other:?}"),
        }
    }

    fn kinds(log: &Parsed) -> Vec<(&'static str, Option<u32>, bool)> {
        log.events
            .iter()
            .map(|e| (e.detail.kind(), e.pid, e.time.is_some()))
            .collect()
    }

    #[test]
    fn records_without_timestamp_are_events_without_time() {
        // babybuddy/babybuddy#227
        let log = parse(
            "[1] [CRITICAL] WORKER TIMEOUT (pid:13)\n[13] [INFO] Worker exiting (pid: 13)\n[14] [INFO] Booting worker with pid: 14",
        );
        assert_eq!(
            kinds(&log),
            vec![
                ("worker_timeout", Some(13), false),
                ("worker_exit", Some(13), false),
                ("worker_boot", Some(14), false)
            ]
        );
    }

    #[test]
    fn pre_19_format_without_brackets_or_zone() {
        // sci-wms/sci-wms#108; "6 workers" is not an event
        let log = parse(
            "2015-11-12 17:19:09 [17027] [INFO] 6 workers\n2015-11-12 17:23:50 [17027] [CRITICAL] WORKER TIMEOUT (pid:17033)",
        );
        assert_eq!(kinds(&log), vec![("worker_timeout", Some(17033), true)]);
        assert_eq!(
            log.events[0].time.unwrap().to_rfc3339(),
            "2015-11-12T17:23:50+00:00"
        );
    }

    #[test]
    fn logger_name_and_level_in_other_orders() {
        let log = parse(concat!(
            "[ERROR] gunicorn.error: WORKER TIMEOUT (pid:23475)\n",
            "CRITICAL [gunicorn.error] WORKER TIMEOUT (pid:421)\n",
            "ERROR [gunicorn.error] Worker (pid:421) was sent code 134!\n",
            "[ERROR] 2024-05-10 10:15:49,532 gunicorn.error: Error handling request (no URI read)\n",
        ));
        let k = kinds(&log);
        assert_eq!(k[0], ("worker_timeout", Some(23475), false));
        assert_eq!(k[1], ("worker_timeout", Some(421), false));
        assert_eq!(k[2], ("worker_killed", Some(421), false));
        assert_eq!(k[3].0, "request_abort");
        assert!(k[3].2, "the dictConfig time is read");
    }

    #[test]
    fn bare_and_mangled_messages() {
        let log = parse(concat!(
            "WORKER TIMEOUT (pid:63)\n",
            "Error: 1-19 00:48:32 +0000] [2973] [ERROR] Worker (pid:2977) was sent SIGKILL! Perhaps out of memory?\n",
            "Mar 3 17:08:10 accounts-756c975868-m5cbk accounts CRITICAL +0000] [6] [CRITICAL] WORKER TIMEOUT (pid:213)\n",
        ));
        assert_eq!(
            kinds(&log),
            vec![
                ("worker_timeout", Some(63), false),
                ("worker_killed", Some(2977), false),
                ("worker_timeout", Some(213), false)
            ]
        );
    }

    #[test]
    fn gunicorn_wordings_quoted_in_code_are_not_records() {
        let log = parse(concat!(
            "[2026-11-26 22:32:47 +0000] [9] [ERROR] Error handling request /x\n",
            "Traceback (most recent call last):\n",
            "  File \"/v/gunicorn/arbiter.py\", line 1, in spawn_worker\n",
            "    self.log.info(\"Booting worker with pid: %s\", worker.pid)\n",
            "SystemExit: 1\n",
        ));
        assert_eq!(log.events.len(), 1);
        match &log.events[0].detail {
            EventDetail::RequestAbort { traceback, .. } => {
                assert!(traceback.contains("Booting worker with pid"))
            }
            other => panic!("{other:?}"),
        }
    }

    fn traceback_of(log: &Parsed) -> &str {
        log.events
            .iter()
            .find_map(|e| match &e.detail {
                EventDetail::RequestAbort { traceback, .. } => Some(traceback.as_str()),
                _ => None,
            })
            .expect("an abort")
    }

    #[test]
    fn compose_prefix_keeps_the_traceback_with_its_record() {
        let log = parse(concat!(
            "impulse-1  | [2025-04-03 10:43:31 +0000] [7] [ERROR] Error handling request /x\n",
            "impulse-1  | Traceback (most recent call last):\n",
            "db-1       | LOG:  checkpoint starting: time\n",
            "impulse-1  |   File \"/app/views.py\", line 3, in view\n",
            "impulse-1  | SystemExit: 1\n",
        ));
        let tb = traceback_of(&log);
        assert!(tb.starts_with("Traceback"), "{tb}");
        assert!(tb.contains("  File \"/app/views.py\""), "{tb}");
        assert!(!tb.contains("checkpoint"), "another container's line: {tb}");
    }

    #[test]
    fn syslog_prefix_with_changing_pid_and_time_is_stripped() {
        let log = parse(concat!(
            "Mar 20 18:22:07 deis-03 sh[2692]: [2015-03-20 18:22:07 +0000] [260] [ERROR] Error handling request /x\n",
            "Mar 20 18:22:08 deis-03 sh[2692]: Traceback (most recent call last):\n",
            "Mar 20 18:22:08 deis-03 sh[2692]: SystemExit: 1\n",
        ));
        assert_eq!(
            traceback_of(&log),
            "Traceback (most recent call last):\nSystemExit: 1\n"
        );
    }
}
