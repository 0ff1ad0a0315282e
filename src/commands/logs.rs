//! `wtdiag logs`: Gunicorn error logs (+ app logs) → incidents → findings.

use std::sync::Arc;

use anyhow::Result;

use crate::analyze::applog_join::AppLogJoin;
use crate::analyze::buckets;
use crate::analyze::endpoint_findings::{self, DEFAULT_TIMEOUT_S, Timeout};
use crate::analyze::endpoints::{Endpoints, Request, TimingSource};
use crate::analyze::incident;
use crate::analyze::kernel_join::{self, KernelKill, MAX_OOM_KILLS};
use crate::analyze::pg_join::PgJoin;
use crate::analyze::proxy_join::{self, MAX_PROXY_LINES, ProxyLine};
use crate::analyze::timeline::{Timeline, TimelineResult};
use crate::analyze::watch_join::{self, MAX_WATCH_INCIDENTS, WatchLine};
use crate::analyze::worker_findings::{self, Groups};
use crate::cli::LogsArgs;
use crate::commands::fleet::{self, FleetRead, SideLine};
use crate::commands::parallel;
use crate::commands::{Window, check_stdin_once, progress_for};
use crate::input;
use crate::parse::applog::{AppLogReader, AppRecord};
use crate::parse::detect::{LogKind, detect};
use crate::parse::envelope::Envelope;
use crate::parse::gunicorn::{GunicornLog, ParsedGunicornLog};
use crate::parse::kernel;
use crate::parse::nginx;
use crate::parse::pg::{PgEvent, PgLogReader};
use crate::parse::requests::{self, Writer};
use crate::parse::skips::{self, Skips};
use crate::report::{CommandName, Evidence, InputSummary, Origin, Report, Warning};

