//! `wtdiag watch`'s JSON Lines (`--format json`) as an input of `logs`: each `watch_incident`
//! object is a worker sampled while it was stuck, with the cause, request and frames that the
//! error log of a Gunicorn before 22 cannot give. Told from other inputs by its content (the
//! first line is an incident or watch's summary), whatever the file's name.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::report::{Cause, Confidence, Frame};

/// One incident as watch wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchIncident {
    pub pid: u32,
    /// `killed`, `recovered` or `interrupted`.
    pub outcome: String,
    pub caught_at: DateTime<FixedOffset>,
    pub ended_at: DateTime<FixedOffset>,
    pub cause: Cause,
    pub confidence: Confidence,
    pub reason: String,
    pub request: Option<String>,
    pub stuck_frame: Option<Frame>,
    pub call_site: Option<Frame>,
}

/// True when the input's first line is a watch incident or watch's summary report.
pub fn looks_like_watch(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let first = text.trim_start();
    first.starts_with("{\"kind\":\"watch_incident\"")
        || (first.starts_with("{\"schema_version\":")
            && first
                .lines()
                .next()
                .is_some_and(|l| l.contains("\"command\":\"watch\"")))
}

/// Reads one line; None for the summary line and anything that is not an incident.
pub fn parse_line(text: &str) -> Option<WatchIncident> {
    if !text.starts_with("{\"kind\":\"watch_incident\"") {
        return None;
    }
    let v: Value = serde_json::from_str(text).ok()?;
    let time = |key: &str| DateTime::parse_from_rfc3339(v.get(key)?.as_str()?).ok();
    let name = v.get("cause").and_then(Value::as_str).unwrap_or("unknown");
    let cause = Cause::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .unwrap_or(Cause::Unknown);
    let confidence = match v.get("confidence").and_then(Value::as_str) {
        Some("high") => Confidence::High,
        Some("medium") => Confidence::Medium,
        _ => Confidence::Low,
    };
    let text_of = |key: &str, max: usize| {
        v.get(key)
            .and_then(Value::as_str)
            .map(|s| crate::parse::cap(s, max).to_string())
    };
    Some(WatchIncident {
        pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
        outcome: text_of("outcome", 20)?,
        caught_at: time("caught_at")?,
        ended_at: time("ended_at")?,
        cause,
        confidence,
        reason: text_of("reason", 1000).unwrap_or_default(),
        request: text_of("request", 300),
        stuck_frame: v.get("stuck_frame").and_then(frame),
        call_site: v.get("call_site").and_then(frame),
    })
}

fn frame(v: &Value) -> Option<Frame> {
    Some(Frame {
        file: crate::parse::cap(v.get("file")?.as_str()?, 500).to_string(),
        line: u32::try_from(v.get("line")?.as_u64()?).ok()?,
        function: crate::parse::cap(v.get("function")?.as_str()?, 200).to_string(),
        code: v
            .get("code")
            .and_then(Value::as_str)
            .map(|c| crate::parse::cap(c, 300).to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_line_is_read_and_the_summary_is_not() {
        let line = r#"{"kind":"watch_incident","pid":4242,"state":"stuck","cause":"lock_wait","outcome":"killed","caught_at":"2026-12-02T14:37:12.084Z","ended_at":"2026-12-02T14:37:17.486Z","request":"GET /db/lock","confidence":"high","reason":"its backend 77 waits","stuck_frame":{"file":"/v/psycopg2/extras.py","line":0,"function":"execute"},"call_site":{"file":"/app/wtapp/views.py","line":70,"function":"db_lock_view"}}"#;
        assert!(looks_like_watch(line.as_bytes()));
        let i = parse_line(line).unwrap();
        assert_eq!(i.pid, 4242);
        assert_eq!(i.cause, Cause::LockWait);
        assert_eq!(i.confidence, Confidence::High);
        assert_eq!(i.request.as_deref(), Some("GET /db/lock"));
        assert_eq!(i.call_site.unwrap().line, 70);
        let summary = r#"{"schema_version":1,"command":"watch","wtdiag_version":"0.1.0"}"#;
        assert!(looks_like_watch(summary.as_bytes()));
        assert!(parse_line(summary).is_none());
        assert!(!looks_like_watch(
            b"[2026-12-02 14:37:12 +0000] [1] [INFO] Starting gunicorn"
        ));
        assert!(!looks_like_watch(
            br#"{"schema_version":1,"command":"logs"}"#
        ));
    }
}
