//! PostgreSQL server logs → typed [`PgEvent`]s, streaming. [`PgLogReader`] takes lines from
//! [`crate::input`], tells the format from the first lines (stderr with any `log_line_prefix`,
//! csvlog, jsonlog, syslog), assembles multi-line messages and hands each event that matters to
//! a sink. It keeps no events: callers aggregate (`wtdiag pg`) or correlate (`wtdiag logs
//! --pg-log`) as they go. One file per concern: [`prefix`] compiles and guesses
//! `log_line_prefix`; `stderr`, `csvlog`, `jsonlog` and `syslog` assemble messages; `classify`
//! turns a message into an event by the server's wordings.

mod azure;
mod classify;
mod cloud_logging;
mod cnpg;
mod csvlog;
mod event;
mod json_objects;
mod jsonlog;
pub mod prefix;
mod record;
mod severity;
mod sqlstate;
mod stderr;
mod syslog;

use azure::AzureReader;
use classify::Classifier;
use cnpg::{CnpgObject, CnpgReader};
use csvlog::{CsvAssembler, CsvLine};
use json_objects::{JsonLine, JsonObjects};
use jsonlog::JsonAssembler;
use record::Record;
use stderr::{Envelope, LineUse, StderrAssembler};

pub use event::{CancelReason, DeadlockParty, LockState, PgEvent, PgEventKind, StatementPhase};
pub use prefix::{Prefix, PrefixError};
pub use sqlstate::class_name as sqlstate_class_name;

use std::sync::Arc;

use record::TimeCache;

use crate::input::Line;
use crate::parse::skips::{self, Skips};
use crate::parse::zones::{ZoneOverrides, ZoneUse};

/// The server's log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgLogFormat {
    Stderr,
    Csvlog,
    Jsonlog,
    Syslog,
    /// RFC 5424 syslog (`<134>1 2026-... host postgres 1234 - - ...`).
    SyslogRfc5424,
    /// Heroku Postgres through logplex (`heroku logs` or a drain).
    Heroku,
    /// Google Cloud Logging entries (Cloud SQL, AlloyDB): the line in `textPayload`.
    CloudLogging,
    /// CloudNativePG's JSON stdout (`"logger":"postgres"`, the csvlog record in `record`).
    CloudNativePg,
    /// Azure Database for PostgreSQL's diagnostic export (`"category":"PostgreSQLLogs"`).
    Azure,
}

impl PgLogFormat {
    /// As `log_destination` names it.
    pub fn name(self) -> &'static str {
        match self {
            PgLogFormat::Stderr => "stderr",
            PgLogFormat::Csvlog => "csvlog",
            PgLogFormat::Jsonlog => "jsonlog",
            PgLogFormat::Syslog => "syslog",
            PgLogFormat::SyslogRfc5424 => "syslog_rfc5424",
            PgLogFormat::Heroku => "heroku",
            PgLogFormat::CloudLogging => "cloud_logging",
            PgLogFormat::CloudNativePg => "cloudnativepg",
            PgLogFormat::Azure => "azure",
        }
    }
}

/// Reasons lines are skipped, as the report lists them.
pub const SKIP_NO_PREFIX: &str = "line does not start with the log_line_prefix (give --prefix)";
pub const SKIP_ORPHAN: &str = "DETAIL/HINT/STATEMENT or continuation line without its message";
pub const SKIP_NOT_CSV: &str = "not a csvlog record";
pub const SKIP_UNTERMINATED_CSV: &str = "csvlog record with an unterminated quote";
pub const SKIP_NOT_JSON: &str = "not a jsonlog record";
pub const SKIP_NOT_SYSLOG: &str = "not a syslog line";
pub const SKIP_UNKNOWN: &str = "not a PostgreSQL log line";
pub const SKIP_OTHER_PROGRAM: &str = "syslog line of another program than PostgreSQL";
pub const SKIP_OTHER_SOURCE: &str =
    "Heroku log line of another source than Heroku Postgres (router, dyno, metrics)";
pub const SKIP_CNPG_STARTUP: &str =
    "CloudNativePG: a server line from before the logging collector started (not a record)";
pub const SKIP_NOT_ENTRY: &str = "not a JSON log entry of this export";
pub const SKIP_NO_TEXT_PAYLOAD: &str = "Cloud Logging entry without a textPayload";
pub const SKIP_OTHER_LOGGER: &str = "CloudNativePG instance manager record (not a server message)";
pub const SKIP_JSON_TOO_LONG: &str = "JSON object longer than 4 MiB";

