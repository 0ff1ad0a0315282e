//! The Gunicorn error-log parser and everything a `wtdiag logs` run does with its events
//! (tracebacks read, incidents built and attributed, findings), on arbitrary bytes split into
//! lines as `input::for_each_line` would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wtdiag::analyze::timeline::Timeline;
use wtdiag::analyze::window::Window;
use wtdiag::analyze::{incident, worker_findings};
use wtdiag::input::for_each_line;
use wtdiag::parse::gunicorn::GunicornLog;

fuzz_target!(|data: &[u8]| {
    let mut timeline = Timeline::new(Window::default());
    let mut log = GunicornLog::new("fuzz.log");
    let mut sink = |e| timeline.push(e);
    let _ = for_each_line(data, |line| log.push(line, &mut sink));
    log.finish(&mut sink);
    let mut result = timeline.finish();
    incident::cross_worker_patterns(&mut result.incidents);
    incident::annotate(&mut result.events, &result.incidents);
    let mut groups = result.folded;
    for inc in &result.incidents {
        groups.add(inc);
    }
    let _ = groups.findings();
    let _ = worker_findings::boot_failure_finding(&result.events);
});
