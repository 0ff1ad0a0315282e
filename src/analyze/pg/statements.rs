//! Aggregation per fingerprint: count, total, max (with where it happened) and a p95 from a
//! log-bucket histogram, in memory bounded by the number of distinct shapes (capped at
//! [`MAX_FINGERPRINTS`]; runs beyond are counted as overflow), never by the number of runs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use super::fingerprint::{MAX_NORMALIZED, fingerprint_id};
use crate::report::{Source, StatementSummary};

/// Distinct statement shapes tracked at most.
pub const MAX_FINGERPRINTS: usize = 100_000;
/// SQL kept as an example per shape.
pub const MAX_EXAMPLE: usize = 2048;

/// Buckets of 2^(1/4) from 1 µs: 128 of them reach about 6 days.
const BUCKETS: usize = 128;
const PER_OCTAVE: f64 = 4.0;

/// Counts of durations in log-spaced buckets; a quantile is read within one bucket (±9%).
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Box<[u32; BUCKETS]>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: Box::new([0; BUCKETS]),
        }
    }
}

impl LatencyHistogram {
    fn bucket(ms: f64) -> usize {
        let us = ms * 1000.0;
        if us.is_nan() || us <= 1.0 {
            return 0;
        }
        ((us.log2() * PER_OCTAVE) as usize).min(BUCKETS - 1)
    }

    pub fn record(&mut self, ms: f64) {
        let b = Self::bucket(ms);
        self.counts[b] = self.counts[b].saturating_add(1);
    }

    /// The `q` quantile (0..=1), as the bucket's geometric middle.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(2f64.powf((b as f64 + 0.5) / PER_OCTAVE) / 1000.0);
            }
        }
        None
    }
}

/// Where and when one run happened.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub pid: Option<u32>,
    pub time: Option<DateTime<FixedOffset>>,
    pub source: Source,
}

/// One statement shape's runs.
pub struct StatementStats {
    pub hash: u64,
    pub normalized: String,
    pub count: u64,
    pub total_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// The slowest run's SQL (capped) and place.
    pub max_query: String,
    pub max_at: Occurrence,
    /// Only allocated from the second run on (most shapes in a log run once or a few times,
    /// and the exact values then need no histogram).
    histogram: Option<LatencyHistogram>,
    first_ms: f64,
}

impl StatementStats {
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms / self.count as f64
        }
    }

    pub fn p95_ms(&self) -> f64 {
        let estimate = match &self.histogram {
            Some(h) => h.quantile(0.95).unwrap_or(self.max_ms),
            None => self.first_ms,
        };
        estimate.clamp(self.min_ms, self.max_ms)
    }

    pub fn fingerprint(&self) -> String {
        fingerprint_id(self.hash)
    }

    pub fn summary(&self) -> StatementSummary {
        StatementSummary {
            fingerprint: self.fingerprint(),
            normalized: self.normalized.clone(),
            example: self.max_query.clone(),
            count: self.count,
            total_ms: round3(self.total_ms),
            mean_ms: round3(self.mean_ms()),
            max_ms: round3(self.max_ms),
            p95_ms: round3(self.p95_ms()),
            max_pid: self.max_at.pid,
            max_time: self.max_at.time,
            max_source: self.max_at.source.clone(),
        }
    }
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A hasher for keys that are already good hashes.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

pub type IdentityMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// Every shape seen, by fingerprint.
#[derive(Default)]
pub struct StatementTable {
    stats: Vec<StatementStats>,
    index: IdentityMap<u32>,
    /// Runs not aggregated because the table was full.
    pub overflow: u64,
}

