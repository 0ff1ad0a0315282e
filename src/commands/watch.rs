//! `wtdiag watch`: a Gunicorn master → its workers' heartbeat ages, read from /proc at a low rate
//! → for a worker whose heartbeat passes the threshold, an episode of py-spy dumps (+ PostgreSQL
//! with `--pg`) until it recovers or dies → one incident per episode, diagnosed by
//! `analyze::live` and written at once (JSON Lines or a table line) → on Ctrl-C, SIGTERM or
//! `--duration`, a summary report of everything caught.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};

use crate::analyze::live::{self as diagnosis, WorkerDiagnosis};
use crate::cli::WatchArgs;
use crate::exit_code;
use crate::live::gunicorn_config::{self, MasterTimeout, WorkerClass};
use crate::live::pyspy::{Candidates, PySpy, PySpyError};
use crate::live::target::{self, TargetKind};
use crate::live::{parse_duration, procfs};
use crate::render::{self, Format};
use crate::report::{CommandName, Report, Warning};
use crate::watch::Threshold;
use crate::watch::episode::{self, Caught, CaughtBy, Episode, EpisodeConfig, MemoryPoint};
use crate::watch::fleet::{self, Fleet};
use crate::watch::incident::{self, Incident, Setting};

/// How often heartbeats are read: /proc only, nothing is stopped.
const POLL: Duration = Duration::from_millis(250);
/// An idle worker's heartbeat ages up to its loop's wait (half the timeout for sync workers)
/// plus the time of one loop turn; a worker is caught only this far past that.
const IDLE_MARGIN_SECONDS: f64 = 1.0;
/// Memory readings per worker looked at for growth (2 s of polls).
const MEMORY_WINDOW: usize = 9;
/// A worker is caught for memory when its RSS grows this much within the window...
const RSS_GROWTH_MIN_BYTES: u64 = 64 << 20;
/// ...at least this fast (the rate `analyze::live` calls a memory problem)...
const RSS_GROWTH_MIN_BYTES_PER_SECOND: f64 = (20 << 20) as f64;
/// ...or when this much more of it goes to swap within the window.
const SWAP_GROWTH_MIN_BYTES: u64 = 8 << 20;
/// Incidents kept for the summary's findings; later ones are written and counted only.
const MAX_KEPT_INCIDENTS: usize = 1000;

