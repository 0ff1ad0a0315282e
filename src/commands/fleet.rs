//! One input holding many origins (`kubectl logs --prefix`, docker compose, journald of several
//! hosts, Loki, Elasticsearch/Cloud Logging exports, CloudWatch): each line is taken out of its
//! envelope and given to the reader of its origin, told from that origin's own first lines,
//! so every pod's master `[1]` and workers `[7]` stay its own. Memory holds one parser per
//! origin (and up to [`SNIFF_LINES`] lines of each until its kind is known), never the stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;

use crate::input::{self, Line, LineCounts};
use crate::parse::detect::{LogKind, detect};
use crate::parse::envelope::{Envelope, Opened};
use crate::parse::gunicorn::GunicornLog;
use crate::parse::skips::{self, Skips};
use crate::report::{Event, Origin, OriginKind};

/// Lines of one origin read before its kind is decided.
const SNIFF_LINES: usize = 24;
/// Origins (per stream: program within host) read one by one; lines of more are counted.
pub const MAX_STREAMS: usize = 20_000;

/// A side log's relevant line with where it came from.
pub struct SideLine {
    pub path: String,
    pub line: u64,
    pub text: String,
    pub origin: Origin,
}

/// What one multi-origin input gave besides its events.
#[derive(Default)]
pub struct FleetRead {
    pub counts: LineCounts,
    pub records: u64,
    pub versions: Vec<String>,
    pub worker_class: Option<String>,
    pub skips: Skips,
    pub lossy_lines: u64,
    /// OOM-killer lines (`Killed process `) of kernel streams.
    pub kernel: Vec<SideLine>,
    /// nginx `from upstream` lines of nginx error streams.
    pub proxy: Vec<SideLine>,
    /// Origins found, in order of first appearance.
    pub origins: Vec<String>,
    /// Streams of kinds read only from files of their own (access, app, PostgreSQL), by kind.
    pub unread: BTreeMap<&'static str, Vec<String>>,
}

enum Reader {
    Sniffing(Vec<(u64, Vec<u8>)>),
    Gunicorn(Box<GunicornLog>),
    Side(LogKind),
    Unread,
}

struct Stream {
    /// The envelope's origin label and stream, as the index has them.
    key: (Box<str>, Box<str>),
    /// The last line was a traceback's `File "..."` line (see [`reindent`]).
    after_frame: bool,
    origin: Origin,
    reader: Reader,
}

/// Reads one input whose lines are in `envelope`; events go to `sink` in each origin's order.
pub fn read(
    opened: input::Input,
    envelope: Envelope,
    max_side: usize,
    sink: &mut impl FnMut(Event),
) -> Result<FleetRead> {
    let path: Arc<str> = Arc::from(opened.path.as_str());
    let file_origin = Origin::file(&path);
    let mut out = FleetRead::default();
    let mut streams: Vec<Stream> = Vec::new();
    let mut index: HashMap<Box<str>, HashMap<Box<str>, usize>> = HashMap::new();
    let mut last: Option<usize> = None;
    let counts = opened.for_each_line(|line| {
        if line.overlong.is_some() {
            out.skips.record(skips::OVERLONG, line.number);
            return;
        }
        let Some(o) = envelope.open(line.bytes) else {
            if !line.bytes.trim_ascii().is_empty() {
                out.skips
                    .record("not in the stream's envelope", line.number);
            }
            return;
        };
        let i = match last.filter(|&i| same(&streams[i], &o)) {
            Some(i) => i,
            None => {
                let found = index
                    .get(&*o.origin)
                    .and_then(|m| m.get(&*o.stream))
                    .copied();
                let i = match found {
                    Some(i) => i,
                    None if streams.len() >= MAX_STREAMS => {
                        out.skips
                            .record("more than 20000 origins in one input", line.number);
                        return;
                    }
                    None => {
                        let origin = if o.kind == OriginKind::File || o.origin.is_empty() {
                            file_origin.clone()
                        } else {
                            Origin::labelled(o.kind, &o.origin)
                        };
                        if !out.origins.iter().any(|n| **n == *origin.name) {
                            out.origins.push(origin.name.to_string());
                        }
                        let reader = if o.stream == "kernel" {
                            Reader::Side(LogKind::Kernel)
                        } else {
                            Reader::Sniffing(Vec::new())
                        };
                        let key: (Box<str>, Box<str>) =
                            (o.origin.as_ref().into(), o.stream.as_ref().into());
                        index
                            .entry(key.0.clone())
                            .or_default()
                            .insert(key.1.clone(), streams.len());
                        streams.push(Stream {
                            key,
                            after_frame: false,
                            origin,
                            reader,
                        });
                        streams.len() - 1
                    }
                };
                last = Some(i);
                i
            }
        };
        // A JSON message may hold a whole traceback: one line each, under the entry's number.
        for text in o.message.split(|&b| b == b'\n') {
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if envelope == Envelope::LokiDefault {
                let text = reindent(&mut streams[i].after_frame, text);
                feed(
                    &mut streams[i],
                    &path,
                    line.number,
                    &text,
                    &mut out,
                    max_side,
                    sink,
                );
            } else {
                feed(
                    &mut streams[i],
                    &path,
                    line.number,
                    text,
                    &mut out,
                    max_side,
                    sink,
                );
            }
        }
    })?;
    for s in &mut streams {
        if matches!(s.reader, Reader::Sniffing(_)) {
            decide(s, &path, &mut out, max_side, sink);
        }
        if let Reader::Gunicorn(log) = std::mem::replace(&mut s.reader, Reader::Unread) {
            let parsed = log.finish(sink);
            out.records += parsed.records;
            out.skips.merge(parsed.skips);
            out.lossy_lines += parsed.lossy_lines;
            if let Some(v) = parsed.version {
                out.versions.push(v);
            }
            if let Some(c) = parsed.worker_class {
                out.worker_class = Some(c);
            }
        }
    }
    out.counts = counts;
    Ok(out)
}

