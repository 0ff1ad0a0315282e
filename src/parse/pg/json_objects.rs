//! JSON objects from lines, for the exports that wrap PostgreSQL's lines in JSON: one object a
//! line (Cloud Logging sinks, CloudNativePG's stdout, Azure's storage export) or pretty-printed
//! over many lines, alone or in an array (`gcloud logging read --format=json`, Azure's portal).
//! Objects end where their braces balance, counted outside strings, so the cost is one pass over
//! the bytes; an object longer than [`MAX_OBJECT_BYTES`] is dropped, not buffered.

use super::record::MAX_PART_BYTES;

/// The most one object may take before it is dropped.
pub const MAX_OBJECT_BYTES: usize = MAX_PART_BYTES * 4;

/// What became of one line.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonLine {
    /// Part of an object still open.
    Pending,
    /// Closed an object: its first line; the text is [`JsonObjects::object`].
    Object(u64),
    /// Nothing but array punctuation or blanks.
    Blank,
    /// Text outside any object.
    NotJson,
    /// An object grew past the cap and was dropped.
    TooLong,
}

#[derive(Default)]
pub struct JsonObjects {
    buf: Vec<u8>,
    first_line: u64,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Skipping the rest of an object that grew too long.
    dropping: bool,
}

impl JsonObjects {
    pub fn push(&mut self, number: u64, bytes: &[u8]) -> JsonLine {
        let mut line = bytes;
        if self.depth == 0 {
            self.buf.clear();
            self.dropping = false;
            line = line.trim_ascii();
            while let Some(rest) = line
                .strip_prefix(b"[")
                .or_else(|| line.strip_prefix(b","))
                .or_else(|| line.strip_prefix(b"]"))
            {
                line = rest.trim_ascii_start();
            }
            if line.is_empty() {
                return JsonLine::Blank;
            }
            line = strip_timestamp(line);
            if line[0] != b'{' {
                return JsonLine::NotJson;
            }
            self.first_line = number;
        } else if !self.dropping {
            self.buf.push(b'\n');
        }
        let mut end = None;
        for (i, &b) in line.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let take = &line[..end.unwrap_or(line.len())];
        if !self.dropping {
            if self.buf.len() + take.len() > MAX_OBJECT_BYTES {
                self.dropping = true;
                self.buf.clear();
            } else {
                self.buf.extend_from_slice(take);
            }
        }
        match (end, self.dropping) {
            (Some(_), true) => {
                self.in_string = false;
                JsonLine::TooLong
            }
            (Some(_), false) => JsonLine::Object(self.first_line),
            (None, _) => JsonLine::Pending,
        }
    }

    /// The object the last [`JsonLine::Object`] closed.
    pub fn object(&self) -> &[u8] {
        &self.buf
    }

    /// True when an object was left open at the end of input.
    pub fn open(&self) -> bool {
        self.depth > 0
    }
}

/// `kubectl logs --timestamps` (and `docker logs -t`) put an RFC 3339 time and a space before
/// each line: `2026-09-19T14:09:27.214607909Z {"level":"info",...}`.
pub fn strip_timestamp(line: &[u8]) -> &[u8] {
    if line.first().is_some_and(u8::is_ascii_digit)
        && line.get(4) == Some(&b'-')
        && line.get(10) == Some(&b'T')
        && let Some(space) = memchr::memchr(b' ', &line[..line.len().min(40)])
        && line.get(space + 1) == Some(&b'{')
    {
        return &line[space + 1..];
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_a_line_and_pretty_printed_arrays() {
        let mut j = JsonObjects::default();
        assert_eq!(j.push(1, br#"{"a":"}{","b":[1,2]}"#), JsonLine::Object(1));
        assert_eq!(j.object(), br#"{"a":"}{","b":[1,2]}"#);
        let pretty = [
            "[",
            "  {",
            r#"    "t": "x\"}","#,
            "    \"n\": {\"m\": 1}",
            "  },",
            "  {\"k\": 2}",
            "]",
        ];
        let got: Vec<JsonLine> = pretty
            .iter()
            .enumerate()
            .map(|(i, l)| j.push(10 + i as u64, l.as_bytes()))
            .collect();
        assert_eq!(
            got,
            vec![
                JsonLine::Blank,
                JsonLine::Pending,
                JsonLine::Pending,
                JsonLine::Pending,
                JsonLine::Object(11),
                JsonLine::Object(15),
                JsonLine::Blank
            ]
        );
        assert_eq!(j.push(20, b"plain text"), JsonLine::NotJson);
        assert_eq!(
            j.push(22, b"2026-09-19T14:09:27.214607909Z {\"a\": 1}"),
            JsonLine::Object(22)
        );
        assert_eq!(j.object(), b"{\"a\": 1}");
        assert_eq!(j.push(21, b"{\"open\": 1"), JsonLine::Pending);
        assert!(j.open());
    }
}
