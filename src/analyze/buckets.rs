//! The report's events counted per time bucket, for the timeline pictures (the table's block
//! and the HTML charts). A bucket's size is chosen from the span of the events — from a second
//! to a day — so that the picture has at most [`MAX_BUCKETS`] rows. Knows the report's events,
//! nothing about how they are drawn.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset};

use crate::analyze::proxy_join::ProxyLine;
use crate::parse::nginx::UpstreamEnd;
use crate::parse::pg::{LockState, PgEvent, PgEventKind};
use crate::report::{Cause, Event, EventDetail, Finding, Report, SideEvent, SideKind, Source};

/// A statement this slow or slower is drawn (as `wtdiag pg` lists them by default).
pub const SLOW_STATEMENT_MS: f64 = 1000.0;

/// The timeline's side event for a PostgreSQL message read by `logs --pg-log`, if it is one the
/// timeline counts and has a time.
pub fn pg_side_event(path: &Arc<str>, e: &PgEvent<'_>) -> Option<SideEvent> {
    let kind = match &e.kind {
        PgEventKind::Statement { duration_ms, .. } if *duration_ms >= SLOW_STATEMENT_MS => {
            SideKind::SlowStatement
        }
        PgEventKind::LockWait {
            state: LockState::Waiting,
            ..
        } => SideKind::LockWait,
        PgEventKind::Deadlock { .. } => SideKind::Deadlock,
        _ => return None,
    };
    Some(SideEvent {
        time: e.time?,
        kind,
        source: Source {
            path: Arc::clone(path),
            line: e.line,
        },
    })
}

/// The timeline's side event for a request line (an access log's, a router's) that answered a
/// 5xx `status`.
pub fn answer_side_event(
    path: &str,
    line: u64,
    time: DateTime<FixedOffset>,
    status: u16,
) -> SideEvent {
    SideEvent {
        time,
        kind: SideKind::ProxyError(status),
        source: Source {
            path: path.into(),
            line,
        },
    }
}

/// The timeline's side event for a proxy's upstream line: nginx answers 502 when the worker
/// closed the connection (it died), 504 when it stopped waiting.
pub fn proxy_side_event(p: &ProxyLine) -> Option<SideEvent> {
    let status = match p.up.end {
        UpstreamEnd::Closed => 502,
        UpstreamEnd::TimedOut => 504,
    };
    Some(SideEvent {
        time: p.up.time?,
        kind: SideKind::ProxyError(status),
        source: Source {
            path: p.path.as_str().into(),
            line: p.line,
        },
    })
}

/// Most buckets a timeline has.
pub const MAX_BUCKETS: i64 = 30;

/// Bucket sizes, in seconds, and how each is written.
const SIZES: [(i64, &str); 22] = [
    (1, "1s"),
    (2, "2s"),
    (5, "5s"),
    (10, "10s"),
    (15, "15s"),
    (30, "30s"),
    (60, "1m"),
    (120, "2m"),
    (300, "5m"),
    (600, "10m"),
    (900, "15m"),
    (1800, "30m"),
    (3600, "1h"),
    (7200, "2h"),
    (10800, "3h"),
    (21600, "6h"),
    (43200, "12h"),
    (86400, "1d"),
    (604800, "7d"),
    (2_592_000, "30d"),
    (7_776_000, "90d"),
    (31_536_000, "365d"),
];

/// What a timeline counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Series {
    WorkerTimeouts,
    WorkerKills,
    LockWaits,
    SlowStatements,
    Deadlocks,
    ProxyErrors,
}

impl Series {
    pub const ALL: [Series; 6] = [
        Series::WorkerTimeouts,
        Series::WorkerKills,
        Series::LockWaits,
        Series::SlowStatements,
        Series::Deadlocks,
        Series::ProxyErrors,
    ];

