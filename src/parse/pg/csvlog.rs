//! csvlog (`log_destination = 'csvlog'`): one record per message, RFC 4180 quoting, fields that
//! span lines when the message does. Columns, as elog.c/csvlog.c write them: log_time,
//! user_name, database_name, process_id, connection_from, session_id, session_line_num,
//! command_tag, session_start_time, virtual_transaction_id, transaction_id, error_severity,
//! sql_state_code, message, detail, hint, internal_query, internal_query_pos, context, query,
//! query_pos, location, application_name, then backend_type (13+), leader_pid and query_id (14+).
//!
//! Hand-written rather than the `csv` crate: records arrive as lines from the bounded line
//! splitter (so an overlong line is skipped, not buffered), and a record is complete exactly
//! when its count of `"` is even, which a memchr count tells at memory speed.

use memchr::memchr_iter;

use super::record::{MAX_PART_BYTES, Record, TimeCache};
use super::severity::Severity;

const LOG_TIME: usize = 0;
const USER: usize = 1;
const DATABASE: usize = 2;
const PID: usize = 3;
const SEVERITY: usize = 11;
const SQLSTATE: usize = 12;
const MESSAGE: usize = 13;
const DETAIL: usize = 14;
const HINT: usize = 15;
const CONTEXT: usize = 18;
const QUERY: usize = 19;
const APPLICATION: usize = 22;
/// PostgreSQL 9.0–12 wrote 23 columns; later versions add more at the end.
const MIN_FIELDS: usize = 23;

/// What became of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvLine {
    /// Part of a record still open (a quoted field goes on).
    Pending,
    /// Completed a record, handed to `emit`.
    Record,
    /// Completed a record that is not a csvlog record.
    Malformed,
    /// An open record grew past the cap and was dropped.
    TooLong,
}

#[derive(Default)]
pub struct CsvAssembler {
    buf: Vec<u8>,
    first_line: u64,
    quotes: usize,
    fields: Vec<(usize, usize, bool)>,
    record: Record,
    pub(super) times: TimeCache,
    pub lossy_lines: u64,
}

impl CsvAssembler {
    pub fn push(&mut self, number: u64, bytes: &[u8], emit: &mut dyn FnMut(&Record)) -> CsvLine {
        if self.buf.is_empty() && self.quotes == 0 {
            self.first_line = number;
        } else {
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(bytes);
        self.quotes += memchr_iter(b'"', bytes).count();
        if self.quotes % 2 == 1 {
            if self.buf.len() > MAX_PART_BYTES * 4 {
                self.reset();
                return CsvLine::TooLong;
            }
            return CsvLine::Pending;
        }
        let outcome = if self.parse() {
            emit(&self.record);
            CsvLine::Record
        } else {
            CsvLine::Malformed
        };
        self.reset();
        outcome
    }

    /// True when an open record was left at the end of input (an unterminated quote).
    pub fn finish(&mut self) -> bool {
        let open = !self.buf.is_empty();
        self.reset();
        open
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.quotes = 0;
    }

    /// Splits `buf` into fields and fills `record`; false when it is not a csvlog record.
    fn parse(&mut self) -> bool {
        split_fields(&self.buf, &mut self.fields);
        if self.fields.len() < MIN_FIELDS {
            return false;
        }
        let r = &mut self.record;
        r.clear();
        r.line = self.first_line;
        let buf = &self.buf;
        let raw = |i: usize| {
            let (s, e, _) = self.fields[i];
            &buf[s..e]
        };
        let Some(severity) = Severity::from_word(raw(SEVERITY)) else {
            return false;
        };
        r.severity = severity;
        r.time = self.times.parse(raw(LOG_TIME), false, self.first_line);
        if r.time.is_none() && !self.times.unresolved() {
            return false;
        }
        r.pid = std::str::from_utf8(raw(PID))
            .ok()
            .and_then(|s| s.parse().ok());
        let code = raw(SQLSTATE);
        if code != b"00000" {
            r.set_sqlstate(code);
        }
        let mut scratch = Vec::new();
        let mut lossy = false;
        for (i, part) in [
            (MESSAGE, None),
            (DETAIL, Some(super::severity::Part::Detail)),
            (HINT, Some(super::severity::Part::Hint)),
            (CONTEXT, Some(super::severity::Part::Context)),
            (QUERY, Some(super::severity::Part::Statement)),
        ] {
            let text = field(buf, self.fields[i], &mut scratch);
            if i == MESSAGE || !text.is_empty() {
                r.set_part(part, text);
            }
        }
        Record::set_field(
            &mut r.user,
            Some(field(buf, self.fields[USER], &mut scratch)),
            &mut lossy,
        );
        Record::set_field(
            &mut r.database,
            Some(field(buf, self.fields[DATABASE], &mut scratch)),
            &mut lossy,
        );
        Record::set_field(
            &mut r.application,
            Some(field(buf, self.fields[APPLICATION], &mut scratch)),
            &mut lossy,
        );
        if lossy || r.lossy {
            self.lossy_lines += 1;
        }
        true
    }
}

/// A field's text with `""` unescaped (into `scratch` when it has any).
fn field<'a>(
    buf: &'a [u8],
    (s, e, escaped): (usize, usize, bool),
    scratch: &'a mut Vec<u8>,
) -> &'a [u8] {
    if !escaped {
        return &buf[s..e];
    }
    scratch.clear();
    let mut i = s;
    while i < e {
        scratch.push(buf[i]);
        i += if buf[i] == b'"' { 2 } else { 1 };
    }
    scratch
}

