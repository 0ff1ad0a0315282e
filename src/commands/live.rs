//! `wtdiag live`: a running Gunicorn → py-spy samples of every worker (+ /proc, + PostgreSQL with
//! `--pg`) → one diagnosis per worker → findings. Ctrl-C stops the sampling and reports what was
//! sampled so far.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, FixedOffset, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use crate::analyze::live::{
    self as diagnosis, Activity, BackendLookup, LiveContext, MemoryTrend, StackReading,
    WorkerDiagnosis, WorkerInput, WorkerOutcome,
};
use crate::analyze::stack::{self, Origin};
use crate::cli::LiveArgs;
use crate::live::gunicorn_config::{self, MasterTimeout, WorkerClass, WorkerModel};
use crate::live::pg_activity::PgLookup;
use crate::live::pyspy::{Candidates, PySpy, PySpyError};
use crate::live::sampler::{self, SamplingPlan, SamplingRun, Targets, WorkerRecord};
use crate::live::source::SourceLines;
use crate::live::target::{self, Target, TargetKind};
use crate::live::{parse_duration, procfs};
use crate::report::{Cause, CommandName, Report, Warning};

/// A request in one stack this long is stuck (capped at half the sampling window, so that a
/// short run can still see it).
const STUCK_MIN_SECONDS: f64 = 1.0;
/// One py-spy dump taking longer than this is killed.
const DUMP_DEADLINE: Duration = Duration::from_secs(5);

