//! `wtdiag pg`: PostgreSQL logs → events (parse::pg) → statement aggregates, lock chains, N+1
//! bursts (analyze::pg) → findings. Rotated files are read oldest first; each is streamed, so
//! memory does not grow with the size of the logs.

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::analyze::pg::bursts::BurstRules;
use crate::analyze::pg::{PgAnalysis, PgOptions};
use crate::cli::PgArgs;
use crate::commands::{Window, check_stdin_once, progress_for};
use crate::input;
use crate::parse::pg::{self, PgEvent, PgLogReader, Prefix};
use crate::parse::zones::{ZoneOverrides, ZoneReading, ZoneUse};
use crate::report::{CommandName, InputSummary, PgInput, Report, Warning};

pub fn run(args: &PgArgs) -> Result<Report> {
    check_stdin_once(&args.files)?;
    let window = Window::from_args(&args.window)?;
    if args.top == 0 {
        bail!("--top 0: give at least 1");
    }
    if args.n1_min_repeats < 2 {
        bail!(
            "--n1-min-repeats {}: a burst needs at least 2 runs",
            args.n1_min_repeats
        );
    }
    for (flag, v) in [
        ("--n1-min-total-ms", args.n1_min_total_ms),
        ("--n1-max-gap-ms", args.n1_max_gap_ms),
        ("--event-min-ms", args.event_min_ms),
    ] {
        if !v.is_finite() || v < 0.0 {
            bail!("{flag} {v}: give a number of milliseconds, 0 or more");
        }
    }
    let prefix = match &args.prefix {
        Some(p) => Some(Prefix::compile(p).with_context(|| format!("--prefix {p:?}"))?),
        None => None,
    };
    let zones = zone_overrides(&args.pg_tz)?;
    let mut analysis = PgAnalysis::new(PgOptions {
        top: args.top,
        event_min_ms: args.event_min_ms,
        bursts: BurstRules {
            min_repeats: args.n1_min_repeats,
            min_total_ms: args.n1_min_total_ms,
            max_gap_ms: args.n1_max_gap_ms,
        },
    });
    let mut report = Report::new(CommandName::Pg);
    let mut pg_inputs = Vec::new();

    let mut plan = input::plan(&args.files)?;
    report
        .warnings
        .extend(crate::commands::logs::duplicate_warnings(&plan));
    oldest_first(&mut plan);
    for planned in plan.inputs {
        let progress = progress_for(&planned.path, &args.output);
        let opened = planned.open(progress)?;
        let path = &opened.path.clone();
        let compressed = opened.compressed;
        let source: Arc<str> = Arc::from(path.as_str());
        let mut reader = PgLogReader::with_zones(prefix.clone(), zones.clone());
        let mut sink = |e: &PgEvent<'_>| {
            if window.contains(e.time) {
                analysis.observe(e, &source);
            }
        };
        let counts = opened.for_each_line(|line| reader.push(line, &mut sink))?;
        let read = reader.finish(&mut sink);
        // lines were there and none was a server message (blank lines alone are an empty input)
        if read.messages == 0 && read.skips.total() > 0 {
            bail!("{}", not_a_pg_log(path, &read));
        }
        let skipped = read.skips.total();
        let skips = read.skips.into_summary();
        let no_prefix = skips
            .iter()
            .filter(|s| s.reason == pg::SKIP_NO_PREFIX)
            .map(|s| s.count)
            .sum::<u64>();
        if read.format.is_some() && no_prefix * 20 > counts.lines {
            report.warnings.push(Warning {
                code: "prefix_mismatch",
                message: format!(
                    "{path}: {no_prefix} of {} lines do not start with the log_line_prefix '{}' \
                     read from its first lines, and were skipped",
                    counts.lines,
                    read.prefix.as_deref().unwrap_or("")
                ),
                advice: "Give the server's setting: --prefix \"$(psql -Atc 'SHOW \
                         log_line_prefix')\" (it may have changed within the file)."
                    .into(),
            });
        }
        report.warnings.extend(zone_warnings(path, &read.zones));
        report.inputs.push(InputSummary {
            envelope: None,
            origins: Vec::new(),
            path: path.clone(),
            format: read.format.map_or("unknown", |f| f.name()).to_string(),
            compressed,
            bytes: counts.bytes,
            lines: counts.lines,
            skipped_lines: skipped,
            skipped: skips,
            lossy_lines: read.lossy_lines,
        });
        pg_inputs.push(PgInput {
            path: source.clone(),
            format: read.format.map(|f| f.name()),
            log_line_prefix: read.prefix,
            has_pid: read.has_pid,
            messages: read.messages,
        });
    }

    let outcome = analysis.finish(pg_inputs);
    report.findings = outcome.findings;
    report.warnings.extend(outcome.warnings);
    report.events = outcome.events;
    report.events_omitted = outcome.events_omitted;
    report.summary = outcome.summary;
    report.pg = Some(outcome.pg);
    report.rank_findings();
    Ok(report)
}

