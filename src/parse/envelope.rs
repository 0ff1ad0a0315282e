//! Multi-origin streams: the envelopes that log tools and aggregators wrap around each line of
//! many hosts, pods or containers. An envelope is told from the first lines of an input
//! ([`detect`]); [`Envelope::open`] then gives each line's origin label and the line the program
//! wrote, which the caller reads with the parser of that origin's own format. Each envelope is
//! written from the tool's source, cited on its variant; fixtures/fleet/SOURCES.md has the
//! samples.

use std::borrow::Cow;

use serde_json::Value;

use crate::parse::timestamp;
use crate::report::OriginKind;

/// The wrappers of one line that name where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// `kubectl logs --prefix` (kubectl `logs.go` `addPrefixIfNeeded`:
    /// `fmt.Sprintf("[pod/%s/%s] ", ref.Name, containerName)`, `[node/%s] ` for nodes).
    KubectlPrefix,
    /// `docker compose logs` / `up` with several services or replicas (compose
    /// `cmd/formatter/logs.go`: `fmt.Sprintf("%-"+width+"s |", container)` then `"%s %s\n"`).
    Compose,
    /// `journalctl -o short` / `short-iso` (and syslog) of several hosts:
    /// `Jul 05 09:13:44 host ident[pid]: message`.
    Journal,
    /// `journalctl -o json`: one object per entry with `_HOSTNAME`, `_PID`, `MESSAGE`.
    JournalJson,
    /// Loki `logcli query` default output (logcli `output/default.go`:
    /// `"%s %s %s\n"`, RFC 3339 time, the label set `{k="v", ...}` padded, the line trimmed).
    LokiDefault,
    /// Loki `logcli query --output jsonl` (`output/jsonl.go`: `{"labels":{..},"line":..,
    /// "timestamp":..}`).
    LokiJsonl,
    /// NDJSON exports of Elasticsearch/OpenSearch (Filebeat, Fluent Bit, Vector documents, or
    /// search hits with `_source`) and Google Cloud Logging entries.
    Ndjson,
    /// One JSON document holding a list of entries, pretty-printed over many lines:
    /// `aws logs filter-log-events` (`{"events": [{"logStreamName", "message", ...}]}`),
    /// `gcloud logging read --format=json` (`[{LogEntry}, ...]`). Read by [`JsonObjects`].
    JsonDocument,
    /// `aws logs filter-log-events --output text` (awscli `text.py`: one `EVENTS` row per event,
    /// its scalar keys sorted and tab-separated: eventId, ingestionTime, logStreamName, message,
    /// timestamp).
    CloudWatchText,
    /// `aws logs tail` (awscli `customizations/logs/tail.py`: `timestamp.isoformat()`, the log
    /// stream name, the message).
    CloudWatchTail,
}

impl Envelope {
    /// `inputs[].envelope` in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Envelope::KubectlPrefix => "kubectl_prefix",
            Envelope::Compose => "docker_compose",
            Envelope::Journal => "journal_short",
            Envelope::JournalJson => "journal_json",
            Envelope::LokiDefault => "loki_logcli",
            Envelope::LokiJsonl => "loki_logcli_jsonl",
            Envelope::Ndjson => "ndjson",
            Envelope::CloudWatchTail => "cloudwatch_tail",
            Envelope::JsonDocument => "json_document",
            Envelope::CloudWatchText => "cloudwatch_text",
        }
    }

    /// The origin and the program's own text of one line; `None` when the line is not in the
    /// envelope (a header, a blank line, text another tool printed).
    pub fn open<'a>(self, line: &'a [u8]) -> Option<Opened<'a>> {
        match self {
            Envelope::KubectlPrefix => kubectl(line),
            Envelope::Compose => compose(line),
            Envelope::Journal => journal(line),
            Envelope::LokiDefault => loki_default(line),
            Envelope::CloudWatchTail => cloudwatch_tail(line),
            Envelope::JournalJson | Envelope::LokiJsonl | Envelope::Ndjson => json_line(line),
            Envelope::CloudWatchText => cloudwatch_text(line),
            // Objects, not lines: the caller feeds [`JsonObjects`].
            Envelope::JsonDocument => None,
        }
    }
}

