//! The HTML report's charts. The timeline: one panel per family of events (the workers'
//! timeouts and kills, the database's lock waits and deadlocks, slow statements, 5xx answers),
//! all on one time axis, a bar per bucket and series, with the buckets of the top finding
//! shaded. The endpoints: each endpoint's p50, p95 and max latency against Gunicorn's timeout.
//! Plain SVG elements with `<title>` tooltips: no script, no font, no external reference.

use maud::{Markup, html};

use crate::analyze::buckets::{Series, TimeBuckets};
use crate::analyze::endpoints::EndpointSummary;

/// The drawing's width and each panel's height, in SVG user units.
pub const WIDTH: f64 = 960.0;
pub const PANEL_HEIGHT: f64 = 84.0;
/// Left margin for the panel names, bottom margin for the time labels.
const LEFT: f64 = 150.0;
const RIGHT: f64 = 12.0;
const AXIS: f64 = 28.0;
const GAP: f64 = 10.0;
/// Time labels drawn on the axis, at most.
const MAX_TICKS: usize = 8;

/// One panel: a name and the series it draws side by side in a bucket.
pub struct Panel {
    pub name: &'static str,
    pub series: &'static [Series],
}

pub const PANELS: [Panel; 4] = [
    Panel {
        name: "Worker timeouts, kills",
        series: &[Series::WorkerTimeouts, Series::WorkerKills],
    },
    Panel {
        name: "Database waits",
        series: &[Series::LockWaits, Series::Deadlocks],
    },
    Panel {
        name: "Slow statements",
        series: &[Series::SlowStatements],
    },
    Panel {
        name: "5xx answers",
        series: &[Series::ProxyErrors],
    },
];

/// The CSS class of a series' bars (colors are in the page's stylesheet).
pub fn series_class(s: Series) -> &'static str {
    match s {
        Series::WorkerTimeouts => "s-timeout",
        Series::WorkerKills => "s-kill",
        Series::LockWaits => "s-lock",
        Series::SlowStatements => "s-slow",
        Series::Deadlocks => "s-deadlock",
        Series::ProxyErrors => "s-proxy",
    }
}

/// A bar of the chart, before it is drawn: kept apart so tests can read the geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub series: Series,
    pub bucket: usize,
    pub count: u64,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The bars of `panel`, scaled to the panel's busiest bucket, within a panel whose top is `top`.
pub fn bars(t: &TimeBuckets, panel: &Panel, top: f64) -> Vec<Bar> {
    let n = t.buckets.len().max(1) as f64;
    let slot = (WIDTH - LEFT - RIGHT) / n;
    let per = panel.series.len() as f64;
    let bar_width = (slot * 0.8 / per).max(1.0);
    let peak = panel
        .series
        .iter()
        .map(|s| t.peak(*s))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut out = Vec::new();
    for (i, b) in t.buckets.iter().enumerate() {
        for (k, s) in panel.series.iter().enumerate() {
            let count = b.count(*s);
            if count == 0 {
                continue;
            }
            let height = (count as f64 / peak * (PANEL_HEIGHT - 14.0)).max(2.0);
            out.push(Bar {
                series: *s,
                bucket: i,
                count,
                x: LEFT + i as f64 * slot + slot * 0.1 + k as f64 * bar_width,
                y: top + PANEL_HEIGHT - height,
                width: bar_width,
                height,
            });
        }
    }
    out
}

