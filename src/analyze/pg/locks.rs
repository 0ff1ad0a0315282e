//! Lock waits → who blocked whom. The server logs a wait when it passes `deadlock_timeout`
//! (`still waiting`, with the holders and the queue), and again when it ends (`acquired`,
//! `failed`, `detected deadlock`). This merges those lines into one wait per backend and lock,
//! links waits whose holder was itself waiting at the time into chains (`8795 → 8794 → 8793`),
//! and groups linked waits into incidents, each with its root blocker(s).

use std::collections::{HashMap, HashSet};
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
        self.lock_timeouts.sort_by_key(|(_, t)| *t);
        let episodes = self.episodes();
        link(episodes)
    }

    /// One pass over the lines (and the lock_timeout cancels, both in time order). A backend
    /// logs `still waiting` again at each deadlock check of the same wait (each line's
    /// `after N ms` counts from the same start), and `acquired`, `failed` or a deadlock line
    /// when it ends; a lock_timeout cancel ends the wait that backend has open.
    fn episodes(&self) -> Vec<WaitEpisode> {
        let mut episodes: Vec<WaitEpisode> = Vec::new();
        // the open wait of each (backend, mode, lock), and the open waits of each backend
        let mut open: HashMap<(u32, &str, &str), usize> = HashMap::new();
        let mut open_of_pid: HashMap<u32, Vec<usize>> = HashMap::new();
        let mut timeouts = self.lock_timeouts.iter().peekable();
        for l in &self.lines {
            // (a cancel logged in the same second as a wait line comes after it)
            while let Some((pid, time)) = timeouts.next_if(|(_, t)| *t < l.time) {
                end_by_lock_timeout(&mut episodes, &mut open_of_pid, *pid, *time);
            }
            let key = (l.pid, l.mode.as_str(), l.object.as_str());
            let started = l.time.and_then(|t| started_before(t, l.wait_ms));
            // A `still waiting` whose wait began after the open wait's last line is a new
            // wait (the one before ended without a line: its statement was cancelled).
            let existing = open.get(&key).copied().filter(|&i| {
                let e = &episodes[i];
                e.outcome == WaitOutcome::Open
                    && !(l.state == LockState::Waiting
                        && started.is_some()
                        && e.end.is_some()
                        && started > e.end)
            });
            let i = match existing {
                Some(i) => i,
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
                    let i = episodes.len() - 1;
                    open.insert(key, i);
                    open_of_pid.entry(l.pid).or_default().push(i);
                    i
                }
            };
            let e = &mut episodes[i];
            e.wait_ms = e.wait_ms.max(l.wait_ms);
            if e.start.is_none() || started.is_some_and(|s| Some(s) < e.start) {
                e.start = started.or(e.start);
            }
            e.end = l.time.or(e.end);
            for h in &l.holders {
                if e.holders.len() < MAX_HOLDERS && !e.holders.contains(h) {
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
            e.outcome = match l.state {
                LockState::Waiting => WaitOutcome::Open,
                LockState::Avoided => {
                    e.avoided_deadlock = true;
                    WaitOutcome::Open
                }
                LockState::Acquired => WaitOutcome::Acquired,
                LockState::Failed => WaitOutcome::Failed,
                LockState::DeadlockDetected => WaitOutcome::Deadlock,
            };
            if e.outcome != WaitOutcome::Open {
                open.remove(&key);
                if let Some(list) = open_of_pid.get_mut(&l.pid) {
                    list.retain(|&j| j != i);
                }
            }
        }
        for (pid, time) in timeouts {
            end_by_lock_timeout(&mut episodes, &mut open_of_pid, *pid, *time);
        }
        episodes
    }
}

/// Holders kept per wait: PostgreSQL lists every holder of a shared lock, which can be every
/// backend of the server.
const MAX_HOLDERS: usize = 64;

