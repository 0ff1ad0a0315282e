//! Joins a PostgreSQL log to worker incidents by time: for a worker that was stuck in native
//! code (SIGKILLed after its timeout, or with no traceback) or inside the database driver, what
//! was the database doing? A backend that lost its client right after the kill is that
//! worker's backend; a lock wait or a long statement that spans the timeout is what it waited
//! on. Only activity near an incident is kept, so memory is bounded by the incidents, not by
//! the log.

use crate::analyze::pg::events::MAX_EVIDENCE;
use crate::analyze::pg::statements::cap;
use crate::analyze::window::started_before;
use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset};

use crate::analyze::incident::{Basis, Incident};
use crate::parse::pg::{LockState, PgEvent, PgEventKind};
use crate::report::{Cause, Confidence, Evidence};

/// How long before a timeout a lock wait or statement may have started and still matter.
const LOOKBACK_SECS: i64 = 3600;
/// How long after a kill the backend may take to notice its client is gone
/// (client_connection_check_interval, or the next write).
const CLIENT_LOST_AFTER_KILL_SECS: i64 = 15;
/// Bytes of a statement kept per activity: enough to recognise it, bounded however long the
/// application's SQL.
const MAX_STATEMENT: usize = 8 << 10;
/// Statements shorter than this do not explain a worker timeout on their own.
const SLOW_STATEMENT_MS: f64 = 1000.0;

#[derive(Debug, Clone)]
enum ActivityKind {
    LockWait {
        lock: String,
        holders: Vec<u32>,
    },
    Statement {
        duration_ms: f64,
    },
    /// `connection to client lost` (and the like): the backend's client went away.
    ClientLost,
    Deadlock {
        pids: Vec<u32>,
    },
}

#[derive(Debug, Clone)]
struct Activity {
    pid: Option<u32>,
    kind: ActivityKind,
    start: DateTime<FixedOffset>,
    /// None while a lock wait is still open in the log.
    end: Option<DateTime<FixedOffset>>,
    statement: Option<String>,
    evidence: Evidence,
    used: bool,
}

impl Activity {
    fn covers(&self, t: DateTime<FixedOffset>) -> bool {
        let slack = Duration::seconds(1);
        self.start <= t + slack && self.end.is_none_or(|e| e >= t - slack)
    }
}

/// Incidents the PostgreSQL log can explain: a worker whose end leaves a database wait open.
/// One that ran its abort handler (`Worker exiting`, an abort traceback) was in Python, not in
/// the driver's wait, and is never given a database cause, however well the times match.
fn is_target(inc: &Incident) -> bool {
    let open = !inc.ruled_out.iter().any(|r| r.cause == Cause::LockWait)
        && inc.exit.is_none()
        && inc.abort.is_none();
    open && match inc.cause() {
        Cause::Unknown => matches!(inc.basis, Basis::Escalation | Basis::NoTraceback),
        Cause::SlowQuery => true,
        _ => false,
    }
}

pub struct PgJoin {
    /// Times of the target incidents, sorted.
    times: Vec<DateTime<FixedOffset>>,
    activities: Vec<Activity>,
    /// Backend pid → its lock wait still open.
    open_waits: HashMap<u32, usize>,
    /// Activity that fits several workers equally well (killed in the same second): what it
    /// was and the worker pids it could belong to. Such incidents are left as they were.
    ambiguous: Vec<(String, Vec<u32>)>,
}

impl PgJoin {
    pub fn new(incidents: &[Incident]) -> PgJoin {
        let mut times: Vec<_> = incidents
            .iter()
            .filter(|i| is_target(i))
            .map(|i| i.time)
            .collect();
        times.sort();
        PgJoin {
            times,
            activities: Vec::new(),
            open_waits: HashMap::new(),
            ambiguous: Vec::new(),
        }
    }

    /// True when the span [start, end] is near some target incident.
    fn relevant(&self, start: DateTime<FixedOffset>, end: DateTime<FixedOffset>) -> bool {
        let from = start - Duration::seconds(CLIENT_LOST_AFTER_KILL_SECS + 60);
        let to = end + Duration::seconds(LOOKBACK_SECS);
        let i = self.times.partition_point(|t| *t < from);
        self.times.get(i).is_some_and(|t| *t <= to)
    }