/// Orders rotated logs (`postgresql.log.2.gz postgresql.log.1 postgresql.log`) by the first
/// timestamp in their first lines; if one has none (stdin included), the order given is kept.
fn oldest_first(plan: &mut input::Plan) {
    if plan.inputs.iter().all(|p| p.first.is_some()) {
        plan.inputs.sort_by_key(|p| p.first);
    }
}

/// `--pg-tz` values, checked.
pub(crate) fn zone_overrides(values: &[String]) -> Result<Arc<ZoneOverrides>> {
    ZoneOverrides::parse(values)
        .map(Arc::new)
        .map_err(anyhow::Error::msg)
}

/// What the zone abbreviations of one PostgreSQL log need said: `pg_tz_ambiguous` when the
/// letters mean other offsets elsewhere (the reading chosen and the others named),
/// `pg_tz_unknown` when times were not read at all. An abbreviation `--pg-tz` set says nothing.
pub(crate) fn zone_warnings(path: &str, zones: &[ZoneUse]) -> Vec<Warning> {
    let mut out = Vec::new();
    for z in zones {
        let name = &z.name;
        match &z.reading {
            ZoneReading::Table {
                offset,
                description,
                source,
                alternatives: Some(alternatives),
            } => out.push(Warning {
                code: "pg_tz_ambiguous",
                message: format!(
                    "{path}: {} time(s) written in {name} (first at line {}) were read at \
                     {offset}, {description}, as PostgreSQL itself reads {name} ({source}); \
                     {name} also means {alternatives}",
                    z.times, z.first_line
                ),
                advice: format!(
                    "If the server's log_timezone is not {description}, give its offset: \
                     --pg-tz {name}=+HH:MM (psql -Atc 'SHOW log_timezone' names the zone)."
                ),
            }),
            ZoneReading::Table { .. } | ZoneReading::Override(_) => {}
            ZoneReading::Unresolved { alternatives } => out.push(Warning {
                code: "pg_tz_unknown",
                message: format!(
                    "{path}: {} time(s) written in {name} (first at line {}) were not read: {}",
                    z.times,
                    z.first_line,
                    match alternatives {
                        Some(a) => format!(
                            "{name} means {a}, and PostgreSQL's default set does not choose"
                        ),
                        None => format!(
                            "neither PostgreSQL's abbreviation files nor the tz database \
                             define {name}"
                        ),
                    }
                ),
                advice: format!(
                    "Give the offset the server's log_timezone has: --pg-tz {name}=+HH:MM \
                     (psql -Atc 'SHOW log_timezone' names the zone); events without a time \
                     are kept but cannot be joined by time."
                ),
            }),
        }
    }
    out
}

/// One line for an input that yielded no server message: what it is not, what it looked like,
/// and what to give instead (a CI gate must not pass on a file it could not read).
fn not_a_pg_log(path: &str, read: &pg::PgLogSummary) -> String {
    if let Some((candidates, lines)) = &read.prefix_candidates
        && !candidates.is_empty()
    {
        let best: Vec<String> = candidates
            .iter()
            .take(2)
            .map(|(p, n)| format!("'{p}' reads {n} of {lines} lines"))
            .collect();
        return format!(
            "{path}: cannot tell its log_line_prefix: no candidate reads most of its first \
             lines ({}); give the server's setting: --prefix \"$(psql -Atc 'SHOW \
             log_line_prefix')\"",
            best.join(", ")
        );
    }
    let looked = read
        .looks_like
        .map_or(String::new(), |l| format!(" (it looks like {l})"));
    format!(
        "{path}: not a PostgreSQL server log: no line is stderr with a log_line_prefix, \
         csvlog, jsonlog, syslog, or a Heroku, Cloud Logging, CloudNativePG or Azure export \
         of them{looked}; give the server's log file (SHOW log_directory, \
         or journalctl -u postgresql), with --prefix for a custom log_line_prefix"
    )
}
