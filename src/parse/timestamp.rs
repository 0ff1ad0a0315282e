//! Timestamp parsing for log lines, fast path first: the fixed-width forms Gunicorn and
//! PostgreSQL write are decoded by hand; anything else goes through chrono's parser.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};

use crate::parse::zones;

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`) at the start of `b`; returns the time and bytes used.
fn naive_prefix(b: &[u8]) -> Option<(NaiveDateTime, usize)> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        digits(&b[0..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )?;
    let (h, m, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let mut used = 19;
    let mut nanos = 0u32;
    if b.len() > 20 && matches!(b[19], b'.' | b',') {
        let frac_end = b[20..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(b.len(), |p| 20 + p);
        let frac = &b[20..frac_end];
        if !frac.is_empty() {
            let take = frac.len().min(9);
            nanos = digits(&frac[..take])? * 10u32.pow(9 - take as u32);
            used = frac_end;
        }
    }
    let time = date.and_hms_nano_opt(h, m, s.min(59), nanos)?;
    Some((time, used))
}

/// The zone written after a time: a numeric offset, or an abbreviation still to be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneText<'a> {
    Offset(FixedOffset),
    /// `EST`, `CEST`, `UTC`: 2 to 5 letters (see [`crate::parse::zones`]).
    Abbreviation(&'a str),
}

/// A UTC offset at the start of `b`: `+0000`, `+00:00`, `-05`, `Z`, or a zone abbreviation.
fn offset_prefix(b: &[u8]) -> Option<(ZoneText<'_>, usize)> {
    match b.first()? {
        b'Z' if b.get(1).is_none_or(|c| !c.is_ascii_alphabetic()) => {
            Some((ZoneText::Offset(FixedOffset::east_opt(0)?), 1))
        }
        sign @ (b'+' | b'-') => {
            let sign = if *sign == b'-' { -1 } else { 1 };
            let rest = &b[1..];
            let (hh, mm, used) = if rest.len() >= 5 && rest[2] == b':' {
                (digits(&rest[0..2])?, digits(&rest[3..5])?, 6)
            } else if rest.len() >= 4 && digits(&rest[0..4]).is_some() {
                (digits(&rest[0..2])?, digits(&rest[2..4])?, 5)
            } else if rest.len() >= 2 {
                (digits(&rest[0..2])?, 0, 3)
            } else {
                return None;
            };
            Some((
                ZoneText::Offset(FixedOffset::east_opt(sign * (hh * 3600 + mm * 60) as i32)?),
                used,
            ))
        }
        _ => {
            let end = b
                .iter()
                .position(|c| !c.is_ascii_alphabetic())
                .unwrap_or(b.len());
            if (2..=5).contains(&end) {
                // ASCII letters only, so this is valid UTF-8
                let name = std::str::from_utf8(&b[..end]).ok()?;
                Some((ZoneText::Abbreviation(name), end))
            } else {
                None
            }
        }
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS[.fff][ ][offset]` at the start of `b`. Without an offset the
/// time is read as UTC. A zone abbreviation is read as PostgreSQL reads it (see
/// [`crate::parse::zones`]); one the table does not resolve is read as UTC, as before: callers
/// that must not guess (the PostgreSQL reader) use [`parse_prefix_zoned`].
pub fn parse_prefix(b: &[u8]) -> Option<(DateTime<FixedOffset>, usize)> {
    let (naive, offset, used) = parse_prefix_parts(b)?;
    let offset = offset.unwrap_or(FixedOffset::east_opt(0)?);
    Some((offset.from_local_datetime(&naive).single()?, used))
}

/// Like [`parse_prefix`], but says whether the text had an offset, so that a caller can put an
/// offset-less time (Python `logging`'s default) in the zone of another input.
pub fn parse_prefix_parts(b: &[u8]) -> Option<(NaiveDateTime, Option<FixedOffset>, usize)> {
    let (naive, zone, used) = parse_prefix_zoned(b)?;
    let offset = match zone {
        None => None,
        Some(ZoneText::Offset(o)) => Some(o),
        Some(ZoneText::Abbreviation(name)) => Some(
            zones::lookup(name)
                .and_then(|a| a.offset_at(naive))
                .unwrap_or(FixedOffset::east_opt(0)?),
        ),
    };
    Some((naive, offset, used))
}