impl StatementTable {
    /// Adds one run; returns the shape's index (None when the table is full and it is new).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        hash: u64,
        normalized: &str,
        query: &str,
        duration_ms: f64,
        pid: Option<u32>,
        time: Option<DateTime<FixedOffset>>,
        path: &Arc<str>,
        line: u64,
    ) -> Option<usize> {
        let i = self.find_or_insert(hash, normalized, duration_ms, query, pid, time, path, line)?;
        let s = &mut self.stats[i];
        if s.count > 0 {
            s.histogram
                .get_or_insert_with(|| {
                    let mut h = LatencyHistogram::default();
                    h.record(s.first_ms);
                    h
                })
                .record(duration_ms);
            if duration_ms > s.max_ms {
                s.max_ms = duration_ms;
                s.max_query.clear();
                s.max_query.push_str(cap(query, MAX_EXAMPLE));
                s.max_at = Occurrence {
                    pid,
                    time,
                    source: Source {
                        path: path.clone(),
                        line,
                    },
                };
            }
            s.min_ms = s.min_ms.min(duration_ms);
        }
        s.count += 1;
        s.total_ms += duration_ms;
        Some(i)
    }

    #[allow(clippy::too_many_arguments)]
    fn find_or_insert(
        &mut self,
        hash: u64,
        normalized: &str,
        duration_ms: f64,
        query: &str,
        pid: Option<u32>,
        time: Option<DateTime<FixedOffset>>,
        path: &Arc<str>,
        line: u64,
    ) -> Option<usize> {
        // Open addressing on the hash: a collision (same hash, other text) probes the next key.
        let mut key = hash;
        loop {
            match self.index.get(&key) {
                Some(&i) if self.stats[i as usize].normalized == normalized => {
                    return Some(i as usize);
                }
                Some(_) => key = key.wrapping_add(1),
                None => break,
            }
        }
        if self.stats.len() >= MAX_FINGERPRINTS {
            self.overflow += 1;
            return None;
        }
        let i = self.stats.len();
        self.index.insert(key, i as u32);
        self.stats.push(StatementStats {
            hash,
            normalized: cap(normalized, MAX_NORMALIZED).to_string(),
            count: 0,
            total_ms: 0.0,
            min_ms: duration_ms,
            max_ms: duration_ms,
            max_query: cap(query, MAX_EXAMPLE).to_string(),
            max_at: Occurrence {
                pid,
                time,
                source: Source {
                    path: path.clone(),
                    line,
                },
            },
            histogram: None,
            first_ms: duration_ms,
        });
        Some(i)
    }

    pub fn get(&self, i: usize) -> &StatementStats {
        &self.stats[i]
    }

    pub fn len(&self) -> usize {
        self.stats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stats.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &StatementStats> {
        self.stats.iter()
    }

    /// The union of the top `n` by total time, count, max and p95, by total time first.
    pub fn top(&self, n: usize) -> Vec<&StatementStats> {
        let mut chosen: Vec<usize> = Vec::new();
        let orders: [&dyn Fn(&StatementStats) -> f64; 4] =
            [&|s| s.total_ms, &|s| s.count as f64, &|s| s.max_ms, &|s| {
                s.p95_ms()
            }];
        for key in orders {
            let mut idx: Vec<usize> = (0..self.stats.len()).collect();
            idx.sort_by(|&a, &b| {
                key(&self.stats[b])
                    .total_cmp(&key(&self.stats[a]))
                    .then(self.stats[a].normalized.cmp(&self.stats[b].normalized))
            });
            for i in idx.into_iter().take(n) {
                if !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
        }
        let mut out: Vec<&StatementStats> = chosen.iter().map(|&i| &self.stats[i]).collect();
        out.sort_by(|a, b| {
            b.total_ms
                .total_cmp(&a.total_ms)
                .then(a.normalized.cmp(&b.normalized))
        });
        out
    }
}

pub use crate::parse::cap;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_within_a_bucket() {
        let mut h = LatencyHistogram::default();
        for i in 1..=1000 {
            h.record(i as f64);
        }
        let p95 = h.quantile(0.95).unwrap();
        assert!((p95 - 950.0).abs() / 950.0 < 0.12, "{p95}");
        assert!(LatencyHistogram::default().quantile(0.5).is_none());
    }

    #[test]
    fn aggregates_per_fingerprint_and_caps() {
        let path: Arc<str> = Arc::from("x.log");
        let mut t = StatementTable::default();
        for (i, ms) in [5.0, 1.0, 9.0].into_iter().enumerate() {
            t.record(
                1,
                "select ?",
                &format!("select {i}"),
                ms,
                Some(7),
                None,
                &path,
                i as u64 + 1,
            );
        }
        t.record(2, "select 2", "select 2", 3.0, None, None, &path, 9);
        assert_eq!(t.len(), 2);
        let s = t.get(0);
        assert_eq!(
            (s.count, s.total_ms, s.min_ms, s.max_ms),
            (3, 15.0, 1.0, 9.0)
        );
        assert_eq!(s.max_query, "select 2");
        assert_eq!(s.max_at.source.line, 3);
        assert!(s.p95_ms() <= 9.0 && s.p95_ms() >= 1.0);
        // same hash, other text: kept apart
        t.record(1, "select other", "x", 1.0, None, None, &path, 10);
        assert_eq!(t.len(), 3);
        let top = t.top(1);
        assert_eq!(top[0].normalized, "select ?");
    }
}