pub fn run(args: &WatchArgs) -> Result<i32> {
    if matches!(args.format, Format::Markdown | Format::Html) {
        bail!(
            "--format {}: watch writes each incident as it happens, as a table line or a JSON \
             line; use --format table or json (then `wtdiag logs` on its JSON Lines for a report)",
            if args.format == Format::Html {
                "html"
            } else {
                "markdown"
            }
        );
    }
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
    let duration =
        match &args.duration {
            Some(d) => Some(parse_duration(d).ok_or_else(|| {
                anyhow!("--duration {d:?}: not a duration; use e.g. 10m, 1h, 30s")
            })?),
            None => None,
        };
    let threshold = Threshold::parse(&args.threshold).ok_or_else(|| {
        anyhow!(
            "--threshold {:?}: give a fraction of the master's timeout below 1 (0.5) or seconds \
             (3s, 2500ms)",
            args.threshold
        )
    })?;
    if let Some(t) = args.timeout
        && !(t.is_finite() && t >= 0.0)
    {
        bail!("--timeout {t}: give the master's timeout in seconds (0: it never kills)");
    }
    let out = open_output(&args.output)?;

    let target = target::resolve(args.pid)?;
    let master = match (target.kind, target.master) {
        (TargetKind::Master, Some(m)) => m,
        (TargetKind::Worker, Some(m)) => bail!(
            "pid {} is a worker of the Gunicorn master {m}; watch follows a master's workers as \
             they come and go: give the master's pid (wtdiag watch --pid {m})",
            args.pid
        ),
        _ => bail!(
            "pid {}: not a Gunicorn master (it has no worker processes); give the master's pid \
             (`pgrep -fa gunicorn`, or the file given to gunicorn --pid)",
            args.pid
        ),
    };
    let pyspy = PySpy::locate(&Candidates::for_target(args.py_spy.clone(), master))?;
    // May wtdiag read the target at all? One dump of the master that never stops it.
    match pyspy.dump(master, true, Duration::from_secs(10)) {
        Err(e @ (PySpyError::PermissionDenied { .. } | PySpyError::NotPython { .. })) => {
            return Err(anyhow!("{e}"));
        }
        Err(PySpyError::Exited { .. }) => bail!(
            "pid {master}: the master exited; give the pid of the running master (`pgrep -fa gunicorn`)"
        ),
        _ => {}
    }
    let timeout = target.master_timeout(args.timeout);
    let model = match &target.master_view {
        Some(view) => gunicorn_config::resolve_workers(view, &|p| target::read_as(master, p)),
        None => Default::default(),
    };
    let Some(threshold_seconds) = threshold.seconds(timeout.seconds) else {
        bail!(
            "--threshold {}: the master's timeout is 0 (it never kills a worker), so a fraction \
             of it means nothing; give seconds, e.g. --threshold 30s",
            args.threshold
        );
    };
    // An idle worker notifies every timeout / 2 (sync, uvicorn) or every second (the others).
    let idle_peak = match model.class {
        WorkerClass::Sync | WorkerClass::Asyncio => timeout.seconds / 2.0,
        _ => 1.0,
    };
    let trigger = threshold_seconds.max(idle_peak + IDLE_MARGIN_SECONDS);
    if timeout.seconds > 0.0 && trigger >= timeout.seconds {
        bail!(
            "--threshold {}: a worker would be caught after {trigger:.1} s without heartbeat, \
             not before the master's timeout of {:.0} s kills it; give a smaller threshold \
             (a worker is caught no earlier than {:.1} s: an idle worker's heartbeat ages that \
             far)",
            args.threshold,
            timeout.seconds,
            idle_peak + IDLE_MARGIN_SECONDS
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    stop.store(false, Ordering::SeqCst);

    eprintln!(
        "wtdiag watch: following the workers of master {master} (timeout {:.0} s); a worker \
         {trigger:.1} s without heartbeat is sampled with py-spy; Ctrl-C or SIGTERM ends with a \
         summary",
        timeout.seconds
    );
    let setting = Setting {
        master,
        timeout: timeout.seconds,
        threshold: trigger,
        class: model.class.clone(),
        threads: model.threads,
    };
    let config = EpisodeConfig {
        pyspy: pyspy.clone(),
        interval,
        dsn: args.pg.clone(),
    };
    let mut watcher = Watcher {
        out,
        format: args.format,
        setting,
        kept: Vec::new(),
        counts: BTreeMap::new(),
        pg_errors: Vec::new(),
        sampling_errors: Vec::new(),
        requests: BTreeMap::new(),
    };
    let ended = watcher.follow(master, trigger, duration, &config, &stop);
    let mut report = watcher.summary(&timeout, model.doubt.as_deref());
    if let Ok(Ended::MasterExited) = ended {
        report.warnings.push(Warning {
            code: "master_exited",
            message: format!("the master {master} exited while watched"),
            advice: "Start watch again with the new master's pid (after a USR2 upgrade, the \
                     new master's pid is in the --pid file)."
                .into(),
        });
    }
    ended?;
    watcher.write_summary(&report)?;
    Ok(exit_code::OK)
}

enum Ended {
    Stopped,
    MasterExited,
}

/// Where incidents and the summary go, and what the summary is made of.
struct Watcher {
    out: Box<dyn Write>,
    format: Format,
    setting: Setting,
    /// Diagnoses of the first [`MAX_KEPT_INCIDENTS`] incidents, for the findings.
    kept: Vec<WorkerDiagnosis>,
    counts: BTreeMap<&'static str, u64>,
    pg_errors: Vec<String>,
    sampling_errors: Vec<(u32, String)>,
    /// The request path (no query) of each kept incident's pid.
    requests: BTreeMap<u32, String>,
}

impl Watcher {
    /// Reads heartbeats until `stop`, `duration` or the master's exit; every episode that ends
    /// is written at once. On return no episode runs and no py-spy is left.
    fn follow(
        &mut self,
        master: u32,
        trigger: f64,
        duration: Option<Duration>,
        config: &EpisodeConfig,
        stop: &Arc<AtomicBool>,
    ) -> Result<Ended> {
        let started = Instant::now();
        let mut fleet = Fleet::default();
        let (tx, rx) = mpsc::channel::<Episode>();
        let mut running: BTreeMap<u32, JoinHandle<()>> = BTreeMap::new();
        let mut memory: HashMap<u32, VecDeque<(Instant, u64, u64)>> = HashMap::new();
        let mut ended = Ended::Stopped;
        let mut result: Result<()> = Ok(());
        loop {
            if stop.load(Ordering::SeqCst) || duration.is_some_and(|d| started.elapsed() >= d) {
                break;
            }
            if !procfs::is_alive(master) {
                ended = Ended::MasterExited;
                break;
            }
            let workers = fleet.workers(master);
            let now = SystemTime::now();
            let now_i = Instant::now();
            memory.retain(|pid, _| workers.contains(pid) && !running.contains_key(pid));
            for pid in workers.iter().filter(|p| !running.contains_key(p)) {
                if let Ok(m) = procfs::memory(*pid) {
                    let h = memory.entry(*pid).or_default();
                    if h.len() == MEMORY_WINDOW {
                        h.pop_front();
                    }
                    h.push_back((now_i, m.rss_bytes, m.swap_bytes));
                }
            }
            for (pid, beat) in fleet::heartbeats(&workers, now) {
                if running.contains_key(&pid) {
                    continue;
                }
                let history = memory.get(&pid);
                let by = if beat.age >= trigger {
                    CaughtBy::Heartbeat
                } else if history.is_some_and(memory_grows) {
                    CaughtBy::Memory
                } else {
                    continue;
                };
                let memory_before = match (by, history) {
                    (CaughtBy::Memory, Some(h)) => h
                        .iter()
                        .map(|(at, rss, swap)| MemoryPoint {
                            at_seconds: -((now_i - *at).as_secs_f64() * 100.0).round() / 100.0,
                            rss_bytes: *rss,
                            swap_bytes: *swap,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let caught = Caught {
                    by,
                    memory_before,
                    pid,
                    at: now,
                    inode: beat.inode,
                    heartbeat: beat.changed,
                    age: beat.age,
                };
                let (tx, config, stop) = (tx.clone(), config.clone(), Arc::clone(stop));
                running.insert(
                    pid,
                    std::thread::spawn(move || {
                        let _ = tx.send(episode::follow(caught, &config, &stop));
                    }),
                );
            }
            while let Ok(e) = rx.try_recv() {
                if let Some(h) = running.remove(&e.caught.pid) {
                    let _ = h.join();
                }
                if let Err(err) = self.write_episode(&e) {
                    result = Err(err);
                    break;
                }
            }
            if result.is_err() {
                break;
            }
            let next = Instant::now() + POLL;
            while Instant::now() < next && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.counts.insert("workers", fleet.seen);
        // Episodes still running end now: their py-spy is stopped, the workers run on.
        stop.store(true, Ordering::SeqCst);
        drop(tx);
        for (_, h) in std::mem::take(&mut running) {
            let _ = h.join();
        }
        while let Ok(e) = rx.try_recv() {
            if result.is_ok()
                && let Err(err) = self.write_episode(&e)
            {
                result = Err(err);
            }
        }
        result.map(|()| ended)
    }

    fn write_episode(&mut self, e: &Episode) -> Result<()> {
        *self.counts.entry("samples").or_insert(0) += e.samples_taken as u64;
        if let Some(err) = &e.pg_error {
            self.pg_errors.push(err.clone());
            self.pg_errors.truncate(5);
        }
        if let Some(err) = e.sampling_stopped.as_ref().or(e.first_failure.as_ref())
            && self.sampling_errors.len() < 5
        {
            self.sampling_errors.push((e.caught.pid, err.clone()));
        }
        let Some((incident, diagnosis)) = incident::diagnose(e, &self.setting) else {
            *self.counts.entry("idle_catches").or_insert(0) += 1;
            return Ok(());
        };
        *self.counts.entry("incidents").or_insert(0) += 1;
        *self.counts.entry(incident.outcome.name()).or_insert(0) += 1;
        if self.kept.len() < MAX_KEPT_INCIDENTS {
            if let Some(r) = &incident.request {
                let path = r.split('?').next().unwrap_or(r).to_string();
                self.requests.insert(incident.worker.pid, path);
            }
            self.kept.push(diagnosis);
        }
        self.write_incident(&incident)
            .context("cannot write the incident")
    }

    fn write_incident(&mut self, incident: &Incident) -> io::Result<()> {
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.out, incident)?;
                writeln!(self.out)?;
            }
            Format::Table | Format::Markdown | Format::Html => {
                let line = incident::table_line(incident);
                writeln!(self.out, "{}", render::neutralize_controls(&line, false))?;
            }
        }
        self.out.flush()
    }

    /// The report of everything caught: findings grouped by cause and call site, as `live`'s.
    fn summary(&self, timeout: &MasterTimeout, class_doubt: Option<&str>) -> Report {
        let mut report = Report::new(CommandName::Watch);
        report.findings = diagnosis::findings(&self.kept);
        for f in &mut report.findings {
            let mut requests = f.pids.iter().filter_map(|p| self.requests.get(p));
            if let Some(first) = requests.next()
                && requests.all(|r| r == first)
                && f.pids.iter().all(|p| self.requests.contains_key(p))
            {
                f.request = Some(first.clone());
            }
        }
        report.rank_findings();
        report.summary = self.counts.clone();
        for key in ["incidents", "killed", "recovered"] {
            report.summary.entry(key).or_insert(0);
        }
        let omitted = self
            .counts
            .get("incidents")
            .copied()
            .unwrap_or(0)
            .saturating_sub(self.kept.len() as u64);
        if omitted > 0 {
            report.warnings.push(Warning {
                code: "incidents_capped",
                message: format!(
                    "{omitted} incident(s) after the first {MAX_KEPT_INCIDENTS} were written but \
                     are not in the findings"
                ),
                advice: "Read the incident lines above for them; restart watch to start a new \
                         summary."
                    .into(),
            });
        }
        if let Some(doubt) = &timeout.doubt {
            report.warnings.push(Warning {
                code: "timeout_assumed",
                message: format!(
                    "{doubt}; watch assumed Gunicorn's default timeout of {:.0} s",
                    timeout.seconds
                ),
                advice: "Give the master's timeout with --timeout SECONDS.".into(),
            });
        }
        if let Some(doubt) = class_doubt {
            report.warnings.push(Warning {
                code: "worker_class_assumed",
                message: format!("{doubt}; the workers' stacks say which class runs"),
                advice: "Check the class in the error log's `Using worker:` line.".into(),
            });
        }
        if let Some(first) = self.pg_errors.first() {
            report.warnings.push(Warning {
                code: "pg_lookup_failed",
                message: first.clone(),
                advice: "Check the DSN (host, port, dbname, user, password or ~/.pgpass) with \
                         `psql 'DSN'`; the role needs to see other sessions in \
                         pg_stat_activity (pg_read_all_stats)."
                    .into(),
            });
        }
        for (pid, err) in &self.sampling_errors {
            report.warnings.push(Warning {
                code: "samples_failed",
                message: format!("worker {pid}: {err}"),
                advice: "The other workers were sampled; fix the cause above to see this one."
                    .into(),
            });
        }
        report
    }

    fn write_summary(&mut self, report: &Report) -> Result<()> {
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.out, report)?;
                writeln!(self.out)?;
            }
            Format::Table | Format::Markdown | Format::Html => {
                writeln!(self.out)?;
                render::render(report, render::Options::plain(Format::Table), &mut self.out)?;
            }
        }
        self.out.flush().context("cannot write the summary")
    }
}

/// RSS growing fast over the window, or pages going to swap: the worker is caught before the
/// OOM killer (or a container's memory limit) ends it, with no timeout in sight.
fn memory_grows(history: &VecDeque<(Instant, u64, u64)>) -> bool {
    let (Some(first), Some(last)) = (history.front(), history.back()) else {
        return false;
    };
    let seconds = (last.0 - first.0).as_secs_f64();
    let grown = last.1.saturating_sub(first.1);
    let rss_fast = seconds > 0.0
        && grown >= RSS_GROWTH_MIN_BYTES
        && grown as f64 / seconds >= RSS_GROWTH_MIN_BYTES_PER_SECOND;
    rss_fast || last.2.saturating_sub(first.2) >= SWAP_GROWTH_MIN_BYTES
}

/// stdout, or `--output FILE` (created now, so that a bad path fails before watching starts).
fn open_output(path: &str) -> Result<Box<dyn Write>> {
    if path == "-" {
        return Ok(Box::new(BufWriter::new(io::stdout())));
    }
    let file = super::create_report_file(path)
        .with_context(|| format!("cannot write the incidents to {path}"))?;
    Ok(Box::new(BufWriter::new(file)))
}