/// The whole chart.
pub fn timeline_chart(t: &TimeBuckets) -> Markup {
    let n = t.buckets.len().max(1);
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    let height = PANELS.len() as f64 * (PANEL_HEIGHT + GAP) + AXIS;
    let plot_bottom = PANELS.len() as f64 * (PANEL_HEIGHT + GAP);
    let time_format = if t.size_seconds < 60 {
        "%H:%M:%S"
    } else if t.size_seconds < 86_400 {
        "%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    let step = n.div_ceil(MAX_TICKS).max(1);
    let f = |v: f64| format!("{v:.1}");
    html! {
        svg class="timeline" role="img"
            viewBox={ "0 0 " (f(WIDTH)) " " (f(height)) }
            aria-label={ "Events per " (t.size_label) " bucket" } {
            title { "Events per " (t.size_label) " bucket" }
            // The top finding's buckets, shaded across every panel.
            @for (i, b) in t.buckets.iter().enumerate() {
                @if b.top_finding {
                    rect class="top-finding" x=(f(LEFT + i as f64 * slot)) y="0"
                        width=(f(slot)) height=(f(plot_bottom)) {
                        title { "events of the top finding" }
                    }
                }
            }
            @for (p, panel) in PANELS.iter().enumerate() {
                @let top = p as f64 * (PANEL_HEIGHT + GAP);
                @let peak = panel.series.iter().map(|s| t.peak(*s)).max().unwrap_or(0);
                @let total: u64 = panel.series.iter().map(|s| t.total(*s)).sum();
                g class="panel" data-panel=(panel.name) {
                    text class="panel-name" x="4" y=(f(top + PANEL_HEIGHT / 2.0)) { (panel.name) }
                    text class="panel-total" x="4" y=(f(top + PANEL_HEIGHT / 2.0 + 16.0)) {
                        (total) " in all" @if peak > 0 { ", peak " (peak) }
                    }
                    line class="baseline" x1=(f(LEFT)) x2=(f(WIDTH - RIGHT))
                        y1=(f(top + PANEL_HEIGHT)) y2=(f(top + PANEL_HEIGHT)) {}
                    @for bar in bars(t, panel, top) {
                        rect class=(series_class(bar.series)) x=(f(bar.x)) y=(f(bar.y))
                            width=(f(bar.width)) height=(f(bar.height)) {
                            title {
                                (t.buckets[bar.bucket].start.format("%Y-%m-%d %H:%M:%S %:z"))
                                ": " (bar.count) " " (bar.series.noun())
                            }
                        }
                    }
                }
            }
            @for (i, b) in t.buckets.iter().enumerate().step_by(step) {
                text class="tick" x=(f(LEFT + i as f64 * slot)) y=(f(plot_bottom + 16.0)) {
                    (b.start.format(time_format))
                }
            }
        }
    }
}

/// Endpoints drawn in the latency chart, at most.
pub const MAX_ENDPOINT_ROWS: usize = 12;
const ROW: f64 = 26.0;
const LABEL: f64 = 300.0;

/// One endpoint's row of the latency chart: where its p50, p95 and max bars end, in user units
/// from the plot's left edge.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    pub request: String,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: f64,
}

/// The latency chart's scale: seconds to user units, so that the timeout and the slowest
/// request both fit.
pub fn latency_scale(endpoints: &[EndpointSummary], timeout_s: f64) -> f64 {
    let slowest = endpoints
        .iter()
        .take(MAX_ENDPOINT_ROWS)
        .map(|e| e.max_s)
        .fold(timeout_s, f64::max);
    (WIDTH - LABEL - RIGHT - 40.0) / (slowest * 1.05).max(0.001)
}

/// The rows of the latency chart.
pub fn latency_rows(endpoints: &[EndpointSummary], timeout_s: f64) -> Vec<LatencyRow> {
    let k = latency_scale(endpoints, timeout_s);
    endpoints
        .iter()
        .take(MAX_ENDPOINT_ROWS)
        .map(|e| LatencyRow {
            request: e.request.chars().take(44).collect(),
            p50: e.p50_s.map(|v| v * k),
            p95: e.p95_s.map(|v| v * k),
            max: e.max_s * k,
        })
        .collect()
}

