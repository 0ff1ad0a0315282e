//! jsonlog (`log_destination = 'jsonlog'`, PostgreSQL 15+): one JSON object per line, keys as
//! jsonlog.c writes them (`timestamp`, `pid`, `error_severity`, `state_code`, `message`,
//! `detail`, `hint`, `context`, `statement`, `user`, `dbname`, `application_name`, ...). Keys
//! with no value are left out by the server.

use std::borrow::Cow;

use serde::Deserialize;

use super::record::{Record, TimeCache};
use super::severity::{Part, Severity};

#[derive(Deserialize)]
struct JsonRecord<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    pid: Option<u32>,
    #[serde(borrow)]
    error_severity: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
    #[serde(borrow)]
    hint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    context: Option<Cow<'a, str>>,
    #[serde(borrow)]
    statement: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dbname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    application_name: Option<Cow<'a, str>>,
}

#[derive(Default)]
pub struct JsonAssembler {
    record: Record,
    pub(super) times: TimeCache,
}

impl JsonAssembler {
    /// Reads one line; false when it is not a jsonlog record.
    pub fn push(&mut self, number: u64, bytes: &[u8], emit: &mut dyn FnMut(&Record)) -> bool {
        let Ok(j) = serde_json::from_slice::<JsonRecord<'_>>(bytes) else {
            return false;
        };
        let (Some(severity), Some(message)) = (
            j.error_severity
                .as_deref()
                .and_then(|s| Severity::from_word(s.as_bytes())),
            j.message.as_deref(),
        ) else {
            return false;
        };
        let r = &mut self.record;
        r.clear();
        r.line = number;
        r.severity = severity;
        r.pid = j.pid;
        r.time = j
            .timestamp
            .as_deref()
            .and_then(|t| self.times.parse(t.as_bytes(), false, number));
        if let Some(code) = j.state_code.as_deref()
            && code != "00000"
        {
            r.set_sqlstate(code.as_bytes());
        }
        r.set_part(None, message.as_bytes());
        for (part, text) in [
            (Part::Detail, &j.detail),
            (Part::Hint, &j.hint),
            (Part::Context, &j.context),
            (Part::Statement, &j.statement),
        ] {
            if let Some(text) = text.as_deref() {
                r.set_part(Some(part), text.as_bytes());
            }
        }
        let mut lossy = false;
        Record::set_field(
            &mut r.user,
            j.user.as_deref().map(str::as_bytes),
            &mut lossy,
        );
        Record::set_field(
            &mut r.database,
            j.dbname.as_deref().map(str::as_bytes),
            &mut lossy,
        );
        Record::set_field(
            &mut r.application,
            j.application_name.as_deref().map(str::as_bytes),
            &mut lossy,
        );
        emit(r);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_lock_wait_record() {
        let line = br#"{"timestamp":"2026-11-26 22:38:15.674 UTC","user":"django","dbname":"shop","pid":8794,"error_severity":"LOG","message":"process 8794 still waiting for ShareLock on transaction 779 after 200.131 ms","detail":"Process holding the lock: 8793. Wait queue: 8794.","context":"while updating tuple (0,1) in relation \"app_order\"","statement":"UPDATE \"app_order\" SET \"status\" = $1","application_name":"shop-lockchain-b","query_id":0}"#;
        let mut a = JsonAssembler::default();
        let mut got = None;
        assert!(a.push(7, line, &mut |r: &Record| {
            got = Some((
                r.pid,
                r.detail.clone(),
                r.context.clone(),
                r.statement.clone(),
                r.time.is_some(),
            ))
        }));
        let (pid, detail, context, statement, timed) = got.unwrap();
        assert_eq!(pid, Some(8794));
        assert_eq!(detail, "Process holding the lock: 8793. Wait queue: 8794.");
        assert_eq!(
            context,
            "while updating tuple (0,1) in relation \"app_order\""
        );
        assert_eq!(statement, "UPDATE \"app_order\" SET \"status\" = $1");
        assert!(timed);
        assert!(!a.push(8, b"{\"not\": \"a record\"}", &mut |_: &Record| {}));
        assert!(!a.push(9, b"{truncated", &mut |_: &Record| {}));
    }
}