/// One line out of its envelope.
#[derive(Debug)]
pub struct Opened<'a> {
    pub kind: OriginKind,
    /// The origin's label: `pod/web-7f9c-abcde/web`, `web-1`, a host name, a log stream.
    pub origin: Cow<'a, str>,
    /// What tells this program's lines from another's in the same origin (journald's
    /// identifier: `gunicorn` and `kernel` on one host), empty when the origin is one program.
    pub stream: Cow<'a, str>,
    /// The text the program wrote; a JSON message may hold several lines (a traceback joined
    /// by a shipper's multiline rule).
    pub message: Cow<'a, [u8]>,
}

/// Lines looked at to tell an envelope.
const SNIFF_LINES: usize = 50;

/// The envelope of an input whose first bytes are `head`, when most of its first lines are in
/// one. Compose and journal prefixes of a single origin are left to the Gunicorn parser, which
/// strips them (and has always): an envelope is needed only when origins must be kept apart.
pub fn detect(head: &[u8]) -> Option<Envelope> {
    let complete = head.last() == Some(&b'\n');
    let mut lines: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    if !complete && lines.len() > 1 {
        lines.pop();
    }
    let lines: Vec<&[u8]> = lines
        .into_iter()
        .filter(|l| !l.trim_ascii().is_empty())
        .take(SNIFF_LINES)
        .collect();
    let first = *lines.first()?;
    let array = first.trim_ascii();
    let array = array == b"["
        || array
            .strip_prefix(b"[")
            .is_some_and(|r| r.trim_ascii_start().starts_with(b"{"));
    if array || (first.first() == Some(&b'{') && serde_json::from_slice::<Value>(first).is_err()) {
        // A document over many lines: its first object must be an entry.
        let mut objects = JsonObjects::default();
        let mut found = None;
        for (i, l) in lines.iter().enumerate() {
            objects.push(i as u64 + 1, l, |_, o| {
                if found.is_none() {
                    found = Some(
                        serde_json::from_slice::<Value>(o)
                            .ok()
                            .and_then(|v| json_entry(&v).map(|_| ())),
                    );
                }
            });
        }
        return found.flatten().map(|_| Envelope::JsonDocument);
    }
    if first.starts_with(b"EVENTS\t") {
        return cloudwatch_text(first).map(|_| Envelope::CloudWatchText);
    }
    if first.first() == Some(&b'{') {
        let v: Value = serde_json::from_slice(first).ok()?;
        let o = v.as_object()?;
        if o.contains_key("MESSAGE") && (o.contains_key("_HOSTNAME") || o.contains_key("__CURSOR"))
        {
            return Some(Envelope::JournalJson);
        }
        if o.contains_key("line") && (o.contains_key("labels") || o.contains_key("timestamp")) {
            return Some(Envelope::LokiJsonl);
        }
        return json_entry(&v).map(|_| Envelope::Ndjson);
    }
    let most = |f: &dyn Fn(&[u8]) -> bool| {
        let n = lines.iter().filter(|l| f(l)).count();
        n * 2 > lines.len()
    };
    if most(&|l| kubectl(l).is_some()) {
        return Some(Envelope::KubectlPrefix);
    }
    if most(&|l| loki_default(l).is_some()) {
        return Some(Envelope::LokiDefault);
    }
    if most(&|l| cloudwatch_tail(l).is_some()) {
        return Some(Envelope::CloudWatchTail);
    }
    let origins = |f: fn(&[u8]) -> Option<Opened<'_>>| {
        let mut seen: Vec<String> = Vec::new();
        let mut n = 0;
        for l in &lines {
            if let Some(o) = f(l) {
                n += 1;
                if !seen.iter().any(|s| *s == o.origin) {
                    seen.push(o.origin.into_owned());
                }
            }
        }
        (n * 2 > lines.len()).then_some(seen.len())
    };
    if origins(compose).is_some_and(|n| n >= 2) {
        return Some(Envelope::Compose);
    }
    if origins(journal).is_some_and(|n| n >= 2) {
        return Some(Envelope::Journal);
    }
    None
}