/// Whether a line belongs to the stream of the line before: lines come in runs, and two string
/// compares are cheaper than two map lookups.
fn same(s: &Stream, o: &Opened<'_>) -> bool {
    *s.key.0 == *o.origin && *s.key.1 == *o.stream
}

fn feed(
    s: &mut Stream,
    path: &Arc<str>,
    number: u64,
    text: &[u8],
    out: &mut FleetRead,
    max_side: usize,
    sink: &mut impl FnMut(Event),
) {
    match &mut s.reader {
        Reader::Sniffing(buf) => {
            buf.push((number, text.to_vec()));
            if buf.len() >= SNIFF_LINES {
                decide(s, path, out, max_side, sink);
            }
        }
        Reader::Gunicorn(log) => log.push(
            Line {
                number,
                bytes: text,
                overlong: None,
            },
            sink,
        ),
        Reader::Side(kind) => side(*kind, &s.origin, path, number, text, out, max_side),
        Reader::Unread => {}
    }
}

/// Tells a stream's kind from its first lines and reads them.
fn decide(
    s: &mut Stream,
    path: &Arc<str>,
    out: &mut FleetRead,
    max_side: usize,
    sink: &mut impl FnMut(Event),
) {
    let Reader::Sniffing(buf) = std::mem::replace(&mut s.reader, Reader::Unread) else {
        return;
    };
    let mut head = Vec::new();
    for (_, l) in &buf {
        head.extend_from_slice(l);
        head.push(b'\n');
    }
    s.reader = match detect(&head) {
        LogKind::Gunicorn => Reader::Gunicorn(Box::new(GunicornLog::with_origin(
            path.clone(),
            s.origin.clone(),
        ))),
        kind @ (LogKind::Kernel | LogKind::NginxError) => Reader::Side(kind),
        kind => {
            out.unread
                .entry(kind.name())
                .or_default()
                .push(s.origin.name.to_string());
            Reader::Unread
        }
    };
    for (number, text) in buf {
        feed(s, path, number, &text, out, max_side, sink);
    }
}

fn side(
    kind: LogKind,
    origin: &Origin,
    path: &Arc<str>,
    number: u64,
    text: &[u8],
    out: &mut FleetRead,
    max_side: usize,
) {
    let (needle, kept): (&[u8], &mut Vec<SideLine>) = match kind {
        LogKind::Kernel => (b"Killed process ", &mut out.kernel),
        _ => (b" from upstream", &mut out.proxy),
    };
    if memchr::memmem::find(text, needle).is_none() || kept.len() >= max_side {
        return;
    }
    let (text, _) = input::decode(text);
    kept.push(SideLine {
        path: path.to_string(),
        line: number,
        text: crate::parse::cap(&text, 2048).to_string(),
        origin: origin.clone(),
    });
}

/// A note naming the streams of a multi-origin input that were told apart but not read.
pub fn unread_warning(
    path: &str,
    unread: &BTreeMap<&'static str, Vec<String>>,
) -> Option<crate::report::Warning> {
    if unread.is_empty() {
        return None;
    }
    let list: Vec<String> = unread
        .iter()
        .map(|(kind, origins)| {
            let shown: Vec<&str> = origins.iter().take(5).map(String::as_str).collect();
            let more = origins.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("{kind} from {}{more}", shown.join(", "))
        })
        .collect();
    Some(crate::report::Warning {
        code: "streams_not_read",
        message: format!(
            "{path}: streams read only from files of their own were passed over: {}",
            list.join("; ")
        ),
        advice: "Export those origins' access, application or PostgreSQL logs to files of \
                 their own and give them too (--app-log, --pg-log, or as inputs)."
            .into(),
    })
}

/// logcli's default output trims each line (`strings.TrimSpace`), which takes the indentation
/// Python gives a traceback's frames (`  File "...", line N, in f`) and their source lines
/// (four spaces). Both are put back, so a frame's code is read as its code.
fn reindent<'a>(after_frame: &mut bool, text: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
    use std::borrow::Cow;
    if text.starts_with(b"File \"") {
        *after_frame = true;
        let mut v = b"  ".to_vec();
        v.extend_from_slice(text);
        return Cow::Owned(v);
    }
    if std::mem::take(after_frame) && !text.is_empty() && !text.starts_with(b"[") {
        let mut v = b"    ".to_vec();
        v.extend_from_slice(text);
        return Cow::Owned(v);
    }
    Cow::Borrowed(text)
}