/// `django.request` database errors kept from app logs.
const MAX_APP_ERRORS: usize = 1_000;

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
    let mut kernel_lines: Vec<SideLine> = Vec::new();
    let mut proxy_lines: Vec<SideLine> = Vec::new();
    let mut watch_lines: Vec<WatchLine> = Vec::new();
    let timeout = Timeout {
        seconds: args.timeout.unwrap_or(DEFAULT_TIMEOUT_S),
        given: args.timeout.is_some(),
    };
    let mut endpoints = Endpoints::new(timeout.seconds);
    let mut worker_class: Option<String> = None;
    let mut gunicorn_records = 0u64;
    let mut deferred_app: Vec<input::Input> = Vec::new();
    // The proxy's request ends read from router lines (Heroku's H12/H13), with their zone.
    let mut routed: Vec<ProxyLine> = Vec::new();
    let mut deferred_pg: Vec<input::Input> = Vec::new();
    // 5xx answers read from access logs, for the timeline; when there are any, the error log's
    // 502/504 (the same answers seen from the other side) are not counted again.
    let mut access_5xx = crate::report::SideEvents::default();
    let mut plan = input::plan(&args.files)?;
    report.warnings.extend(duplicate_warnings(&plan));
    plan.inputs.sort_by_key(|p| p.first);
    // Gunicorn logs and streams are parsed ahead on other threads (each a whole input); their
    // events come back in order, so the report is the one thread's.
    let threads = parallel::threads(args.jobs);
    let mut ahead = (threads > 1).then(|| {
        let paths = plan.inputs.iter().map(|p| {
            let file = p.path != "-"
                && std::fs::metadata(&p.path)
                    .is_ok_and(|m| m.is_file() && m.len() <= parallel::MAX_AHEAD_BYTES);
            file.then(|| p.path.clone())
        });
        parallel::ReadAhead::new(paths.collect(), threads)
    });
    for (i, planned) in plan.inputs.into_iter().enumerate() {
        if let Some(taken) = ahead.as_mut().and_then(|a| a.take(i)) {
            let mut acc = Read {
                report: &mut report,
                timeline: &mut timeline,
                records: &mut gunicorn_records,
                versions: &mut versions,
                worker_class: &mut worker_class,
                kernel: &mut kernel_lines,
                proxy: &mut proxy_lines,
            };
            if acc.ahead(&planned.path, taken)? {
                continue;
            }
        }
        let progress = progress_for(&planned.path, &args.output);
        let opened = planned.open(progress)?;
        let path = opened.path.clone();
        let compressed = opened.compressed;
        if crate::parse::watch::looks_like_watch(opened.head()) {
            // `wtdiag watch --format json`: what it sampled names what this log cannot.
            let mut lossy = 0;
            let counts = opened.for_each_line(|line| {
                let (text, bad) = input::decode(line.bytes);
                lossy += u64::from(bad);
                if watch_lines.len() < MAX_WATCH_INCIDENTS
                    && let Some(incident) = crate::parse::watch::parse_line(&text)
                {
                    watch_lines.push(WatchLine {
                        incident,
                        path: path.clone(),
                        line: line.number,
                    });
                }
            })?;
            report.inputs.push(summary(
                &path,
                "watch",
                compressed,
                counts,
                Skips::default(),
                lossy,
            ));
            continue;
        }
        // Every input is told by its first lines. Side sources keep only the lines that can
        // matter, read once the Gunicorn logs give the zone their times lack; application and
        // PostgreSQL logs are read after the Gunicorn logs, like --app-log and --pg-log.
        if let Some(envelope) = fleet::envelope_of(opened.head()) {
            let mut sink = |event| timeline.push(event);
            let read = fleet::read(opened, envelope, MAX_OOM_KILLS, &mut sink)?;
            let mut acc = Read {
                report: &mut report,
                timeline: &mut timeline,
                records: &mut gunicorn_records,
                versions: &mut versions,
                worker_class: &mut worker_class,
                kernel: &mut kernel_lines,
                proxy: &mut proxy_lines,
            };
            acc.fleet(&path, compressed, envelope, read);
            continue;
        }
        let kind = detect(opened.head());
        let side = match kind {
            LogKind::Kernel => Some((
                "kernel",
                "Killed process ",
                MAX_OOM_KILLS,
                &mut kernel_lines,
            )),
            LogKind::NginxError => Some((
                "nginx_error",
                " from upstream",
                MAX_PROXY_LINES,
                &mut proxy_lines,
            )),
            LogKind::App => {
                deferred_app.push(opened);
                continue;
            }
            LogKind::Postgres => {
                timeline.database_input();
                deferred_pg.push(opened);
                continue;
            }
            LogKind::Access => {
                let mut lossy = 0;
                let mut skips = Skips::default();
                let counts = opened.for_each_line(|line| {
                    if line.overlong.is_some() {
                        skips.record(skips::OVERLONG, line.number);
                        return;
                    }
                    let (text, bad) = input::decode(line.bytes);
                    lossy += u64::from(bad);
                    if !feed_request(
                        &path,
                        line.number,
                        &text,
                        &mut endpoints,
                        &mut routed,
                        &mut access_5xx,
                    ) {
                        skips.record("not an access-log line", line.number);
                    }
                })?;
                report
                    .inputs
                    .push(summary(&path, "access", compressed, counts, skips, lossy));
                continue;
            }
            LogKind::Gunicorn => None,
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
                    kept.push(SideLine {
                        path: path.clone(),
                        line: line.number,
                        text,
                        origin: Origin::file(&Arc::from(path.as_str())),
                    });
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
        // commands/parallel.rs reads Gunicorn logs ahead the same way (and hands back those
        // with request lines): a change here is a change there.
        let mut log = GunicornLog::new(&path);
        let mut sink = |event| timeline.push(event);
        // Access or router lines mixed into the stream (a container's output, `heroku logs`)
        // are read too when the first lines show some; the check costs one search per line.
        let mixed = requests::some_in(opened.head());
        let counts = opened.for_each_line(|line| {
            if mixed && looks_like_request(line.bytes) {
                let (text, _) = input::decode(line.bytes);
                feed_request(
                    &path,
                    line.number,
                    &text,
                    &mut endpoints,
                    &mut routed,
                    &mut access_5xx,
                );
            }
            log.push(line, &mut sink)
        })?;
        let parsed = log.finish(&mut sink);
        Read {
            report: &mut report,
            timeline: &mut timeline,
            records: &mut gunicorn_records,
            versions: &mut versions,
            worker_class: &mut worker_class,
            kernel: &mut kernel_lines,
            proxy: &mut proxy_lines,
        }
        .gunicorn(&path, compressed, counts, parsed);
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
        .filter_map(|l| {
            Some(KernelKill {
                kill: kernel::parse_line(&l.text, offset)?,
                path: l.path,
                line: l.line,
                origin: l.origin,
            })
        })
        .collect();
    watch_join::join(&mut incidents, &watch_lines);
    let silent_ooms: Vec<&KernelKill> = kernel_join::join(&mut incidents, &oom_kills);
    let proxy: Vec<ProxyLine> = proxy_lines
        .into_iter()
        .filter_map(|l| {
            Some(ProxyLine {
                up: nginx::parse_line(&l.text, offset)?,
                text: crate::parse::cap(&l.text, 400).to_string(),
                path: l.path,
                line: l.line,
                origin: l.origin,
            })
        })
        .collect();
    let mut proxy = proxy;
    proxy.extend(routed);
    let proxy_timeouts = proxy_join::join(&mut incidents, &proxy);
    if access_5xx.list.is_empty() {
        report.side_events.extend(
            proxy
                .iter()
                .filter_map(buckets::proxy_side_event)
                .filter(|s| window.contains(Some(s.time))),
        );
    } else {
        report.side_events.omitted += access_5xx.omitted;
        report.side_events.extend(
            access_5xx
                .list
                .into_iter()
                .filter(|s| window.contains(Some(s.time))),
        );
    }

    let app_plan = input::plan(&args.app_log)?;
    report.warnings.extend(duplicate_warnings(&app_plan));
    let app_inputs = app_plan
        .inputs
        .into_iter()
        .map(Pending::Planned)
        .chain(deferred_app.into_iter().map(Pending::Opened));
    let app_zone = app_offset
        .or_else(|| incidents.first().map(|i| *i.time.offset()))
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("UTC"));
    let mut app_errors: Vec<(String, String, Evidence)> = Vec::new();
    for pending in app_inputs {
        let opened = pending.open(&args.output)?;
        let path = opened.path.clone();
        let compressed = opened.compressed;
        let mut join = AppLogJoin::new(&incidents, app_offset);
        let mut reader = AppLogReader::default();
        let mut lossy = 0;
        let mut each = |record: AppRecord| match record {
            AppRecord::Request(r) => join.push(&path, r),
            AppRecord::Slow(s) => {
                let offset = s.offset.unwrap_or(app_zone);
                let Some(time) = s.time.and_local_timezone(offset).single() else {
                    return;
                };
                let evidence = || Evidence {
                    path: path.clone(),
                    line: Some(s.line),
                    text: format!("slow request: {} took {} s", s.path, s.seconds),
                };
                endpoints.push(
                    TimingSource::AppLog,
                    &Request {
                        time,
                        method: s.method.as_deref(),
                        path: &s.path,
                        status: None,
                        seconds: Some(s.seconds),
                        evidence: &evidence,
                    },
                );
            }
            AppRecord::Error(e, exception) => {
                let Some(exception) = exception else { return };
                if app_errors.len() < MAX_APP_ERRORS && is_database_error(&exception) {
                    let text = format!(
                        "django.request: {} at {} failed: {exception}",
                        e.path, e.time
                    );
                    app_errors.push((
                        e.path.clone(),
                        exception,
                        Evidence {
                            path: path.clone(),
                            line: Some(e.line),
                            text,
                        },
                    ));
                }
            }
        };
        let mut app_skips = Skips::default();
        let counts = opened.for_each_line(|line| {
            if line.overlong.is_some() {
                app_skips.record(skips::OVERLONG, line.number);
                return;
            }
            if std::str::from_utf8(line.bytes).is_err() {
                lossy += 1;
            }
            reader.push(&line, &mut each);
        })?;
        reader.finish(&mut each);
        join.finish(&mut incidents);
        report.inputs.push(summary(
            &path, "applog", compressed, counts, app_skips, lossy,
        ));
    }

    let pg_zones = crate::commands::pg::zone_overrides(&args.pg_tz)?;
    let pg_plan = input::plan(&args.pg_log)?;
    report.warnings.extend(duplicate_warnings(&pg_plan));
    let pg_inputs = pg_plan
        .inputs
        .into_iter()
        .map(Pending::Planned)
        .chain(deferred_pg.into_iter().map(Pending::Opened));
    for pending in pg_inputs {
        let opened = pending.open(&args.output)?;
        let path = &opened.path.clone();
        let compressed = opened.compressed;
        let mut join = PgJoin::new(&incidents);
        let mut reader = PgLogReader::with_zones(None, pg_zones.clone());
        let side = &mut report.side_events;
        let shared: std::sync::Arc<str> = path.as_str().into();
        let mut sink = |e: &PgEvent<'_>| {
            side.extend(
                buckets::pg_side_event(&shared, e).filter(|s| window.contains(Some(s.time))),
            );
            join.push(path, e)
        };
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

    if gunicorn_records == 0 && !report.inputs.iter().any(|i| i.format == "gunicorn") {
        let read: Vec<String> = report
            .inputs
            .iter()
            .map(|i| format!("{} ({})", i.path, i.format))
            .collect();
        report.warnings.push(Warning {
            code: "not_gunicorn_log",
            message: format!(
                "no Gunicorn error log among the inputs, so no worker timeout can be seen; read \
                 as other logs: {}",
                read.join(", ")
            ),
            advice: "Give the Gunicorn error log (--error-logfile, or the service's journal) \
                     with the other logs."
                .into(),
        });
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
    let endpoint_list = endpoints.summary(20);
    let timed_out_paths: Vec<String> = incidents
        .iter()
        .filter_map(|i| i.attribution.request.as_deref())
        .map(|r| {
            let r = r.rsplit(' ').next().unwrap_or(r);
            r.split('?').next().unwrap_or(r).to_string()
        })
        .collect();
    let (endpoint_findings, endpoint_warnings) =
        endpoint_findings::findings(&endpoint_findings::Inputs {
            endpoints: &endpoint_list,
            timeout,
            class: worker_class.as_deref(),
            proxy_timeouts: &proxy_timeouts,
            timed_out_paths: &timed_out_paths,
            any_timeout: incidents.iter().any(|i| i.timeout.is_some()),
            app_errors: &app_errors,
        });
    report.findings.extend(endpoint_findings);
    report.warnings.extend(endpoint_warnings);
    report
        .warnings
        .extend(slow_together(&incidents, &endpoints, timeout.seconds));
    if endpoints.dropped_requests > 0 {
        report.warnings.push(Warning {
            code: "endpoints_capped",
            message: format!(
                "{} requests to endpoints beyond the first {} were counted out of the \
                 per-endpoint latency",
                endpoints.dropped_requests,
                crate::analyze::endpoints::MAX_ENDPOINTS
            ),
            advice: "Nothing is wrong; narrow the inputs to the period of the timeouts for \
                     every endpoint to be measured."
                .into(),
        });
    }
    if !endpoints.is_empty() {
        report.client_impact = endpoints.client_impact();
        report.endpoints = Some(endpoint_list);
        report.endpoint_timeout_s = Some(timeout.seconds);
    }
    report
        .findings
        .extend(worker_findings::boot_failure_finding(&events));
    report
        .warnings
        .extend(worker_findings::restart_loop_warning(&events));
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
    if !app_errors.is_empty() {
        report
            .summary
            .insert("app_database_errors", app_errors.len() as u64);
    }
    report.events_omitted = omitted;
    report.events = events;
    report.rank_findings();
    Ok(report)
}

/// Where a Gunicorn log's or a stream's results go, read on this thread or ahead.
struct Read<'a> {
    report: &'a mut Report,
    timeline: &'a mut Timeline,
    records: &'a mut u64,
    versions: &'a mut Vec<String>,
    worker_class: &'a mut Option<String>,
    kernel: &'a mut Vec<SideLine>,
    proxy: &'a mut Vec<SideLine>,
}