/// Each endpoint's latency (p50 dark, p95 medium, max light) against the timeout (a red line)
/// and two thirds of it (a dashed line): the endpoints next to time out stand out.
pub fn endpoints_chart(endpoints: &[EndpointSummary], timeout_s: f64) -> Markup {
    let k = latency_scale(endpoints, timeout_s);
    let rows = latency_rows(endpoints, timeout_s);
    let height = rows.len() as f64 * ROW + 40.0;
    let f = |v: f64| format!("{v:.1}");
    let s = |v: f64| format!("{v:.2} s");
    let x_timeout = LABEL + timeout_s * k;
    let x_two_thirds = LABEL + timeout_s * 2.0 / 3.0 * k;
    html! {
        svg class="endpoints" role="img" viewBox={ "0 0 " (f(WIDTH)) " " (f(height)) }
            aria-label="Latency per endpoint against the timeout" {
            title { "Latency per endpoint against the timeout" }
            @for (i, (r, e)) in rows.iter().zip(endpoints).enumerate() {
                @let y = 8.0 + i as f64 * ROW;
                g class="endpoint" {
                    text class="endpoint-name" x="4" y=(f(y + 14.0)) { (r.request) }
                    rect class="lat-max" x=(f(LABEL)) y=(f(y + 2.0)) width=(f(r.max.max(1.0)))
                        height=(f(ROW - 8.0)) {
                        title { (e.request) ": max " (s(e.max_s)) ", " (e.requests) " request(s)" }
                    }
                    @if let (Some(p95), Some(v)) = (r.p95, e.p95_s) {
                        rect class="lat-p95" x=(f(LABEL)) y=(f(y + 5.0)) width=(f(p95.max(1.0)))
                            height=(f(ROW - 14.0)) { title { (e.request) ": p95 " (s(v)) } }
                    }
                    @if let (Some(p50), Some(v)) = (r.p50, e.p50_s) {
                        rect class="lat-p50" x=(f(LABEL)) y=(f(y + 8.0)) width=(f(p50.max(1.0)))
                            height=(f(ROW - 20.0)) { title { (e.request) ": p50 " (s(v)) } }
                    }
                }
            }
            line class="two-thirds" x1=(f(x_two_thirds)) x2=(f(x_two_thirds)) y1="2"
                y2=(f(height - 24.0)) {}
            line class="timeout" x1=(f(x_timeout)) x2=(f(x_timeout)) y1="2" y2=(f(height - 24.0)) {}
            text class="tick" x=(f(x_two_thirds)) y=(f(height - 8.0)) text-anchor="middle" {
                "⅔ · " (s(timeout_s * 2.0 / 3.0))
            }
            text class="tick timeout-label" x=(f(x_timeout)) y=(f(height - 8.0)) text-anchor="middle" {
                "timeout " (s(timeout_s))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CommandName, Report, SideEvent, SideKind, Source};

    fn report() -> Report {
        let mut r = Report::new(CommandName::Logs);
        for (t, kind) in [
            ("2026-01-01T10:00:00Z", SideKind::LockWait),
            ("2026-01-01T10:00:00Z", SideKind::LockWait),
            ("2026-01-01T10:00:03Z", SideKind::LockWait),
            ("2026-01-01T10:00:03Z", SideKind::ProxyError(502)),
        ] {
            r.side_events.push(SideEvent {
                time: chrono::DateTime::parse_from_rfc3339(t).unwrap(),
                kind,
                source: Source {
                    path: "x".into(),
                    line: 1,
                },
            });
        }
        r
    }

    #[test]
    fn bars_are_scaled_to_the_panel_peak() {
        let t = TimeBuckets::from_report(&report()).unwrap();
        let bars = bars(&t, &PANELS[1], 0.0);
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].bucket, bars[0].count), (0, 2));
        assert_eq!((bars[1].bucket, bars[1].count), (3, 1));
        assert!((bars[0].height - 2.0 * bars[1].height).abs() < 1e-9);
        assert!((bars[0].y + bars[0].height - PANEL_HEIGHT).abs() < 1e-9);
        assert!(bars[1].x > bars[0].x);
    }

    #[test]
    fn the_chart_is_plain_svg() {
        let t = TimeBuckets::from_report(&report()).unwrap();
        let svg = timeline_chart(&t).into_string();
        assert!(svg.starts_with("<svg class=\"timeline\""), "{svg}");
        assert_eq!(svg.matches("<g class=\"panel\"").count(), 4);
        assert_eq!(svg.matches("class=\"s-lock\"").count(), 2);
        assert_eq!(svg.matches("class=\"s-proxy\"").count(), 1);
        assert!(!svg.contains("<script") && !svg.contains("href"));
    }
}
