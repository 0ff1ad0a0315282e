//! Worker incidents: a WORKER TIMEOUT, the abort traceback that followed it, the SIGKILL that
//! escalated it, or a SIGKILL on its own. [`IncidentBuilder`] takes Gunicorn events as they are
//! read and keeps each incident compact (where its records are, not the events themselves), so
//! memory grows by about a hundred bytes per incident and not with the log's size; each
//! incident then gets one cause of the vocabulary.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Duration, FixedOffset};

use crate::analyze::worker_findings::Groups;
use crate::report::{Attribution, Cause, Confidence, Event, EventDetail, Evidence};

/// How long after a WORKER TIMEOUT a kill or an abort traceback of the same pid still belongs
/// to it. The master re-checks about once a second; a busy host can take longer.
const FOLLOW_WINDOW_SECS: i64 = 60;
/// Records whose text is kept for evidence; later ones are cited by file and line only.
const TEXT_BUDGET: usize = 4_000;

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
    pub time: DateTime<FixedOffset>,
    pub timeout: Option<Mark>,
    pub abort: Option<Mark>,
    /// The kill record and its signal.
    pub kill: Option<(Mark, Box<str>)>,
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
    fn new(pid: u32, time: DateTime<FixedOffset>) -> Incident {
        Incident {
            pid,
            time,
            timeout: None,
            abort: None,
            kill: None,
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
    /// pid → its latest incident that may still take an abort or a kill.
    open: HashMap<u32, usize>,
    folded_count: u64,
    texts_kept: usize,
    /// Abort verdicts seen so far: aborts of the same view share one value.
    verdicts: HashMap<Arc<Attribution>, ()>,
}

impl IncidentBuilder {
    pub fn push(&mut self, e: &Event) {
        let (Some(pid), Some(time)) = (e.pid, e.time) else {
            return;
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
                let mut inc = Incident::new(pid, time);
                inc.timeout = Some(self.mark(e, time));
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
                        let j = self.add(Incident::new(pid, time));
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
                let mark = self.mark(e, time);
                let signal: Box<str> = signal.as_str().into();
                match open {
                    Some(j) if self.at(j).kill.is_none() => {
                        self.at_mut(j).kill = Some((mark, signal));
                        self.open.remove(&pid);
                    }
                    _ if is_fatal(&signal) => {
                        let mut inc = Incident::new(pid, time);
                        inc.kill = Some((mark, signal));
                        self.add(inc);
                    }
                    _ => {}
                }
            }
            EventDetail::WorkerBoot => {
                self.open.remove(&pid);
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
        if self.open.get(&inc.pid) == Some(&self.spill_base) {
            self.open.remove(&inc.pid);
        }
        self.spill_base += 1;
        self.folded_count += 1;
        attribute(&mut inc);
        self.folded.add(&inc);
    }

    /// Attributes every incident; identical attributions share one value. Incidents past
    /// [`MAX_KEPT_INCIDENTS`] come back counted in their groups only.
    pub fn finish(mut self) -> (Vec<Incident>, Groups, u64) {
        while !self.spill.is_empty() {
            self.fold_front();
        }
        let mut incidents = self.incidents;
        let mut interned = HashMap::new();
        for inc in &mut incidents {
            attribute(inc);
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

fn attribute(inc: &mut Incident) {
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
    let a = Arc::make_mut(&mut inc.attribution);
    match (inc.timeout.is_some(), inc.kill.as_ref().map(|(_, s)| &**s)) {
        (true, Some(signal)) => {
            inc.basis = Basis::Escalation;
            a.reason = format!(
                "ignored the master's SIGABRT and got {signal}: stuck in native code (most often \
                 the database driver waiting on PostgreSQL; sometimes a C extension or a regex \
                 holding the GIL); a timeout escalation, not an out-of-memory kill"
            );
        }
        (true, None) => {
            inc.basis = Basis::NoTraceback;
            a.reason = "timed out; the log has no traceback of what it was doing".into();
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