impl Read<'_> {
    fn gunicorn(
        &mut self,
        path: &str,
        compressed: bool,
        counts: input::LineCounts,
        parsed: ParsedGunicornLog,
    ) {
        *self.records += parsed.records;
        self.report
            .warnings
            .extend(input_warning(path, counts, parsed.records));
        if let Some(v) = parsed.version {
            self.versions.push(v);
        }
        if let Some(class) = &parsed.worker_class {
            self.timeline.set_worker_class(class);
            *self.worker_class = Some(class.clone());
        }
        self.report.inputs.push(summary(
            path,
            "gunicorn",
            compressed,
            counts,
            parsed.skips,
            parsed.lossy_lines,
        ));
    }

    fn fleet(&mut self, path: &str, compressed: bool, envelope: Envelope, read: FleetRead) {
        *self.records += read.records;
        self.report
            .warnings
            .extend(fleet::reversed_warning(path, &read));
        if read.records == 0 {
            self.report
                .warnings
                .extend(input_warning(path, read.counts, read.records));
        }
        self.versions.extend(read.versions);
        if let Some(class) = &read.worker_class {
            self.timeline.set_worker_class(class);
            *self.worker_class = Some(class.clone());
        }
        self.report
            .warnings
            .extend(fleet::unread_warning(path, &read.unread));
        self.kernel.extend(read.kernel);
        self.proxy.extend(read.proxy);
        let mut input = summary(
            path,
            "gunicorn",
            compressed,
            read.counts,
            read.skips,
            read.lossy_lines,
        );
        input.envelope = Some(envelope.name());
        input.origins = read.origins;
        self.report.inputs.push(input);
    }

    /// Takes an input another thread read; false when it was not one to read there.
    fn ahead(&mut self, path: &str, taken: parallel::Taken<'_>) -> Result<bool> {
        for msg in taken {
            match msg {
                parallel::Msg::NotMine => return Ok(false),
                parallel::Msg::Events(batch) => {
                    for (event, database) in batch {
                        self.timeline.push_read(event, database);
                    }
                }
                parallel::Msg::Failed(e) => return Err(e),
                parallel::Msg::Gunicorn(compressed, counts, parsed) => {
                    self.gunicorn(path, compressed, counts, parsed);
                    return Ok(true);
                }
                parallel::Msg::Fleet(compressed, envelope, read) => {
                    self.fleet(path, compressed, envelope, *read);
                    return Ok(true);
                }
            }
        }
        // The thread ended without its last message: it panicked.
        anyhow::bail!("{path}: reading stopped unexpectedly; run again with --jobs 1")
    }
}