    /// Any later message of a backend ends the lock wait it had open.
    fn close_wait(&mut self, pid: Option<u32>, time: DateTime<FixedOffset>) {
        if let Some(open) = pid.and_then(|p| self.open_waits.remove(&p)) {
            self.activities[open].end = Some(time);
        }
    }

    pub fn push(&mut self, path: &str, e: &PgEvent<'_>) {
        let Some(time) = e.time else { return };
        if self.times.is_empty() {
            return;
        }
        let evidence = || Evidence {
            path: path.to_string(),
            line: Some(e.line),
            text: cap(e.message, MAX_EVIDENCE).to_string(),
        };
        match &e.kind {
            PgEventKind::LockWait {
                state,
                mode,
                object,
                wait_ms,
                holders,
                statement,
                ..
            } => {
                let Some(pid) = e.pid else { return };
                let Some(start) = started_before(time, *wait_ms) else {
                    return;
                };
                if let Some(&open) = self.open_waits.get(&pid) {
                    // `acquired` (or the deadlock check) closes the wait this backend had open.
                    if *state != LockState::Waiting {
                        self.activities[open].end = Some(time);
                        self.open_waits.remove(&pid);
                    }
                    return;
                }
                if !self.relevant(start, time + Duration::seconds(LOOKBACK_SECS)) {
                    return;
                }
                let open = *state == LockState::Waiting;
                self.activities.push(Activity {
                    pid: Some(pid),
                    kind: ActivityKind::LockWait {
                        lock: format!("{mode} on {object}"),
                        holders: holders.clone(),
                    },
                    start,
                    end: (!open).then_some(time),
                    statement: statement.map(|s| cap(s, MAX_STATEMENT).to_string()),
                    evidence: evidence(),
                    used: false,
                });
                if open {
                    self.open_waits.insert(pid, self.activities.len() - 1);
                }
            }
            PgEventKind::Statement {
                duration_ms, query, ..
            } => {
                self.close_wait(e.pid, time);
                if *duration_ms < SLOW_STATEMENT_MS {
                    return;
                }
                let Some(start) = started_before(time, *duration_ms) else {
                    return;
                };
                if !self.relevant(start, time) {
                    return;
                }
                self.activities.push(Activity {
                    pid: e.pid,
                    kind: ActivityKind::Statement {
                        duration_ms: *duration_ms,
                    },
                    start,
                    end: Some(time),
                    statement: query.map(|s| cap(s, MAX_STATEMENT).to_string()),
                    evidence: evidence(),
                    used: false,
                });
            }
            PgEventKind::Error {
                message, statement, ..
            } => {
                self.close_wait(e.pid, time);
                let client_gone = message.starts_with("connection to client lost")
                    || message.starts_with("could not send data to client")
                    || message.starts_with("could not receive data from client");
                if !client_gone || !self.relevant(time, time) {
                    return;
                }
                self.activities.push(Activity {
                    pid: e.pid,
                    kind: ActivityKind::ClientLost,
                    start: time,
                    end: Some(time),
                    statement: statement.map(|s| cap(s, MAX_STATEMENT).to_string()),
                    evidence: evidence(),
                    used: false,
                });
            }
            PgEventKind::Cancel { .. } => {
                // A cancelled statement (lock_timeout, statement_timeout) ends the wait.
                self.close_wait(e.pid, time);
            }
            PgEventKind::Deadlock {
                processes,
                statement,
                ..
            } => {
                if !self.relevant(time, time) {
                    return;
                }
                self.activities.push(Activity {
                    pid: e.pid,
                    kind: ActivityKind::Deadlock {
                        pids: processes.iter().map(|p| p.pid).collect(),
                    },
                    start: time,
                    end: Some(time),
                    statement: statement.map(|s| cap(s, MAX_STATEMENT).to_string()),
                    evidence: evidence(),
                    used: false,
                });
            }
            PgEventKind::TempFile { .. } => {}
        }
    }

