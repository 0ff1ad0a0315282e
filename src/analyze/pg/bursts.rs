//! N+1 detection: one backend running the same statement shape again and again, each run close
//! to the one before (a request's loop of lazy loads), with values that change from run to run
//! (a loop over rows, not a poller repeating one query). Thresholds default to Sentry's N+1
//! detector (at least 5 repeats, at least 50 ms in all). State is per backend and bounded: a
//! few open runs each, backends idle for longer than the gap are closed and dropped.

use crate::analyze::window::started_before;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

/// Shapes a backend may alternate between in one loop (`book` → `author` → `publisher`).
const RUNS_PER_BACKEND: usize = 4;
/// Backends tracked at once; beyond it, the least recently active give way.
const MAX_BACKENDS: usize = 16_384;

#[derive(Debug, Clone, Copy)]
pub struct BurstRules {
    pub min_repeats: u32,
    pub min_total_ms: f64,
    pub max_gap_ms: f64,
}

/// A burst found.
#[derive(Debug, Clone)]
pub struct Burst {
    pub pid: u32,
    /// Index of the shape in the statement table.
    pub shape: usize,
    pub count: u64,
    pub span_ms: f64,
    pub total_ms: f64,
    pub first_time: DateTime<FixedOffset>,
    pub last_time: DateTime<FixedOffset>,
    pub path: Arc<str>,
    pub first_line: u64,
    /// The log's times are whole seconds (`%t`): the span could not be measured, and the
    /// burst was judged by its count alone.
    pub coarse_time: bool,
}

#[derive(Debug, Clone)]
struct Run {
    shape: usize,
    count: u64,
    total_ms: f64,
    /// When the first run started (its log time is when it ended).
    first_start: DateTime<FixedOffset>,
    first_time: DateTime<FixedOffset>,
    last_time: DateTime<FixedOffset>,
    path: Arc<str>,
    first_line: u64,
    /// Hash of the first run's SQL and parameters, and whether a later one differed.
    first_values: u64,
    values_vary: bool,
}

#[derive(Default)]
struct Backend {
    runs: Vec<Run>,
    last_time: Option<DateTime<FixedOffset>>,
}

pub struct BurstDetector {
    rules: BurstRules,
    backends: HashMap<u32, Backend>,
    /// Every tracked backend's activity in the order it was seen, oldest first: idle backends
    /// are closed from the front, and when more than [`MAX_BACKENDS`] are active at once the
    /// least recently active gives way. An entry is stale once its backend was active again
    /// (its `last_time` differs); stale entries are dropped when they reach the front, and the
    /// queue is rebuilt from the backends when stale ones outnumber live ones, so it stays
    /// within a few entries per tracked backend (a pushed entry per statement, no tree update).
    by_activity: VecDeque<(DateTime<FixedOffset>, u32)>,
    pub found: Vec<Burst>,
}