pub fn run(args: &LiveArgs) -> Result<Report> {
    let duration = parse_duration(&args.duration).ok_or_else(|| {
        anyhow!(
            "--duration {:?}: not a duration; use e.g. 10s, 500ms, 1m",
            args.duration
        )
    })?;
    let interval = parse_duration(&args.interval).ok_or_else(|| {
        anyhow!(
            "--interval {:?}: not a duration; use e.g. 200ms, 1s",
            args.interval
        )
    })?;
    if interval < Duration::from_millis(10) {
        bail!(
            "--interval {}: too short; use 10ms or more (200ms is gentle on the workers)",
            args.interval
        );
    }
    if let Some(t) = args.timeout
        && !(t.is_finite() && t >= 0.0)
    {
        bail!("--timeout {t}: give the master's timeout in seconds (0: it never kills)");
    }

    check_output(args)?;
    let target = target::resolve(args.pid)?;
    let pyspy = PySpy::locate(&Candidates::for_target(
        args.py_spy.clone(),
        target.master.unwrap_or(target.given),
    ))?;
    let timeout = target.master_timeout(args.timeout);
    let model = worker_model(&target);

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Only one handler per process; a second `live` run in the same process keeps the first.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: the user does not want to wait. py-spy children finish their
                // one dump by themselves (they run in their own process group).
                std::process::exit(130);
            }
        });
    }
    // A handler from an earlier run in this process may have set it.
    stop.store(false, Ordering::SeqCst);

    let plan = SamplingPlan {
        duration,
        interval,
        nonblocking: args.nonblocking,
        dump_deadline: DUMP_DEADLINE,
    };
    let targets = match (target.kind, target.master) {
        (TargetKind::Master, Some(master)) => Targets::Master {
            pid: master,
            workers: target.workers.clone(),
        },
        _ => Targets::Workers(target.workers.clone()),
    };
    let bar = progress_bar(args, duration);
    let mut run = sampler::sample(&pyspy, targets, plan, &stop, &|p| {
        if let Some(bar) = &bar {
            bar.set_position(p.elapsed.as_millis() as u64);
            bar.set_message(format!(
                "sampling {} worker(s) with py-spy: {} samples",
                p.workers, p.samples
            ));
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let ended = SystemTime::now();

    if run.workers.iter().all(|w| w.samples.is_empty()) {
        return Err(no_samples_error(&run, args.pid));
    }

    let mut sources = SourceLines::default();
    for w in &mut run.workers {
        for sample in &mut w.samples {
            for thread in &mut sample.threads {
                sources.annotate(w.pid, &mut thread.frames, |f| {
                    stack::origin(&f.file) == Origin::App
                });
            }
        }
    }

    let stuck_min = STUCK_MIN_SECONDS.min(duration.as_secs_f64() / 2.0);
    let readings: Vec<StackReading> = run
        .workers
        .iter()
        .map(|w| diagnosis::read_stacks(&w.samples, stuck_min))
        .collect();
    let thread_readings: Vec<Vec<StackReading>> = run
        .workers
        .iter()
        .map(|w| diagnosis::read_threads(&w.samples, stuck_min))
        .collect();
    // The stacks say what runs; else the master's settings; a lone process has neither.
    let seen_classes: Vec<Option<WorkerClass>> = run
        .workers
        .iter()
        .map(|w| diagnosis::class_from_stacks(&w.samples))
        .collect();
    let classes: Vec<WorkerClass> = seen_classes
        .iter()
        .map(|c| c.clone().unwrap_or_else(|| model.class.clone()))
        .collect();

    let mut warnings = Vec::new();
    let backends = lookup_backends(
        args.pg.as_deref(),
        &run,
        &readings,
        &thread_readings,
        &mut warnings,
    );

    let context = LiveContext {
        timeout: Some(timeout.seconds),
        system_swap_used: procfs::system_swap().map(|(used, _)| used),
        started_at: to_fixed(run.started_at),
    };
    let mut heartbeat_missing = Vec::new();
    let mut outcomes: Vec<WorkerOutcome> = run
        .workers
        .iter()
        .zip(&readings)
        .zip(backends)
        .enumerate()
        .map(|(i, ((w, reading), backend))| {
            let exited = w
                .stopped_by
                .as_ref()
                .is_some_and(|(_, e)| matches!(e, PySpyError::Exited { .. }))
                || !procfs::is_alive(w.pid);
            let heartbeat_age = if exited {
                None
            } else {
                match procfs::heartbeat(w.pid) {
                    Ok(Some(h)) => Some(h.age(ended)),
                    _ => {
                        if matches!(reading.activity, Activity::Busy | Activity::Stuck) {
                            heartbeat_missing.push(w.pid);
                        }
                        None
                    }
                }
            };
            let input = WorkerInput {
                pid: w.pid,
                exited,
                heartbeat_age,
                memory: memory_trend(w),
                backend,
                class: classes[i].clone(),
                // A pool larger than the config says (a setting wtdiag could not read).
                threads: model
                    .threads
                    .max(diagnosis::pool_threads(&w.samples) as u32),
                request_thread: false,
            };
            diagnosis::diagnose_worker(reading, &thread_readings[i], &input, &context)
        })
        .collect();

    for o in outcomes
        .iter_mut()
        .filter(|o| o.worker.class.is_event_loop() && !o.worker.state.exited)
    {
        o.worker.state.client_connections = client_connections(o.worker.state.pid);
    }
    if target.master.is_none() {
        for (o, seen) in outcomes.iter_mut().zip(&seen_classes) {
            if seen.is_none() {
                o.worker.state.worker_class = None;
            }
        }
    }

    let mut report = Report::new(CommandName::Live);
    report.findings = diagnosis::findings(&finding_inputs(&outcomes));
    report.rank_findings();
    warnings.extend(class_warnings(&model, &outcomes));
    warnings.extend(run_warnings(
        args,
        &target,
        &pyspy,
        &timeout,
        &run,
        &readings,
        &heartbeat_missing,
    ));
    report.warnings = warnings;
    let diagnoses: Vec<&WorkerDiagnosis> = outcomes.iter().map(|o| &o.worker).collect();
    report.summary = summary(&run, &diagnoses);
    report.summary.insert(
        "requests",
        outcomes.iter().map(|o| o.requests.len() as u64).sum(),
    );
    // A worker that gave no sample has no state to show; a warning says why.
    report.workers = Some(
        outcomes
            .iter()
            .filter(|o| o.worker.state.samples > 0)
            .map(WorkerOutcome::state)
            .collect(),
    );
    Ok(report)
}

/// What findings are made of: every request being served, and workers short of memory whose
/// requests do not already say so.
fn finding_inputs(outcomes: &[WorkerOutcome]) -> Vec<WorkerDiagnosis> {
    let mut out = Vec::new();
    for o in outcomes {
        out.extend(o.requests.iter().cloned());
        if o.worker.cause == Some(Cause::Memory)
            && !o.requests.iter().any(|r| r.cause == Some(Cause::Memory))
        {
            out.push(o.worker.clone());
        }
    }
    out
}

/// Established connections from clients: to a port the worker listens on.
fn client_connections(pid: u32) -> Option<usize> {
    let ports = procfs::listening_ports(pid).ok()?;
    let connections = procfs::tcp_connections(pid).ok()?;
    Some(
        connections
            .iter()
            .filter(|c| ports.contains(&c.local.port()))
            .count(),
    )
}

/// The worker class and thread count, from the master (nothing to read without one).
fn worker_model(target: &Target) -> WorkerModel {
    match (&target.master_view, target.master) {
        (Some(view), Some(master)) => {
            gunicorn_config::resolve_workers(view, &|p| target::read_as(master, p))
        }
        _ => WorkerModel::default(),
    }
}

/// What the worker classes mean for this run: a gthread pool with no thread left, what py-spy
/// cannot see of an event loop, a setting that could not be read.
fn class_warnings(model: &WorkerModel, outcomes: &[WorkerOutcome]) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(doubt) = &model.doubt {
        out.push(Warning {
            code: "worker_class_assumed",
            message: format!(
                "{doubt}; the worker class and threads are read from the workers' stacks where \
                 they show it"
            ),
            advice: "Check the class and threads in the error log's `Using worker:` line.".into(),
        });
    }
    let gthread: Vec<&WorkerOutcome> = outcomes
        .iter()
        .filter(|o| o.worker.class == WorkerClass::Gthread && o.worker.state.samples > 0)
        .collect();
    let exhausted: Vec<&WorkerOutcome> = gthread
        .iter()
        .copied()
        .filter(|o| {
            o.worker
                .state
                .threads_total
                .is_some_and(|total| o.requests.len() >= total)
        })
        .collect();
    for o in &exhausted {
        let total = o.worker.state.threads_total.unwrap_or(0);
        let longest = o
            .requests
            .iter()
            .map(|r| r.state.stuck_seconds)
            .fold(0.0, f64::max);
        out.push(Warning {
            code: "thread_pool_exhausted",
            message: format!(
                "worker {}: all {total} thread(s) of its pool serve requests (the longest stuck \
                 for {longest:.1} s): it still accepts connections (up to worker_connections, \
                 1000 by default), which wait in its queue until a thread returns, even while \
                 other workers have threads free; under gthread the master times none of them \
                 out",
                o.worker.state.pid
            ),
            advice: "Fix the calls the findings name (a timeout on each); raising --threads \
                     only delays the next exhaustion. Meanwhile the proxy's timeout (504) is \
                     what clients see."
                .into(),
        });
    }
    if gthread.len() > 1 && exhausted.len() == gthread.len() {
        out.push(Warning {
            code: "thread_pool_exhausted",
            message: format!(
                "every thread of every gthread worker ({} workers) is held: new requests queue \
                 behind hung ones, the outage shows as proxy 504s, not WORKER TIMEOUT",
                gthread.len()
            ),
            advice: "Restart the workers (kill -HUP the master) to free them now; fix the \
                     calls the findings name."
                .into(),
        });
    }
    let event_loops: Vec<&WorkerOutcome> = outcomes
        .iter()
        .filter(|o| o.worker.class.is_event_loop() && o.worker.state.samples > 0)
        .collect();
    if let Some(first) = event_loops.first() {
        let class = first.worker.class.name();
        // Clients connected to a worker whose loop py-spy saw free: their requests wait in
        // suspended greenlets/coroutines (or are idle keep-alive connections).
        let hidden: Vec<String> = event_loops
            .iter()
            .filter(|o| o.worker.state.loop_blocked != Some(true))
            .filter_map(|o| {
                let n = o.worker.state.client_connections.filter(|n| *n > 0)?;
                Some(format!("worker {} holds {n}", o.worker.state.pid))
            })
            .collect();
        let hidden = if hidden.is_empty() {
            String::new()
        } else {
            format!(
                "; client connections on workers whose loop is free ({}) are requests waiting \
                 that way, or idle keep-alive connections",
                hidden.join(", ")
            )
        };
        out.push(Warning {
            code: "event_loop_partial_view",
            message: format!(
                "{} {class} worker(s): py-spy reads OS threads, so it sees only the \
                 greenlet/coroutine running at each sample; requests suspended on I/O that \
                 yields are in no stack (a worker shown idle may still have requests waiting). \
                 A request that shows in every sample is holding the loop{hidden}",
                event_loops.len()
            ),
            advice: "To list suspended requests, ask the worker itself (gevent: \
                     gevent.util.print_run_info(); asyncio: asyncio.all_tasks() via aiomonitor), \
                     or read the app's request log for requests without an end."
                .into(),
        });
    }
    out
}

fn to_fixed(t: SystemTime) -> DateTime<FixedOffset> {
    DateTime::<Utc>::from(t).fixed_offset()
}

fn progress_bar(args: &LiveArgs, duration: Duration) -> Option<ProgressBar> {
    if args.output.no_progress || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(ProgressStyle::with_template("{msg} {bar:30} {elapsed}/{duration}").ok()?);
    Some(bar)
}

/// No worker gave a single sample: the first failure is the error (it names the next step).
fn no_samples_error(run: &SamplingRun, pid: u32) -> anyhow::Error {
    let failures = run
        .workers
        .iter()
        .flat_map(|w| w.stopped_by.iter().map(|(_, e)| e).chain(w.failures.iter()));
    let mut first_other = None;
    for e in failures {
        match e {
            PySpyError::PermissionDenied { .. } | PySpyError::NotPython { .. } => {
                return anyhow!("{e}");
            }
            PySpyError::Exited { .. } => {}
            other => {
                first_other.get_or_insert_with(|| other.to_string());
            }
        }
    }
    if run.interrupted {
        return anyhow!("interrupted before the first sample of pid {pid}");
    }
    match first_other {
        Some(e) => anyhow!("no sample could be taken: {e}"),
        None => anyhow!(
            "pid {pid}: every worker exited before it could be sampled; give the pid of the running master (`pgrep -fa gunicorn`)"
        ),
    }
}

fn memory_trend(w: &WorkerRecord) -> Option<MemoryTrend> {
    let first = w.memory_first?;
    let last = w.memory_last.unwrap_or(first);
    let seconds = (last.at - first.at).as_secs_f64();
    let faults = last.major_faults.saturating_sub(first.major_faults) as f64;
    Some(MemoryTrend {
        rss_bytes: last.memory.rss_bytes,
        swap_bytes: last.memory.swap_bytes,
        rss_growth_bytes: last.memory.rss_bytes as i64 - first.memory.rss_bytes as i64,
        major_faults_per_second: if seconds >= 0.5 {
            faults / seconds
        } else {
            0.0
        },
        seconds,
    })
}

/// With `--pg`: the backend of each worker that waits on the database, by its client address.
fn lookup_backends(
    dsn: Option<&str>,
    run: &SamplingRun,
    readings: &[StackReading],
    threads: &[Vec<StackReading>],
    warnings: &mut Vec<Warning>,
) -> Vec<BackendLookup> {
    let mut out = vec![BackendLookup::NotAsked; run.workers.len()];
    let waits =
        |i: usize| readings[i].waits_on_database || threads[i].iter().any(|t| t.waits_on_database);
    let waiting: Vec<usize> = (0..readings.len()).filter(|i| waits(*i)).collect();
    let Some(dsn) = dsn else {
        let undecided = (0..readings.len())
            .filter(|i| {
                let undecided =
                    |r: &StackReading| r.waits_on_database && r.cause == Some(Cause::SlowQuery);
                undecided(&readings[*i]) || threads[*i].iter().any(undecided)
            })
            .count();
        if undecided > 0 {
            warnings.push(Warning {
                code: "database_wait_unrefined",
                message: format!(
                    "{undecided} worker(s) wait on the database; without --pg wtdiag cannot \
                     tell a lock wait from a slow statement"
                ),
                advice: "Rerun with --pg 'host=... port=... dbname=... user=...' (a role that \
                         can read pg_stat_activity, e.g. one with pg_read_all_stats)."
                    .into(),
            });
        }
        return out;
    };
    if waiting.is_empty() {
        return out;
    }
    let connections: Vec<(usize, Vec<std::net::SocketAddr>)> = waiting
        .iter()
        .map(|i| {
            let pid = run.workers[*i].pid;
            let locals = procfs::tcp_connections(pid)
                .map(|c| c.into_iter().map(|c| c.local).collect())
                .unwrap_or_default();
            (*i, locals)
        })
        .collect();
    let all: Vec<std::net::SocketAddr> = connections
        .iter()
        .flat_map(|(_, l)| l.iter().copied())
        .collect();
    let found = PgLookup::connect(dsn).and_then(|mut pg| pg.by_client(&all));
    match found {
        Ok(by_client) => {
            for (i, locals) in connections {
                out[i] = locals
                    .iter()
                    .find_map(|l| by_client.get(l).cloned())
                    .map(|b| BackendLookup::Found(Box::new(b)))
                    .unwrap_or(BackendLookup::Unmatched);
            }
        }
        Err(e) => {
            for i in waiting {
                out[i] = BackendLookup::Failed;
            }
            warnings.push(Warning {
                code: "pg_lookup_failed",
                message: format!("{e:#}"),
                advice: "Check the DSN (host, port, dbname, user, password or ~/.pgpass) with \
                         `psql 'DSN'`; the role needs to see other sessions in \
                         pg_stat_activity (pg_read_all_stats)."
                    .into(),
            });
        }
    }
    out
}

fn run_warnings(
    args: &LiveArgs,
    target: &Target,
    pyspy: &PySpy,
    timeout: &MasterTimeout,
    run: &SamplingRun,
    readings: &[StackReading],
    heartbeat_missing: &[u32],
) -> Vec<Warning> {
    let mut out = Vec::new();
    if run.interrupted {
        out.push(Warning {
            code: "interrupted",
            message: format!(
                "sampling was interrupted after {:.1} s of {}: the report covers the samples \
                 taken until then",
                run.elapsed.as_secs_f64(),
                args.duration
            ),
            advice: "Rerun for the whole --duration for steadier numbers.".into(),
        });
    }
    for w in &run.workers {
        let sampled = format!("its {} sample(s) up to then are kept", w.samples.len());
        match &w.stopped_by {
            Some((at, PySpyError::Exited { .. })) => out.push(Warning {
                code: "worker_exited",
                message: format!(
                    "worker {} exited {:.1} s into sampling; {sampled}, the other workers' \
                     samples are complete",
                    w.pid,
                    at.as_secs_f64()
                ),
                advice: "The master killed it (WORKER TIMEOUT), max_requests recycled it, or it \
                         crashed: look for its pid in Gunicorn's error log (`wtdiag logs`). A \
                         replacement that appeared during sampling was sampled too."
                    .into(),
            }),
            Some((_, e)) => out.push(Warning {
                code: "worker_not_sampled",
                message: format!("worker {}: {e}; {sampled}", w.pid),
                advice: "The other workers were sampled; fix the cause above to see this one."
                    .into(),
            }),
            None => {}
        }
        if !w.failures.is_empty() {
            out.push(Warning {
                code: "samples_failed",
                message: format!(
                    "worker {}: {} dump(s) failed, e.g. {}",
                    w.pid,
                    w.failures.len(),
                    w.failures[0]
                ),
                advice: "The worker's other samples are used; rerun if too few remain.".into(),
            });
        }
    }
    if let Some(doubt) = &timeout.doubt {
        out.push(Warning {
            code: "timeout_assumed",
            message: format!(
                "{doubt}; seconds left assume Gunicorn's default timeout of {:.0} s",
                timeout.seconds
            ),
            advice: "Give the master's timeout with --timeout SECONDS.".into(),
        });
    }
    if !heartbeat_missing.is_empty() {
        out.push(Warning {
            code: "heartbeat_not_found",
            message: format!(
                "no Gunicorn heartbeat file (wgunicorn-*) open in worker(s) {}: their seconds \
                 left are unknown",
                join_pids(heartbeat_missing)
            ),
            advice: "Is this a Gunicorn worker? Run wtdiag as the workers' user or root so that \
                     /proc/PID/fd can be read."
                .into(),
        });
    }
    if target.kind == TargetKind::Lone {
        out.push(Warning {
            code: "not_a_gunicorn_master",
            message: format!(
                "pid {} has no worker processes and no Gunicorn master above it: it was sampled \
                 on its own",
                target.given
            ),
            advice: "Give the Gunicorn master's pid (`pgrep -fa 'gunicorn'`) to sample all its \
                     workers."
                .into(),
        });
    }
    let busy = readings
        .iter()
        .filter(|r| matches!(r.activity, Activity::Busy | Activity::Stuck))
        .count();
    if args.nonblocking && busy > 0 {
        out.push(Warning {
            code: "nonblocking_samples",
            message: "--nonblocking: py-spy read the stacks without pausing the workers, so a \
                      stack may mix two moments"
                .into(),
            advice: "Rerun without --nonblocking to confirm a surprising frame (each pause \
                     lasts well under a millisecond)."
                .into(),
        });
    }
    let mut parts = pyspy
        .version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (0, 4) {
        out.push(Warning {
            code: "old_py_spy",
            message: format!(
                "py-spy {} ({}) predates 0.4: newer Pythons (3.12+) are not readable by it",
                pyspy.version,
                pyspy.path.display()
            ),
            advice: "pip install -U py-spy".into(),
        });
    }
    out
}

fn join_pids(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(run: &SamplingRun, diagnoses: &[&WorkerDiagnosis]) -> BTreeMap<&'static str, u64> {
    let mut s = BTreeMap::new();
    s.insert("workers", run.workers.len() as u64);
    s.insert(
        "samples",
        run.workers.iter().map(|w| w.samples.len() as u64).sum(),
    );
    for d in diagnoses.iter().filter(|d| d.state.samples > 0) {
        let key = match d.state.state.as_str() {
            "busy" => "busy",
            "stuck" => "stuck",
            _ => "idle",
        };
        *s.entry(key).or_insert(0) += 1;
    }
    s
}

/// Refuses an `--output` whose directory does not exist before sampling, not after it.
fn check_output(args: &LiveArgs) -> Result<()> {
    if args.output.output != "-" {
        let path = std::path::Path::new(&args.output.output);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::metadata(dir)
                .with_context(|| format!("cannot write the report to {}", args.output.output))?;
        }
    }
    Ok(())
}
