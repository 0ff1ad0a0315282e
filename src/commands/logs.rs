//! `wtdiag logs`: Gunicorn error logs (+ app logs) → incidents → findings.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::analyze::applog_join::AppLogJoin;
use crate::analyze::timeline::Timeline;
use crate::analyze::{incident, worker_findings};
use crate::cli::LogsArgs;
use crate::commands::{Window, check_stdin_once, progress_for};
use crate::input;
use crate::parse::applog;
use crate::parse::gunicorn::GunicornLog;
use crate::parse::skips::Skips;
use crate::report::{CommandName, Event, InputSummary, Report, Warning};

pub fn run(args: &LogsArgs) -> Result<Report> {
    check_stdin_once(args.files.iter().chain(&args.app_log).chain(&args.pg_log))?;
    let window = Window::from_args(&args.window)?;
    let mut report = Report::new(CommandName::Logs);
    let mut timeline = Timeline::default();
    let mut versions: Vec<String> = Vec::new();

    for path in &args.files {
        let opened = input::open(path, progress_for(path, &args.output))?;
        let compressed = opened.compressed;
        let mut log = GunicornLog::new(path);
        let mut sink = |event| timeline.push(event);
        let counts = opened.for_each_line(|line| log.push(line, &mut sink))?;
        let parsed = log.finish(&mut sink);
        if counts.lines == 0 {
            report.warnings.push(Warning {
                code: "empty_input",
                message: format!("{path} is empty"),
                advice: "Check that this is the file Gunicorn writes (--error-logfile), and that \
                         the log was not just rotated."
                    .into(),
            });
        } else if parsed.records == 0 {
            report.warnings.push(Warning {
                code: "not_gunicorn_log",
                message: format!(
                    "{path}: none of its {} lines is a Gunicorn error-log record \
                     ('[time] [pid] [LEVEL] message')",
                    counts.lines
                ),
                advice: "Give the error log (--error-logfile, or the service's journal); an \
                         access log or an application log goes to --app-log."
                    .into(),
            });
        }
        if let Some(v) = parsed.version {
            versions.push(v);
        }
        report.inputs.push(summary(
            path,
            "gunicorn",
            compressed,
            counts,
            parsed.skips,
            parsed.lossy_lines,
        ));
    }

    // Several files (rotated logs) merge into one timeline.
    timeline.sort();
    let Timeline {
        mut events,
        counts,
        omitted,
        ..
    } = timeline;
    let listed = events.len();
    events.retain(|e| window.contains(e.time));
    let outside_window = listed != events.len();

    let mut incidents = incident::build(&events);

    for path in &args.app_log {
        let opened = input::open(path, progress_for(path, &args.output))?;
        let compressed = opened.compressed;
        let mut join = AppLogJoin::new(&incidents);
        let mut lossy = 0;
        let counts = opened.for_each_line(|line| {
            if let Some(app_line) = applog::parse_line(&line) {
                join.push(path, app_line);
            } else if std::str::from_utf8(line.bytes).is_err() {
                lossy += 1;
            }
        })?;
        join.finish(&mut incidents);
        report.inputs.push(summary(
            path,
            "applog",
            compressed,
            counts,
            Skips::default(),
            lossy,
        ));
    }

    incident::annotate(&mut events, &incidents);
    report.findings = worker_findings::findings(&events, &incidents);
    report
        .findings
        .extend(worker_findings::boot_failure_finding(&events));
    report
        .warnings
        .extend(warnings(&incidents, &versions, args));
    // With a window, the counts are of the events inside it (the omitted routine events
    // cannot be placed in time, so they are not counted then).
    report.summary = if outside_window || window.since.is_some() || window.until.is_some() {
        count_kinds(&events)
    } else {
        counts
    };
    report.events_omitted = omitted;
    report.events = events;
    report.rank_findings();
    Ok(report)
}

fn summary(
    path: &str,
    format: &str,
    compressed: bool,
    counts: input::LineCounts,
    skips: Skips,
    lossy_lines: u64,
) -> InputSummary {
    InputSummary {
        path: path.to_string(),
        format: format.to_string(),
        compressed,
        bytes: counts.bytes,
        lines: counts.lines,
        skipped_lines: skips.total(),
        skipped: skips.into_summary(),
        lossy_lines,
    }
}

pub fn count_kinds(events: &[Event]) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts.entry(e.detail.kind()).or_insert(0) += 1;
    }
    counts
}

fn warnings(
    incidents: &[incident::Incident],
    versions: &[String],
    args: &LogsArgs,
) -> Vec<Warning> {
    use incident::Basis;
    let mut out = Vec::new();
    let no_traceback = incidents
        .iter()
        .filter(|i| i.basis == Basis::NoTraceback)
        .count();
    if no_traceback > 0 {
        let version = versions
            .last()
            .map(|v| format!("Gunicorn {v}"))
            .unwrap_or_else(|| "this Gunicorn (version not in the log)".into());
        out.push(Warning {
            code: "no_traceback",
            message: format!(
                "{no_traceback} worker timeout(s) have no traceback: {version} does not log what \
                 an aborted worker was doing (22.0 and later do)"
            ),
            advice: "Upgrade Gunicorn to 22 or later, or run `wtdiag live --pid <master>` while \
                     timeouts happen; give --app-log to name the requests."
                .into(),
        });
    }
    let escalations = incidents
        .iter()
        .filter(|i| i.basis == Basis::Escalation)
        .count();
    if escalations > 0 && args.pg_log.is_empty() {
        out.push(Warning {
            code: "native_stall_unrefined",
            message: format!(
                "{escalations} worker(s) ignored SIGABRT and were SIGKILLed: they were inside \
                 native code, most often the database driver"
            ),
            advice: "Give the PostgreSQL log of the same period (--pg-log) to tell a lock wait \
                     from a slow statement, or sample the next one with `wtdiag live`."
                .into(),
        });
    }
    out
}