    /// A short column heading.
    pub fn label(self) -> &'static str {
        match self {
            Series::WorkerTimeouts => "timeouts",
            Series::WorkerKills => "kills",
            Series::LockWaits => "lock waits",
            Series::SlowStatements => "slow stmts",
            Series::Deadlocks => "deadlocks",
            Series::ProxyErrors => "5xx",
        }
    }

    /// What one event is called, in the plural: `3 lock waits`.
    pub fn noun(self) -> &'static str {
        match self {
            Series::WorkerTimeouts => "timeouts",
            Series::WorkerKills => "kills",
            Series::LockWaits => "lock waits",
            Series::SlowStatements => "slow statements",
            Series::Deadlocks => "deadlocks",
            Series::ProxyErrors => "5xx answers",
        }
    }

    /// The words for a legend.
    pub fn description(self) -> &'static str {
        match self {
            Series::WorkerTimeouts => "worker timeouts (WORKER TIMEOUT)",
            Series::WorkerKills => "workers killed by a signal",
            Series::LockWaits => "lock waits begun (still waiting for ...)",
            Series::SlowStatements => "statements of 1 s or more",
            Series::Deadlocks => "deadlocks detected",
            Series::ProxyErrors => "5xx answered to clients (request lines, else nginx's 502/504)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The series of a listed event, if it is one the timeline counts.
    pub fn of_event(e: &Event) -> Option<Series> {
        match &e.detail {
            EventDetail::WorkerTimeout { .. } => Some(Series::WorkerTimeouts),
            EventDetail::WorkerKilled { .. } => Some(Series::WorkerKills),
            EventDetail::LockWait { state, .. } if state == "waiting" => Some(Series::LockWaits),
            EventDetail::Statement { .. } => Some(Series::SlowStatements),
            EventDetail::Deadlock { .. } => Some(Series::Deadlocks),
            _ => None,
        }
    }

    fn of_side(kind: SideKind) -> Series {
        match kind {
            SideKind::LockWait => Series::LockWaits,
            SideKind::SlowStatement => Series::SlowStatements,
            SideKind::Deadlock => Series::Deadlocks,
            SideKind::ProxyError(_) => Series::ProxyErrors,
        }
    }
}

/// Counts per series, indexed by [`Series`] order.
pub type Counts = [u64; 6];

/// One time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Its first second, in the offset of the first event.
    pub start: DateTime<FixedOffset>,
    pub counts: Counts,
    /// Events of the top finding fell in it.
    pub top_finding: bool,
}

impl Bucket {
    pub fn count(&self, s: Series) -> u64 {
        self.counts[s.index()]
    }
}

/// The events of one report, bucketed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBuckets {
    /// Seconds per bucket.
    pub size_seconds: i64,
    /// `1s`, `5m`, `1h`.
    pub size_label: &'static str,
    pub buckets: Vec<Bucket>,
    pub totals: Counts,
    /// Counted events without a time (not in any bucket).
    pub untimed: u64,
    /// Side events beyond the cap, not drawn.
    pub omitted: u64,
    /// Worker timeouts and kills the report counts (`summary`) but does not list (a log with
    /// more than the listing cap): not drawn.
    pub unlisted: u64,
    /// The top finding whose events are marked: its rank and cause.
    pub top_finding: Option<(usize, Cause)>,
}

