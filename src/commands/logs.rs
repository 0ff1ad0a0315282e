//! `wtdiag logs`: Gunicorn error logs (+ app logs) → incidents → findings.

use anyhow::Result;

use crate::analyze::applog_join::AppLogJoin;
use crate::analyze::incident;
use crate::analyze::kernel_join::{self, KernelKill, MAX_OOM_KILLS};
use crate::analyze::pg_join::PgJoin;
use crate::analyze::proxy_join::{self, MAX_PROXY_LINES, ProxyLine};
use crate::analyze::timeline::{Timeline, TimelineResult};
use crate::analyze::worker_findings::{self, Groups};
use crate::cli::LogsArgs;
use crate::commands::{Window, check_stdin_once, progress_for};
use crate::input;
use crate::parse::applog;
use crate::parse::gunicorn::GunicornLog;
use crate::parse::kernel;
use crate::parse::nginx;
use crate::parse::pg::{PgEvent, PgLogReader};
use crate::parse::skips::Skips;
use crate::report::{CommandName, InputSummary, Report, Warning};

pub fn run(args: &LogsArgs) -> Result<Report> {
    check_stdin_once(args.files.iter().chain(&args.app_log).chain(&args.pg_log))?;
    let window = Window::from_args(&args.window)?;
    let mut report = Report::new(CommandName::Logs);
    let mut timeline = Timeline::new(window);
    if !args.pg_log.is_empty() {
        timeline.database_input();
    }
    let mut versions: Vec<String> = Vec::new();

    // Rotated logs given in any order are read oldest first, so incidents that straddle two
    // files (a timeout at the end of one, its kill at the start of the next) come together.
    // OOM-killer lines of kernel logs among the inputs, read once the Gunicorn logs give the
    // zone their `dmesg -T` times lack.
    let mut kernel_lines: Vec<(String, u64, String)> = Vec::new();
    let mut proxy_lines: Vec<(String, u64, String)> = Vec::new();
    let mut plan = input::plan(&args.files)?;
    report.warnings.extend(duplicate_warnings(&plan));
    plan.inputs.sort_by_key(|p| p.first);
    for planned in plan.inputs {
        let progress = progress_for(&planned.path, &args.output);
        let opened = planned.open(progress)?;
        let path = opened.path.clone();
        let compressed = opened.compressed;
        // Side sources recognised by their first lines: only the lines that can matter are
        // kept, to be read once the Gunicorn logs give the zone their times lack.
        let side = if kernel::looks_like_kernel_log(opened.head()) {
            Some((
                "kernel",
                "Killed process ",
                MAX_OOM_KILLS,
                &mut kernel_lines,
            ))
        } else if nginx::looks_like_error_log(opened.head()) {
            Some((
                "nginx_error",
                " from upstream",
                MAX_PROXY_LINES,
                &mut proxy_lines,
            ))
        } else {
            None
        };
        if let Some((format, needle, max, kept)) = side {
            let (mut lossy, mut dropped) = (0, 0u64);
            let counts = opened.for_each_line(|line| {
                let (text, bad) = input::decode(line.bytes);
                lossy += u64::from(bad);
                if !text.contains(needle) {
                    return;
                }
                if kept.len() < max {
                    let text = crate::parse::cap(&text, 2048).to_string();
                    kept.push((path.clone(), line.number, text));
                } else {
                    dropped += 1;
                }
            })?;
            if dropped > 0 {
                report.warnings.push(Warning {
                    code: "side_lines_capped",
                    message: format!(
                        "{path}: {dropped} more '{}' lines than the {max} read were not used",
                        needle.trim()
                    ),
                    advice: "Narrow the inputs to the period of the timeouts (--since/--until \
                             apply to the Gunicorn log; cut the side log to match)."
                        .into(),
                });
            }
            report.inputs.push(summary(
                &path,
                format,
                compressed,
                counts,
                Skips::default(),
                lossy,
            ));
            continue;
        }
        let mut log = GunicornLog::new(&path);
        let mut sink = |event| timeline.push(event);
        let counts = opened.for_each_line(|line| log.push(line, &mut sink))?;
        let parsed = log.finish(&mut sink);
        report
            .warnings
            .extend(input_warning(&path, counts, parsed.records));
        if let Some(v) = parsed.version {
            versions.push(v);
        }
        if let Some(class) = &parsed.worker_class {
            timeline.set_worker_class(class);
        }
        report.inputs.push(summary(
            &path,
            "gunicorn",
            compressed,
            counts,
            parsed.skips,
            parsed.lossy_lines,
        ));
    }

    let TimelineResult {
        mut events,
        counts,
        omitted,
        mut incidents,
        folded,
        folded_count,
        app_offset,
        database_seen,
    } = timeline.finish();

    let offset = app_offset
        .or_else(|| incidents.first().map(|i| *i.time.offset()))
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("UTC"));
    let oom_kills: Vec<KernelKill> = kernel_lines
        .into_iter()
        .filter_map(|(path, line, text)| {
            Some(KernelKill {
                kill: kernel::parse_line(&text, offset)?,
                path,
                line,
            })
        })
        .collect();
    let silent_ooms: Vec<&KernelKill> = kernel_join::join(&mut incidents, &oom_kills);
    let proxy: Vec<ProxyLine> = proxy_lines
        .into_iter()
        .filter_map(|(path, line, text)| {
            Some(ProxyLine {
                up: nginx::parse_line(&text, offset)?,
                path,
                line,
                text: crate::parse::cap(&text, 400).to_string(),
            })
        })
        .collect();
    let proxy_timeouts = proxy_join::join(&mut incidents, &proxy);

    let app_plan = input::plan(&args.app_log)?;
    report.warnings.extend(duplicate_warnings(&app_plan));
    for planned in app_plan.inputs {
        let path = &planned.path.clone();
        let opened = planned.open(progress_for(path, &args.output))?;
        let compressed = opened.compressed;
        let mut join = AppLogJoin::new(&incidents, app_offset);
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

    let pg_zones = crate::commands::pg::zone_overrides(&args.pg_tz)?;
    let pg_plan = input::plan(&args.pg_log)?;
    report.warnings.extend(duplicate_warnings(&pg_plan));
    for planned in pg_plan.inputs {
        let path = &planned.path.clone();
        let opened = planned.open(progress_for(path, &args.output))?;
        let compressed = opened.compressed;
        let mut join = PgJoin::new(&incidents);
        let mut reader = PgLogReader::with_zones(None, pg_zones.clone());
        let mut sink = |e: &PgEvent<'_>| join.push(path, e);
        let counts = opened.for_each_line(|line| reader.push(line, &mut sink))?;
        let read = reader.finish(&mut sink);
        let ambiguous = join.finish(&mut incidents);
        if !ambiguous.is_empty() {
            let cases: Vec<String> = ambiguous
                .iter()
                .map(|(what, pids)| format!("{what} fits workers {pids:?}"))
                .collect();
            report.warnings.push(Warning {
                code: "pg_ambiguous",
                message: format!(
                    "the PostgreSQL log cannot tell which worker waited on what: several \
                     workers that may have been in the database timed out or were killed while \
                     the same activity went on (or in the same second): {}",
                    cases.join("; ")
                ),
                advice: "Log request start/end with the worker pid (--app-log), or sample the \
                         next occurrence with `wtdiag live --pg DSN`, which asks PostgreSQL \
                         directly."
                    .into(),
            });
        }
        report
            .warnings
            .extend(crate::commands::pg::zone_warnings(path, &read.zones));
        let format = read.format.map_or("unknown", |f| f.name());
        // no server message read: not a PostgreSQL log, or an export of one holding none
        if (read.format.is_none() || read.messages == 0) && read.skips.total() > 0 {
            report.warnings.push(Warning {
                code: "not_pg_log",
                message: format!("{path}: no line is a PostgreSQL log line"),
                advice: "Give the server log (stderr with any log_line_prefix, csvlog, jsonlog \
                         or syslog); `wtdiag pg --prefix` shows how a custom prefix is read."
                    .into(),
            });
        }
        report.inputs.push(summary(
            path,
            format,
            compressed,
            counts,
            read.skips,
            read.lossy_lines,
        ));
    }

    incident::cross_worker_patterns(&mut incidents);
    incident::annotate(&mut events, &incidents);
    let mut groups = folded;
    for inc in &incidents {
        groups.add(inc);
    }
    report.findings = groups.findings();
    report
        .findings
        .extend(worker_findings::silent_oom_finding(&silent_ooms));
    report
        .findings
        .extend(worker_findings::proxy_timeout_finding(&proxy_timeouts));
    report
        .findings
        .extend(worker_findings::boot_failure_finding(&events));
    report
        .warnings
        .extend(warnings(&groups, &versions, args, database_seen));
    if folded_count > 0 {
        report.warnings.push(Warning {
            code: "incidents_capped",
            message: format!(
                "{} incidents: the first {} are joined with --app-log/--pg-log and cited one by \
                 one; the other {folded_count} were attributed from the error log alone and \
                 only counted in their findings",
                incidents.len() as u64 + folded_count,
                incidents.len()
            ),
            advice: "Narrow the period with --since/--until to join every incident.".into(),
        });
    }
    report.summary = counts;
    report.events_omitted = omitted;
    report.events = events;
    report.rank_findings();
    Ok(report)
}

