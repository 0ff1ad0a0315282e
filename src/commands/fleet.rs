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
use crate::parse::envelope::{self, Envelope, JsonObjects, Opened};
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
    /// Consecutive records of one origin whose time goes back, and forward: an export listed
    /// newest first (logcli's and gcloud's default order) has more of the first.
    pub backward: u64,
    pub forward: u64,
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

/// The streams of one input, and where each line goes.
struct Demux {
    envelope: Envelope,
    path: Arc<str>,
    file_origin: Origin,
    max_side: usize,
    out: FleetRead,
    streams: Vec<Stream>,
    /// Origin label → stream → index in `streams`.
    index: HashMap<Box<str>, HashMap<Box<str>, usize>>,
    last: Option<usize>,
    /// Origins listed in `out.origins` (a stream per program of a host shares its origin).
    listed: std::collections::HashSet<Arc<str>>,
}

/// The envelope of an input to read as a multi-origin stream, if any: not `wtdiag watch`'s
/// JSON Lines, and not a PostgreSQL log that a managed service wraps (Cloud Logging's JSON):
/// the PostgreSQL reader knows those.
pub fn envelope_of(head: &[u8]) -> Option<Envelope> {
    if crate::parse::watch::looks_like_watch(head) {
        return None;
    }
    let envelope = envelope::detect(head)?;
    (detect(head) != LogKind::Postgres).then_some(envelope)
}

/// Reads one input whose lines are in `envelope`; events go to `sink` in each origin's order.
pub fn read(
    opened: input::Input,
    envelope: Envelope,
    max_side: usize,
    sink: &mut impl FnMut(Event),
) -> Result<FleetRead> {
    let path: Arc<str> = Arc::from(opened.path.as_str());
    let mut d = Demux {
        envelope,
        file_origin: Origin::file(&path),
        path,
        max_side,
        out: FleetRead::default(),
        streams: Vec::new(),
        index: HashMap::new(),
        last: None,
        listed: std::collections::HashSet::new(),
    };
    let mut objects = JsonObjects::default();
    // Each origin's last record time, to tell an export listed newest first.
    let mut last_time: HashMap<*const u8, chrono::DateTime<chrono::FixedOffset>> = HashMap::new();
    let (mut backward, mut forward) = (0u64, 0u64);
    let sink = &mut |e: Event| {
        if let Some(t) = e.time {
            let key = e.origin.name.as_ptr();
            if let Some(prev) = last_time.insert(key, t) {
                if t < prev {
                    backward += 1;
                } else if t > prev {
                    forward += 1;
                }
            }
        }
        sink(e)
    };
    let counts = opened.for_each_line(|line| {
        if line.overlong.is_some() {
            d.out.skips.record(skips::OVERLONG, line.number);
            return;
        }
        if envelope == Envelope::JsonDocument {
            objects.push(line.number, line.bytes, |number, object| {
                let entry = serde_json::from_slice::<serde_json::Value>(object)
                    .ok()
                    .and_then(|v| envelope::json_entry(&v));
                match entry {
                    Some(o) => d.route(number, o, sink),
                    None => d.out.skips.record("not a log entry", number),
                }
            });
            return;
        }
        match envelope.open(line.bytes) {
            Some(o) => d.route(line.number, o, sink),
            None if line.bytes.trim_ascii().is_empty() => {}
            None => d
                .out
                .skips
                .record("not in the stream's envelope", line.number),
        }
    })?;
    if objects.oversized > 0 {
        d.out.skips.record("entry longer than 1 MiB", 0);
    }
    let Demux {
        mut streams,
        mut out,
        path,
        max_side,
        ..
    } = d;
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
    out.backward = backward;
    out.forward = forward;
    Ok(out)
}

impl Demux {
    /// Gives one entry's lines to the reader of its stream.
    fn route(&mut self, number: u64, o: Opened<'_>, sink: &mut impl FnMut(Event)) {
        let Some(i) = self.stream_of(&o, number) else {
            return;
        };
        // A JSON message may hold a whole traceback: one line each, under the entry's number.
        for text in o.message.split(|&b| b == b'\n') {
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let s = &mut self.streams[i];
            let text = if self.envelope == Envelope::LokiDefault {
                reindent(&mut s.after_frame, text)
            } else {
                std::borrow::Cow::Borrowed(text)
            };
            feed(
                s,
                &self.path,
                number,
                &text,
                &mut self.out,
                self.max_side,
                sink,
            );
        }
    }

    /// The index of the stream `o` belongs to, made on its first line.
    fn stream_of(&mut self, o: &Opened<'_>, number: u64) -> Option<usize> {
        if let Some(i) = self.last.filter(|&i| same(&self.streams[i], o)) {
            return Some(i);
        }
        let found = self
            .index
            .get(&*o.origin)
            .and_then(|m| m.get(&*o.stream))
            .copied();
        let i = match found {
            Some(i) => i,
            None if self.streams.len() >= MAX_STREAMS => {
                self.out
                    .skips
                    .record("more than 20000 origins in one input", number);
                return None;
            }
            None => {
                let origin = if o.kind == OriginKind::File || o.origin.is_empty() {
                    self.file_origin.clone()
                } else {
                    Origin::labelled(o.kind, &o.origin)
                };
                if self.listed.insert(origin.name.clone()) {
                    self.out.origins.push(origin.name.to_string());
                }
                let reader = if o.stream == "kernel" {
                    Reader::Side(LogKind::Kernel)
                } else {
                    Reader::Sniffing(Vec::new())
                };
                let key: (Box<str>, Box<str>) =
                    (o.origin.as_ref().into(), o.stream.as_ref().into());
                self.index
                    .entry(key.0.clone())
                    .or_default()
                    .insert(key.1.clone(), self.streams.len());
                self.streams.push(Stream {
                    key,
                    after_frame: false,
                    origin,
                    reader,
                });
                self.streams.len() - 1
            }
        };
        self.last = Some(i);
        Some(i)
    }
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

/// A note when an export lists each origin's records newest first: incidents are read in time
/// order, so a kill would come before its timeout.
pub fn reversed_warning(path: &str, read: &FleetRead) -> Option<crate::report::Warning> {
    (read.backward > read.forward).then(|| crate::report::Warning {
        code: "stream_reversed",
        message: format!(
            "{path}: records go back in time ({} steps back, {} forward): the export lists \
             newest first, so a kill may be read before its timeout",
            read.backward, read.forward
        ),
        advice: "Export oldest first: `logcli query --forward`, `gcloud logging read \
                 --order=asc`, or sort the export by time."
            .into(),
    })
}
