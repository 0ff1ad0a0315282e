//! CloudNativePG's stdout: the instance manager logs one JSON object a line, and wraps each of
//! PostgreSQL's csvlog records as `{"level":..,"ts":..,"logger":"postgres","msg":"record",
//! "record":{"log_time":..,"process_id":"600",..}}`, the csvlog columns named as in csvlog.c
//! (`user_name`, `database_name`, `process_id`, `error_severity`, `sql_state_code`, `message`,
//! `detail`, `hint`, `context`, `query`, `application_name`); values are strings. Objects of
//! other loggers (the instance manager itself, `pg_controldata`, `wal-archive`) are not server
//! messages. (cloudnative-pg `pkg/management/log/`, `docs/src/logging.md`.)

use std::borrow::Cow;

use serde::Deserialize;

use super::record::{Record, TimeCache};
use super::severity::{Part, Severity};

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    logger: Option<Cow<'a, str>>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record: Option<CsvRecord<'a>>,
}

/// `process_id` is a string in CloudNativePG's records; accept a number too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Pid<'a> {
    Number(u32),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

#[derive(Deserialize)]
struct CsvRecord<'a> {
    #[serde(borrow)]
    log_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    process_id: Option<Pid<'a>>,
    #[serde(borrow)]
    error_severity: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sql_state_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
    #[serde(borrow)]
    hint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    context: Option<Cow<'a, str>>,
    #[serde(borrow)]
    query: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    database_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    application_name: Option<Cow<'a, str>>,
}

/// What one object was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnpgObject {
    /// A PostgreSQL record, handed to `emit`.
    Record,
    /// An object of another logger, or of the instance manager itself.
    OtherLogger,
    /// A line the server wrote to stderr before its logging collector started
    /// (`"logger":"postgres","msg":"2022-11-27 18:48:18.943 UTC [28] LOG:  ..."`): kept as
    /// text, not read.
    StartupStderr,
    /// Not CloudNativePG's JSON.
    Malformed,
}

#[derive(Default)]
pub struct CnpgReader {
    record: Record,
    pub(super) times: TimeCache,
}

impl CnpgReader {
    pub fn push(
        &mut self,
        number: u64,
        object: &[u8],
        emit: &mut dyn FnMut(&Record),
    ) -> CnpgObject {
        let Ok(entry) = serde_json::from_slice::<Entry<'_>>(object) else {
            return CnpgObject::Malformed;
        };
        let Some(j) = entry
            .record
            .filter(|_| entry.logger.as_deref() == Some("postgres"))
        else {
            return if entry.logger.as_deref() == Some("postgres") {
                CnpgObject::StartupStderr
            } else if entry.logger.is_some() || entry.msg.is_some() {
                CnpgObject::OtherLogger
            } else {
                CnpgObject::Malformed
            };
        };
        let (Some(severity), Some(message)) = (
            j.error_severity
                .as_deref()
                .and_then(|s| Severity::from_word(s.as_bytes())),
            j.message.as_deref(),
        ) else {
            return CnpgObject::Malformed;
        };
        let r = &mut self.record;
        r.clear();
        r.line = number;
        r.severity = severity;
        r.pid = match j.process_id {
            Some(Pid::Number(n)) => Some(n),
            Some(Pid::Text(t)) => t.parse().ok(),
            None => None,
        };
        r.time = j
            .log_time
            .as_deref()
            .and_then(|t| self.times.parse(t.as_bytes(), false, number));
        if let Some(code) = j.sql_state_code.as_deref()
            && code != "00000"
        {
            r.set_sqlstate(code.as_bytes());
        }
        r.set_part(None, message.as_bytes());
        for (part, text) in [
            (Part::Detail, &j.detail),
            (Part::Hint, &j.hint),
            (Part::Context, &j.context),
            (Part::Statement, &j.query),
        ] {
            if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
                r.set_part(Some(part), text.as_bytes());
            }
        }
        let mut lossy = false;
        for (target, value) in [
            (&mut r.user, &j.user_name),
            (&mut r.database, &j.database_name),
            (&mut r.application, &j.application_name),
        ] {
            Record::set_field(target, value.as_deref().map(str::as_bytes), &mut lossy);
        }
        emit(r);
        CnpgObject::Record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_record_and_tells_other_loggers() {
        // the first line of pgBadger's t/fixtures/cnpg.log.gz
        let line = br#"{"level":"info","ts":1669575482.0968924,"logger":"postgres","msg":"record","logging_pod":"myapp-pg-cluster-1","record":{"log_time":"2022-11-27 18:58:02.096 UTC","user_name":"postgres","database_name":"postgres","process_id":"600","connection_from":"[local]","session_id":"6383b33a.258","session_line_num":"4","command_tag":"idle","session_start_time":"2022-11-27 18:58:02 UTC","transaction_id":"0","error_severity":"LOG","sql_state_code":"00000","message":"disconnection: session time: 0:00:00.007 user=postgres database=postgres host=[local]","application_name":"pg_isready","backend_type":"client backend","query_id":"0"}}"#;
        let mut reader = CnpgReader::default();
        let mut got = None;
        let outcome = reader.push(3, line, &mut |r: &Record| {
            got = Some((r.pid, r.message.clone(), r.time.is_some()))
        });
        assert_eq!(outcome, CnpgObject::Record);
        let (pid, message, timed) = got.unwrap();
        assert_eq!(pid, Some(600));
        assert!(message.starts_with("disconnection: session time: 0:00:00.007"));
        assert!(timed);
        let other = br#"{"level":"info","ts":1669575244.9152422,"logger":"wal-archive","msg":"Backup not configured, skip WAL archiving","logging_pod":"myapp-pg-cluster-1","walName":"pg_wal/000000010000000000000003","currentPrimary":"myapp-pg-cluster-1","targetPrimary":"myapp-pg-cluster-1"}"#;
        assert_eq!(
            reader.push(4, other, &mut |_: &Record| {}),
            CnpgObject::OtherLogger
        );
        assert_eq!(
            reader.push(5, b"{\"a\":1}", &mut |_: &Record| {}),
            CnpgObject::Malformed
        );
    }
}
