//! Lock waits → who blocked whom. The server logs a wait when it passes `deadlock_timeout`
//! (`still waiting`, with the holders and the queue), and again when it ends (`acquired`,
//! `failed`, `detected deadlock`). This merges those lines into one wait per backend and lock,
//! links waits whose holder was itself waiting at the time into chains (`8795 → 8794 → 8793`),
//! and groups linked waits into incidents, each with its root blocker(s).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use crate::analyze::window::started_before;
use crate::parse::pg::LockState;
use crate::report::Evidence;

/// Lock-wait lines kept at most (they are rare; a storm beyond this is counted).
pub const MAX_LOCK_LINES: usize = 100_000;

/// One lock-wait line, owned.
#[derive(Debug, Clone)]
pub struct LockLine {
    pub pid: u32,
    pub state: LockState,
    pub mode: String,
    pub object: String,
    pub relation: Option<String>,
    pub wait_ms: f64,
    pub holders: Vec<u32>,
    pub statement: Option<String>,
    pub time: Option<DateTime<FixedOffset>>,
    pub evidence: Evidence,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    Acquired,
    /// `failed to acquire` or a lock_timeout cancel.
    Failed,
    Deadlock,
    /// Still waiting when the log ends.
    Open,
}

/// One backend's wait for one lock, from its lines.
#[derive(Debug, Clone)]
pub struct WaitEpisode {
    pub pid: u32,
    pub mode: String,
    pub object: String,
    pub relation: Option<String>,
    /// The longest wait a line reported.
    pub wait_ms: f64,
    pub holders: Vec<u32>,
    pub statement: Option<String>,
    pub start: Option<DateTime<FixedOffset>>,
    pub end: Option<DateTime<FixedOffset>>,
    pub outcome: WaitOutcome,
    pub avoided_deadlock: bool,
    pub evidence: Vec<Evidence>,
}

impl WaitEpisode {
    fn overlaps(&self, other: &WaitEpisode) -> bool {
        match (self.start, self.end, other.start, other.end) {
            (Some(a0), Some(a1), Some(b0), Some(b1)) => a0 <= b1 && b0 <= a1,
            _ => true,
        }
    }
}

/// Linked waits: one blocking incident.
#[derive(Debug, Clone)]
pub struct LockIncident {
    pub episodes: Vec<WaitEpisode>,
    /// Holders that were not waiting themselves.
    pub roots: Vec<u32>,
    /// The longest waits-for path, waiter first (`[8795, 8794, 8793]`).
    pub chain: Vec<u32>,
    pub max_wait_ms: f64,
    pub total_wait_ms: f64,
}

#[derive(Default)]
pub struct LockTracker {
    lines: Vec<LockLine>,
    pub dropped: u64,
    /// Backends whose statement was cancelled by lock_timeout, and when.
    lock_timeouts: Vec<(u32, Option<DateTime<FixedOffset>>)>,
}

impl LockTracker {
    pub fn push(&mut self, line: LockLine) {
        if self.lines.len() >= MAX_LOCK_LINES {
            self.dropped += 1;
        } else {
            self.lines.push(line);
        }
    }

    pub fn lock_timeout(&mut self, pid: u32, time: Option<DateTime<FixedOffset>>) {
        if self.lock_timeouts.len() < MAX_LOCK_LINES {
            self.lock_timeouts.push((pid, time));
        }
    }

    pub fn lines(&self) -> usize {
        self.lines.len()
    }

    /// Merges the lines into waits, then links them into incidents, largest total wait first.
    pub fn incidents(mut self) -> Vec<LockIncident> {
        self.lines.sort_by_key(|l| l.time);
        let episodes = self.episodes();
        link(episodes)
    }