const HEROKU_WITHOUT_POSTGRES: &str = "a Heroku log without a Heroku Postgres line \
     (app[postgres.N]); `heroku logs --ps postgres` shows the database's";

/// Lines looked at before the format is decided.
const SNIFF_LINES: usize = 400;
const SNIFF_BYTES: usize = 4 << 20;

enum State {
    Sniffing,
    Stderr(StderrAssembler),
    /// The assembler, the header kind, and the ident PostgreSQL logs under (`postgres`).
    Syslog(StderrAssembler, syslog::Header, Vec<u8>),
    Csv(CsvAssembler),
    Json(JsonAssembler),
    CloudLogging(JsonObjects, StderrAssembler),
    Cnpg(JsonObjects, CnpgReader),
    Azure(JsonObjects, AzureReader),
    Unknown,
}

/// Streaming reader of one PostgreSQL log.
pub struct PgLogReader {
    forced_prefix: Option<Prefix>,
    zones: Arc<ZoneOverrides>,
    /// Set when no prefix read most of the first lines: the best candidates.
    undecided: Option<prefix::Detection>,
    looks_like: Option<&'static str>,
    state: State,
    sniffed: Vec<(u64, Vec<u8>)>,
    sniffed_bytes: usize,
    classifier: Classifier,
    skips: Skips,
    messages: u64,
    scratch: Vec<u8>,
}

/// What reading one log gave, besides its events.
#[derive(Debug)]
pub struct PgLogSummary {
    /// None when no line was a PostgreSQL log line.
    pub format: Option<PgLogFormat>,
    /// The `log_line_prefix` used (given or detected), for stderr and syslog.
    pub prefix: Option<String>,
    /// True when lines can be told apart by backend (`%p`/`%c`, or syslog's pid, or the
    /// structured formats).
    pub has_pid: bool,
    pub skips: Skips,
    pub lossy_lines: u64,
    /// Server messages read (events or not).
    pub messages: u64,
    /// The zone abbreviations the log's times carried and how each was read.
    pub zones: Vec<ZoneUse>,
    /// When the lines look like stderr but no prefix reads most of them: the best candidates
    /// (`log_line_prefix`, lines read) and how many lines they were tried on.
    pub prefix_candidates: Option<(Vec<(String, usize)>, usize)>,
    /// What the first lines looked like when they are no PostgreSQL log (`a Gunicorn error
    /// log`), for the error message; never their text.
    pub looks_like: Option<&'static str>,
}

impl PgLogReader {
    /// `prefix` overrides detection for stderr and syslog.
    pub fn new(prefix: Option<Prefix>) -> PgLogReader {
        PgLogReader::with_zones(prefix, Arc::default())
    }

    /// Like [`Self::new`], with `--pg-tz` overrides for zone abbreviations.
    pub fn with_zones(prefix: Option<Prefix>, zones: Arc<ZoneOverrides>) -> PgLogReader {
        PgLogReader {
            forced_prefix: prefix,
            zones,
            undecided: None,
            looks_like: None,
            state: State::Sniffing,
            sniffed: Vec::new(),
            sniffed_bytes: 0,
            classifier: Classifier::default(),
            skips: Skips::default(),
            messages: 0,
            scratch: Vec::new(),
        }
    }