/// Splits one CSV record into (start, end, has `""`) ranges, quotes excluded.
pub fn split_fields(buf: &[u8], out: &mut Vec<(usize, usize, bool)>) {
    out.clear();
    let mut i = 0;
    loop {
        if buf.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let mut escaped = false;
            loop {
                match memchr::memchr(b'"', &buf[j..]) {
                    None => {
                        out.push((start, buf.len(), escaped));
                        return;
                    }
                    Some(k) => {
                        j += k;
                        if buf.get(j + 1) == Some(&b'"') {
                            escaped = true;
                            j += 2;
                        } else {
                            break;
                        }
                    }
                }
            }
            out.push((start, j, escaped));
            i = j + 1;
            // to the comma
            match memchr::memchr(b',', &buf[i..]) {
                Some(k) => i += k + 1,
                None => return,
            }
        } else {
            match memchr::memchr(b',', &buf[i..]) {
                Some(k) => {
                    out.push((i, i + k, false));
                    i += k + 1;
                }
                None => {
                    out.push((i, buf.len(), false));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLOCK: &str = "2026-11-26 22:38:18.128 UTC,\"django\",\"shop\",8818,\"127.0.0.1:34182\",6b08b4d9.2272,10,\"UPDATE\",2026-11-26 22:38:17 UTC,4/33,783,ERROR,40P01,\"deadlock detected\",\"Process 8818 waits for ShareLock on transaction 784; blocked by process 8819.\nProcess 8819 waits for ShareLock on transaction 783; blocked by process 8818.\nProcess 8818: UPDATE \"\"app_order\"\" SET \"\"total\"\" = 1\nProcess 8819: UPDATE app_order SET total = total + 1 WHERE id = 10\",\"See server log for query details.\",,,\"while updating tuple (0,11) in relation \"\"app_order\"\"\",\"UPDATE \"\"app_order\"\" SET \"\"total\"\" = 1\",,,\"shop-deadlock-f\",\"client backend\",,0";

    #[test]
    fn multi_line_quoted_fields_make_one_record() {
        let mut a = CsvAssembler::default();
        let mut got = Vec::new();
        let mut emit = |r: &Record| {
            got.push((
                r.line,
                r.pid,
                r.sqlstate().map(str::to_string),
                r.detail.clone(),
                r.statement.clone(),
                r.application.clone(),
            ))
        };
        let lines: Vec<&str> = DEADLOCK.split('\n').collect();
        assert_eq!(lines.len(), 4);
        for (i, l) in lines.iter().enumerate() {
            let outcome = a.push(10 + i as u64, l.as_bytes(), &mut emit);
            assert_eq!(outcome == CsvLine::Record, i == 3, "line {i}: {outcome:?}");
        }
        assert_eq!(got.len(), 1);
        let (line, pid, code, detail, statement, app) = &got[0];
        assert_eq!((*line, *pid), (10, Some(8818)));
        assert_eq!(code.as_deref(), Some("40P01"));
        assert!(detail.contains("\nProcess 8818: UPDATE \"app_order\" SET \"total\" = 1\n"));
        assert_eq!(statement, "UPDATE \"app_order\" SET \"total\" = 1");
        assert_eq!(app, "shop-deadlock-f");
    }

    #[test]
    fn non_csv_is_malformed_and_unterminated_is_reported() {
        let mut a = CsvAssembler::default();
        let mut emit = |_: &Record| {};
        assert_eq!(a.push(1, b"a,b,c", &mut emit), CsvLine::Malformed);
        assert_eq!(
            a.push(2, b"2026-11-26 22:38:18.128 UTC,\"open", &mut emit),
            CsvLine::Pending
        );
        assert!(a.finish());
    }

    #[test]
    fn splits_empty_and_quoted_fields() {
        let mut f = Vec::new();
        split_fields(b"a,,\"x,\"\"y\"\"\",", &mut f);
        assert_eq!(
            f,
            vec![(0, 1, false), (2, 2, false), (4, 11, true), (13, 13, false)]
        );
    }
}
