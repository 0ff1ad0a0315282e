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
        Format::Table => table::render(report, width, out),
        Format::Json => json::render(report, out),
    }
}