    fn episodes(&self) -> Vec<WaitEpisode> {
        let mut episodes: Vec<WaitEpisode> = Vec::new();
        let mut open: HashMap<(u32, &str, &str), usize> = HashMap::new();
        for l in &self.lines {
            let key = (l.pid, l.mode.as_str(), l.object.as_str());
            let started = l.time.and_then(|t| started_before(t, l.wait_ms));
            let i = match open.get(&key) {
                Some(&i) => i,
                None => {
                    episodes.push(WaitEpisode {
                        pid: l.pid,
                        mode: l.mode.clone(),
                        object: l.object.clone(),
                        relation: None,
                        wait_ms: 0.0,
                        holders: Vec::new(),
                        statement: None,
                        start: started,
                        end: l.time,
                        outcome: WaitOutcome::Open,
                        avoided_deadlock: false,
                        evidence: Vec::new(),
                    });
                    open.insert(key, episodes.len() - 1);
                    episodes.len() - 1
                }
            };
            let e = &mut episodes[i];
            e.wait_ms = e.wait_ms.max(l.wait_ms);
            if e.start.is_none() || started.is_some_and(|s| Some(s) < e.start) {
                e.start = started.or(e.start);
            }
            e.end = l.time.or(e.end);
            for h in &l.holders {
                if !e.holders.contains(h) {
                    e.holders.push(*h);
                }
            }
            if e.relation.is_none() {
                e.relation.clone_from(&l.relation);
            }
            if e.statement.is_none() {
                e.statement.clone_from(&l.statement);
            }
            if e.evidence.len() < 4 {
                e.evidence.push(l.evidence.clone());
            }
            match l.state {
                LockState::Waiting => {}
                LockState::Avoided => e.avoided_deadlock = true,
                LockState::Acquired | LockState::Failed | LockState::DeadlockDetected => {
                    e.outcome = match l.state {
                        LockState::Acquired => WaitOutcome::Acquired,
                        LockState::Failed => WaitOutcome::Failed,
                        _ => WaitOutcome::Deadlock,
                    };
                    open.remove(&key);
                }
            }
        }
        // A lock_timeout cancel ends the backend's open wait.
        for (pid, time) in &self.lock_timeouts {
            for e in episodes
                .iter_mut()
                .filter(|e| e.pid == *pid && e.outcome == WaitOutcome::Open)
            {
                if e.start.is_none() || time.is_none() || e.start <= *time {
                    e.outcome = WaitOutcome::Failed;
                    // (with whole-second times the difference says nothing)
                    if let (Some(t), Some(s)) = (time, e.start)
                        && t.timestamp_subsec_nanos() != 0
                    {
                        e.end = Some(*t);
                        e.wait_ms = e
                            .wait_ms
                            .max((*t - s).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                    }
                }
            }
        }
        episodes
    }
}

/// Groups waits that share a blocker or whose blocker was waiting at the time.
fn link(episodes: Vec<WaitEpisode>) -> Vec<LockIncident> {
    let n = episodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut by_pid: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut by_holder: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in episodes.iter().enumerate() {
        by_pid.entry(e.pid).or_default().push(i);
        for h in &e.holders {
            by_holder.entry(*h).or_default().push(i);
        }
    }
    let union = |p: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(p, a), find(p, b));
        if ra != rb {
            p[ra] = rb;
        }
    };
    for (i, e) in episodes.iter().enumerate() {
        for h in &e.holders {
            // the holder waiting at the same time: a chain
            for &j in by_pid.get(h).into_iter().flatten() {
                if episodes[j].overlaps(e) {
                    union(&mut parent, i, j);
                }
            }
            // another waiter behind the same holder at the same time
            for &j in by_holder.get(h).into_iter().flatten() {
                if j != i && episodes[j].overlaps(e) {
                    union(&mut parent, i, j);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut incidents: Vec<LockIncident> = groups
        .into_values()
        .map(|members| {
            let eps: Vec<WaitEpisode> = members.iter().map(|&i| episodes[i].clone()).collect();
            incident(eps)
        })
        .collect();
    incidents.sort_by(|a, b| {
        b.total_wait_ms
            .total_cmp(&a.total_wait_ms)
            .then(a.episodes[0].start.cmp(&b.episodes[0].start))
    });
    incidents
}

fn incident(mut episodes: Vec<WaitEpisode>) -> LockIncident {
    episodes.sort_by(|a, b| a.start.cmp(&b.start).then(a.pid.cmp(&b.pid)));
    let waiters: Vec<u32> = episodes.iter().map(|e| e.pid).collect();
    let mut roots: Vec<u32> = Vec::new();
    for e in &episodes {
        for h in &e.holders {
            if !waiters.contains(h) && !roots.contains(h) {
                roots.push(*h);
            }
        }
    }
    // longest waits-for path from each waiter (depth-first, cycle-safe)
    let mut chain: Vec<u32> = Vec::new();
    for e in &episodes {
        let mut path = vec![e.pid];
        extend_chain(&episodes, &mut path, &mut chain);
    }
    let max_wait_ms = episodes.iter().map(|e| e.wait_ms).fold(0.0, f64::max);
    let total_wait_ms = episodes.iter().map(|e| e.wait_ms).sum();
    LockIncident {
        episodes,
        roots,
        chain,
        max_wait_ms,
        total_wait_ms,
    }
}

fn extend_chain(episodes: &[WaitEpisode], path: &mut Vec<u32>, best: &mut Vec<u32>) {
    let last = *path.last().unwrap_or(&0);
    let mut extended = false;
    if path.len() < 16 {
        let holders: Vec<u32> = episodes
            .iter()
            .filter(|e| e.pid == last)
            .flat_map(|e| e.holders.iter().copied())
            .collect();
        for h in holders {
            if !path.contains(&h) {
                path.push(h);
                extend_chain(episodes, path, best);
                path.pop();
                extended = true;
            }
        }
    }
    if !extended && path.len() > best.len() {
        best.clone_from(path);
    }
}

/// The table named in a CONTEXT line: `while updating tuple (0,1) in relation "app_order"`.
pub fn relation_of_context(context: &str) -> Option<String> {
    let at = context.find(" relation \"")?;
    let rest = &context[at + " relation \"".len()..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

/// The relation OID of a lock object: `tuple (0,1) of relation 16413 of database 16385` →
/// `relation 16413`.
pub fn relation_of_object(object: &str) -> Option<String> {
    let at = object.find("relation ")?;
    let rest = &object[at + "relation ".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    Some(format!("relation {}", &rest[..end]))
}

/// Shared by every evidence line of one input.
pub fn evidence(path: &Arc<str>, line: u64, text: String) -> Evidence {
    Evidence {
        path: path.to_string(),
        line: Some(line),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> Option<DateTime<FixedOffset>> {
        Some(
            FixedOffset::east_opt(0)
                .unwrap()
                .timestamp_millis_opt(1_700_000_000_000 + ms)
                .unwrap(),
        )
    }

    fn line(
        pid: u32,
        state: LockState,
        object: &str,
        wait_ms: f64,
        holders: &[u32],
        t: i64,
    ) -> LockLine {
        LockLine {
            pid,
            state,
            mode: "ShareLock".into(),
            object: object.into(),
            relation: None,
            wait_ms,
            holders: holders.to_vec(),
            statement: None,
            time: at(t),
            evidence: Evidence {
                path: "pg.log".into(),
                line: Some(t as u64),
                text: String::new(),
            },
        }
    }

    #[test]
    fn waits_merge_and_chain_to_the_root_blocker() {
        let mut t = LockTracker::default();
        // 8794 waits for 8793; 8795 waits for 8794 (tuple lock), all overlapping
        t.push(line(
            8794,
            LockState::Waiting,
            "transaction 779",
            200.0,
            &[8793],
            200,
        ));
        t.push(line(
            8795,
            LockState::Waiting,
            "tuple (0,1) of relation 1 of database 2",
            200.0,
            &[8794],
            350,
        ));
        t.push(line(
            8794,
            LockState::Acquired,
            "transaction 779",
            1009.0,
            &[],
            1009,
        ));
        t.push(line(
            8795,
            LockState::Acquired,
            "tuple (0,1) of relation 1 of database 2",
            858.0,
            &[],
            1009,
        ));
        // unrelated wait much later
        t.push(line(
            9000,
            LockState::Waiting,
            "relation 5 of database 2",
            200.0,
            &[9001],
            60_000,
        ));
        let incidents = t.incidents();
        assert_eq!(incidents.len(), 2);
        let first = &incidents[0];
        assert_eq!(first.episodes.len(), 2);
        assert_eq!(first.roots, vec![8793]);
        assert_eq!(first.chain, vec![8795, 8794, 8793]);
        assert_eq!(first.max_wait_ms, 1009.0);
        assert!(
            first
                .episodes
                .iter()
                .all(|e| e.outcome == WaitOutcome::Acquired)
        );
        assert_eq!(incidents[1].episodes[0].outcome, WaitOutcome::Open);
    }

    #[test]
    fn lock_timeout_ends_an_open_wait() {
        let mut t = LockTracker::default();
        t.push(line(
            10,
            LockState::Waiting,
            "transaction 1",
            200.0,
            &[11],
            200,
        ));
        t.lock_timeout(10, at(500));
        let incidents = t.incidents();
        assert_eq!(incidents[0].episodes[0].outcome, WaitOutcome::Failed);
        assert_eq!(incidents[0].episodes[0].wait_ms, 500.0);
    }

    #[test]
    fn relations_from_context_and_object() {
        assert_eq!(
            relation_of_context("while updating tuple (0,1) in relation \"app_order\"").as_deref(),
            Some("app_order")
        );
        assert_eq!(
            relation_of_object("tuple (0,1) of relation 16413 of database 16385").as_deref(),
            Some("relation 16413")
        );
        assert_eq!(relation_of_object("transaction 779"), None);
    }
}