    /// Reads one line; `sink` gets every event that the line completes.
    pub fn push(&mut self, line: Line<'_>, sink: &mut dyn FnMut(&PgEvent<'_>)) {
        if line.overlong.is_some() {
            self.skips.record(skips::OVERLONG, line.number);
            return;
        }
        if let State::Sniffing = self.state {
            self.sniffed.push((line.number, line.bytes.to_vec()));
            self.sniffed_bytes += line.bytes.len();
            if self.sniffed.len() >= SNIFF_LINES || self.sniffed_bytes >= SNIFF_BYTES {
                self.decide(sink);
            }
            return;
        }
        self.read(line.number, line.bytes, sink);
    }

    /// Ends the input: hands out the messages still open.
    pub fn finish(mut self, sink: &mut dyn FnMut(&PgEvent<'_>)) -> PgLogSummary {
        if let State::Sniffing = self.state {
            self.decide(sink);
        }
        let PgLogReader {
            state,
            undecided,
            looks_like,
            mut classifier,
            mut skips,
            mut messages,
            ..
        } = self;
        let mut emit = |r: &Record| {
            messages += 1;
            if let Some(e) = classifier.classify(r) {
                sink(&e);
            }
        };
        let (format, prefix, has_pid, lossy_lines, zones) = match state {
            State::Stderr(mut a) => {
                a.finish(&mut emit);
                let p = a.prefix();
                (
                    Some(PgLogFormat::Stderr),
                    Some(p.source().to_string()),
                    p.has_pid(),
                    a.lossy_lines,
                    a.times.zones.into_used(),
                )
            }
            State::Syslog(mut a, header, _) => {
                a.finish(&mut emit);
                (
                    Some(match header {
                        syslog::Header::Traditional => PgLogFormat::Syslog,
                        syslog::Header::Rfc5424 => PgLogFormat::SyslogRfc5424,
                        syslog::Header::Heroku => PgLogFormat::Heroku,
                    }),
                    Some(a.prefix().source().to_string()),
                    true,
                    a.lossy_lines,
                    a.times.zones.into_used(),
                )
            }
            State::Csv(mut a) => {
                if a.finish() {
                    skips.record(SKIP_UNTERMINATED_CSV, 0);
                }
                (
                    Some(PgLogFormat::Csvlog),
                    None,
                    true,
                    a.lossy_lines,
                    a.times.zones.into_used(),
                )
            }
            State::Json(a) => (
                Some(PgLogFormat::Jsonlog),
                None,
                true,
                0,
                a.times.zones.into_used(),
            ),
            State::CloudLogging(objects, mut a) => {
                if objects.open() {
                    skips.record(SKIP_NOT_ENTRY, 0);
                }
                a.finish(&mut emit);
                let p = a.prefix();
                (
                    Some(PgLogFormat::CloudLogging),
                    Some(p.source().to_string()),
                    p.has_pid(),
                    a.lossy_lines,
                    a.times.zones.into_used(),
                )
            }
            State::Cnpg(objects, a) => {
                if objects.open() {
                    skips.record(SKIP_NOT_ENTRY, 0);
                }
                (
                    Some(PgLogFormat::CloudNativePg),
                    None,
                    true,
                    0,
                    a.times.zones.into_used(),
                )
            }
            State::Azure(objects, a) => {
                if objects.open() {
                    skips.record(SKIP_NOT_ENTRY, 0);
                }
                (
                    Some(PgLogFormat::Azure),
                    None,
                    true,
                    0,
                    a.times.zones.into_used(),
                )
            }
            State::Unknown | State::Sniffing => (None, None, false, 0, Vec::new()),
        };
        skips.merge(std::mem::take(&mut classifier.skips));
        PgLogSummary {
            format,
            prefix,
            has_pid,
            skips,
            lossy_lines,
            messages,
            zones,
            prefix_candidates: match undecided {
                Some(prefix::Detection::Undecided { candidates, lines }) => {
                    Some((candidates, lines))
                }
                _ => None,
            },
            looks_like,
        }
    }

    /// Chooses the format from the sniffed lines, then reads them.
    fn decide(&mut self, sink: &mut dyn FnMut(&PgEvent<'_>)) {
        let sniffed = std::mem::take(&mut self.sniffed);
        self.state = self.choose(&sniffed);
        for (number, bytes) in &sniffed {
            self.read(*number, bytes, sink);
        }
    }

    fn choose(&mut self, sniffed: &[(u64, Vec<u8>)]) -> State {
        // for the error message, should no line turn out to be a server message
        self.looks_like = looks_like(sniffed.iter().map(|(_, b)| b.as_slice()));
        let state = self.choose_format(sniffed);
        // an export told by its envelope says best what it held
        let export = match &state {
            State::CloudLogging(..) => Some(
                "Google Cloud Logging entries whose textPayload holds no whole server message \
                 (only DETAIL/STATEMENT parts, or another service's lines)",
            ),
            State::Cnpg(..) => Some("CloudNativePG JSON without a record of logger \"postgres\""),
            State::Azure(..) => Some("Azure diagnostic JSON without a PostgreSQLLogs message"),
            State::Syslog(_, syslog::Header::Heroku, _) => Some(HEROKU_WITHOUT_POSTGRES),
            _ => None,
        };
        if export.is_some() {
            self.looks_like = export;
        }
        state
    }

    fn choose_format(&mut self, sniffed: &[(u64, Vec<u8>)]) -> State {
        let lines = || {
            sniffed
                .iter()
                .map(|(_, b)| b.as_slice())
                .filter(|b| !b.trim_ascii().is_empty())
        };
        let Some(first) = lines().next() else {
            return State::Unknown;
        };
        if looks_like_json(first) {
            return self.choose_json(sniffed);
        }
        if let Some(first_syslog) = syslog::split(first) {
            // the ident most lines come under is PostgreSQL's (`syslog_ident`); the others are
            // other programs' (systemd's start and stop lines in the same file)
            let mut idents: Vec<(&[u8], usize)> = Vec::new();
            for s in lines().filter_map(syslog::split) {
                if let Some((_, n)) = idents.iter_mut().find(|(i, _)| *i == s.ident) {
                    *n += 1;
                } else if idents.len() < 16 {
                    idents.push((s.ident, 1));
                }
            }
            let ident = idents
                .iter()
                .max_by_key(|(_, n)| *n)
                .map_or(Vec::new(), |(i, _)| i.to_vec());
            let texts: Vec<Vec<u8>> = lines()
                .filter_map(syslog::split)
                .filter(|s| !s.other_source && s.ident == ident.as_slice())
                .filter(|s| s.chunk.is_none_or(|(_, m)| m == 1))
                .map(|s| {
                    let mut buf = Vec::new();
                    syslog::unescape_tabs(s.text, &mut buf).to_vec()
                })
                .collect();
            let prefix = match self.forced_prefix.clone() {
                Some(p) => Some(p),
                None => self.detected(prefix::detect_or_candidates(
                    texts.iter().map(Vec::as_slice),
                )),
            };
            return match prefix {
                Some(p) => State::Syslog(self.stderr_assembler(p), first_syslog.header, ident),
                None => {
                    if texts.is_empty() && first_syslog.header == syslog::Header::Heroku {
                        self.looks_like = Some(HEROKU_WITHOUT_POSTGRES);
                    }
                    State::Unknown
                }
            };
        }
        // csvlog; its first field quoted by tools that rewrite it (pgBadger's
        // csv_statement_without_duration.log)
        let unquoted = first.strip_prefix(b"\"").unwrap_or(first);
        let quoted = unquoted.len() < first.len();
        if let Some(n) = prefix::timestamp_len(unquoted)
            && unquoted.get(n..n + 1 + usize::from(quoted))
                == Some(if quoted { &b"\","[..] } else { &b","[..] })
        {
            let mut a = CsvAssembler::default();
            a.times = TimeCache::new(self.zones.clone());
            return State::Csv(a);
        }
        let prefix = match self.forced_prefix.clone() {
            Some(p) => Some(p),
            None => self.detected(prefix::detect_or_candidates(lines())),
        };
        match prefix {
            Some(p) => State::Stderr(self.stderr_assembler(p)),
            None => State::Unknown,
        }
    }

    /// JSON: PostgreSQL's own jsonlog, or an export that wraps its lines, told by the keys
    /// of the first objects (one search over the sniffed lines, not a test per line).
    fn choose_json(&mut self, sniffed: &[(u64, Vec<u8>)]) -> State {
        let has = |needle: &[u8]| {
            let finder = memchr::memmem::Finder::new(needle);
            sniffed.iter().any(|(_, b)| finder.find(b).is_some())
        };
        if has(b"\"textPayload\"") {
            let mut objects = JsonObjects::default();
            let mut texts: Vec<Vec<u8>> = Vec::new();
            for (number, bytes) in sniffed {
                if let JsonLine::Object(_) = objects.push(*number, bytes)
                    && let Some(p) = cloud_logging::payload(objects.object())
                {
                    texts.extend(p.text.split('\n').map(|l| l.as_bytes().to_vec()));
                }
            }
            let prefix = match self.forced_prefix.clone() {
                Some(p) => Some(p),
                None => self.detected(prefix::detect_or_candidates(
                    texts
                        .iter()
                        .map(Vec::as_slice)
                        .filter(|l| !l.starts_with(b"\t")),
                )),
            };
            return match prefix {
                Some(p) => State::CloudLogging(JsonObjects::default(), self.stderr_assembler(p)),
                None => State::Unknown,
            };
        }
        // every line of CloudNativePG's instance manager names its pod (`logging_podName`
        // before 1.20)
        if has(b"\"logger\":\"postgres\"")
            || has(b"\"logger\": \"postgres\"")
            || has(b"\"logging_pod")
        {
            let mut a = CnpgReader::default();
            a.times = TimeCache::new(self.zones.clone());
            return State::Cnpg(JsonObjects::default(), a);
        }
        if has(b"\"PostgreSQLLogs\"") {
            let mut a = AzureReader::default();
            a.times = TimeCache::new(self.zones.clone());
            return State::Azure(JsonObjects::default(), a);
        }
        let mut a = JsonAssembler::default();
        a.times = TimeCache::new(self.zones.clone());
        State::Json(a)
    }

    /// The detected prefix, or None with the candidates kept for the report.
    fn detected(&mut self, detection: prefix::Detection) -> Option<Prefix> {
        match detection {
            prefix::Detection::Found(p) => Some(p),
            undecided => {
                self.undecided = Some(undecided);
                None
            }
        }
    }

    fn stderr_assembler(&self, prefix: Prefix) -> StderrAssembler {
        let mut a = StderrAssembler::new(prefix);
        a.times = TimeCache::new(self.zones.clone());
        a
    }

    fn read(&mut self, number: u64, bytes: &[u8], sink: &mut dyn FnMut(&PgEvent<'_>)) {
        let PgLogReader {
            state,
            classifier,
            skips,
            messages,
            scratch,
            ..
        } = self;
        let mut emit = |r: &Record| {
            *messages += 1;
            if let Some(e) = classifier.classify(r) {
                sink(&e);
            }
        };
        match state {
            State::Stderr(a) => {
                if bytes.is_empty() {
                    return;
                }
                match a.push(number, bytes, Envelope::default(), &mut emit) {
                    LineUse::Used => {}
                    LineUse::Orphan => skips.record(SKIP_ORPHAN, number),
                    LineUse::NoPrefix => skips.record(SKIP_NO_PREFIX, number),
                }
            }
            State::Syslog(a, _, ident) => {
                if bytes.is_empty() {
                    return;
                }
                let Some(s) = syslog::split(bytes) else {
                    skips.record(SKIP_NOT_SYSLOG, number);
                    return;
                };
                if s.other_source {
                    skips.record(SKIP_OTHER_SOURCE, number);
                    return;
                }
                if s.ident != ident.as_slice() && s.header != syslog::Header::Heroku {
                    skips.record(SKIP_OTHER_PROGRAM, number);
                    return;
                }
                let text = syslog::unescape_tabs(s.text, scratch);
                let envelope = Envelope {
                    pid: s.pid,
                    time: s.time,
                };
                let continued_chunk = s.chunk.is_some_and(|(_, m)| m > 1)
                    && !text.starts_with(b"\t")
                    && a.prefix().split(text).is_none();
                let used = if continued_chunk {
                    a.continue_last(text, false)
                } else {
                    a.push(number, text, envelope, &mut emit)
                };
                match used {
                    LineUse::Used => {}
                    LineUse::Orphan => skips.record(SKIP_ORPHAN, number),
                    LineUse::NoPrefix => skips.record(SKIP_NO_PREFIX, number),
                }
            }
            State::Csv(a) => match a.push(number, bytes, &mut emit) {
                CsvLine::Pending | CsvLine::Record => {}
                CsvLine::Malformed => skips.record(SKIP_NOT_CSV, number),
                CsvLine::TooLong => skips.record(SKIP_UNTERMINATED_CSV, number),
            },
            State::Json(a) => {
                if !bytes.trim_ascii().is_empty() && !a.push(number, bytes, &mut emit) {
                    skips.record(SKIP_NOT_JSON, number);
                }
            }
            State::CloudLogging(objects, a) => match objects.push(number, bytes) {
                JsonLine::Object(first) => {
                    let Some(p) = cloud_logging::payload(objects.object()) else {
                        skips.record(SKIP_NO_TEXT_PAYLOAD, first);
                        return;
                    };
                    let envelope = Envelope {
                        pid: None,
                        time: p.time,
                    };
                    for line in p.text.split('\n') {
                        match a.push(first, line.as_bytes(), envelope, &mut emit) {
                            LineUse::Used => {}
                            LineUse::Orphan => skips.record(SKIP_ORPHAN, first),
                            LineUse::NoPrefix => skips.record(SKIP_NO_PREFIX, first),
                        }
                    }
                }
                other => json_line_skip(other, number, skips),
            },
            State::Cnpg(objects, a) => match objects.push(number, bytes) {
                JsonLine::Object(first) => match a.push(first, objects.object(), &mut emit) {
                    CnpgObject::Record => {}
                    CnpgObject::OtherLogger => skips.record(SKIP_OTHER_LOGGER, first),
                    CnpgObject::StartupStderr => skips.record(SKIP_CNPG_STARTUP, first),
                    CnpgObject::Malformed => skips.record(SKIP_NOT_ENTRY, first),
                },
                other => json_line_skip(other, number, skips),
            },
            State::Azure(objects, a) => match objects.push(number, bytes) {
                JsonLine::Object(first) => {
                    if !a.push(first, objects.object(), &mut emit) {
                        skips.record(SKIP_NOT_ENTRY, first);
                    }
                }
                other => json_line_skip(other, number, skips),
            },
            State::Unknown => {
                if !bytes.is_empty() {
                    skips.record(SKIP_UNKNOWN, number)
                }
            }
            State::Sniffing => unreachable!("lines are buffered while sniffing"),
        }
    }
}

/// A JSON object (after `kubectl logs --timestamps`' time, if any), or the opening of an array
/// of objects (`[` alone, or `[{`); not a line that starts with a bracketed prefix field
/// (`[8794] ...`).
fn looks_like_json(line: &[u8]) -> bool {
    let line = json_objects::strip_timestamp(line.trim_ascii());
    match line.first() {
        Some(b'{') => true,
        Some(b'[') => matches!(line[1..].trim_ascii_start().first(), None | Some(b'{')),
        _ => false,
    }
}

/// Counts a line of a JSON export that did not close an object.
fn json_line_skip(line: JsonLine, number: u64, skips: &mut Skips) {
    match line {
        JsonLine::NotJson => skips.record(SKIP_NOT_ENTRY, number),
        JsonLine::TooLong => skips.record(SKIP_JSON_TOO_LONG, number),
        JsonLine::Pending | JsonLine::Blank | JsonLine::Object(_) => {}
    }
}

/// What lines that are no PostgreSQL log look like, by signs that do not quote them.
fn looks_like<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<&'static str> {
    let mut json = false;
    let mut gunicorn = 0;
    let mut total = 0;
    for l in lines.filter(|l| !l.trim_ascii().is_empty()).take(200) {
        if total == 0 {
            json = matches!(l.trim_ascii_start().first(), Some(b'{' | b'['));
        }
        total += 1;
        if memchr::memmem::find(l, b"] [INFO] ").is_some()
            || memchr::memmem::find(l, b"] [CRITICAL] ").is_some()
            || memchr::memmem::find(l, b"] [ERROR] ").is_some()
            || memchr::memmem::find(l, b"Booting worker with pid").is_some()
        {
            gunicorn += 1;
        }
    }
    if total == 0 {
        None
    } else if gunicorn >= 3 && gunicorn * 10 > total {
        Some("a Gunicorn error log (give it to `wtdiag logs`)")
    } else if json {
        Some(
            "JSON, but not PostgreSQL's jsonlog: one object a line with timestamp, \
             error_severity and message",
        )
    } else {
        Some("text in which no line has a PostgreSQL severity after a log_line_prefix")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, prefix: Option<&str>) -> (Vec<String>, PgLogSummary) {
        let mut reader = PgLogReader::new(prefix.map(|p| Prefix::compile(p).unwrap()));
        let mut got = Vec::new();
        let mut sink = |e: &PgEvent<'_>| got.push(format!("{}:{:?}:{:?}", e.line, e.pid, e.kind));
        for (i, l) in text.split('\n').enumerate() {
            reader.push(
                Line {
                    number: i as u64 + 1,
                    bytes: l.as_bytes(),
                    overlong: None,
                },
                &mut sink,
            );
        }
        let summary = reader.finish(&mut sink);
        (got, summary)
    }

    #[test]
    fn same_message_in_three_formats_gives_the_same_event() {
        let stderr = "2026-11-26 22:38:15.674 UTC [8794] LOG:  process 8794 still waiting for ShareLock on transaction 779 after 200.131 ms\n2026-11-26 22:38:15.674 UTC [8794] DETAIL:  Process holding the lock: 8793. Wait queue: 8794.\n2026-11-26 22:38:15.674 UTC [8794] CONTEXT:  while updating tuple (0,1) in relation \"app_order\"\n2026-11-26 22:38:15.674 UTC [8794] STATEMENT:  UPDATE \"app_order\" SET \"status\" = $1 WHERE \"app_order\".\"id\" = $2";
        let csv = "2026-11-26 22:38:15.674 UTC,\"django\",\"shop\",8794,\"127.0.0.1:59340\",6b08b4d7.225a,5,\"UPDATE waiting\",2026-11-26 22:38:15 UTC,5/21,780,LOG,00000,\"process 8794 still waiting for ShareLock on transaction 779 after 200.131 ms\",\"Process holding the lock: 8793. Wait queue: 8794.\",,,,\"while updating tuple (0,1) in relation \"\"app_order\"\"\",\"UPDATE \"\"app_order\"\" SET \"\"status\"\" = $1 WHERE \"\"app_order\"\".\"\"id\"\" = $2\",,,\"shop-lockchain-b\",\"client backend\",,0";
        let json = r#"{"timestamp":"2026-11-26 22:38:15.674 UTC","user":"django","dbname":"shop","pid":8794,"error_severity":"LOG","message":"process 8794 still waiting for ShareLock on transaction 779 after 200.131 ms","detail":"Process holding the lock: 8793. Wait queue: 8794.","context":"while updating tuple (0,1) in relation \"app_order\"","statement":"UPDATE \"app_order\" SET \"status\" = $1 WHERE \"app_order\".\"id\" = $2","application_name":"shop-lockchain-b","backend_type":"client backend","query_id":0}"#;
        let syslog = "Nov 26 22:38:15 db1 postgres[8794]: [9-1] 2026-11-26 22:38:15.674 UTC [8794] LOG:  process 8794 still waiting for ShareLock on transaction 779 after 200.131 ms\nNov 26 22:38:15 db1 postgres[8794]: [9-2] 2026-11-26 22:38:15.674 UTC [8794] DETAIL:  Process holding the lock: 8793. Wait queue: 8794.\nNov 26 22:38:15 db1 postgres[8794]: [9-3] 2026-11-26 22:38:15.674 UTC [8794] CONTEXT:  while updating tuple (0,1) in relation \"app_order\"\nNov 26 22:38:15 db1 postgres[8794]: [9-4] 2026-11-26 22:38:15.674 UTC [8794] STATEMENT:  UPDATE \"app_order\" SET \"status\" = $1 WHERE \"app_order\".\"id\" = $2";
        let (a, sa) = read_all(stderr, None);
        let (b, sb) = read_all(csv, None);
        let (c, sc) = read_all(json, None);
        let (d, sd) = read_all(syslog, None);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(sa.format, Some(PgLogFormat::Stderr));
        assert_eq!(sb.format, Some(PgLogFormat::Csvlog));
        assert_eq!(sc.format, Some(PgLogFormat::Jsonlog));
        assert_eq!(sd.format, Some(PgLogFormat::Syslog));
        assert_eq!(
            sa.skips.total() + sb.skips.total() + sc.skips.total() + sd.skips.total(),
            0
        );
    }

    #[test]
    fn syslog_tab_escapes_continue_the_statement() {
        let text = "Nov 26 22:38:11 db1 postgres[8787]: [5-1] 2026-11-26 22:38:11.596 UTC [8787] LOG:  duration: 2.013 ms  statement: CREATE TABLE app_author (\nNov 26 22:38:11 db1 postgres[8787]: [5-2] #011    id serial PRIMARY KEY\nNov 26 22:38:11 db1 postgres[8787]: [5-3] #011)";
        let (got, summary) = read_all(text, None);
        assert_eq!(summary.skips.total(), 0);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].contains("CREATE TABLE app_author (\\n    id serial PRIMARY KEY\\n)"),
            "{got:?}"
        );
    }

    #[test]
    fn unknown_text_is_skipped_and_counted() {
        let (got, summary) = read_all("hello\nworld", None);
        assert!(got.is_empty());
        assert_eq!(summary.format, None);
        assert_eq!(summary.skips.total(), 2);
    }
}