/// An input read after the Gunicorn logs: planned from an option (opened when its turn comes,
/// so a thousand rotated logs never hold a thousand descriptors), or found among the
/// positional inputs and already open.
enum Pending {
    Planned(input::Planned),
    Opened(input::Input),
}

impl Pending {
    fn open(self, output: &crate::cli::OutputArgs) -> Result<input::Input> {
        Ok(match self {
            Pending::Planned(p) => {
                let progress = progress_for(&p.path, output);
                p.open(progress)?
            }
            Pending::Opened(i) => i,
        })
    }
}

/// Endpoints needed slow at once around a timeout to call it a shared slowdown.
const SLOW_TOGETHER_ENDPOINTS: usize = 3;

/// A note when requests to several endpoints were slow around a worker timeout: the cause is
/// something they share (the database, the host), not one endpoint's code. It names no cause.
fn slow_together(
    incidents: &[incident::Incident],
    endpoints: &Endpoints,
    timeout_s: f64,
) -> Option<Warning> {
    let window = chrono::Duration::milliseconds((timeout_s * 1000.0) as i64);
    let mut times: Vec<_> = incidents
        .iter()
        .filter(|i| i.timed && i.timeout.is_some())
        .map(|i| i.time)
        .collect();
    times.sort();
    times.dedup();
    let (t, slow) = times
        .iter()
        .map(|t| (*t, endpoints.slow_near(*t, window)))
        .max_by_key(|(_, s)| s.len())?;
    if slow.len() < SLOW_TOGETHER_ENDPOINTS {
        return None;
    }
    let shown: Vec<&str> = slow.iter().take(6).copied().collect();
    Some(Warning {
        code: "slow_together",
        message: format!(
            "{} endpoints were slow (two thirds of the timeout or more) within {} s of the worker \
             timeout at {}: {}{}",
            slow.len(),
            timeout_s,
            t.to_rfc3339(),
            shown.join(", "),
            if slow.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ),
        advice: "When everything slows down at once the cause is shared: look at the database at \
                 that time (--pg-log: lock waits, slow statements), at the host (CPU steal, swap, \
                 throttling) and at an upstream they all call, before any one endpoint's code."
            .into(),
    })
}

