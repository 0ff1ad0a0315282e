//! The HTML renderer (placeholder).
use std::io::{self, Write};

use crate::report::Report;

pub fn render(_report: &Report, _out: &mut dyn Write) -> io::Result<()> {
    Ok(())
}
