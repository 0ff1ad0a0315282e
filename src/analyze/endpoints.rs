//! Request timings from access logs and slow-request app logs, per endpoint, streaming: what
//! clients saw (5xx per status and path), each endpoint's latency against Gunicorn's timeout
//! (the next to time out), and requests that ran past the timeout without being timed out (a
//! gthread or async worker: Gunicorn never times a request out there).
//!
//! Memory: one fixed-size histogram per endpoint, at most [`MAX_ENDPOINTS`] endpoints per
//! source (later ones are counted, not kept), and a few evidence lines per endpoint.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::report::Evidence;

/// Slow requests (two thirds of the timeout or more) whose times are kept, to tell one slow
/// endpoint from everything slowing down at once.
const MAX_SLOW_TIMES: usize = 100_000;

/// Endpoints kept per source; requests to others are counted in `dropped_requests`.
pub const MAX_ENDPOINTS: usize = 5_000;
/// Evidence lines kept per endpoint (its slowest requests).
const EVIDENCE_PER_ENDPOINT: usize = 3;
/// Histogram buckets: 5% wide from 1 ms, up to about 2 days.
const BUCKET_RATIO: f64 = 1.05;
const BUCKETS: usize = 390;

/// FNV-1a: endpoint keys are short and come from the inputs one per line, so a cheap hash pays
/// (SipHash's flooding resistance buys nothing against a log read once; the endpoint cap
/// bounds the table anyway).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Where request timings came from, best first for what clients saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingSource {
    /// A reverse proxy's access log (nginx with `$upstream_status`): what clients saw.
    ProxyAccess,
    /// An access log in the combined shape that does not say whose it is.
    Access,
    /// Gunicorn's access log (`%(p)s` pids): requests its workers finished.
    GunicornAccess,
    /// A slow-request middleware's lines: only the slow requests that finished.
    AppLog,
}

impl TimingSource {
    pub fn name(self) -> &'static str {
        match self {
            TimingSource::ProxyAccess => "proxy access log",
            TimingSource::Access => "access log",
            TimingSource::GunicornAccess => "Gunicorn access log",
            TimingSource::AppLog => "slow-request app log",
        }
    }
}

/// One finished request (or one the proxy gave up on).
pub struct Request<'a> {
    pub time: DateTime<FixedOffset>,
    pub method: Option<&'a str>,
    pub path: &'a str,
    pub status: Option<u16>,
    pub seconds: Option<f64>,
    pub evidence: &'a dyn Fn() -> Evidence,
}

#[derive(Debug, Clone)]
struct Stats {
    requests: u64,
    timed: u64,
    hist: Box<[u32; BUCKETS]>,
    max: f64,
    over_two_thirds: u64,
    over_timeout: u64,
    by_status_5xx: BTreeMap<u16, u64>,
    /// The slowest requests: (seconds, time, evidence).
    slowest: Vec<(f64, DateTime<FixedOffset>, Evidence)>,
    /// Requests at or above any threshold asked later are counted from the histogram.
    first: DateTime<FixedOffset>,
    last: DateTime<FixedOffset>,
}

impl Stats {
    fn new(t: DateTime<FixedOffset>) -> Stats {
        Stats {
            requests: 0,
            timed: 0,
            hist: Box::new([0; BUCKETS]),
            max: 0.0,
            over_two_thirds: 0,
            over_timeout: 0,
            by_status_5xx: BTreeMap::new(),
            slowest: Vec::new(),
            first: t,
            last: t,
        }
    }

    fn bucket(seconds: f64) -> usize {
        let ms = (seconds * 1000.0).max(1.0);
        ((ms.ln() / BUCKET_RATIO.ln()) as usize).min(BUCKETS - 1)
    }