/// A cheap look for the marks of an access or router line.
fn looks_like_request(bytes: &[u8]) -> bool {
    use memchr::memmem;
    static ROUTER: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b"heroku[router]: "));
    static QUOTED_REQUEST: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b" HTTP/"));
    ROUTER.find(bytes).is_some() || QUOTED_REQUEST.find(bytes).is_some()
}

/// Takes one line of an access-style log into the endpoint statistics, and a router's
/// unanswered request (Heroku's H12/H13/H18) into the proxy's lines; false when the line is
/// not one.
fn feed_request(
    path: &str,
    number: u64,
    text: &str,
    endpoints: &mut Endpoints,
    routed: &mut Vec<ProxyLine>,
    answers_5xx: &mut crate::report::SideEvents,
) -> bool {
    let Some(r) = requests::parse_line(text) else {
        return false;
    };
    if let (Some(time), Some(status)) = (r.time, r.status)
        && status >= 500
    {
        answers_5xx.push(buckets::answer_side_event(path, number, time, status));
    }
    let evidence = || Evidence {
        path: path.to_string(),
        line: Some(number),
        text: crate::parse::cap(text, 400).to_string(),
    };
    if let Some(time) = r.time {
        let source = match r.writer {
            Writer::Proxy => TimingSource::ProxyAccess,
            Writer::Gunicorn => TimingSource::GunicornAccess,
            Writer::Unknown => TimingSource::Access,
        };
        endpoints.push(
            source,
            &Request {
                time,
                method: Some(r.method),
                path: r.path,
                status: r.status,
                seconds: r.seconds,
                evidence: &evidence,
            },
        );
    }
    if let Some(end) = r.proxy_end
        && routed.len() < MAX_PROXY_LINES
    {
        routed.push(ProxyLine {
            up: nginx::NginxUpstream {
                end,
                time: r.time,
                request: Some(format!("{} {}", r.method, r.path)),
            },
            path: path.to_string(),
            line: number,
            text: crate::parse::cap(text, 400).to_string(),
            origin: Origin::file(&Arc::from(path)),
        });
    }
    true
}

/// A `django.request` exception that is the database's: evidence for its endpoint.
fn is_database_error(exception: &str) -> bool {
    [
        "statement timeout",
        "lock timeout",
        "deadlock detected",
        "DeadlockDetected",
        "QueryCanceled",
        "LockNotAvailable",
        "could not serialize access",
        "OperationalError",
    ]
    .iter()
    .any(|k| exception.contains(k))
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
        envelope: None,
        origins: Vec::new(),
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
             times: the stall was outside the database (a C extension, OpenSSL), or the \
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
