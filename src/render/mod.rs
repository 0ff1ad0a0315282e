//! Renderers: the [`Report`] in one output format each, written to any `io::Write` so tests
//! capture bytes without a terminal. They know the report and nothing about logs.
//!
//! One file per format (table, JSON, Markdown, HTML), as hyperfine's exporters; [`Options`] is
//! what the terminal allows (width, color, Unicode), decided once at the command edge.

mod color;
mod html;
mod json;
mod markdown;
mod svg;
mod table;
mod timeline;

use std::io::{self, Write};

use crate::report::Report;

pub use color::{ColorChoice, Palette, unicode_terminal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A ranked table for people, with a timeline of the events.
    Table,
    /// The stable JSON document (schema_version 1) for CI and scripts.
    Json,
    /// GitHub-flavoured Markdown, for $GITHUB_STEP_SUMMARY and pull-request comments.
    Markdown,
    /// One self-contained HTML page (no network, no scripts) with SVG charts; use with -o.
    Html,
}

/// What the output device allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub format: Format,
    /// The terminal width tables wrap to (None: no wrapping).
    pub width: Option<u16>,
    /// ANSI colors in the table.
    pub color: bool,
    /// Unicode block characters in the timeline (false: plain ASCII).
    pub unicode: bool,
}

impl Options {
    /// Plain output: no wrapping, no color, Unicode.
    pub fn plain(format: Format) -> Options {
        Options {
            format,
            width: None,
            color: false,
            unicode: true,
        }
    }
}

/// Renders `report` as `options` say.
pub fn render(report: &Report, options: Options, out: &mut dyn Write) -> io::Result<()> {
    match options.format {
        // Lines of logs and names from a live target (file and function names, paths) are
        // other people's text: a terminal must not take them for escape sequences. The table
        // renderer neutralizes every such piece itself, so that its own colors survive.
        Format::Table => table::render(report, options, out),
        Format::Json => json::render(report, out),
        Format::Markdown => markdown::render(report, out),
        Format::Html => html::render(report, out),
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

/// The one-line summary every format opens with: the command, what was read, what was seen.
pub(crate) fn headline(report: &Report) -> String {
    let lines: u64 = report.inputs.iter().map(|i| i.lines).sum();
    let skipped: u64 = report.inputs.iter().map(|i| i.skipped_lines).sum();
    let mut s = format!(
        "wtdiag {}: {} input{}, {} lines read",
        command_name(report),
        report.inputs.len(),
        if report.inputs.len() == 1 { "" } else { "s" },
        lines
    );
    if skipped > 0 {
        s.push_str(&format!(" ({skipped} skipped)"));
    }
    if report.command == crate::report::CommandName::Watch {
        // `watch` reads processes, not files.
        s = "wtdiag watch: workers followed by heartbeat, caught ones sampled with py-spy"
            .to_string();
    } else if report.workers.is_some() {
        // `live` reads processes, not files.
        s = "wtdiag live: sampled with py-spy".to_string();
    }
    let counts: Vec<String> = report
        .summary
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if !counts.is_empty() {
        s.push_str("; seen: ");
        s.push_str(&counts.join(", "));
    }
    s
}

/// `logs`, `pg`, `live` or `watch`, as in JSON.
pub(crate) fn command_name(report: &Report) -> String {
    serde_json::to_value(report.command)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Milliseconds as people read them: `850.0 ms`, `3.20 s`.
pub(crate) fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
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