    /// Refines target incidents from the activity around them; each piece of activity
    /// explains at most one incident.
    ///
    /// 1. A backend that lost its client shortly after a worker died served that worker: the
    ///    pairs are matched closest first (by the kill's time when the log has it, else by the
    ///    timeout's), and that backend's lock wait at the timeout, or else its statement, is
    ///    the cause.
    /// 2. The incidents left are matched by time alone, oldest first: a lock wait spanning the
    ///    timeout, then a long statement, then a deadlock just before it.
    ///
    /// Every step is an index lookup or a time-sorted sweep: n log n in incidents plus
    /// activity, whatever the mix.
    pub fn finish(mut self, incidents: &mut [Incident]) -> Vec<(String, Vec<u32>)> {
        let targets: Vec<usize> = (0..incidents.len())
            .filter(|&i| is_target(&incidents[i]))
            .collect();
        let died = |inc: &Incident| inc.kill.as_ref().map_or(inc.time, |(m, _)| m.time);

        // Lost clients by time, to find those just after each death by binary search.
        let mut lost: Vec<usize> = (0..self.activities.len())
            .filter(|&j| matches!(self.activities[j].kind, ActivityKind::ClientLost))
            .collect();
        lost.sort_by_key(|&j| (self.activities[j].start, j));
        let mut pairs: Vec<(i64, usize, usize)> = Vec::new();
        for &i in &targets {
            // Gunicorn's times are whole seconds: the kill (or, when the log has none, the
            // timeout just before it) happened at or after `died`, and the backend noticed
            // after that.
            let d = died(&incidents[i]);
            let to = d + Duration::seconds(CLIENT_LOST_AFTER_KILL_SECS);
            let from = lost.partition_point(|&j| self.activities[j].start < d);
            for &j in lost[from..]
                .iter()
                .take_while(|&&j| self.activities[j].start <= to)
                .take(MAX_LOST_PER_INCIDENT)
            {
                pairs.push(((self.activities[j].start - d).num_milliseconds(), i, j));
            }
        }
        pairs.sort_unstable();
        // Lost client → the incidents it may belong to, for the rivals of a pair.
        let mut candidates: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(_, i, j) in &pairs {
            candidates.entry(j).or_default().push(i);
        }
        // Backend pid → its lock waits in time order, to find the one at a timeout.
        let mut waits: HashMap<u32, Vec<usize>> = HashMap::new();
        for (j, a) in self.activities.iter().enumerate() {
            if let (ActivityKind::LockWait { .. }, Some(pid)) = (&a.kind, a.pid) {
                waits.entry(pid).or_default().push(j);
            }
        }
        for list in waits.values_mut() {
            list.sort_by_key(|&j| (self.activities[j].start, j));
        }

        let mut explained = vec![false; incidents.len()];
        for &(_, i, j) in &pairs {
            if explained[i] || self.activities[j].used {
                continue;
            }
            self.activities[j].used = true;
            // Workers that died in the same (whole) second fit this backend equally well.
            let rivals: Vec<usize> = candidates
                .get(&j)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&i2| {
                    i2 != i && !explained[i2] && died(&incidents[i2]) == died(&incidents[i])
                })
                .collect();
            if !rivals.is_empty() {
                let mut pids: Vec<u32> = rivals.iter().map(|&r| incidents[r].pid).collect();
                pids.push(incidents[i].pid);
                pids.sort_unstable();
                pids.dedup();
                self.ambiguous.push((describe(&self.activities[j]), pids));
                continue;
            }
            explained[i] = true;
            let lost = self.activities[j].clone();
            let t = incidents[i].time;
            let wait = lost
                .pid
                .and_then(|pid| waits.get(&pid))
                .and_then(|list| self.wait_at(list, t));
            let found = match wait {
                Some(w) => {
                    self.activities[w].used = true;
                    Explanation::linked(self.activities[w].clone(), Some(lost))
                }
                None => Explanation::linked(lost.clone(), Some(lost)),
            };
            apply(&mut incidents[i], found);
        }