/// A lock_timeout cancel ends the waits its backend has open (each wait is ended once).
fn end_by_lock_timeout(
    episodes: &mut [WaitEpisode],
    open_of_pid: &mut HashMap<u32, Vec<usize>>,
    pid: u32,
    time: Option<DateTime<FixedOffset>>,
) {
    let Some(open) = open_of_pid.remove(&pid) else {
        return;
    };
    for i in open {
        let e = &mut episodes[i];
        if e.outcome != WaitOutcome::Open {
            continue;
        }
        e.outcome = WaitOutcome::Failed;
        // (with whole-second times the difference says nothing)
        if let (Some(t), Some(s)) = (time, e.start)
            && t.timestamp_subsec_nanos() != 0
            && t >= s
        {
            e.end = Some(t);
            e.wait_ms = e
                .wait_ms
                .max((t - s).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
}

/// Groups waits that overlap in time and share a backend: the waiter of one is a holder of
/// the other (a chain), or both wait behind the same holder. Each backend's waits — as waiter
/// or as holder — are swept once in start order, so the cost is n log n in the waits and
/// their holders, whatever the shape of the storm.
fn link(episodes: Vec<WaitEpisode>) -> Vec<LockIncident> {
    let n = episodes.len();
    let mut sets = DisjointSets::new(n);
    let mut by_backend: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in episodes.iter().enumerate() {
        by_backend.entry(e.pid).or_default().push(i);
        for h in &e.holders {
            if *h != e.pid {
                by_backend.entry(*h).or_default().push(i);
            }
        }
    }
    for members in by_backend.values_mut() {
        if members.len() < 2 {
            continue;
        }
        // a wait without times overlaps everything (the format had no times)
        members.sort_by_key(|&i| episodes[i].start);
        let mut cluster: Option<(usize, Option<DateTime<FixedOffset>>)> = None;
        for &i in members.iter() {
            let e = &episodes[i];
            cluster = match cluster {
                Some((root, end)) if e.start.is_none() || end.is_none() || e.start <= end => {
                    sets.union(root, i);
                    let end = match (end, e.end) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                    Some((root, end))
                }
                _ => Some((i, e.end)),
            };
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        groups.entry(sets.find(i)).or_default().push(i);
    }
    let mut slots: Vec<Option<WaitEpisode>> = episodes.into_iter().map(Some).collect();
    let mut incidents: Vec<LockIncident> = groups
        .into_values()
        .map(|members| incident(members.iter().filter_map(|&i| slots[i].take()).collect()))
        .collect();
    incidents.sort_by(|a, b| {
        b.total_wait_ms
            .total_cmp(&a.total_wait_ms)
            .then(a.episodes[0].start.cmp(&b.episodes[0].start))
    });
    incidents
}

/// Union-find with path halving.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> DisjointSets {
        DisjointSets {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra] = rb;
        }
    }
}

fn incident(mut episodes: Vec<WaitEpisode>) -> LockIncident {
    episodes.sort_by(|a, b| a.start.cmp(&b.start).then(a.pid.cmp(&b.pid)));
    let waiters: HashSet<u32> = episodes.iter().map(|e| e.pid).collect();
    let mut roots: Vec<u32> = Vec::new();
    let mut seen_roots: HashSet<u32> = HashSet::new();
    for e in &episodes {
        for h in &e.holders {
            if !waiters.contains(h) && seen_roots.insert(*h) {
                roots.push(*h);
            }
        }
    }
    let chain = longest_chain(&episodes);
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

/// Chains longer than this are cut (a deeper one says the same to the reader).
const MAX_CHAIN: usize = 16;

/// The longest waits-for path, waiter first: the graph is built once with each edge once
/// (backend → the backends it waited behind), its cycles (deadlocks) are collapsed into their
/// strongly connected components, and the longest path of the condensation is found by one
/// pass in topological order. Ties go to the earliest waiter and the first holder named.
fn longest_chain(episodes: &[WaitEpisode]) -> Vec<u32> {
    // nodes in first-seen order, edges deduplicated
    let mut index: HashMap<u32, usize> = HashMap::new();
    let mut pids: Vec<u32> = Vec::new();
    let mut node = |pid: u32, pids: &mut Vec<u32>| {
        *index.entry(pid).or_insert_with(|| {
            pids.push(pid);
            pids.len() - 1
        })
    };
    let mut edges: Vec<Vec<usize>> = Vec::new();
    let mut seen_edges: HashSet<(usize, usize)> = HashSet::new();
    for e in episodes {
        let from = node(e.pid, &mut pids);
        for h in &e.holders {
            let to = node(*h, &mut pids);
            edges.resize_with(pids.len(), Vec::new);
            if from != to && seen_edges.insert((from, to)) {
                edges[from].push(to);
            }
        }
    }
    edges.resize_with(pids.len(), Vec::new);
    let (component, members) = strongly_connected(&edges);
    // Tarjan numbers components in reverse topological order: successors come first.
    let c = members.len();
    let mut best_len = vec![0usize; c];
    let mut best_next: Vec<Option<usize>> = vec![None; c];
    for comp in 0..c {
        let mut best: (usize, Option<usize>) = (0, None);
        for &v in &members[comp] {
            for &w in &edges[v] {
                let d = component[w];
                if d != comp && best_len[d] > best.0 {
                    best = (best_len[d], Some(d));
                }
            }
        }
        best_len[comp] = members[comp].len() + best.0;
        best_next[comp] = best.1;
    }
    let Some(start) = episodes
        .iter()
        .map(|e| component[index[&e.pid]])
        .reduce(|a, b| if best_len[b] > best_len[a] { b } else { a })
    else {
        return Vec::new();
    };
    let mut chain = Vec::new();
    let mut at = Some(start);
    while let Some(comp) = at {
        let mut inner: Vec<u32> = members[comp].iter().map(|&v| pids[v]).collect();
        // a cycle's members in the order they were first seen
        inner.sort_by_key(|p| index[p]);
        chain.extend(inner);
        at = best_next[comp];
    }
    chain.truncate(MAX_CHAIN);
    chain
}

/// Tarjan's algorithm, iterative (no recursion depth to overflow): each node's component, and
/// each component's nodes, components numbered in reverse topological order.
fn strongly_connected(edges: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let mut order = vec![NONE; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![NONE; n];
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if order[root] != NONE {
            continue;
        }
        // (node, next edge to look at)
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        order[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut k)) = work.last_mut() {
            if let Some(&w) = edges[v].get(*k) {
                *k += 1;
                if order[w] == NONE {
                    order[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == order[v] {
                let id = members.len();
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = id;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                members.push(comp);
            }
        }
    }
    (component, members)
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
