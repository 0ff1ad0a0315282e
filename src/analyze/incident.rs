//! Worker incidents: a WORKER TIMEOUT, the abort traceback that followed it, the SIGKILL that
//! escalated it, or a SIGKILL on its own. [`IncidentBuilder`] takes Gunicorn events as they are
//! read and keeps each incident compact (where its records are, not the events themselves), so
//! memory grows by about a hundred bytes per incident and not with the log's size; each
//! incident then gets one cause of the vocabulary.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Duration, FixedOffset};

use crate::analyze::worker_findings::Groups;
use crate::report::{
    Attribution, Cause, Confidence, Event, EventDetail, Evidence, Origin, OriginKind, RuledOut,
};

/// How long after a WORKER TIMEOUT a kill or an abort traceback of the same pid still belongs
/// to it. The master re-checks about once a second; a busy host can take longer.
const FOLLOW_WINDOW_SECS: i64 = 60;
/// Records whose text is kept for evidence; later ones are cited by file and line only.
const TEXT_BUDGET: usize = 4_000;
/// A kill this close to the start of its input (seconds, or lines when the input has no times)
/// may be the escalation of a timeout logged just above the cut: the master sends SIGKILL on
/// its next pass, about a second after `WORKER TIMEOUT` (arbiter.py `murder_workers`).
const CUT_WINDOW_SECS: i64 = 10;
const CUT_WINDOW_LINES: u64 = 5;
/// Timeouts this close together were found by the same pass of the master (it checks about
/// once a second; a loaded host logs them a little apart).
const SAME_PASS_SECS: i64 = 2;
/// Workers timing out in one pass that make it the whole process's stall, not a request's.
const HOST_STALL_WORKERS: usize = 3;
/// Workers timing out alike after their boot that make a boot timeout.
const BOOT_TIMEOUT_WORKERS: usize = 3;
/// Boot-to-timeout intervals this close are the same `timeout`.
const BOOT_INTERVAL_SLACK_SECS: i64 = 2;

/// How an incident's cause was decided, which also groups findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Basis {
    /// From the traceback Gunicorn ≥ 22 logs when the worker handles SIGABRT.
    Traceback,
    /// The worker ignored SIGABRT and was SIGKILLed: native code held it.
    Escalation,
    /// A timeout with neither traceback nor kill (Gunicorn < 22).
    NoTraceback,
    /// A SIGKILL with no timeout before it.
    UnprovokedKill,
    /// Died of another signal (SIGSEGV, SIGBUS, ...) with no timeout before it.
    Crash,
    /// Refined from the PostgreSQL log around the incident's time.
    Postgres,
    /// After `WORKER TIMEOUT` the worker died of SIGABRT's default action: Gunicorn's abort
    /// handler was not installed (`was sent SIGABRT!`, `code 134`, 20.1's `signal 6`).
    AbortDefault,
    /// A SIGKILL near the start of its input: its `WORKER TIMEOUT` may lie before the cut.
    CutOff,
    /// The kernel log shows the OOM killer killing this pid.
    KernelOom,
    /// Decided by a pattern across workers: boot-to-timeout intervals, one pass of the master.
    Pattern,
    /// A timeout of a gthread worker: its main thread could not run Python (GIL-holding C
    /// code, a stopped or starved process); what a request waited on never causes it.
    Threaded,
}

/// Where one record of an incident is.
#[derive(Debug, Clone)]
pub struct Mark {
    pub path: Arc<str>,
    pub line: u64,
    pub time: DateTime<FixedOffset>,
    /// The record's text while the evidence budget lasts.
    pub text: Option<Box<str>>,
}