impl TimeBuckets {
    /// The timeline of `report`, or None when none of its events has a time.
    pub fn from_report(report: &Report) -> Option<TimeBuckets> {
        let top = report.findings.iter().find(|f| f.rank == 1);
        let marker = top.map(TopFinding::new);
        let mut timed: Vec<(DateTime<FixedOffset>, Series, bool)> = Vec::new();
        let mut untimed = 0;
        for e in &report.events {
            let Some(series) = Series::of_event(e) else {
                continue;
            };
            let marked = marker
                .as_ref()
                .is_some_and(|m| m.covers(&e.source.path, e.source.line, e.pid, e.time));
            match e.time {
                Some(t) => timed.push((t, series, marked)),
                None => untimed += 1,
            }
        }
        for s in &report.side_events.list {
            let marked = marker
                .as_ref()
                .is_some_and(|m| m.cites(&s.source.path, s.source.line));
            timed.push((s.time, Series::of_side(s.kind), marked));
        }
        let first = timed.iter().map(|(t, ..)| *t).min()?;
        let last = timed.iter().map(|(t, ..)| *t).max()?;
        let offset = *first.offset();
        let span = (last - first).num_seconds() + 1;
        let (size, label) = SIZES
            .iter()
            .copied()
            .find(|(size, _)| (span + size - 1) / size < MAX_BUCKETS)
            .unwrap_or(SIZES[SIZES.len() - 1]);
        // Buckets start on multiples of their size in the events' own offset, so a 1m bucket
        // starts at :00 on the clock the log shows.
        let local = |t: DateTime<FixedOffset>| t.timestamp() + i64::from(offset.local_minus_utc());
        let origin = local(first).div_euclid(size) * size;
        let count = (local(last) - origin).div_euclid(size) + 1;
        let mut buckets: Vec<Bucket> = (0..count)
            .map(|i| Bucket {
                start: DateTime::from_timestamp(
                    origin + i * size - i64::from(offset.local_minus_utc()),
                    0,
                )
                .unwrap_or_default()
                .with_timezone(&offset),
                counts: [0; 6],
                top_finding: false,
            })
            .collect();
        // Timeouts and kills beyond the report's listing cap are in `summary` only.
        let listed = |series: Series| {
            report
                .events
                .iter()
                .filter(|e| Series::of_event(e) == Some(series))
                .count() as u64
        };
        let unlisted = [
            ("worker_timeout", Series::WorkerTimeouts),
            ("worker_killed", Series::WorkerKills),
        ]
        .into_iter()
        .map(|(kind, series)| {
            report
                .summary
                .get(kind)
                .map_or(0, |n| n.saturating_sub(listed(series)))
        })
        .sum();
        let mut totals = [0; 6];
        for (t, series, marked) in timed {
            let i = (local(t) - origin).div_euclid(size) as usize;
            let b = &mut buckets[i];
            b.counts[series.index()] += 1;
            b.top_finding |= marked;
            totals[series.index()] += 1;
        }
        // A finding whose events were not listed (a capped log) still marks its time span.
        if let Some(f) = top
            && !buckets.iter().any(|b| b.top_finding)
            && let (Some(a), Some(z)) = (f.first_seen, f.last_seen)
        {
            for b in &mut buckets {
                let end = b.start + Duration::seconds(size);
                b.top_finding = b.start <= z && end > a && b.counts.iter().any(|n| *n > 0);
            }
        }
        Some(TimeBuckets {
            size_seconds: size,
            size_label: label,
            buckets,
            totals,
            untimed,
            omitted: report.side_events.omitted,
            unlisted,
            top_finding: top.map(|f| (f.rank, f.cause)),
        })
    }

    /// The series with at least one event, in [`Series::ALL`] order.
    pub fn present(&self) -> Vec<Series> {
        Series::ALL
            .into_iter()
            .filter(|s| self.totals[s.index()] > 0)
            .collect()
    }

    pub fn total(&self, s: Series) -> u64 {
        self.totals[s.index()]
    }

    /// The largest count of `s` in one bucket.
    pub fn peak(&self, s: Series) -> u64 {
        self.buckets.iter().map(|b| b.count(s)).max().unwrap_or(0)
    }

    /// The end of the last bucket.
    pub fn end(&self) -> Option<DateTime<FixedOffset>> {
        self.buckets
            .last()
            .map(|b| b.start + Duration::seconds(self.size_seconds))
    }
}

/// Which events belong to the top finding: the lines it cites as evidence, and its workers'
/// or backends' events within its first and last time.
struct TopFinding<'a> {
    cited: HashSet<(&'a str, u64)>,
    pids: HashSet<u32>,
    first: Option<DateTime<FixedOffset>>,
    last: Option<DateTime<FixedOffset>>,
}

