//! The PostgreSQL log reader and the `wtdiag pg` analysis behind it, on arbitrary bytes split
//! into lines as `input::for_each_line` would: format detection (stderr with prefix detection,
//! csvlog, jsonlog, syslog traditional / RFC 5424 / Heroku, Cloud Logging, CloudNativePG and
//! Azure JSON), message assembly, classification (SQLSTATE from the wording included),
//! fingerprints, lock chains, N+1 bursts and findings.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use wtdiag::analyze::pg::bursts::BurstRules;
use wtdiag::analyze::pg::{PgAnalysis, PgOptions};
use wtdiag::input::for_each_line;
use wtdiag::parse::pg::PgLogReader;

fuzz_target!(|data: &[u8]| {
    let mut analysis = PgAnalysis::new(PgOptions {
        top: 10,
        event_min_ms: 0.0,
        bursts: BurstRules {
            min_repeats: 5,
            min_total_ms: 50.0,
            max_gap_ms: 1000.0,
        },
    });
    let source: Arc<str> = Arc::from("fuzz.log");
    let mut reader = PgLogReader::new(None);
    let mut sink = |e: &wtdiag::parse::pg::PgEvent<'_>| analysis.observe(e, &source);
    let _ = for_each_line(data, |line| reader.push(line, &mut sink));
    let _ = reader.finish(&mut sink);
    let _ = analysis.finish(Vec::new());
});