    /// The upper bound of a bucket, in seconds.
    fn bucket_top(b: usize) -> f64 {
        BUCKET_RATIO.powi(b as i32 + 1) / 1000.0
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        if self.timed == 0 {
            return None;
        }
        let want = ((self.timed as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (b, n) in self.hist.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= want {
                return Some(Stats::bucket_top(b).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Per-source, per-endpoint request statistics.
pub struct Endpoints {
    /// Gunicorn's timeout, in seconds.
    timeout_s: f64,
    /// Keyed by `METHOD path` (`path` alone when the source has no method).
    by_source: FnvMap<TimingSource, FnvMap<String, Stats>>,
    pub dropped_requests: u64,
    /// The key being looked up, reused so that a known endpoint costs no allocation.
    key: String,
    /// Requests and 5xx answers per source, every request counted (the endpoint cap aside).
    totals: FnvMap<TimingSource, (u64, BTreeMap<u16, u64>)>,
    /// (when it ended, source, endpoint) of requests that took two thirds of the timeout or more.
    slow: Vec<(DateTime<FixedOffset>, TimingSource, String)>,
}

impl Endpoints {
    pub fn new(timeout_s: f64) -> Endpoints {
        Endpoints {
            timeout_s,
            by_source: FnvMap::default(),
            dropped_requests: 0,
            key: String::new(),
            totals: FnvMap::default(),
            slow: Vec::new(),
        }
    }

    pub fn push(&mut self, source: TimingSource, r: &Request<'_>) {
        let total = self.totals.entry(source).or_default();
        total.0 += 1;
        if let Some(status) = r.status.filter(|s| *s >= 500) {
            *total.1.entry(status).or_default() += 1;
        }
        let map = self.by_source.entry(source).or_default();
        self.key.clear();
        if let Some(m) = r.method {
            self.key.push_str(m);
            self.key.push(' ');
        }
        self.key.push_str(r.path);
        let len = map.len();
        let stats = match map.get_mut(self.key.as_str()) {
            Some(s) => s,
            None if len < MAX_ENDPOINTS => map
                .entry(self.key.clone())
                .or_insert_with(|| Stats::new(r.time)),
            None => {
                self.dropped_requests += 1;
                return;
            }
        };
        stats.requests += 1;
        stats.first = stats.first.min(r.time);
        stats.last = stats.last.max(r.time);
        if let Some(status) = r.status.filter(|s| *s >= 500) {
            *stats.by_status_5xx.entry(status).or_default() += 1;
        }
        if let Some(s) = r.seconds {
            stats.timed += 1;
            stats.hist[Stats::bucket(s)] += 1;
            stats.max = stats.max.max(s);
            let slow = s >= self.timeout_s * 2.0 / 3.0;
            stats.over_two_thirds += u64::from(slow);
            if slow && self.slow.len() < MAX_SLOW_TIMES {
                self.slow.push((r.time, source, self.key.clone()));
            }
            stats.over_timeout += u64::from(s >= self.timeout_s);
            let slower = stats.slowest.len() < EVIDENCE_PER_ENDPOINT
                || stats.slowest.iter().any(|(x, _, _)| *x < s);
            if slower {
                stats.slowest.push((s, r.time, (r.evidence)()));
                stats
                    .slowest
                    .sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
                stats.slowest.truncate(EVIDENCE_PER_ENDPOINT);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// The source whose timings describe latency best: the one with the most timed requests,
    /// what clients saw first on ties.
    fn latency_source(&self) -> Option<TimingSource> {
        self.by_source
            .iter()
            .map(|(s, m)| (*s, m.values().map(|x| x.timed).sum::<u64>()))
            .filter(|(_, timed)| *timed > 0)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(s, _)| s)
    }

    /// The source of client impact: the proxy's log when given, else any access log.
    fn impact_source(&self) -> Option<TimingSource> {
        [
            TimingSource::ProxyAccess,
            TimingSource::Access,
            TimingSource::GunicornAccess,
        ]
        .into_iter()
        .find(|s| self.by_source.contains_key(s))
    }

    /// Each endpoint's latency, slowest p95 first, from the best source.
    pub fn summary(&self, top: usize) -> Vec<EndpointSummary> {
        let Some(source) = self.latency_source() else {
            return Vec::new();
        };
        let mut out: Vec<EndpointSummary> = self.by_source[&source]
            .iter()
            .filter(|(_, s)| s.timed > 0)
            .map(|(request, s)| EndpointSummary {
                request: request.clone(),
                source,
                requests: s.requests,
                timed: s.timed,
                p50_s: round3(s.quantile(0.5)),
                p95_s: round3(s.quantile(0.95)),
                max_s: round3(Some(s.max)).unwrap_or(0.0),
                over_two_thirds_timeout: s.over_two_thirds,
                over_timeout: s.over_timeout,
                errors_5xx: s.by_status_5xx.values().sum(),
                first_seen: s.first,
                last_seen: s.last,
                slowest: s.slowest.iter().map(|(_, _, e)| e.clone()).collect(),
            })
            .collect();
        out.sort_by(|a, b| {
            b.p95_s
                .partial_cmp(&a.p95_s)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.request.cmp(&b.request))
        });
        out.truncate(top);
        out
    }

    /// The endpoints of the latency source with slow requests within `window` of `t`.
    pub fn slow_near(&self, t: DateTime<FixedOffset>, window: chrono::Duration) -> Vec<&str> {
        let Some(source) = self.latency_source() else {
            return Vec::new();
        };
        let mut out: Vec<&str> = self
            .slow
            .iter()
            .filter(|(when, s, _)| *s == source && *when >= t - window && *when <= t + window)
            .map(|(_, _, k)| k.as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// What clients saw: 5xx answers per status and path.
    pub fn client_impact(&self) -> Option<ClientImpact> {
        let source = self.impact_source()?;
        let map = &self.by_source[&source];
        let (requests, statuses) = &self.totals[&source];
        let by_status: BTreeMap<String, u64> =
            statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut paths: Vec<PathErrors> = Vec::new();
        for (request, s) in map {
            let errors: u64 = s.by_status_5xx.values().sum();
            if errors > 0 {
                paths.push(PathErrors {
                    request: request.clone(),
                    errors_5xx: errors,
                    by_status: s
                        .by_status_5xx
                        .iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect(),
                });
            }
        }
        paths.sort_by(|a, b| {
            b.errors_5xx
                .cmp(&a.errors_5xx)
                .then_with(|| a.request.cmp(&b.request))
        });
        paths.truncate(20);
        Some(ClientImpact {
            source,
            requests: *requests,
            errors_5xx: by_status.values().sum(),
            by_status,
            paths,
        })
    }
}

fn round3(x: Option<f64>) -> Option<f64> {
    x.map(|v| (v * 1000.0).round() / 1000.0)
}

/// One endpoint's latency (`endpoints[]` in JSON).
#[derive(Debug, Clone, Serialize)]
pub struct EndpointSummary {
    /// `GET /path`, or `/path` when the source does not give the method.
    pub request: String,
    pub source: TimingSource,
    pub requests: u64,
    /// Requests with a time (all of them for a slow-request log: only slow ones are logged).
    pub timed: u64,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub max_s: f64,
    /// Requests that took two thirds of Gunicorn's timeout or more.
    pub over_two_thirds_timeout: u64,
    /// Requests that took Gunicorn's timeout or more.
    pub over_timeout: u64,
    pub errors_5xx: u64,
    pub first_seen: DateTime<FixedOffset>,
    pub last_seen: DateTime<FixedOffset>,
    #[serde(skip)]
    pub slowest: Vec<Evidence>,
}

/// The 5xx answers of one path.
#[derive(Debug, Clone, Serialize)]
pub struct PathErrors {
    pub request: String,
    pub errors_5xx: u64,
    pub by_status: BTreeMap<String, u64>,
}

/// What clients saw (`client_impact` in JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ClientImpact {
    pub source: TimingSource,
    pub requests: u64,
    pub errors_5xx: u64,
    pub by_status: BTreeMap<String, u64>,
    /// The paths with 5xx answers, most first (at most 20).
    pub paths: Vec<PathErrors>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<FixedOffset> {
        DateTime::from_timestamp(1_700_000_000 + s, 0)
            .unwrap()
            .fixed_offset()
    }

    #[test]
    fn quantiles_and_thresholds_from_the_histogram() {
        let mut e = Endpoints::new(30.0);
        let ev = || Evidence {
            path: "a".into(),
            line: Some(1),
            text: "x".into(),
        };
        for i in 0..100 {
            let secs = if i < 90 { 0.1 } else { 25.0 };
            e.push(
                TimingSource::ProxyAccess,
                &Request {
                    time: t(i),
                    method: Some("GET"),
                    path: "/x",
                    status: Some(if i == 99 { 502 } else { 200 }),
                    seconds: Some(secs),
                    evidence: &ev,
                },
            );
        }
        let s = &e.summary(10)[0];
        assert_eq!(s.request, "GET /x");
        assert!((s.p50_s.unwrap() - 0.1).abs() < 0.01, "{:?}", s.p50_s);
        assert!((s.p95_s.unwrap() - 25.0).abs() < 0.01, "{:?}", s.p95_s);
        assert_eq!(s.over_two_thirds_timeout, 10);
        assert_eq!(s.over_timeout, 0);
        assert_eq!(s.slowest.len(), 3);
        let impact = e.client_impact().unwrap();
        assert_eq!(impact.errors_5xx, 1);
        assert_eq!(impact.by_status["502"], 1);
    }

    #[test]
    fn slow_requests_near_a_time_by_endpoint() {
        let mut e = Endpoints::new(3.0);
        let ev = || Evidence {
            path: "a".into(),
            line: Some(1),
            text: "x".into(),
        };
        for (i, path, secs) in [
            (0, "/a", 2.5),
            (1, "/b", 2.9),
            (2, "/c", 0.1),
            (30, "/d", 2.5),
        ] {
            e.push(
                TimingSource::ProxyAccess,
                &Request {
                    time: t(i),
                    method: Some("GET"),
                    path,
                    status: Some(200),
                    seconds: Some(secs),
                    evidence: &ev,
                },
            );
        }
        let near = e.slow_near(t(1), chrono::Duration::seconds(3));
        assert_eq!(near, vec!["GET /a", "GET /b"]);
    }
}
