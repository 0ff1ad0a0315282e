//! The HTML renderer: one self-contained page — its style inline, its charts inline SVG, no
//! script, font or image, and a Content-Security-Policy that forbids the browser any request —
//! so it can be attached to a ticket or opened from a CI artifact anywhere. The summary, the
//! timeline charts, the ranked findings with evidence, fix and ruled-out causes (folded with
//! `<details>`, which needs no JavaScript), the workers of a live run, each endpoint's latency
//! against the timeout and what clients got (access logs), the top statements per fingerprint
//! and the N+1 bursts, the notes and the inputs.

use std::io::{self, Write};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::analyze::buckets::{Series, TimeBuckets};
use crate::analyze::endpoints::EndpointSummary;
use crate::render::svg::{self, PANELS};
use crate::render::{command_name, headline, ms};
use crate::report::{Finding, Report, Severity, WorkerState};

/// The page's policy: nothing may be fetched; only the inline stylesheet applies.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Evidence lines shown per finding (JSON has them all).
const EVIDENCE_ROWS: usize = 50;

const STYLE: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa;
  --critical: #a40e26; --high: #cf222e; --medium: #9a6700; --low: #0969da; --info: #59636e; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; padding: 24px; max-width: 1100px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.headline { color: var(--muted); margin: 0 0 16px; }
code, pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--panel); padding: 8px 12px; overflow-x: auto; border-radius: 6px;
  white-space: pre; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--panel); } td.num { text-align: right; white-space: nowrap; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; background: var(--panel); }
