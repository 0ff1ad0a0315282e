//! The traceback reader: raw continuation lines collected by `TracebackBuilder`, read by
//! `traceback::parse`, and the stack classified as an abort traceback would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wtdiag::analyze::stack;
use wtdiag::parse::traceback::{self, TracebackBuilder};

fuzz_target!(|data: &[u8]| {
    let mut builder = TracebackBuilder::default();
    for line in data.split(|&b| b == b'\n') {
        builder.push_bytes(line);
    }
    let (text, _) = builder.into_text();
    if let Some(tb) = traceback::parse(&text) {
        let _ = stack::classify(&tb.frames);
        let _ = stack::outbound_kind(&tb.frames);
        let _ = stack::through_abort_handler(&tb.frames);
    }
});
