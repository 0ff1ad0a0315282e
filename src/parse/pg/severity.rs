//! The severity word after the prefix (`LOG:  `, `ERROR:  `, `DETAIL:  `, ...), as elog.c
//! writes it: the word, a colon and two spaces; with `log_error_verbosity = verbose` the
//! SQLSTATE follows (`ERROR:  40P01: deadlock detected`).

/// A line's severity: a message's own level, or the part of a message a secondary line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Log,
    Fatal,
    Panic,
    /// `DETAIL:`, `HINT:`, ...: a part of the message before it.
    Part(Part),
}

/// The secondary lines of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Detail,
    Hint,
    Query,
    Context,
    Location,
    Statement,
}

impl Severity {
    /// The word as the log spells it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Notice => "NOTICE",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Log => "LOG",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
            Severity::Part(Part::Detail) => "DETAIL",
            Severity::Part(Part::Hint) => "HINT",
            Severity::Part(Part::Query) => "QUERY",
            Severity::Part(Part::Context) => "CONTEXT",
            Severity::Part(Part::Location) => "LOCATION",
            Severity::Part(Part::Statement) => "STATEMENT",
        }
    }

    /// The level a csvlog/jsonlog `error_severity` names.
    pub fn from_word(word: &[u8]) -> Option<Severity> {
        Some(match word {
            b"LOG" => Severity::Log,
            b"ERROR" => Severity::Error,
            b"WARNING" => Severity::Warning,
            b"FATAL" => Severity::Fatal,
            b"PANIC" => Severity::Panic,
            b"NOTICE" => Severity::Notice,
            b"INFO" => Severity::Info,
            b"DETAIL" => Severity::Part(Part::Detail),
            b"HINT" => Severity::Part(Part::Hint),
            b"QUERY" => Severity::Part(Part::Query),
            b"CONTEXT" => Severity::Part(Part::Context),
            b"LOCATION" => Severity::Part(Part::Location),
            b"STATEMENT" => Severity::Part(Part::Statement),
            w if w.starts_with(b"DEBUG") => Severity::Debug,
            _ => return None,
        })
    }
}

/// A severity, the verbose SQLSTATE after it (if any), and the message.
pub type SeveritySplit<'a> = (Severity, Option<&'a [u8]>, &'a [u8]);

/// Reads `WORD:  [SQLSTATE: ]message` at the start of `b`. One space after the colon is read
/// too: log shippers that collapse runs of spaces leave `LOG: duration: ...`.
pub fn split(b: &[u8]) -> Option<SeveritySplit<'_>> {
    // The longest word is STATEMENT/LOCATION (9 bytes); DEBUG1..5 are 6.
    let colon = b.iter().take(10).position(|&c| c == b':')?;
    if b.get(colon + 1) != Some(&b' ') {
        return None;
    }
    let severity = Severity::from_word(&b[..colon])?;
    let spaces = if b.get(colon + 2) == Some(&b' ') {
        2
    } else {
        1
    };
    let message = &b[colon + 1 + spaces..];
    // verbose: `40P01: ` right after the severity
    if message.len() > 7
        && message[5] == b':'
        && message[6] == b' '
        && message[..5]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && message[..5].iter().any(u8::is_ascii_digit)
    {
        return Some((severity, Some(&message[..5]), &message[7..]));
    }
    Some((severity, None, message))
}

/// Where a severity word starts in `line` (for guessing a prefix), if anywhere in its first
/// 300 bytes.
pub fn find(line: &[u8]) -> Option<usize> {
    let window = &line[..line.len().min(300)];
    memchr::memmem::find_iter(window, b": ").find_map(|colon| {
        let start = window[..colon]
            .iter()
            .rposition(|c| !c.is_ascii_uppercase() && !c.is_ascii_digit())
            .map_or(0, |p| p + 1);
        split(&window[start..]).map(|_| start)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_levels_parts_and_verbose_sqlstate() {
        let (s, code, m) = split(b"LOG:  duration: 1 ms").unwrap();
        assert_eq!((s, code, m), (Severity::Log, None, &b"duration: 1 ms"[..]));
        let (s, code, m) = split(b"ERROR:  23505: duplicate key").unwrap();
        assert_eq!(
            (s, code, m),
            (Severity::Error, Some(&b"23505"[..]), &b"duplicate key"[..])
        );
        assert_eq!(split(b"DEBUG2:  x").unwrap().0, Severity::Debug);
        assert_eq!(
            split(b"STATEMENT:  SELECT 1").unwrap().0,
            Severity::Part(Part::Statement)
        );
        // a shipper that collapses spaces leaves one
        assert_eq!(split(b"LOG: one space").unwrap().2, b"one space");
        assert_eq!(
            split(b"ERROR: 23505: duplicate key").unwrap().1,
            Some(&b"23505"[..])
        );
        assert!(split(b"LOG:x").is_none());
        assert!(split(b"MAYBE:  x").is_none());
        // an all-letter word after the level is message text, not a SQLSTATE
        assert_eq!(split(b"LOG:  ABCDE: x").unwrap().1, None);
    }

    #[test]
    fn finds_the_severity_after_any_prefix() {
        assert_eq!(find(b"2026-01-01 00:00:00 UTC [1] LOG:  x"), Some(28));
        assert_eq!(find(b"no severity here"), None);
    }
}