fn owned_str(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `[pod/NAME/CONTAINER] text` or `[node/NAME] text`.
fn kubectl(line: &[u8]) -> Option<Opened<'_>> {
    let rest = line.strip_prefix(b"[")?;
    if !(rest.starts_with(b"pod/") || rest.starts_with(b"node/")) {
        return None;
    }
    // The label has no space: its `]` is the first one (a memmem searcher per line costs more).
    let close = memchr::memchr(b']', rest)?;
    if !matches!(rest.get(close + 1), Some(b' ') | None) {
        return None;
    }
    let label = &rest[..close];
    if label.contains(&b' ') {
        return None;
    }
    let message = rest.get(close + 2..).unwrap_or(b"");
    let kind = if label.starts_with(b"pod/") {
        OriginKind::Pod
    } else {
        OriginKind::Host
    };
    Some(Opened {
        kind,
        origin: owned_str(label),
        stream: Cow::Borrowed(""),
        message: Cow::Borrowed(message),
    })
}

/// `NAME<padding> | text` (also compose v1's `NAME_1  | `).
fn compose(line: &[u8]) -> Option<Opened<'_>> {
    let window = &line[..line.len().min(120)];
    let bar = memchr::memmem::find(window, b" | ").or_else(|| {
        // An empty line of a container: `web-1  |` and nothing after.
        (window.ends_with(b" |")).then(|| window.len() - 2)
    })?;
    let name = line[..bar].trim_ascii_end();
    if name.is_empty()
        || !name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return None;
    }
    Some(Opened {
        kind: OriginKind::Container,
        origin: owned_str(name),
        stream: Cow::Borrowed(""),
        message: Cow::Borrowed(line.get(bar + 3..).unwrap_or(b"")),
    })
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Jul 05 09:13:44 host ident[pid]: text` (`-o short`, syslog) or
/// `2026-11-26T22:32:47+0000 host ident[pid]: text` (`-o short-iso`); `ident: ` without a pid
/// too (the kernel's).
fn journal(line: &[u8]) -> Option<Opened<'_>> {
    let after_time = if MONTHS.iter().any(|m| line.starts_with(m)) {
        // `Mmm dd HH:MM:SS ` (the day may be space-padded).
        let mut i = 3;
        while line.get(i) == Some(&b' ') {
            i += 1;
        }
        let day_end = i + line[i..].iter().position(|b| *b == b' ')?;
        let time = line.get(day_end + 1..day_end + 9)?;
        if time.get(2) != Some(&b':') || time.get(5) != Some(&b':') {
            return None;
        }
        // `-o short-precise`: `.123456`
        let mut end = day_end + 9;
        if line.get(end) == Some(&b'.') {
            end += 1 + line[end + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        }
        &line[end..]
    } else if line.first().is_some_and(u8::is_ascii_digit) && line.get(10) == Some(&b'T') {
        let (_, used) = timestamp::parse_prefix(line)?;
        &line[used..]
    } else {
        return None;
    };
    let rest = after_time.strip_prefix(b" ")?;
    let host_end = rest.iter().position(|b| *b == b' ')?;
    let host = &rest[..host_end];
    let rest = &rest[host_end + 1..];
    let colon = memchr::memmem::find(&rest[..rest.len().min(100)], b": ")
        .or_else(|| rest.ends_with(b":").then(|| rest.len() - 1))?;
    let ident = &rest[..colon];
    if ident.is_empty() || ident.contains(&b' ') {
        return None;
    }
    let ident = match memchr::memchr(b'[', ident) {
        Some(open) if ident.ends_with(b"]") => &ident[..open],
        Some(_) => return None,
        None => ident,
    };
    Some(Opened {
        kind: OriginKind::Host,
        origin: owned_str(host),
        stream: owned_str(ident),
        message: Cow::Borrowed(rest.get(colon + 2..).unwrap_or(b"")),
    })
}

/// `2026-11-26T10:05:00Z {app="web", pod="web-7f9c-abcde"} text`.
fn loki_default(line: &[u8]) -> Option<Opened<'_>> {
    if !(line.first().is_some_and(u8::is_ascii_digit) && line.get(10) == Some(&b'T')) {
        return None;
    }
    let space = memchr::memchr(b' ', line)?;
    timestamp::parse_prefix(&line[..space])?;
    let rest = line[space + 1..].strip_prefix(b"{")?;
    let close = memchr::memmem::find(rest, b"} ")
        .or_else(|| rest.ends_with(b"}").then(|| rest.len() - 1))?;
    let labels = &rest[..close];
    if !labels.is_empty() && memchr::memmem::find(labels, b"=\"").is_none() {
        return None;
    }
    // The label set is padded to the longest one's width.
    let message = rest.get(close + 1..).unwrap_or(b"");
    let message = &message[message.iter().take_while(|b| **b == b' ').count()..];
    let (kind, origin) = loki_origin(labels);
    Some(Opened {
        kind,
        origin,
        stream: owned_str(labels),
        message: Cow::Borrowed(message),
    })
}

/// The origin a Loki label set names: its pod, else its container, host, instance or job.
fn loki_origin(labels: &[u8]) -> (OriginKind, Cow<'_, str>) {
    let value = |key: &[u8]| -> Option<&[u8]> {
        let mut from = 0;
        while let Some(at) = memchr::memmem::find(&labels[from..], key) {
            let at = from + at;
            let before_ok = at == 0 || matches!(labels[at - 1], b' ' | b',' | b'{');
            let rest = &labels[at + key.len()..];
            if before_ok && let Some(v) = rest.strip_prefix(b"=\"") {
                let end = memchr::memchr(b'"', v)?;
                return Some(&v[..end]);
            }
            from = at + 1;
        }
        None
    };
    if let Some(pod) = value(b"pod") {
        // Named as kubectl names it, so one pod is one origin whichever tool exported it.
        let name = match value(b"container") {
            Some(c) => format!("pod/{}/{}", owned_str(pod), owned_str(c)),
            None => format!("pod/{}", owned_str(pod)),
        };
        return (OriginKind::Pod, Cow::Owned(name));
    }
    for (key, kind) in [
        (&b"container"[..], OriginKind::Container),
        (b"host", OriginKind::Host),
        (b"hostname", OriginKind::Host),
        (b"instance", OriginKind::Host),
    ] {
        if let Some(v) = value(key) {
            return (kind, owned_str(v));
        }
    }
    (OriginKind::Stream, owned_str(labels))
}

/// `2026-11-26T10:05:00.123000+00:00 STREAM text`: Python's `isoformat()` of an aware time
/// always has the `+HH:MM` offset, never docker's `Z`.
fn cloudwatch_tail(line: &[u8]) -> Option<Opened<'_>> {
    if !(line.first().is_some_and(u8::is_ascii_digit) && line.get(10) == Some(&b'T')) {
        return None;
    }
    let space = memchr::memchr(b' ', line)?;
    let ts = &line[..space];
    let zone = ts.get(ts.len().checked_sub(6)?..)?;
    if !(matches!(zone[0], b'+' | b'-') && zone[3] == b':') {
        return None;
    }
    timestamp::parse_prefix(ts)?;
    let rest = &line[space + 1..];
    let end = memchr::memchr(b' ', rest)?;
    let stream = &rest[..end];
    // `heroku logs` prints the same time, then `source[dyno]:` (a colon CloudWatch's stream
    // names do not end with).
    if stream.is_empty() || stream[0] == b'[' || stream[0] == b'{' || stream.ends_with(b":") {
        return None;
    }
    Some(Opened {
        kind: OriginKind::Stream,
        origin: owned_str(stream),
        stream: Cow::Borrowed(""),
        message: Cow::Borrowed(&rest[end + 1..]),
    })
}

/// `EVENTS\t<eventId>\t<ingestionTime>\t<logStreamName>\t<message>\t<timestamp>`.
fn cloudwatch_text(line: &[u8]) -> Option<Opened<'_>> {
    let rest = line.strip_prefix(b"EVENTS\t")?;
    let mut fields = rest.splitn(4, |&b| b == b'\t');
    let _event_id = fields.next()?;
    let ingestion = fields.next()?;
    let stream = fields.next()?;
    let tail = fields.next()?;
    // The message may hold tabs: the timestamp is the last field.
    let tab = tail.iter().rposition(|&b| b == b'\t')?;
    let (message, timestamp) = (&tail[..tab], &tail[tab + 1..]);
    if !(ingestion.iter().all(u8::is_ascii_digit) && timestamp.iter().all(u8::is_ascii_digit)) {
        return None;
    }
    Some(Opened {
        kind: OriginKind::Stream,
        origin: owned_str(stream),
        stream: Cow::Borrowed(""),
        message: Cow::Borrowed(message),
    })
}

/// Cuts a JSON document given line by line into the objects of its entry list (the elements of
/// a top-level array, or of an array that is a value of the top-level object), without holding
/// the document: only the object being read is kept, up to [`MAX_OBJECT`] bytes.
#[derive(Debug, Default)]
pub struct JsonObjects {
    /// `[` or `{` of each open container.
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    /// The object being collected and the line it started on.
    current: Option<(u64, Vec<u8>)>,
    /// Objects dropped for their size.
    pub oversized: u64,
}

/// Bytes of one entry kept; a bigger one is dropped and counted.
pub const MAX_OBJECT: usize = 1 << 20;

impl JsonObjects {
    /// Reads one line of the document; each entry completed goes to `each` with its first line.
    pub fn push(&mut self, number: u64, line: &[u8], mut each: impl FnMut(u64, &[u8])) {
        for &b in line.iter().chain(std::iter::once(&b'\n')) {
            let collecting = self.current.is_some();
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => {
                        let entry = b == b'{'
                            && !collecting
                            && self.stack.last() == Some(&b'[')
                            && self.stack.len() <= 2;
                        self.stack.push(b);
                        if entry {
                            self.current = Some((number, Vec::new()));
                        }
                    }
                    b'}' | b']' => {
                        self.stack.pop();
                        if b == b'}'
                            && collecting
                            && self.stack.last() == Some(&b'[')
                            && self.stack.len() <= 2
                        {
                            if let Some((start, mut buf)) = self.current.take() {
                                if buf.len() < MAX_OBJECT {
                                    buf.push(b);
                                    each(start, &buf);
                                } else {
                                    self.oversized += 1;
                                }
                            }
                            continue;
                        }
                    }
                    _ => {}
                }
            }
            if let Some((_, buf)) = &mut self.current
                && buf.len() < MAX_OBJECT
            {
                buf.push(b);
            }
        }
    }
}

/// One JSON object per line: journald's, logcli's, or an aggregator's document.
fn json_line(line: &[u8]) -> Option<Opened<'static>> {
    let line = line.trim_ascii();
    if line.first() != Some(&b'{') {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    json_entry(&v)
}

/// The origin and message of one decoded entry, whatever its schema.
pub fn json_entry(v: &Value) -> Option<Opened<'static>> {
    let o = v.as_object()?;
    // Elasticsearch search hits and elasticdump lines keep the document in `_source`.
    if let Some(src) = o.get("_source").filter(|s| s.is_object()) {
        return json_entry(src);
    }
    if let Some(msg) = o.get("MESSAGE") {
        // journald: MESSAGE is an array of bytes when it is not valid UTF-8.
        let message: Vec<u8> = match msg {
            Value::String(s) => s.clone().into_bytes(),
            Value::Array(a) => a
                .iter()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect(),
            _ => return None,
        };
        let host = o.get("_HOSTNAME").and_then(Value::as_str).unwrap_or("");
        let ident = o
            .get("SYSLOG_IDENTIFIER")
            .or_else(|| o.get("_COMM"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let ident = if o.get("_TRANSPORT").and_then(Value::as_str) == Some("kernel") {
            "kernel"
        } else {
            ident
        };
        return Some(Opened {
            kind: OriginKind::Host,
            origin: Cow::Owned(host.to_string()),
            stream: Cow::Owned(ident.to_string()),
            message: Cow::Owned(message),
        });
    }
    if let (Some(line), Some(labels)) = (o.get("line").and_then(Value::as_str), o.get("labels")) {
        let labels = labels.as_object()?;
        let mut set: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or("")))
            .collect();
        set.sort();
        let set = format!("{{{}}}", set.join(", "));
        let (kind, origin) = loki_origin(set.as_bytes());
        return Some(Opened {
            kind,
            origin: Cow::Owned(origin.into_owned()),
            stream: Cow::Owned(set.clone()),
            message: Cow::Owned(line.as_bytes().to_vec()),
        });
    }
    let message = json_message(v)?;
    let (kind, origin) = json_origin(v);
    Some(Opened {
        kind,
        origin: Cow::Owned(origin),
        stream: Cow::Borrowed(""),
        message: Cow::Owned(message.into_bytes()),
    })
}

/// A string at a dotted path, or at the flattened key Elasticsearch exports may use.
fn at<'v>(v: &'v Value, path: &str) -> Option<&'v str> {
    if let Some(s) = v.get(path).and_then(Value::as_str) {
        return Some(s);
    }
    let mut cur = v;
    for key in path.split('.') {
        cur = cur.get(key)?;
    }
    cur.as_str()
}

/// The line the program wrote: Filebeat's and Vector's `message`, Fluent Bit's and Docker's
/// `log`, Cloud Logging's `textPayload` (or `jsonPayload.message`), CloudWatch's `message`.
fn json_message(v: &Value) -> Option<String> {
    [
        "message",
        "log",
        "textPayload",
        "jsonPayload.message",
        "event.original",
    ]
    .iter()
    .find_map(|p| at(v, p))
    .map(|m| m.strip_suffix('\n').unwrap_or(m).to_string())
}

/// Where an aggregator says a document came from, most specific first: the pod (Filebeat's
/// `kubernetes.pod.name`, Fluent Bit's and Vector's `kubernetes.pod_name`, Cloud Logging's
/// `resource.labels.pod_name`), the container, the host (`host.name`, `host.hostname`, Vector's
/// `host`), a CloudWatch log stream; the file when none is there.
fn json_origin(v: &Value) -> (OriginKind, String) {
    let pod = [
        "kubernetes.pod.name",
        "kubernetes.pod_name",
        "resource.labels.pod_name",
        "k8s.pod.name",
    ]
    .iter()
    .find_map(|p| at(v, p));
    if let Some(pod) = pod {
        let container = [
            "kubernetes.container.name",
            "kubernetes.container_name",
            "resource.labels.container_name",
        ]
        .iter()
        .find_map(|p| at(v, p));
        let name = match container {
            Some(c) => format!("pod/{pod}/{c}"),
            None => format!("pod/{pod}"),
        };
        return (OriginKind::Pod, name);
    }
    let picks: [(&str, OriginKind); 9] = [
        ("container.name", OriginKind::Container),
        ("container_name", OriginKind::Container),
        ("host.name", OriginKind::Host),
        ("host.hostname", OriginKind::Host),
        ("agent.hostname", OriginKind::Host),
        ("host", OriginKind::Host),
        ("hostname", OriginKind::Host),
        ("resource.labels.instance_id", OriginKind::Host),
        ("logStreamName", OriginKind::Stream),
    ];
    for (path, kind) in picks {
        if let Some(name) = at(v, path) {
            return (kind, name.to_string());
        }
    }
    (OriginKind::File, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_prefix_is_detected_and_opened() {
        let head = b"[pod/web-7f9c-abcde/web] [2026-11-26 10:05:00 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:7)\n\
            [pod/web-7f9c-fghij/web] [2026-11-26 10:05:01 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:7)\n";
        assert_eq!(detect(head), Some(Envelope::KubectlPrefix));
        let o = kubectl(head.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(o.origin, "pod/web-7f9c-abcde/web");
        assert!(o.message.starts_with(b"[2026-11-26 10:05:00 +0000] [1]"));
    }

    #[test]
    fn one_compose_service_is_left_to_the_gunicorn_parser() {
        let one = b"web-1  | [2026-11-26 10:05:00 +0000] [1] [INFO] Booting worker with pid: 7\n\
            web-1  | [2026-11-26 10:05:01 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:7)\n";
        assert_eq!(detect(one), None);
        let two = b"web-1  | [2026-11-26 10:05:00 +0000] [1] [INFO] Booting worker with pid: 7\n\
            web-2  | [2026-11-26 10:05:01 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:7)\n";
        assert_eq!(detect(two), Some(Envelope::Compose));
    }

    #[test]
    fn journal_lines_of_two_hosts() {
        let head = b"Jul 05 09:13:44 web-a gunicorn[3129704]: [2024-07-05 09:13:44 +0200] [3129704] [CRITICAL] WORKER TIMEOUT (pid:3129714)\n\
            Jul 05 09:13:45 web-b kernel: Out of memory: Killed process 7 (gunicorn)\n";
        assert_eq!(detect(head), Some(Envelope::Journal));
        let o = journal(b"Jul 05 09:13:45 web-b kernel: Out of memory").unwrap();
        assert_eq!((&*o.origin, &*o.stream), ("web-b", "kernel"));
    }

    #[test]
    fn json_documents_are_cut_into_their_entries() {
        let doc = concat!(
            "{\n",
            "    \"events\": [\n",
            "        {\"message\": \"a } \\\" { ]\", \"nested\": {\"x\": [1, {\"y\": 2}]}},\n",
            "        {\n",
            "            \"message\": \"b\"\n",
            "        }\n",
            "    ],\n",
            "    \"searchedLogStreams\": [{\"logStreamName\": \"s\"}]\n",
            "}\n",
        );
        let mut objects = JsonObjects::default();
        let mut got: Vec<(u64, Value)> = Vec::new();
        for (i, l) in doc.lines().enumerate() {
            objects.push(i as u64 + 1, l.as_bytes(), |n, o| {
                got.push((n, serde_json::from_slice(o).unwrap()))
            });
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].1["message"], "a } \" { ]");
        assert_eq!(got[1], (4, serde_json::json!({"message": "b"})));
        assert_eq!(detect(doc.as_bytes()), Some(Envelope::JsonDocument));
    }

    #[test]
    fn docker_timestamps_are_not_cloudwatch() {
        assert!(
            cloudwatch_tail(
                b"2026-11-26T22:32:47.000123456Z [2026-11-26 22:32:47 +0000] [42] [INFO] x"
            )
            .is_none()
        );
        let o = cloudwatch_tail(
            b"2026-11-26T10:05:00.123000+00:00 web/web/0123abcd [2026-11-26 10:05:00 +0000] [1] [INFO] x",
        )
        .unwrap();
        assert_eq!(o.origin, "web/web/0123abcd");
    }
}