fn ms_between(a: DateTime<FixedOffset>, b: DateTime<FixedOffset>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

impl BurstDetector {
    pub fn new(rules: BurstRules) -> BurstDetector {
        BurstDetector {
            rules,
            backends: HashMap::new(),
            by_activity: VecDeque::new(),
            found: Vec::new(),
        }
    }

    /// One statement run by `pid`, ended at `time`. `values` hashes its SQL and parameters.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        pid: u32,
        shape: usize,
        values: u64,
        duration_ms: f64,
        time: DateTime<FixedOffset>,
        path: &Arc<str>,
        line: u64,
    ) {
        if !self.backends.contains_key(&pid) {
            self.sweep(time);
        }
        let rules = self.rules;
        let backend = self.backends.entry(pid).or_default();
        self.by_activity.push_back((time, pid));
        let mut closed: Vec<Run> = Vec::new();
        backend.runs.retain(|r| {
            let open = ms_between(r.last_time, time) <= rules.max_gap_ms;
            if !open {
                closed.push(r.clone());
            }
            open
        });
        backend.last_time = Some(time);
        let start = started_before(time, duration_ms).unwrap_or(time);
        match backend.runs.iter_mut().find(|r| r.shape == shape) {
            Some(run) => {
                run.count += 1;
                run.total_ms += duration_ms;
                run.last_time = time;
                if values != run.first_values {
                    run.values_vary = true;
                }
            }
            None => {
                if backend.runs.len() >= RUNS_PER_BACKEND {
                    // the run least recently extended gives way
                    if let Some(oldest) = backend
                        .runs
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, r)| r.last_time)
                        .map(|(i, _)| i)
                    {
                        closed.push(backend.runs.remove(oldest));
                    }
                }
                backend.runs.push(Run {
                    shape,
                    count: 1,
                    total_ms: duration_ms,
                    first_start: start,
                    first_time: time,
                    last_time: time,
                    path: path.clone(),
                    first_line: line,
                    first_values: values,
                    values_vary: false,
                });
            }
        }
        for run in closed {
            self.close(pid, run);
        }
        if self.by_activity.len() > 4 * self.backends.len() + 1024 {
            self.compact();
        }
    }

    /// Rebuilds the activity queue from the backends' last activity, oldest first.
    fn compact(&mut self) {
        let mut live: Vec<(DateTime<FixedOffset>, u32)> = self
            .backends
            .iter()
            .filter_map(|(pid, b)| b.last_time.map(|t| (t, *pid)))
            .collect();
        live.sort_unstable();
        self.by_activity = live.into();
    }

    /// Closes the runs of backends idle for longer than the gap and forgets those backends;
    /// then, while [`MAX_BACKENDS`] are still tracked, the least recently active ones.
    fn sweep(&mut self, now: DateTime<FixedOffset>) {
        let gap = self.rules.max_gap_ms;
        while let Some(&(last, pid)) = self.by_activity.front() {
            let stale = self
                .backends
                .get(&pid)
                .is_none_or(|b| b.last_time != Some(last));
            if stale {
                self.by_activity.pop_front();
                continue;
            }
            let idle = ms_between(last, now) > gap;
            if !idle && self.backends.len() < MAX_BACKENDS {
                break;
            }
            self.by_activity.pop_front();
            if let Some(b) = self.backends.remove(&pid) {
                for run in b.runs {
                    self.close(pid, run);
                }
            }
        }
    }

    fn close(&mut self, pid: u32, run: Run) {
        let span_ms = ms_between(run.first_start, run.last_time).max(0.0);
        let coarse_time = run.first_time.timestamp_subsec_nanos() == 0
            && run.last_time.timestamp_subsec_nanos() == 0;
        let qualifies = run.count >= u64::from(self.rules.min_repeats)
            && run.values_vary
            && (coarse_time || span_ms.max(run.total_ms) >= self.rules.min_total_ms);
        if qualifies {
            self.found.push(Burst {
                pid,
                shape: run.shape,
                count: run.count,
                span_ms,
                total_ms: run.total_ms,
                first_time: run.first_time,
                last_time: run.last_time,
                path: run.path,
                first_line: run.first_line,
                coarse_time,
            });
        }
    }

    /// Closes every open run (end of input) and returns the bursts, in time order.
    pub fn finish(mut self) -> Vec<Burst> {
        let backends = std::mem::take(&mut self.backends);
        for (pid, b) in backends {
            for run in b.runs {
                self.close(pid, run);
            }
        }
        self.found
            .sort_by(|a, b| a.first_time.cmp(&b.first_time).then(a.pid.cmp(&b.pid)));
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<FixedOffset> {
        FixedOffset::east_opt(0)
            .unwrap()
            .timestamp_millis_opt(1_700_000_000_000 + ms)
            .unwrap()
    }

    fn rules() -> BurstRules {
        BurstRules {
            min_repeats: 5,
            min_total_ms: 50.0,
            max_gap_ms: 1000.0,
        }
    }

    #[test]
    fn a_loop_of_varying_lookups_is_a_burst_and_a_poller_is_not() {
        let path: Arc<str> = Arc::from("pg.log");
        let mut d = BurstDetector::new(rules());
        for i in 0..20 {
            // backend 1: lookups of different ids, 5 ms apart, interleaved with another shape
            d.observe(1, 7, i, 0.1, at(i as i64 * 5), &path, 10 + i);
            d.observe(1, 8, 100 + i, 0.1, at(i as i64 * 5 + 1), &path, 100 + i);
            // backend 2: the same query with the same values, 10 ms apart
            d.observe(2, 9, 42, 0.1, at(i as i64 * 10), &path, 200 + i);
        }
        // backend 1 goes quiet for longer than the gap, then runs shape 7 again 3 times
        for i in 0..3 {
            d.observe(1, 7, i, 0.1, at(5000 + i as i64), &path, 300 + i);
        }
        let found = d.finish();
        let shapes: Vec<(u32, usize, u64)> =
            found.iter().map(|b| (b.pid, b.shape, b.count)).collect();
        assert_eq!(shapes, vec![(1, 7, 20), (1, 8, 20)]);
        assert!(found[0].span_ms >= 95.0, "{}", found[0].span_ms);
        assert_eq!(found[0].first_line, 10);
    }

    #[test]
    fn short_or_quick_runs_are_not_bursts() {
        let path: Arc<str> = Arc::from("pg.log");
        let mut d = BurstDetector::new(rules());
        for i in 0..4 {
            d.observe(1, 7, i, 30.0, at(i as i64 * 40), &path, i);
        }
        for i in 0..10 {
            d.observe(2, 7, i, 0.1, at(i as i64), &path, i);
        }
        assert!(d.finish().is_empty());
    }
}