impl Mark {
    /// The record as evidence; `what` stands in for the text once the budget ran out.
    pub fn evidence(&self, what: impl FnOnce() -> String) -> Evidence {
        Evidence {
            path: self.path.to_string(),
            line: Some(self.line),
            text: match &self.text {
                Some(t) => t.to_string(),
                None => what(),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Incident {
    pub pid: u32,
    /// Where the worker ran: pids are only a worker's name within one origin.
    pub origin: Origin,
    /// The origin's key among the run's origins (rotated files of one log share one).
    origin_id: u32,
    pub time: DateTime<FixedOffset>,
    pub timeout: Option<Mark>,
    pub abort: Option<Mark>,
    /// The kill record and its signal.
    pub kill: Option<(Mark, Box<str>)>,
    /// `Worker exiting` or `exited with code N` after the timeout: the abort handler ran.
    pub exit: Option<Mark>,
    /// When the worker logged `Booting worker`, if the input has it.
    pub booted_at: Option<DateTime<FixedOffset>>,
    /// False when the records have no readable time: `time` then only orders the incident
    /// (the time of the record before it, or its position).
    pub timed: bool,
    /// A kill near the start of its input (see [`CUT_WINDOW_SECS`]).
    cut_off: bool,
    /// Causes the worker's end excludes, with why.
    /// One shared list per rule, not a copy per incident.
    pub ruled_out: Arc<[RuledOut]>,
    /// What the abort traceback said, when there was one with frames.
    abort_verdict: Option<Arc<Attribution>>,
    pub basis: Basis,
    pub confidence: Confidence,
    /// One value shared by every incident attributed alike.
    pub attribution: Arc<Attribution>,
    /// Extra evidence found by correlation (app log line, PostgreSQL statement).
    pub correlated: Vec<Evidence>,
}

impl Incident {
    fn new(pid: u32, origin: (&Origin, u32), time: DateTime<FixedOffset>) -> Incident {
        Incident {
            pid,
            origin: origin.0.clone(),
            origin_id: origin.1,
            time,
            timeout: None,
            abort: None,
            kill: None,
            exit: None,
            booted_at: None,
            timed: true,
            cut_off: false,
            ruled_out: ruled_out::none(),
            abort_verdict: None,
            basis: Basis::NoTraceback,
            confidence: Confidence::Low,
            attribution: unattributed(),
            correlated: Vec::new(),
        }
    }

    pub fn cause(&self) -> Cause {
        self.attribution.cause
    }

    fn within(&self, t: DateTime<FixedOffset>) -> bool {
        t >= self.time - Duration::seconds(2)
            && t <= self.time + Duration::seconds(FOLLOW_WINDOW_SECS)
    }

    /// The (path, line) of each of its records.
    pub fn records(&self) -> impl Iterator<Item = &Mark> {
        [
            self.timeout.as_ref(),
            self.abort.as_ref(),
            self.kill.as_ref().map(|(m, _)| m),
            self.exit.as_ref(),
        ]
        .into_iter()
        .flatten()
    }
}

/// Incidents kept one by one (joined with app and PostgreSQL logs, listed as evidence); later
/// ones are attributed as soon as they are complete and only counted into their finding.
pub const MAX_KEPT_INCIDENTS: usize = 100_000;

/// Builds incidents from Gunicorn events given in log order (files in time order).
#[derive(Debug, Default)]
pub struct IncidentBuilder {
    /// The first [`MAX_KEPT_INCIDENTS`], by index.
    incidents: Vec<Incident>,
    /// Incidents past the cap still open to an abort or a kill, oldest first; the first one's
    /// index is `spill_base`.
    spill: VecDeque<Incident>,
    spill_base: usize,
    /// Incidents past the cap, attributed and counted.
    folded: Groups,
    latest: Option<DateTime<FixedOffset>>,
    /// (origin, pid) → its latest incident that may still take an abort or a kill.
    open: HashMap<(u32, u32), usize>,
    /// Origin keys seen, by id; and the last event's origin name with its id (events of one
    /// origin come in runs and share one `Arc`).
    origin_ids: HashMap<OriginKind, HashMap<Box<str>, u32>>,
    origin_count: u32,
    last_origin: Option<(Arc<str>, u32)>,
    folded_count: u64,
    texts_kept: usize,
    /// Abort verdicts seen so far: aborts of the same view share one value.
    verdicts: HashMap<Arc<Attribution>, ()>,
    /// Per input: its first event, and whether the master's start is in it.
    /// Per input and origin within it (a stream's pods start apart): see [`InputStart`].
    inputs: HashMap<(Arc<str>, u32), InputStart>,
    /// The input of the last event, out of `inputs` while it is read.
    input: Option<((Arc<str>, u32), InputStart)>,
    /// The time of the last timed event and its input, for events without a time.
    last_time: Option<(Arc<str>, DateTime<FixedOffset>)>,
    /// (origin, pid) → when it logged `Booting worker`.
    booted: HashMap<(u32, u32), DateTime<FixedOffset>>,
    /// Set when a traceback or an input of the run shows a database: only then may advice name
    /// the database driver.
    pub database_seen: bool,
    /// Set when the inputs hold INFO records (`Booting worker`, `Worker exiting`, `Starting
    /// gunicorn`): only then does a missing `Worker exiting` say anything.
    pub info_seen: bool,
    /// From `Using worker: CLASS`: gthread changes what a timeout means.
    pub threaded: bool,
}

#[derive(Debug)]
struct InputStart {
    time: DateTime<FixedOffset>,
    line: u64,
    started: bool,
}

impl IncidentBuilder {
    /// The id of an origin's key, interned once per run of events from one origin.
    fn origin_id(&mut self, origin: &Origin) -> u32 {
        if let Some((name, id)) = &self.last_origin
            && Arc::ptr_eq(name, &origin.name)
        {
            return *id;
        }
        let (kind, key) = origin.key();
        let ids = self.origin_ids.entry(kind).or_default();
        let id = match ids.get(key) {
            Some(&id) => id,
            None => {
                let id = self.origin_count;
                self.origin_count += 1;
                ids.insert(key.into(), id);
                id
            }
        };
        self.last_origin = Some((origin.name.clone(), id));
        id
    }

    pub fn push(&mut self, e: &Event) {
        let Some(worker) = e.pid else {
            return;
        };
        let oid = self.origin_id(&e.origin);
        let origin = (&e.origin, oid);
        let pid = (oid, worker);
        let path = &e.source.path;
        let timed = e.time.is_some();
        let time = match e.time {
            Some(t) => {
                match &mut self.last_time {
                    Some((p, last)) if Arc::ptr_eq(p, path) => *last = t,
                    last => *last = Some((path.clone(), t)),
                }
                t
            }
            None => match &self.last_time {
                Some((p, t)) if Arc::ptr_eq(p, path) || p == path => *t,
                // No time yet in this input: its position orders it.
                _ => {
                    DateTime::UNIX_EPOCH.fixed_offset()
                        + Duration::seconds(e.source.line.min(1 << 40) as i64)
                }
            },
        };
        // Inputs come one after the other: the map is touched only when the input changes.
        if !matches!(&self.input, Some(((p, o), _)) if Arc::ptr_eq(p, path) && *o == oid) {
            if let Some((key, start)) = self.input.take() {
                self.inputs.insert(key, start);
            }
            let start = self
                .inputs
                .remove(&(path.clone(), oid))
                .unwrap_or(InputStart {
                    time,
                    line: e.source.line,
                    started: false,
                });
            self.input = Some(((path.clone(), oid), start));
        }
        let Some((_, start)) = &self.input else {
            return;
        };
        let near_start = !start.started
            && if timed {
                time - start.time <= Duration::seconds(CUT_WINDOW_SECS)
            } else {
                e.source.line < start.line + CUT_WINDOW_LINES
            };
        self.latest = self.latest.max(Some(time));
        self.fold_complete();
        let open = self
            .open
            .get(&pid)
            .copied()
            .filter(|&j| self.get(j).is_some_and(|inc| inc.within(time)));
        match &e.detail {
            EventDetail::WorkerTimeout { .. } => {
                if let Some(j) = open
                    && self.at(j).timeout.is_some()
                    && self.at(j).abort.is_none()
                    && self.at(j).kill.is_none()
                    && (time - self.at(j).time).num_seconds().abs() <= 1
                {
                    // The same record twice (a handler attached twice logs every line twice).
                    return;
                }
                if let Some(j) = open
                    && self.at(j).timeout.is_none()
                    && self.at(j).abort.is_some()
                {
                    // The abort traceback was logged before the master's line.
                    let mark = self.mark(e, time);
                    let inc = self.at_mut(j);
                    inc.timeout = Some(mark);
                    inc.time = time;
                    return;
                }
                let mut inc = Incident::new(worker, origin, time);
                inc.timeout = Some(self.mark(e, time));
                inc.timed = timed;
                // A worker times out once: its boot time is not needed after this.
                inc.booted_at = self.booted.remove(&pid);
                let j = self.add(inc);
                self.open.insert(pid, j);
            }
            EventDetail::RequestAbort {
                exception,
                attribution,
                ..
            } => {
                let verdict = (!attribution.reason.is_empty())
                    .then(|| intern(&mut self.verdicts, attribution));
                let request_only = attribution.request.clone();
                let j = match open {
                    Some(j) if self.at(j).abort.is_none() && self.at(j).kill.is_none() => j,
                    _ if exception
                        .as_deref()
                        .is_some_and(|x| x.starts_with("SystemExit")) =>
                    {
                        // An abort whose WORKER TIMEOUT is not in the inputs.
                        let j = self.add(Incident::new(worker, origin, time));
                        self.open.insert(pid, j);
                        j
                    }
                    _ => return,
                };
                let mark = self.mark(e, time);
                let inc = self.at_mut(j);
                inc.abort = Some(mark);
                inc.abort_verdict = verdict;
                if inc.abort_verdict.is_none() && request_only.is_some() {
                    inc.abort_verdict = Some(Arc::new(Attribution {
                        request: request_only,
                        ..Attribution::default()
                    }));
                }
            }
            EventDetail::WorkerKilled { signal, .. } => {
                self.booted.remove(&pid);
                let mark = self.mark(e, time);
                let signal: Box<str> = signal.as_str().into();
                match open {
                    Some(j) if self.at(j).kill.is_none() => {
                        self.at_mut(j).kill = Some((mark, signal));
                        self.open.remove(&pid);
                    }
                    _ if is_fatal(&signal) => {
                        let mut inc = Incident::new(worker, origin, time);
                        inc.kill = Some((mark, signal));
                        inc.timed = timed;
                        inc.cut_off = near_start;
                        self.add(inc);
                    }
                    _ => {}
                }
            }
            EventDetail::WorkerExit { exit_code } => {
                self.info_seen |= exit_code.is_none();
                self.booted.remove(&pid);
                // `Worker exiting` (INFO, spawn_worker's `finally`) or a non-zero exit code: the
                // worker left through Python. Exit code 1 is handle_abort's sys.exit(1).
                if let Some(j) = open
                    && self.at(j).exit.is_none()
                    && self.at(j).kill.is_none()
                    && exit_code.is_none_or(|c| c == 1)
                {
                    let mark = self.mark(e, time);
                    self.at_mut(j).exit = Some(mark);
                }
            }
            EventDetail::WorkerBoot => {
                self.info_seen = true;
                self.open.remove(&pid);
                if timed {
                    self.booted.insert(pid, time);
                }
            }
            EventDetail::GunicornStart { .. } => {
                self.info_seen = true;
                if let Some((_, start)) = &mut self.input {
                    start.started = true;
                }
            }
            _ => {}
        }
    }

    fn mark(&mut self, e: &Event, time: DateTime<FixedOffset>) -> Mark {
        let text = (self.texts_kept < TEXT_BUDGET).then(|| {
            self.texts_kept += 1;
            e.text.as_str().into()
        });
        Mark {
            path: e.source.path.clone(),
            line: e.source.line,
            time,
            text,
        }
    }

    /// The incident with index `j`, unless it was past the cap and is folded already.
    fn get(&self, j: usize) -> Option<&Incident> {
        if j < self.incidents.len() {
            return self.incidents.get(j);
        }
        self.spill.get(j.checked_sub(self.spill_base)?)
    }

    /// An incident `open` points to; `open` only keeps indices `get` has just found.
    fn at(&self, j: usize) -> &Incident {
        self.get(j).expect("open incident present")
    }

    fn at_mut(&mut self, j: usize) -> &mut Incident {
        if j < self.incidents.len() {
            return &mut self.incidents[j];
        }
        &mut self.spill[j - self.spill_base]
    }

    /// Adds an incident and returns its index.
    fn add(&mut self, inc: Incident) -> usize {
        if self.incidents.len() < MAX_KEPT_INCIDENTS {
            self.incidents.push(inc);
            return self.incidents.len() - 1;
        }
        if self.spill.is_empty() {
            self.spill_base = self.incidents.len() + self.folded_count as usize;
        }
        self.spill.push_back(inc);
        self.spill_base + self.spill.len() - 1
    }

    /// Attributes and counts the incidents past the cap that nothing can add to any more: killed
    /// already, or older than the follow window.
    fn fold_complete(&mut self) {
        let Some(latest) = self.latest else { return };
        while let Some(front) = self.spill.front() {
            let done = front.kill.is_some()
                || front.time + Duration::seconds(FOLLOW_WINDOW_SECS + 2) < latest;
            if !done {
                break;
            }
            self.fold_front();
        }
    }

    fn fold_front(&mut self) {
        let Some(mut inc) = self.spill.pop_front() else {
            return;
        };
        let key = (inc.origin_id, inc.pid);
        if self.open.get(&key) == Some(&self.spill_base) {
            self.open.remove(&key);
        }
        self.spill_base += 1;
        self.folded_count += 1;
        // Cross-worker patterns (boot timeouts, host stalls) are read on the kept ones only.
        attribute(&mut inc, self.database_seen, self.info_seen);
        if self.threaded {
            threaded_worker(&mut inc);
        }
        self.folded.add(&inc);
    }

    /// Attributes every incident; identical attributions share one value. Incidents past
    /// [`MAX_KEPT_INCIDENTS`] come back counted in their groups only.
    pub fn finish(mut self) -> (Vec<Incident>, Groups, u64) {
        while !self.spill.is_empty() {
            self.fold_front();
        }
        let mut incidents = self.incidents;
        for inc in &mut incidents {
            attribute(inc, self.database_seen, self.info_seen);
            if self.threaded {
                threaded_worker(inc);
            }
        }
        let mut interned = HashMap::new();
        for inc in &mut incidents {
            inc.attribution = intern(&mut interned, &inc.attribution);
        }
        incidents.sort_by_key(|i| i.time);
        (incidents, self.folded, self.folded_count)
    }
}

/// The one shared value equal to `a`.
fn intern(pool: &mut HashMap<Arc<Attribution>, ()>, a: &Arc<Attribution>) -> Arc<Attribution> {
    match pool.get_key_value(a) {
        Some((shared, _)) => shared.clone(),
        None => {
            pool.insert(a.clone(), ());
            a.clone()
        }
    }
}

/// The attribution of an incident not yet attributed: one shared value, no allocation each.
fn unattributed() -> Arc<Attribution> {
    static UNATTRIBUTED: LazyLock<Arc<Attribution>> = LazyLock::new(Arc::default);
    UNATTRIBUTED.clone()
}

fn is_fatal(signal: &str) -> bool {
    matches!(
        signal,
        "SIGKILL" | "SIGSEGV" | "SIGBUS" | "SIGILL" | "SIGFPE" | "SIGABRT"
    )
}

fn is_sigabrt(signal: &str) -> bool {
    // 21–23 print the raw wait status: 134 is SIGABRT with its core-dump bit.
    matches!(signal, "SIGABRT" | "code 134")
}

fn attribute(inc: &mut Incident, database_seen: bool, info_seen: bool) {
    if let Some(v) = &inc.abort_verdict {
        if !v.reason.is_empty() {
            inc.attribution = Arc::new(Attribution {
                reason: format!("aborted while {}", v.reason),
                ..(**v).clone()
            });
            inc.basis = Basis::Traceback;
            inc.confidence = match v.cause {
                Cause::MissingApiTimeout | Cause::NPlusOne => Confidence::High,
                Cause::Unknown => Confidence::Low,
                _ => Confidence::Medium,
            };
            return;
        }
        Arc::make_mut(&mut inc.attribution)
            .request
            .clone_from(&v.request);
    }
    // The abort record (22+) or `Worker exiting` proves the abort handler ran.
    let handler_ran = inc.abort.is_some() || inc.exit.is_some();
    let a = Arc::make_mut(&mut inc.attribution);
    match (inc.timeout.is_some(), inc.kill.as_ref().map(|(_, s)| &**s)) {
        (true, Some(signal)) if is_sigabrt(signal) => {
            inc.basis = Basis::AbortDefault;
            a.reason = abort_default_reason(signal);
        }
        (true, Some(signal)) if handler_ran => {
            inc.basis = Basis::NoTraceback;
            a.reason = format!(
                "{}; the {signal} that followed adds nothing: the exit outlasted the master's \
                 next pass",
                handler_ran_reason(inc.abort.is_some())
            );
            inc.ruled_out = ruled_out::database(inc.abort.is_some());
        }
        (true, Some(signal)) if !info_seen => {
            // `Worker exiting` is INFO: in a log without INFO records its absence proves
            // nothing, so the SIGKILL does not show a native-code stall.
            inc.basis = Basis::NoTraceback;
            a.reason = format!(
                "timed out and got {signal}; this log has no INFO records (--log-level warning \
                 or above), so it cannot show whether the worker exited through Python after \
                 the abort: the cause is not in this log"
            );
        }
        (true, Some(signal)) => {
            inc.basis = Basis::Escalation;
            a.reason = escalation_reason(signal, database_seen);
            inc.ruled_out = ruled_out::never_returned();
        }
        (true, None) if handler_ran => {
            inc.basis = Basis::NoTraceback;
            a.reason = handler_ran_reason(inc.abort.is_some());
            inc.ruled_out = ruled_out::database(inc.abort.is_some());
        }
        (true, None) => {
            inc.basis = Basis::NoTraceback;
            a.reason = "timed out; the log has no traceback of what it was doing".into();
        }
        (false, Some("SIGKILL")) if inc.cut_off => {
            inc.basis = Basis::CutOff;
            inc.confidence = Confidence::Low;
            a.reason = "got SIGKILL at the very start of the input, with no WORKER TIMEOUT \
                        before it in the input: it may be the escalation of a timeout logged \
                        just above the cut, so it is not called an out-of-memory kill"
                .into();
        }
        (false, Some("SIGKILL")) => {
            inc.basis = Basis::UnprovokedKill;
            a.cause = Cause::Memory;
            inc.confidence = Confidence::Medium;
            a.reason = "got SIGKILL with no WORKER TIMEOUT before it: the kernel's OOM killer \
                        (or an operator's kill -9)"
                .into();
        }
        (false, Some(signal)) => {
            inc.basis = Basis::Crash;
            a.reason =
                format!("died of {signal} with no timeout before it: a crash in native code");
        }
        (false, None) => {}
    }
}

/// Under gthread the main thread's loop notifies the master and request threads do not
/// (workers/gthread.py `run`): a request hung on I/O, a lock or a query never times the worker
/// out. A `WORKER TIMEOUT` means the main thread could not run: GIL-holding C code, or a
/// stopped or starved process; the SIGKILL after it says nothing (the exit waits for request
/// threads). An abort traceback shows the main thread, not a request.
fn threaded_worker(inc: &mut Incident) {
    if inc.timeout.is_none() || inc.basis == Basis::AbortDefault {
        return;
    }
    inc.ruled_out = ruled_out::threaded();
    let cause = inc.cause();
    if cause == Cause::Unknown || inc.ruled_out.iter().any(|r| r.cause == cause) {
        inc.basis = Basis::Threaded;
        inc.confidence = Confidence::Low;
        let a = Arc::make_mut(&mut inc.attribution);
        a.cause = Cause::Unknown;
        a.stuck_frame = None;
        a.call_site = None;
        a.reason = "timed out under gthread: the main thread that notifies the master could not \
                    run Python for the whole timeout — C code holding the GIL (a regex, a C \
                    extension), or the process was stopped, throttled or swapping; a request \
                    hung on I/O never causes this, and the SIGKILL that may follow says \
                    nothing (the exit waits for request threads)"
            .into();
    }
}

/// The lists of causes a worker's end rules out, each built once and shared.
mod ruled_out {
    use std::sync::{Arc, LazyLock};

    use crate::report::{Cause, RuledOut};

    fn list(causes: &[Cause], reason: &str) -> Arc<[RuledOut]> {
        causes
            .iter()
            .map(|&cause| RuledOut {
                cause,
                reason: reason.to_string(),
            })
            .collect()
    }

    pub fn none() -> Arc<[RuledOut]> {
        static NONE: LazyLock<Arc<[RuledOut]>> = LazyLock::new(|| Arc::from([]));
        NONE.clone()
    }

    /// The database waits a worker that ran its abort handler was not in (ATTRIBUTION.md):
    /// libpq retries its poll on EINTR and never returns to Python, so a worker blocked there
    /// never logs `Worker exiting` or an abort traceback. A loop of short queries (N+1) stays
    /// possible.
    pub fn database(aborted: bool) -> Arc<[RuledOut]> {
        const WAITS: [Cause; 3] = [Cause::LockWait, Cause::SlowQuery, Cause::Deadlock];
        static EXITED: LazyLock<Arc<[RuledOut]>> = LazyLock::new(|| {
            list(
                &WAITS,
                "the worker logged `Worker exiting` after its timeout: its SIGABRT handler ran, \
                 so it was in Python code, not blocked in the database driver (libpq retries \
                 its wait on EINTR and never returns to Python)",
            )
        });
        static ABORTED: LazyLock<Arc<[RuledOut]>> = LazyLock::new(|| {
            list(
                &WAITS,
                "the worker logged its abort: its SIGABRT handler ran, so it was in Python \
                 code, not blocked in the database driver (libpq retries its wait on EINTR and \
                 never returns to Python)",
            )
        });
        if aborted {
            ABORTED.clone()
        } else {
            EXITED.clone()
        }
    }

    /// A SIGKILL with no `Worker exiting` in a log that has INFO records.
    pub fn never_returned() -> Arc<[RuledOut]> {
        static LIST: LazyLock<Arc<[RuledOut]>> = LazyLock::new(|| {
            list(
                &[Cause::NPlusOne],
                "no `Worker exiting` after the abort although the log has INFO records: the \
                 worker never returned to Python, which a loop of short queries does between \
                 queries",
            )
        });
        LIST.clone()
    }

    /// Any timeout of a gthread worker.
    pub fn threaded() -> Arc<[RuledOut]> {
        static LIST: LazyLock<Arc<[RuledOut]>> = LazyLock::new(|| {
            list(
                &[
                    Cause::LockWait,
                    Cause::SlowQuery,
                    Cause::Deadlock,
                    Cause::MissingApiTimeout,
                    Cause::NPlusOne,
                ],
                "gthread worker: its heartbeat comes from the main thread, which a request \
                 waiting on I/O, a lock or a query does not stop (they release the GIL)",
            )
        });
        LIST.clone()
    }
}

/// What `Worker exiting` (or the abort record) after `WORKER TIMEOUT` leaves open
/// (ATTRIBUTION.md: the SIGABRT handler runs only when the worker returns to the interpreter).
fn handler_ran_reason(aborted: bool) -> String {
    let what = if aborted {
        "the abort was logged, but its traceback is cut before the abort frames"
    } else {
        "timed out and exited through Python (the abort handler ran)"
    };
    format!(
        "{what}: it was in interruptible Python code — a CPU-bound loop, an outbound call with \
         no timeout, an N+1 loop of short queries — not blocked inside a C call such as the \
         database driver's wait"
    )
}

/// Gunicorn's handler is installed in `init_process` before the app is loaded (workers/base.py
/// `init_signals`, all versions), so SIGABRT's default action means it was not there: the
/// worker had not reached it, or the worker class or a native library replaced it.
fn abort_default_reason(signal: &str) -> String {
    format!(
        "died of SIGABRT's default action ({signal}) after the timeout: Gunicorn's abort handler \
         did not run — the worker had not installed it yet (still starting), or its worker class \
         or a native library replaced it (UvicornWorker installs none; TensorFlow/absl-style \
         failure handlers replace it)"
    )
}

fn escalation_reason(signal: &str, database_seen: bool) -> String {
    let native = if database_seen {
        "most often the database driver waiting on PostgreSQL; sometimes one long C call that \
         never checks for signals (OpenSSL's PBKDF2, a C extension; not CPython's `re`, whose \
         matching lets the handler run)"
    } else {
        "one long C call that never checks for signals (OpenSSL's PBKDF2, a C extension; not \
         CPython's `re`, whose matching lets the handler run), DNS resolution (getaddrinfo), a \
         TLS handshake or socket call inside C code, a model or library call that never returns \
         to Python, or a swapping process"
    };
    format!(
        "ignored the master's SIGABRT and got {signal}: stuck in native code ({native}); a \
         timeout escalation, not an out-of-memory kill"
    )
}

/// Timeouts that the worker's end left open: no traceback says where it was.
fn unexplained(inc: &Incident) -> bool {
    inc.timed
        && inc.timeout.is_some()
        && inc.cause() == Cause::Unknown
        && matches!(
            inc.basis,
            Basis::NoTraceback | Basis::Escalation | Basis::AbortDefault | Basis::Threaded
        )
}

/// A timeout about `timeout` seconds after the worker's own `Booting worker` line, when most
/// workers whose boot is in the log time out after the same interval and some of them booted at
/// other times: loading the app takes longer than the timeout (the heartbeat starts only in the
/// worker's run loop, after `load_wsgi`). Workers that served requests time out at scattered
/// intervals after their boot; a boot timeout repeats one interval.
/// The patterns across workers (boot timeouts, host stalls), read once every source has said
/// what it knows of each incident: a worker whose request any source names was serving, so it
/// is neither still booting nor idle in a stalled host.
pub fn cross_worker_patterns(incidents: &mut [Incident]) {
    boot_timeouts(incidents);
    host_stalls(incidents);
}

fn boot_timeouts(incidents: &mut [Incident]) {
    let interval = |inc: &Incident| {
        let booted = inc.booted_at.filter(|_| inc.timed)?;
        Some((inc.timeout.as_ref()?.time - booted).num_seconds())
    };
    // Per boot-to-timeout interval (whole seconds): how many, whether one of them served a
    // request (a worker whose abort names a request had booted and was serving, so an interval
    // it shares is a burst of requests, not a boot), and the span of their boot times. One
    // lookup per incident: linear in incidents.
    #[derive(Clone, Copy)]
    struct Alike {
        count: usize,
        served: bool,
        first_boot: DateTime<FixedOffset>,
        last_boot: DateTime<FixedOffset>,
    }
    let mut by_interval: BTreeMap<i64, Alike> = BTreeMap::new();
    let mut total = 0;
    for inc in incidents.iter() {
        let (Some(d), Some(b)) = (interval(inc), inc.booted_at) else {
            continue;
        };
        total += 1;
        let e = by_interval.entry(d).or_insert(Alike {
            count: 0,
            served: false,
            first_boot: b,
            last_boot: b,
        });
        e.count += 1;
        // Served a request: its abort names one, or the app log or the proxy does.
        e.served |= inc.abort.is_some() || inc.attribution.request.is_some();
        e.first_boot = e.first_boot.min(b);
        e.last_boot = e.last_boot.max(b);
    }
    for inc in incidents.iter_mut() {
        let (Some(mine), Some(booted)) = (interval(inc), inc.booted_at) else {
            continue;
        };
        if !unexplained(inc) {
            continue;
        }
        // The workers alike: the fullest span of BOOT_INTERVAL_SLACK_SECS that holds this
        // interval (so every interval in it is within that span of every other).
        let merge = |x: Alike, y: Alike| Alike {
            count: x.count + y.count,
            served: x.served || y.served,
            first_boot: x.first_boot.min(y.first_boot),
            last_boot: x.last_boot.max(y.last_boot),
        };
        let Some(alike) = (mine.saturating_sub(BOOT_INTERVAL_SLACK_SECS)..=mine)
            .filter_map(|lo| {
                by_interval
                    .range(lo..=lo.saturating_add(BOOT_INTERVAL_SLACK_SECS))
                    .map(|(_, a)| *a)
                    .reduce(merge)
            })
            .max_by_key(|a| a.count)
        else {
            continue;
        };
        let second = Duration::seconds(1);
        let other_boot = alike.first_boot <= booted - second || alike.last_boot >= booted + second;
        // Two workers timing out alike can be two requests that came right after a restart
        // (fixtures/nginx ladder-ok-20.1: both served requests nginx names): it takes three.
        if !other_boot
            || alike.served
            || alike.count < BOOT_TIMEOUT_WORKERS
            || alike.count * 3 < total * 2
        {
            continue;
        }
        inc.basis = Basis::Pattern;
        inc.confidence = Confidence::Medium;
        let a = Arc::make_mut(&mut inc.attribution);
        a.cause = Cause::BootTimeout;
        a.reason = format!(
            "timed out {mine} s after its own `Booting worker` line, as {} of the {} workers whose \
             boot is in the log did (booted at different times): it never finished loading the \
             application within the timeout",
            alike.count, total
        );
    }
}

/// Three or more workers timing out in one pass of the master, with nothing in the log saying
/// where each was: the whole process or host stopped (the heartbeat file on slow storage, a
/// stopped or throttled container, swapping), not a request.
fn host_stalls(incidents: &mut [Incident]) {
    let mut timed: Vec<usize> = (0..incidents.len())
        .filter(|&i| incidents[i].timed && incidents[i].timeout.is_some())
        .collect();
    // One pass is one master's: workers of other hosts or pods timing out in the same second
    // are not a pass.
    timed.sort_by_key(|&i| (incidents[i].origin_id, incidents[i].time));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in timed {
        match groups.last_mut() {
            Some(g)
                if incidents[i].origin_id == incidents[g[0]].origin_id
                    && incidents[i].time - incidents[g[0]].time
                        <= Duration::seconds(SAME_PASS_SECS) =>
            {
                g.push(i)
            }
            _ => groups.push(vec![i]),
        }
    }
    let stalls: Vec<&Vec<usize>> = groups
        .iter()
        .filter(|g| {
            let mut pids: Vec<u32> = g.iter().map(|&i| incidents[i].pid).collect();
            pids.sort_unstable();
            pids.dedup();
            // Workers whose abort traceback shows a request were serving when the abort came:
            // a burst of slow requests times out in one pass too.
            pids.len() >= HOST_STALL_WORKERS
                && g.iter().any(|&i| unexplained(&incidents[i]))
                && !g.iter().any(|&i| {
                    incidents[i].abort.is_some() || incidents[i].attribution.request.is_some()
                })
        })
        .collect();
    let repeated = stalls.len() >= 2;
    for g in &stalls {
        let n = g.len();
        for &i in g.iter() {
            if !unexplained(&incidents[i]) {
                continue;
            }
            let inc = &mut incidents[i];
            inc.basis = Basis::Pattern;
            inc.confidence = if repeated {
                Confidence::Medium
            } else {
                Confidence::Low
            };
            let a = Arc::make_mut(&mut inc.attribution);
            a.cause = Cause::HostStall;
            a.reason = format!(
                "{n} workers timed out in the same pass of the master{}: the whole process or \
                 host stalled (heartbeat file, a stopped or throttled container, swapping) rather \
                 than {n} requests at once",
                if repeated { ", and again later" } else { "" }
            );
        }
    }
}

/// Writes each incident's attribution into the listed events that are its records.
pub fn annotate(events: &mut [Event], incidents: &[Incident]) {
    let mut by_record: HashMap<(&str, u64), &Incident> = HashMap::new();
    for inc in incidents {
        for m in inc.records() {
            by_record.insert((&m.path, m.line), inc);
        }
    }
    for e in events.iter_mut() {
        let Some(inc) = by_record.get(&(&*e.source.path, e.source.line)) else {
            continue;
        };
        match &mut e.detail {
            EventDetail::WorkerTimeout { attribution, .. }
            | EventDetail::RequestAbort { attribution, .. } => {
                *attribution = inc.attribution.clone();
            }
            EventDetail::WorkerKilled {
                attribution,
                after_timeout,
                ..
            } => {
                *attribution = inc.attribution.clone();
                *after_timeout = inc.timeout.is_some();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Line;
    use crate::parse::gunicorn::GunicornLog;

    fn incidents(text: &str) -> Vec<Incident> {
        let mut log = GunicornLog::new("t.log");
        let mut b = IncidentBuilder::default();
        let mut sink = |e: Event| b.push(&e);
        for (i, l) in text.lines().enumerate() {
            let line = Line {
                number: i as u64 + 1,
                bytes: l.as_bytes(),
                overlong: None,
            };
            log.push(line, &mut sink);
        }
        log.finish(&mut sink);
        let mut incidents = b.finish().0;
        cross_worker_patterns(&mut incidents);
        incidents
    }

    #[test]
    fn a_sigkill_at_the_start_of_an_excerpt_is_not_memory() {
        let inc = incidents(concat!(
            "[2023-04-28 20:15:00 +0000] [9] [WARNING] Worker with pid 118 was terminated due to signal 9\n",
            "[2023-04-28 20:16:00 +0000] [9] [WARNING] Worker with pid 119 was terminated due to signal 9\n",
        ));
        assert_eq!(inc[0].cause(), Cause::Unknown);
        assert_eq!(inc[0].basis, Basis::CutOff);
        assert_eq!(
            inc[1].cause(),
            Cause::Memory,
            "a minute in, no timeout before it"
        );
        // The same kill right after the master's start has no cut to hide a timeout.
        let inc = incidents(concat!(
            "[2023-04-28 20:15:00 +0000] [9] [INFO] Starting gunicorn 20.1.0\n",
            "[2023-04-28 20:15:01 +0000] [9] [WARNING] Worker with pid 118 was terminated due to signal 9\n",
        ));
        assert_eq!(inc[0].cause(), Cause::Memory);
    }

    #[test]
    fn a_kill_after_worker_exiting_is_not_an_escalation() {
        let inc = incidents(concat!(
            "[2022-03-10 13:28:54 +0000] [193] [CRITICAL] WORKER TIMEOUT (pid:379)\n",
            "[2022-03-10 13:28:54 +0000] [379] [INFO] Worker exiting (pid: 379)\n",
            "[2022-03-10 13:28:55 +0000] [193] [WARNING] Worker with pid 379 was terminated due to signal 9\n",
        ));
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].basis, Basis::NoTraceback);
        assert!(inc[0].attribution.reason.contains("adds nothing"));
    }

    #[test]
    fn an_escalation_names_the_database_only_when_one_was_seen() {
        let text = concat!(
            "[2024-03-25 21:52:50 -0400] [11801] [INFO] Booting worker with pid: 12903\n",
            "[2024-03-25 21:53:27 -0400] [11801] [CRITICAL] WORKER TIMEOUT (pid:12903)\n",
            "[2024-03-25 21:53:28 -0400] [11801] [ERROR] Worker (pid:12903) was sent SIGKILL! Perhaps out of memory?\n",
        );
        let inc = incidents(text);
        assert_eq!(inc[0].basis, Basis::Escalation);
        assert!(!inc[0].attribution.reason.contains("database"));
    }

    #[test]
    fn without_info_records_a_kill_after_a_timeout_proves_no_native_stall() {
        // `Worker exiting` is INFO: a log at --log-level warning never has it.
        let inc = incidents(concat!(
            "[2024-03-25 21:53:27 -0400] [11801] [CRITICAL] WORKER TIMEOUT (pid:12903)\n",
            "[2024-03-25 21:53:28 -0400] [11801] [ERROR] Worker (pid:12903) was sent SIGKILL! Perhaps out of memory?\n",
        ));
        assert_eq!(inc[0].basis, Basis::NoTraceback);
        assert_eq!(inc[0].cause(), Cause::Unknown);
        assert!(inc[0].attribution.reason.contains("no INFO records"));
        assert!(inc[0].ruled_out.is_empty());
    }

    #[test]
    fn sigabrt_after_a_timeout_means_no_handler() {
        let inc = incidents(concat!(
            "[2022-08-30 23:21:18 +0000] [44] [CRITICAL] WORKER TIMEOUT (pid:47)\n",
            "[2022-08-30 23:21:18 +0000] [44] [WARNING] Worker with pid 47 was terminated due to signal 6\n",
        ));
        assert_eq!(inc[0].basis, Basis::AbortDefault);
        assert_eq!(inc[0].cause(), Cause::Unknown);
    }

    #[test]
    fn one_boot_interval_repeated_by_workers_booted_apart_is_a_boot_timeout() {
        let inc = incidents(concat!(
            "[2024-01-19 00:48:01 +0000] [2976] [INFO] Booting worker with pid: 2976\n",
            "[2024-01-19 00:48:01 +0000] [2977] [INFO] Booting worker with pid: 2977\n",
            "[2024-01-19 00:48:31 +0000] [2973] [CRITICAL] WORKER TIMEOUT (pid:2976)\n",
            "[2024-01-19 00:48:31 +0000] [2973] [CRITICAL] WORKER TIMEOUT (pid:2977)\n",
            "[2024-01-19 00:48:32 +0000] [3004] [INFO] Booting worker with pid: 3004\n",
            "[2024-01-19 00:49:02 +0000] [2973] [CRITICAL] WORKER TIMEOUT (pid:3004)\n",
        ));
        assert!(
            inc.iter().all(|i| i.cause() == Cause::BootTimeout),
            "{inc:?}"
        );
        // Two workers alike can be two requests right after a restart: no pattern.
        let inc = incidents(concat!(
            "[2024-01-19 00:48:01 +0000] [2976] [INFO] Booting worker with pid: 2976\n",
            "[2024-01-19 00:48:31 +0000] [2973] [CRITICAL] WORKER TIMEOUT (pid:2976)\n",
            "[2024-01-19 00:48:32 +0000] [3004] [INFO] Booting worker with pid: 3004\n",
            "[2024-01-19 00:49:02 +0000] [2973] [CRITICAL] WORKER TIMEOUT (pid:3004)\n",
        ));
        assert!(inc.iter().all(|i| i.cause() == Cause::Unknown), "{inc:?}");
        // Booted in the same second: one interval is no pattern.
        let inc = incidents(concat!(
            "[2018-06-01 11:16:06 +0530] [9402] [INFO] Booting worker with pid: 9402\n",
            "[2018-06-01 11:16:06 +0530] [9403] [INFO] Booting worker with pid: 9403\n",
            "[2018-06-01 11:16:20 +0530] [9385] [CRITICAL] WORKER TIMEOUT (pid:9402)\n",
            "[2018-06-01 11:16:20 +0530] [9385] [CRITICAL] WORKER TIMEOUT (pid:9403)\n",
        ));
        assert!(inc.iter().all(|i| i.cause() == Cause::Unknown));
    }

    #[test]
    fn three_workers_in_one_pass_is_a_host_stall_unless_one_was_serving() {
        let pass = concat!(
            "[2022-12-17 14:33:46 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:20)\n",
            "[2022-12-17 14:33:46 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:21)\n",
            "[2022-12-17 14:33:46 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:22)\n",
        );
        let inc = incidents(pass);
        assert!(inc.iter().all(|i| i.cause() == Cause::HostStall), "{inc:?}");
        let serving = format!(
            "{pass}[2022-12-17 14:33:46 +0000] [22] [ERROR] Error handling request /slow\nTraceback (most recent call last):\n  File \"/app/views.py\", line 3, in slow\nSystemExit: 1\n"
        );
        let inc = incidents(&serving);
        assert!(inc.iter().all(|i| i.cause() != Cause::HostStall), "{inc:?}");
    }

    #[test]
    fn a_record_logged_twice_is_one_timeout() {
        let inc = incidents(concat!(
            "2013-06-06 22:24:29 [26219] [CRITICAL] WORKER TIMEOUT (pid:8602)\n",
            "2013-06-06 22:24:29 [26219] [CRITICAL] WORKER TIMEOUT (pid:8602)\n",
        ));
        assert_eq!(inc.len(), 1);
    }
}