impl<'a> TopFinding<'a> {
    fn new(f: &'a Finding) -> TopFinding<'a> {
        TopFinding {
            cited: f
                .evidence
                .iter()
                .filter_map(|e| Some((e.path.as_str(), e.line?)))
                .collect(),
            pids: f.pids.iter().copied().collect(),
            first: f.first_seen,
            last: f.last_seen,
        }
    }

    fn cites(&self, path: &str, line: u64) -> bool {
        self.cited.contains(&(path, line))
    }

    fn covers(
        &self,
        path: &str,
        line: u64,
        pid: Option<u32>,
        time: Option<DateTime<FixedOffset>>,
    ) -> bool {
        if self.cites(path, line) {
            return true;
        }
        match (pid, time, self.first, self.last) {
            (Some(pid), Some(t), Some(a), Some(z)) => self.pids.contains(&pid) && a <= t && t <= z,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CommandName, SideEvent, Source};

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn side(t: &str, kind: SideKind) -> SideEvent {
        SideEvent {
            time: at(t),
            kind,
            source: Source {
                path: "x".into(),
                line: 1,
            },
        }
    }

    #[test]
    fn bucket_size_grows_with_the_span() {
        let mut r = Report::new(CommandName::Logs);
        r.side_events
            .list
            .push(side("2026-01-01T10:00:07+02:00", SideKind::LockWait));
        r.side_events
            .list
            .push(side("2026-01-01T10:00:20+02:00", SideKind::LockWait));
        let b = TimeBuckets::from_report(&r).unwrap();
        assert_eq!((b.size_seconds, b.buckets.len()), (1, 14));
        assert_eq!(b.buckets[0].start, at("2026-01-01T10:00:07+02:00"));
        r.side_events
            .list
            .push(side("2026-01-01T13:10:00+02:00", SideKind::ProxyError(502)));
        let b = TimeBuckets::from_report(&r).unwrap();
        assert_eq!((b.size_seconds, b.size_label), (600, "10m"));
        assert_eq!(b.buckets[0].start, at("2026-01-01T10:00:00+02:00"));
        assert_eq!(b.buckets.len(), 20);
        assert_eq!(b.buckets[0].count(Series::LockWaits), 2);
        assert_eq!(b.buckets[19].count(Series::ProxyErrors), 1);
        assert_eq!(b.present(), vec![Series::LockWaits, Series::ProxyErrors]);
        assert!(b.buckets.len() as i64 <= MAX_BUCKETS);
    }

    fn finding(evidence_line: Option<u64>, first: &str, last: &str) -> Finding {
        Finding {
            origins: Vec::new(),
            rank: 1,
            cause: Cause::LockWait,
            severity: crate::report::Severity::High,
            confidence: crate::report::Confidence::High,
            title: String::new(),
            count: 1,
            request: None,
            pids: vec![],
            first_seen: Some(at(first)),
            last_seen: Some(at(last)),
            reason: String::new(),
            evidence: evidence_line
                .map(|line| crate::report::Evidence {
                    path: "x".into(),
                    line: Some(line),
                    text: String::new(),
                })
                .into_iter()
                .collect(),
            advice: String::new(),
            ruled_out: vec![],
        }
    }

    #[test]
    fn the_top_finding_marks_the_buckets_of_its_cited_lines_else_its_span() {
        let mut r = Report::new(CommandName::Logs);
        for (t, line) in [("2026-01-01T10:00:00Z", 1), ("2026-01-01T10:00:05Z", 2)] {
            let mut e = side(t, SideKind::LockWait);
            e.source.line = line;
            r.side_events.list.push(e);
        }
        r.findings.push(finding(
            Some(2),
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:00:09Z",
        ));
        let b = TimeBuckets::from_report(&r).unwrap();
        let marked: Vec<bool> = b.buckets.iter().map(|b| b.top_finding).collect();
        assert_eq!(marked.iter().filter(|m| **m).count(), 1);
        assert!(marked[5]);
        assert_eq!(b.top_finding, Some((1, Cause::LockWait)));
        // Citing no line that is drawn: the buckets with events within its first and last time.
        r.findings[0] = finding(None, "2026-01-01T10:00:04Z", "2026-01-01T10:00:09Z");
        let b = TimeBuckets::from_report(&r).unwrap();
        assert!(!b.buckets[0].top_finding && b.buckets[5].top_finding);
        assert_eq!(b.buckets.iter().filter(|b| b.top_finding).count(), 1);
    }

    #[test]
    fn no_timed_events_no_timeline() {
        assert!(TimeBuckets::from_report(&Report::new(CommandName::Pg)).is_none());
    }
}
