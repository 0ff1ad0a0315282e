//! The readers of the other logs `wtdiag logs` takes: input detection on the first bytes, the
//! application-log reader (slow-request lines, django.request tracebacks, request start/end),
//! access-log lines (nginx's and Gunicorn's), nginx error lines and kernel OOM lines.
#![no_main]

use chrono::FixedOffset;
use libfuzzer_sys::fuzz_target;
use wtdiag::input::Line;
use wtdiag::parse::applog::AppLogReader;
use wtdiag::parse::{access, detect, kernel, nginx};

fuzz_target!(|data: &[u8]| {
    let _ = detect::detect(&data[..data.len().min(8192)]);
    let utc = FixedOffset::east_opt(0).unwrap();
    let mut reader = AppLogReader::default();
    let mut sink = |_| {};
    for (i, bytes) in data.split(|&b| b == b'\n').enumerate() {
        let line = Line {
            number: i as u64 + 1,
            bytes,
            overlong: None,
        };
        reader.push(&line, &mut sink);
        let text = String::from_utf8_lossy(bytes);
        let _ = access::parse_line(&text);
        let _ = nginx::parse_line(&text, utc);
        let _ = kernel::parse_line(&text, utc);
    }
    reader.finish(&mut sink);
});
