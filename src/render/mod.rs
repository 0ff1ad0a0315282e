//! Renderers: the [`Report`] in one output format each, written to any `io::Write` so tests
//! capture bytes without a terminal. They know the report and nothing about logs.

mod json;
mod table;

use std::io::{self, Write};

use crate::report::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A ranked table for people.
    Table,
    /// The stable JSON document (schema_version 1) for CI and scripts.
    Json,
}

/// Renders `report` in `format`. `width` is the terminal width tables wrap to (None: no
/// wrapping).
pub fn render(
    report: &Report,
    format: Format,
    width: Option<u16>,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => {
            // Lines of logs and names from a live target (file and function names, paths) are
            // other people's text: a terminal must not take them for escape sequences.
            let mut text = Vec::new();
            table::render(report, width, &mut text)?;
            out.write_all(neutralize_controls(&String::from_utf8_lossy(&text), true).as_bytes())
        }
        Format::Json => json::render(report, out),
    }
}

/// `text` with its control characters (ESC, CR, C1 controls, ...) shown as `\x1b`-style
/// escapes, so that printing it cannot move the cursor, recolour or retitle a terminal; tabs,
/// and newlines when `keep_newlines`, stay as they are.
pub fn neutralize_controls(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\t' && !(keep_newlines && c == '\n');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            neutralize_controls("a\x1b[2J\tb\r\nc\u{9b}d", true),
            "a\\x{1b}[2J\tb\\x{d}\nc\\x{9b}d"
        );
        assert_eq!(neutralize_controls("one\ntwo", false), "one\\x{a}two");
        assert!(matches!(
            neutralize_controls("plain", false),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