        let mut rest: Vec<usize> = targets.into_iter().filter(|&i| !explained[i]).collect();
        rest.sort_by_key(|&i| (incidents[i].time, i));
        let mut sweep = TimeSweep::new(&self.activities);
        let times: Vec<DateTime<FixedOffset>> = rest.iter().map(|&i| incidents[i].time).collect();
        for &i in &rest {
            let t = incidents[i].time;
            let Some(found) = sweep.pick(&mut self.activities, t) else {
                continue;
            };
            // A time match only names a cause when no other worker left open timed out while
            // this activity could have held it: otherwise any of them fits it as well.
            let (lo, hi) = window(&found.activity);
            let from = times.partition_point(|x| *x < lo);
            let to = hi.map_or(times.len(), |hi| times.partition_point(|x| *x <= hi));
            let mut pids: Vec<u32> = rest[from..to.max(from)]
                .iter()
                .filter(|&&r| r != i && !explained[r])
                .map(|&r| incidents[r].pid)
                .take(MAX_AMBIGUOUS_PIDS)
                .collect();
            if !pids.is_empty() {
                pids.push(incidents[i].pid);
                pids.sort_unstable();
                pids.dedup();
                self.ambiguous.push((describe(&found.activity), pids));
                continue;
            }
            explained[i] = true;
            apply(&mut incidents[i], found);
        }
        self.ambiguous
    }

    /// The first unused lock wait of one backend (`list`, in time order) that spans `t`.
    /// A backend waits for one lock at a time, so the candidates are the few just before the
    /// first wait that starts after `t`.
    fn wait_at(&self, list: &[usize], t: DateTime<FixedOffset>) -> Option<usize> {
        let slack = Duration::seconds(1);
        let upto = list.partition_point(|&j| self.activities[j].start <= t + slack);
        list[..upto]
            .iter()
            .rev()
            .take(MAX_LOST_PER_INCIDENT)
            .filter(|&&j| !self.activities[j].used && self.activities[j].covers(t))
            .min()
            .copied()
    }
}

/// Worker pids listed in one ambiguity note.
const MAX_AMBIGUOUS_PIDS: usize = 20;

/// The span of timeout times an activity may explain by time: a lock wait or a statement from
/// its start to its end (a second of slack each side, Gunicorn writes whole seconds), a
/// deadlock up to a minute before the timeout.
fn window(a: &Activity) -> (DateTime<FixedOffset>, Option<DateTime<FixedOffset>>) {
    let slack = Duration::seconds(1);
    match a.kind {
        ActivityKind::Deadlock { .. } => (
            a.start - Duration::seconds(5),
            Some(a.start + Duration::seconds(60)),
        ),
        _ => (a.start - slack, a.end.map(|e| e + slack)),
    }
}

/// Most lost clients considered for one death (a storm of disconnects in one second).
const MAX_LOST_PER_INCIDENT: usize = 64;

/// Matching by time, for incidents visited in time order: per kind of activity, what may
/// match from `t` on. An activity enters when `t` reaches the start of its window and leaves
/// for good once `t` passes its end; the earliest-logged one still in is picked.
struct TimeSweep {
    /// Per kind (lock wait, statement, deadlock): (window start, index), sorted.
    windows: [Vec<(DateTime<FixedOffset>, usize)>; 3],
    next: [usize; 3],
    active: [std::collections::BTreeSet<usize>; 3],
}

impl TimeSweep {
    fn new(activities: &[Activity]) -> TimeSweep {
        let slack = Duration::seconds(1);
        let mut windows: [Vec<_>; 3] = Default::default();
        for (j, a) in activities.iter().enumerate() {
            let (kind, lo) = match a.kind {
                ActivityKind::LockWait { .. } => (0, a.start - slack),
                ActivityKind::Statement { .. } => (1, a.start - slack),
                // A deadlock just before the timeout (up to a minute), or right after it.
                ActivityKind::Deadlock { .. } => (2, a.start - Duration::seconds(5)),
                ActivityKind::ClientLost => continue,
            };
            windows[kind].push((lo, j));
        }
        for w in &mut windows {
            w.sort_unstable();
        }
        TimeSweep {
            windows,
            next: [0; 3],
            active: Default::default(),
        }
    }

    fn pick(
        &mut self,
        activities: &mut [Activity],
        t: DateTime<FixedOffset>,
    ) -> Option<Explanation> {
        for kind in 0..3 {
            let windows = &self.windows[kind];
            while let Some(&(lo, j)) = windows.get(self.next[kind]) {
                if lo > t {
                    break;
                }
                self.active[kind].insert(j);
                self.next[kind] += 1;
            }
            while let Some(&j) = self.active[kind].first() {
                let a = &activities[j];
                // Entered, so it starts no later than `t` allows: out of its window now means
                // out of it for every later `t`.
                let ended = match a.kind {
                    ActivityKind::Deadlock { .. } => a.start + Duration::seconds(60) < t,
                    _ => !a.covers(t),
                };
                if a.used || ended {
                    self.active[kind].pop_first();
                    continue;
                }
                // The earliest-logged activity whose window holds `t`.
                activities[j].used = true;
                self.active[kind].pop_first();
                return Some(Explanation::by_time(activities[j].clone()));
            }
        }
        None
    }
}