/// The local time, the zone text after it (unresolved) and the bytes used.
pub fn parse_prefix_zoned(b: &[u8]) -> Option<(NaiveDateTime, Option<ZoneText<'_>>, usize)> {
    let (naive, mut used) = naive_prefix(b)?;
    let rest = &b[used..];
    let skip = usize::from(rest.first() == Some(&b' '));
    let mut zone = None;
    if let Some((z, n)) = offset_prefix(&rest[skip..]) {
        zone = Some(z);
        used += skip + n;
    }
    Some((naive, zone, used))
}

/// The first timestamp at the start of a word in the first lines of `text` (the head of a log):
/// to put rotated logs in time order without reading them. Looks at 200 lines, 300 bytes each.
pub fn first_in(text: &[u8]) -> Option<DateTime<FixedOffset>> {
    for line in text.split(|&b| b == b'\n').take(200) {
        let window = &line[..line.len().min(300)];
        for start in 0..window.len().saturating_sub(18) {
            if window[start].is_ascii_digit()
                && (start == 0 || !window[start - 1].is_ascii_digit())
                && let Some((t, _)) = parse_prefix(&window[start..])
            {
                return Some(t);
            }
        }
    }
    None
}

/// Parses a whole timestamp string, trying the fast path, then RFC 3339 and a few common
/// `logging` date formats.
pub fn parse(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    if let Some((t, used)) = parse_prefix(s.as_bytes())
        && used == s.len()
    {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    for fmt in ["%d/%b/%Y:%H:%M:%S %z", "%a %b %d %H:%M:%S %Y %z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorn_form_keeps_offset() {
        let t = parse("2026-11-26 22:32:47 +0100").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T22:32:47+01:00");
    }

    #[test]
    fn postgres_millis_and_zone_name() {
        let (t, used) = parse_prefix(b"2026-11-26 22:32:47.549 UTC [1824] LOG").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T22:32:47.549+00:00");
        assert_eq!(used, 27);
    }

    #[test]
    fn zone_abbreviations_are_read_as_postgres_reads_them() {
        // issue 8: this was read as 06:57Z
        let (t, used) = parse_prefix(b"2018-09-27 06:57:01.030 EST [20194] LOG").unwrap();
        assert_eq!(t.to_rfc3339(), "2018-09-27T06:57:01.030-05:00");
        assert_eq!(used, 27);
        let (t, _) = parse_prefix(b"2026-07-01 12:00:00 CEST").unwrap();
        assert_eq!(t.offset().local_minus_utc(), 7200);
        let (_, zone, _) = parse_prefix_zoned(b"2026-07-01 12:00:00 WTD x").unwrap();
        assert_eq!(zone, Some(ZoneText::Abbreviation("WTD")));
        // numeric offsets (Gunicorn, app logs) are as they were
        let (_, off, _) = parse_prefix_parts(b"2026-11-26 22:32:47 +0530 x").unwrap();
        assert_eq!(off.unwrap().local_minus_utc(), 19800);
        let (_, off, _) = parse_prefix_parts(b"2026-11-26 22:32:47,123 42 INFO x").unwrap();
        assert_eq!(off, None);
    }

    #[test]
    fn iso_with_nanos_and_z() {
        let (t, _) = parse_prefix(b"2026-11-26T22:32:47.123456789Z x").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 123_456_789);
    }

    #[test]
    fn first_in_finds_the_first_record_time() {
        let head =
            b"garbage line\n[2026-11-26 22:32:47 +0000] [7] [INFO] Starting gunicorn 23.0.0\n";
        assert_eq!(
            first_in(head).unwrap().to_rfc3339(),
            "2026-11-26T22:32:47+00:00"
        );
        let csv = b"2026-11-26 22:56:54.867 UTC,\"django\",\"shop\",12583\n";
        assert!(first_in(csv).is_some());
        assert!(first_in(b"no time here\n").is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("2026-13-45 99:99:99").is_none());
        assert!(parse_prefix(b"hello").is_none());
    }
}
