//! Azure Database for PostgreSQL (Flexible Server) logs as its diagnostic settings export them
//! (a storage account's `PT1H.json`, an Event Hub, Log Analytics): one JSON object per server
//! message, category `PostgreSQLLogs`, the message's fields under `properties`: `timestamp`,
//! `processId`, `errorLevel`, `sqlerrcode`, `message` (the whole stderr line, prefix included)
//! and `detail`. The message text is what follows `LEVEL:  ` in `message`.

use std::borrow::Cow;

use serde::Deserialize;

use super::record::{Record, TimeCache};
use super::severity::{Part, Severity};

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    properties: Option<Properties<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Properties<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    process_id: Option<u32>,
    #[serde(borrow)]
    error_level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sqlerrcode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
}

#[derive(Default)]
pub struct AzureReader {
    record: Record,
    pub(super) times: TimeCache,
}

impl AzureReader {
    /// Reads one object; false when it is not a PostgreSQL log record of Azure's.
    pub fn push(&mut self, number: u64, object: &[u8], emit: &mut dyn FnMut(&Record)) -> bool {
        let Ok(entry) = serde_json::from_slice::<Entry<'_>>(object) else {
            return false;
        };
        let Some(p) = entry
            .properties
            .filter(|_| entry.category.as_deref() == Some("PostgreSQLLogs"))
        else {
            return false;
        };
        let (Some(level), Some(message)) = (p.error_level.as_deref(), p.message.as_deref()) else {
            return false;
        };
        let Some(severity) = Severity::from_word(level.as_bytes()) else {
            return false;
        };
        let r = &mut self.record;
        r.clear();
        r.line = number;
        r.severity = severity;
        r.pid = p.process_id;
        r.time = p
            .timestamp
            .as_deref()
            .and_then(|t| self.times.parse(t.as_bytes(), false, number));
        if let Some(code) = p.sqlerrcode.as_deref()
            && code != "00000"
        {
            r.set_sqlstate(code.as_bytes());
        }
        r.set_part(None, message_text(message, level).as_bytes());
        if let Some(detail) = p.detail.as_deref().filter(|d| !d.is_empty()) {
            r.set_part(Some(Part::Detail), detail.as_bytes());
        }
        emit(r);
        true
    }
}

/// The text after `LEVEL:  ` (Flexible Server's `message` is the whole line); the message
/// itself when it has no such marker.
fn message_text<'a>(message: &'a str, level: &str) -> &'a str {
    let marker_at = message
        .match_indices(level)
        .find(|(i, _)| message[i + level.len()..].starts_with(":  "));
    match marker_at {
        Some((i, _)) => &message[i + level.len() + 3..],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_after_the_level_or_whole() {
        assert_eq!(
            message_text(
                "2023-02-27 22:21:18.277 UTC [1984] [user=azuresu,db=postgres,app=[unknown]] LOG:  duration: 0.028 ms  execute <unnamed>: SELECT 1",
                "LOG"
            ),
            "duration: 0.028 ms  execute <unnamed>: SELECT 1"
        );
        assert_eq!(
            message_text(
                "connection received: host=10.0.1.4 port=38850 pid=3312",
                "LOG"
            ),
            "connection received: host=10.0.1.4 port=38850 pid=3312"
        );
    }
}
