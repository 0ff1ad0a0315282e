//! Google Cloud Logging entries: Cloud SQL for PostgreSQL and AlloyDB write each server line
//! as one log entry, the line in `textPayload` (with Cloud SQL's `log_line_prefix`, which
//! older instances write without the time: `[24667]: [1-1] db=...,user=... LOG:  ...`), the
//! time in `timestamp` (RFC 3339). A Logging sink or `gcloud logging read --format=json`
//! exports them as JSON, one object a line or pretty-printed in an array; the line is then
//! read as stderr, with the entry's time when the prefix has none.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use crate::parse::timestamp;

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow, rename = "textPayload")]
    text_payload: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
}

/// One entry's server line(s) and time.
pub struct Payload<'a> {
    pub text: Cow<'a, str>,
    pub time: Option<DateTime<FixedOffset>>,
}

/// Reads one entry; None when it is not a Cloud Logging entry with a text payload.
pub fn payload(object: &[u8]) -> Option<Payload<'_>> {
    let entry: Entry<'_> = serde_json::from_slice(object).ok()?;
    let text = entry.text_payload?;
    let time = entry.timestamp.as_deref().and_then(timestamp::parse);
    Some(Payload { text, time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_payload_and_time() {
        // pgBadger's t/fixtures/cloudsql.log.gz, first line
        let line = br#"{"insertId":"s=a4e36fd29d8545e3aef2b7163cf53485;i=1dbcc;b=85f82a56dac248e3a65a14f508238942;m=2147d16607;t=5a4a9e154566e;x=5e80158e9fa557ac-0@a1","logName":"projects/sk5-formations-thomas/logs/cloudsql.googleapis.com%2Fpostgres.log","receiveTimestamp":"2020-05-02T13:00:22.45390538Z","resource":{"labels":{"database_id":"sk5-formations-thomas:temp-thomas-2020-04-30","project_id":"sk5-formations-thomas","region":"europe"},"type":"cloudsql_database"},"severity":"INFO","textPayload":"[24667]: [1-1] db=[unknown],user=[unknown] LOG:  connection received: host=127.0.0.1 port=59760","timestamp":"2020-05-02T13:00:20.382318Z"}"#;
        let p = payload(line).unwrap();
        assert!(p.text.starts_with("[24667]: [1-1] db=[unknown]"));
        assert_eq!(
            p.time.unwrap().to_rfc3339(),
            "2020-05-02T13:00:20.382318+00:00"
        );
        assert!(payload(br#"{"jsonPayload":{"a":1}}"#).is_none());
    }
}