/// A note per input left out because an earlier one has the same content.
pub(crate) fn duplicate_warnings(plan: &input::Plan) -> Vec<Warning> {
    plan.duplicates
        .iter()
        .map(|(dup, of)| Warning {
            code: "duplicate_input",
            message: format!("{dup} has the same content as {of}: read once"),
            advice: "Nothing to do; give each log once to silence this.".into(),
        })
        .collect()
}

/// A note when an input is empty or holds no Gunicorn record at all.
fn input_warning(path: &str, counts: input::LineCounts, records: u64) -> Option<Warning> {
    if counts.lines == 0 {
        return Some(Warning {
            code: "empty_input",
            message: format!("{path} is empty"),
            advice: "Check that this is the file Gunicorn writes (--error-logfile), and that the \
                     log was not just rotated."
                .into(),
        });
    }
    (records == 0).then(|| Warning {
        code: "not_gunicorn_log",
        message: format!(
            "{path}: none of its {} lines is a Gunicorn error-log record \
             ('[time] [pid] [LEVEL] message')",
            counts.lines
        ),
        advice: "Give the error log (--error-logfile, or the service's journal); an access log \
                 or an application log goes to --app-log."
            .into(),
    })
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

fn warnings(
    groups: &Groups,
    versions: &[String],
    args: &LogsArgs,
    database_seen: bool,
) -> Vec<Warning> {
    use incident::Basis;
    let mut out = Vec::new();
    let no_traceback = groups.count_unaborted(Basis::NoTraceback);
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
    let escalations = groups.count(Basis::Escalation);
    if escalations > 0 {
        let advice = if !database_seen {
            "Nothing in the log points at a database: sample the next one with `wtdiag live` \
             (py-spy shows the native frame), or log the request with --app-log to see what \
             the worker was calling."
        } else if args.pg_log.is_empty() {
            "Give the PostgreSQL log of the same period (--pg-log) to tell a lock wait from a \
             slow statement, or sample the next one with `wtdiag live`."
        } else {
            "The PostgreSQL log shows no lock wait, long statement or lost client at those \
             times: the stall was outside the database (a C extension, OpenSSL, a regex), or the \
             server does not log it (set log_lock_waits = on, log_min_duration_statement, and \
             client_connection_check_interval = '1s'). Sample the next one with `wtdiag live`."
        };
        let likely = if database_seen {
            "most often the database driver"
        } else {
            "a C extension, DNS or TLS in C, or a library call that never returned to Python"
        };
        out.push(Warning {
            code: "native_stall_unrefined",
            message: format!(
                "{escalations} worker(s) ignored SIGABRT and were SIGKILLed: they were inside \
                 native code ({likely})"
            ),
            advice: advice.into(),
        });
    }
    out
}