struct Explanation {
    activity: Activity,
    /// The `connection to client lost` that tied the backend to the killed worker.
    link: Option<Activity>,
}

impl Explanation {
    fn linked(activity: Activity, link: Option<Activity>) -> Explanation {
        Explanation { activity, link }
    }

    fn by_time(activity: Activity) -> Explanation {
        Explanation {
            activity,
            link: None,
        }
    }
}

fn apply(inc: &mut Incident, found: Explanation) {
    let a = &found.activity;
    let backend = a
        .pid
        .map(|p| format!("backend {p}"))
        .unwrap_or_else(|| "a backend".into());
    let statement = a
        .statement
        .as_deref()
        .map(|s| format!(": {}", one_line(s)))
        .unwrap_or_default();
    let how = if found.link.is_some() {
        format!(
            "{backend} lost its client right after the worker was killed, so it served this worker"
        )
    } else {
        format!("{backend}'s activity spans the timeout (matched by time only)")
    };
    let (cause, reason, confidence) = match &a.kind {
        ActivityKind::LockWait { lock, holders } => {
            let blockers = if holders.is_empty() {
                String::new()
            } else {
                format!(
                    " held by process {}",
                    holders
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let waited = (inc.time - a.start).num_milliseconds() as f64 / 1000.0;
            (
                Cause::LockWait,
                format!(
                    "PostgreSQL {backend} was waiting for {lock}{blockers}, {waited:.1}s by the \
                     timeout; {how}{statement}"
                ),
                // A time match alone is a candidate, never a conclusion.
                if found.link.is_some() {
                    Confidence::High
                } else {
                    Confidence::Low
                },
            )
        }
        ActivityKind::Statement { duration_ms } => (
            Cause::SlowQuery,
            format!(
                "PostgreSQL {backend} ran one statement for {:.1}s across the timeout; {how}{statement}",
                duration_ms / 1000.0
            ),
            if found.link.is_some() {
                Confidence::Medium
            } else {
                Confidence::Low
            },
        ),
        ActivityKind::ClientLost => (
            Cause::SlowQuery,
            format!(
                "PostgreSQL {backend} was still running a statement when the worker was killed \
                 (it then logged '{}'){statement}",
                a.evidence.text
            ),
            Confidence::Medium,
        ),
        ActivityKind::Deadlock { pids } => (
            Cause::Deadlock,
            format!(
                "PostgreSQL detected a deadlock between processes {pids:?} just before the \
                 timeout (matched by time only){statement}"
            ),
            Confidence::Low,
        ),
    };
    let attribution = std::sync::Arc::make_mut(&mut inc.attribution);
    attribution.cause = cause;
    attribution.reason = reason;
    inc.basis = Basis::Postgres;
    inc.confidence = confidence;
    inc.correlated.push(found.activity.evidence.clone());
    if let Some(link) = found.link
        && link.evidence != found.activity.evidence
    {
        inc.correlated.push(link.evidence);
    }
}

/// `lock wait of backend 14929 (postgres.log:12)` and the like, for the ambiguity note.
fn describe(a: &Activity) -> String {
    let what = match a.kind {
        ActivityKind::LockWait { .. } => "a lock wait",
        ActivityKind::Statement { .. } => "a long statement",
        ActivityKind::ClientLost => "a lost client",
        ActivityKind::Deadlock { .. } => "a deadlock",
    };
    let backend = a
        .pid
        .map(|p| format!(" of backend {p}"))
        .unwrap_or_default();
    let at = a.evidence.line.map(|l| format!(":{l}")).unwrap_or_default();
    format!("{what}{backend} ({}{at})", a.evidence.path)
}

fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.len() > 200 {
        format!("{}...", cap(&flat, 200))
    } else {
        flat
    }
}