.card b { font-size: 18px; display: block; }
.sev { font-weight: 600; text-transform: uppercase; font-size: 11px; padding: 1px 6px;
  border-radius: 10px; color: #fff; white-space: nowrap; }
.sev-critical { background: var(--critical); } .sev-high { background: var(--high); }
.sev-medium { background: var(--medium); } .sev-low { background: var(--low); }
.sev-info { background: var(--info); }
.cause { font-family: ui-monospace, monospace; font-weight: 600; }
details.finding { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 0 12px; }
details.finding > summary { cursor: pointer; padding: 8px 0; font-weight: 600; }
details.finding[open] > summary { border-bottom: 1px solid var(--line); margin-bottom: 8px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 8px 0; }
dt { color: var(--muted); } dd { margin: 0; }
svg.timeline { width: 100%; height: auto; background: var(--bg); }
svg .panel-name { font: 600 12px system-ui, sans-serif; fill: var(--fg); }
svg .panel-total, svg .tick { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg .baseline { stroke: var(--line); stroke-width: 1; }
svg .top-finding { fill: #fff8c5; }
.s-timeout { fill: #cf222e; } .s-kill { fill: #82071e; } .s-lock { fill: #8250df; }
.s-deadlock { fill: #3e1f79; } .s-slow { fill: #0969da; } .s-proxy { fill: #bf8700; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; color: var(--muted); font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
i.s-timeout { background: #cf222e; } i.s-kill { background: #82071e; } i.s-lock { background: #8250df; }
i.s-deadlock { background: #3e1f79; } i.s-slow { background: #0969da; } i.s-proxy { background: #bf8700; }
i.top-finding { background: #fff8c5; border: 1px solid #d4a72c; }
svg.endpoints { width: 100%; height: auto; }
svg .endpoint-name { font: 12px ui-monospace, monospace; fill: var(--fg); }
.lat-max { fill: #ddf4ff; } .lat-p95 { fill: #54aeff; } .lat-p50 { fill: #0550ae; }
svg .timeout { stroke: #cf222e; stroke-width: 2; }
svg .two-thirds { stroke: #9a6700; stroke-width: 1; stroke-dasharray: 4 3; }
svg .timeout-label { fill: #cf222e; }
.note { border-left: 4px solid var(--medium); background: var(--panel); padding: 6px 12px; margin: 8px 0; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"#;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(page(report).into_string().as_bytes())?;
    out.write_all(b"\n")
}

/// The whole page.
pub fn page(report: &Report) -> Markup {
    let command = command_name(report);
    let timeline = TimeBuckets::from_report(report);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(CSP);
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content={ "wtdiag " (report.wtdiag_version) };
                title { "wtdiag " (command) " report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "wtdiag " (command) ": " (verdict(report)) }
                    p.headline { (headline(report)) }
                    (cards(report))
                }
                @if let Some(t) = &timeline {
                    section #timeline { (timeline_section(t)) }
                }
                section #findings { (findings_section(&report.findings)) }
                @if let Some(workers) = &report.workers {
                    section #workers { (workers_section(workers)) }
                }
                @if let Some(endpoints) = report.endpoints.as_deref().filter(|e| !e.is_empty()) {
                    section #endpoints { (endpoints_section(report, endpoints)) }
                }
                @if let Some(pg) = &report.pg {
                    @if !pg.statements.is_empty() || !pg.bursts.is_empty() {
                        section #statements { (statements_section(pg)) }
                    }
                }
                @if !report.warnings.is_empty() {
                    section #notes {
                        h2 { "Notes" }
                        @for w in &report.warnings {
                            div.note {
                                p { strong { code { (w.code) } } ": " (w.message) }
                                p { em { "What to do: " } (w.advice) }
                            }
                        }
                    }
                }
                section #inputs { (inputs_section(report)) }
                footer {
                    "wtdiag " (report.wtdiag_version) " · the same report as JSON: "
                    code { "--format json" }
                }
            }
        }
    }
}

fn verdict(report: &Report) -> String {
    match report.worst_severity() {
        None => "no findings".to_string(),
        Some(worst) => format!(
            "{} finding{}, worst {worst}",
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" }
        ),
    }
}

/// The counts of the summary, one card each.
fn cards(report: &Report) -> Markup {
    html! {
        div.cards {
            @for (kind, n) in report.summary.iter().filter(|(_, n)| **n > 0) {
                div.card { b { (n) } (kind.replace('_', " ")) }
            }
        }
    }
}

fn timeline_section(t: &TimeBuckets) -> Markup {
    let present = t.present();
    html! {
        h2 { "Timeline" }
        p {
            "Events per " (t.size_label) ", "
            @if let (Some(first), Some(end)) = (t.buckets.first(), t.end()) {
                (first.start.format("%Y-%m-%d %H:%M:%S")) " to "
                (end.format("%Y-%m-%d %H:%M:%S %:z")) "."
            }
            @if let Some((rank, cause)) = t.top_finding {
                @if t.buckets.iter().any(|b| b.top_finding) {
                    " Shaded: the events of finding #" (rank) " (" (cause) ")."
                }
            }
            @if t.untimed > 0 { " " (t.untimed) " event(s) without a time are not drawn." }
            @if t.unlisted > 0 {
                " " (t.unlisted) " worker timeout(s) and kill(s) beyond the listed events are not                   drawn (the findings count them)."
            }
            @if t.omitted > 0 {
                " " (t.omitted) " database or proxy event(s) beyond the first "
                (crate::report::MAX_SIDE_EVENTS) " are not drawn."
            }
        }
        (svg::timeline_chart(t))
        div.legend {
            @for s in Series::ALL {
                @if present.contains(&s) || PANELS.iter().any(|p| p.series.contains(&s)) {
                    span { i class=(svg::series_class(s)) {} (s.description()) ": " (t.total(s)) }
                }
            }
            @if t.buckets.iter().any(|b| b.top_finding) {
                span { i.top-finding {} "the top finding" }
            }
        }
    }
}

fn severity_badge(s: Severity) -> Markup {
    html! { span class={ "sev sev-" (s.name()) } { (s.name()) } }
}

fn findings_section(findings: &[Finding]) -> Markup {
    html! {
        h2 { "Root causes, most important first" }
        @if findings.is_empty() {
            p { "No findings: nothing in the inputs points to a cause of worker timeouts." }
        } @else {
            table.findings {
                thead { tr { th { "#" } th { "Severity" } th { "Cause" } th { "Count" }
                    th { "Confidence" } th { "Finding" } } }
                tbody {
                    @for f in findings {
                        tr {
                            td.num { a href={ "#finding-" (f.rank) } { (f.rank) } }
                            td { (severity_badge(f.severity)) }
                            td.cause { (f.cause) }
                            td.num { (f.count) }
                            td { (f.confidence) }
                            td { (f.title) }
                        }
                    }
                }
            }
            @for f in findings { (finding(f)) }
        }
    }
}

fn finding(f: &Finding) -> Markup {
    html! {
        details.finding id={ "finding-" (f.rank) } open[f.rank == 1] {
            summary {
                "#" (f.rank) " " (severity_badge(f.severity)) " "
                span.cause { (f.cause) } ": " (f.title)
            }
            dl {
                @if !f.reason.is_empty() {
                    dt { "Why" } dd { (f.reason) " (" (f.confidence) " confidence)" }
                }
                @if let (Some(a), Some(z)) = (f.first_seen, f.last_seen) {
                    dt { "When" }
                    dd { (a.to_rfc3339()) @if a != z { " to " (z.to_rfc3339()) } }
                }
                @if let Some(r) = &f.request { dt { "Request" } dd { code { (r) } } }
                @if !f.pids.is_empty() {
                    dt { "Processes" }
                    dd { (f.pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")) }
                }
                dt { "Fix" } dd { (f.advice) }
            }
            @if !f.ruled_out.is_empty() {
                details.ruled-out {
                    summary { "Ruled out: "
                        (f.ruled_out.iter().map(|r| r.cause.name()).collect::<Vec<_>>().join(", ")) }
                    ul { @for r in &f.ruled_out { li { span.cause { (r.cause) } ": " (r.reason) } } }
                }
            }
            @if !f.evidence.is_empty() {
                details.evidence open {
                    summary { "Evidence (" (f.evidence.len()) " line"
                        @if f.evidence.len() != 1 { "s" } ")" }
                    pre {
                        @for e in f.evidence.iter().take(EVIDENCE_ROWS) {
                            (e.path) @if let Some(n) = e.line { ":" (n) } "  " (e.text) "\n"
                        }
                        @if f.evidence.len() > EVIDENCE_ROWS {
                            "... " (f.evidence.len() - EVIDENCE_ROWS) " more (--format json lists all)\n"
                        }
                    }
                }
            }
        }
    }
}

fn workers_section(workers: &[WorkerState]) -> Markup {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.0}"));
    let mib = |v: Option<u64>| {
        v.map_or("-".to_string(), |b| {
            format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
        })
    };
    html! {
        h2 { "Workers" }
        table {
            thead { tr { th { "PID" } th { "State" } th { "Stuck for" } th { "Cause" }
                th { "Frame" } th { "Seconds left" } th { "RSS" } } }
            tbody {
                @for w in workers {
                    tr {
                        td.num { (w.pid) }
                        td { (w.state) @if let Some(c) = &w.worker_class { " (" (c) ")" } }
                        td.num { (format!("{:.1} s", w.stuck_seconds)) }
                        td.cause { (w.cause.map_or("-", |c| c.name())) }
                        td { code { (w.frame.as_deref().unwrap_or("-")) } }
                        td.num { (opt(w.seconds_left)) }
                        td.num { (mib(w.rss_bytes)) }
                    }
                    @for th in &w.threads {
                        tr {
                            td { "└ " (th.thread_name.clone().unwrap_or_else(|| format!("thread {:#x}", th.thread_id))) }
                            td { (th.state) }
                            td.num { (format!("{:.1} s", th.stuck_seconds)) }
                            td.cause { (th.cause.map_or("-", |c| c.name())) }
                            td { code { (th.frame.as_deref().unwrap_or("-")) } }
                            td.num { (opt(th.seconds_left)) }
                            td.num { "-" }
                        }
                    }
                }
            }
        }
    }
}

fn endpoints_section(report: &Report, endpoints: &[EndpointSummary]) -> Markup {
    let s = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} s"));
    html! {
        h2 { "Endpoints, slowest first" }
        p { "Latency per endpoint from the " (endpoints[0].source.name())
            @if let Some(t) = report.endpoint_timeout_s {
                ", against Gunicorn's timeout of " (format!("{t:.0}")) " s"
                " (dark: p50, medium: p95, light: max; the red line is the timeout, the dashed                    one two thirds of it)"
            } "." }
        @if let Some(t) = report.endpoint_timeout_s {
            (svg::endpoints_chart(endpoints, t))
        }
        @if let Some(c) = &report.client_impact {
            p.impact { "Clients: " (c.errors_5xx) " of " (c.requests) " request(s) answered 5xx, per the "
                (c.source.name())
                @if !c.by_status.is_empty() {
                    " (" (c.by_status.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")) ")"
                } "." }
        }
        table.endpoints {
            thead { tr { th { "Request" } th { "Requests" } th { "p50" } th { "p95" } th { "Max" }
                th { "≥ ⅔ timeout" } th { "≥ timeout" } th { "5xx" } } }
            tbody {
                @for e in endpoints {
                    tr {
                        td { code { (e.request) } }
                        td.num { (e.requests) }
                        td.num { (s(e.p50_s)) }
                        td.num { (s(e.p95_s)) }
                        td.num { (s(Some(e.max_s))) }
                        td.num { (e.over_two_thirds_timeout) }
                        td.num { (e.over_timeout) }
                        td.num { (e.errors_5xx) }
                    }
                }
            }
        }
    }
}

fn statements_section(pg: &crate::report::PgSummary) -> Markup {
    html! {
        @if !pg.statements.is_empty() {
            h2 { "Top statements by total time (per fingerprint)" }
            p { (pg.fingerprints) " distinct statement shapes." }
            table.statements {
                thead { tr { th { "Count" } th { "Total" } th { "Mean" } th { "p95" } th { "Max" }
                    th { "Statement" } } }
                tbody {
                    @for s in &pg.statements {
                        tr {
                            td.num { (s.count) }
                            td.num { (ms(s.total_ms)) }
                            td.num { (ms(s.mean_ms)) }
                            td.num { (ms(s.p95_ms)) }
                            td.num { (ms(s.max_ms)) }
                            td { code { (s.normalized.chars().take(300).collect::<String>()) } }
                        }
                    }
                }
            }
        }
        @if !pg.bursts.is_empty() {
            h2 { "N+1 bursts" }
            table.bursts {
                thead { tr { th { "Backend" } th { "Runs" } th { "Span" } th { "Server time" }
                    th { "Statement" } } }
                tbody {
                    @for b in &pg.bursts {
                        tr {
                            td.num { (b.pid) }
                            td.num { (b.count) }
                            td.num { (ms(b.span_ms)) }
                            td.num { (ms(b.total_ms)) }
                            td { code { (b.normalized.chars().take(300).collect::<String>()) } }
                        }
                    }
                }
            }
        }
    }
}

fn inputs_section(report: &Report) -> Markup {
    html! {
        h2 { "Inputs" }
        @if report.inputs.is_empty() {
            p { "Live processes, sampled with py-spy." }
        } @else {
            table.inputs {
                thead { tr { th { "Input" } th { "Format" } th { "Lines" } th { "Skipped" } } }
                tbody {
                    @for i in &report.inputs {
                        tr {
                            td { code { (i.path) } }
                            td { (i.format) @if i.compressed { " (gzip)" } }
                            td.num { (i.lines) }
                            td.num { (i.skipped_lines) }
                        }
                    }
                }
            }
            @for i in &report.inputs {
                @for s in &i.skipped {
                    p { "Skipped in " code { (i.path) } ": " (s.count) " line(s), " (s.reason)
                        " (first at line " (s.first_line) ")" }
                }
            }
        }
    }
}
