//! The table renderer: what an on-call engineer reads first. A one-line summary, the ranked
//! root causes with their evidence and fix, live workers when sampled, then what the inputs
//! could not show and what was skipped.

use std::borrow::Cow;
use std::io::{self, Write};

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};

use crate::analyze::buckets::TimeBuckets;
use crate::analyze::endpoints::{ClientImpact, EndpointSummary};
use crate::render::color::{Palette, Style, cause_style, severity_style};
use crate::render::{Options, headline, ms, neutralize_controls};
use crate::report::{Finding, Report, StatementSummary, WorkerState};

/// Other people's text (log lines, paths, names from a live target), made safe to print: its
/// control characters are shown, not obeyed (see `neutralize_controls`).
fn safe(text: &str) -> Cow<'_, str> {
    neutralize_controls(text, true)
}

/// Evidence lines shown per finding in the table (JSON has them all).
const EVIDENCE_ROWS: usize = 6;

pub fn render(report: &Report, options: Options, out: &mut dyn Write) -> io::Result<()> {
    let width = options.width;
    let palette = Palette {
        enabled: options.color,
    };
    let color = options.color;
    writeln!(
        out,
        "{}",
        palette.paint(&safe(&headline(report)), Style::BOLD)
    )?;
    if let Some(workers) = &report.workers {
        writeln!(out)?;
        writeln!(out, "{}", palette.paint("Workers", Style::BOLD))?;
        writeln!(out, "{}", workers_table(workers, width, color))?;
    }
    if let Some(timeline) = TimeBuckets::from_report(report) {
        writeln!(out)?;
        super::timeline::draw(&timeline, options.unicode, palette, out)?;
    }
    writeln!(out)?;
    if report.findings.is_empty() {
        writeln!(
            out,
            "No findings: nothing in the inputs points to a cause of worker timeouts."
        )?;
    } else if let Some(groups) = by_origin(&report.findings) {
        // A fleet: each host's or pod's findings together, under its name, ranks kept.
        let heading = format!(
            "Root causes by origin ({} origins), most important first",
            groups.len()
        );
        writeln!(out, "{}", palette.paint(&heading, Style::BOLD))?;
        for (origin, findings) in groups {
            writeln!(out)?;
            // Origin names come from the logs: shown escaped, like any text others wrote.
            let name = format!("== {}", safe(&origin));
            writeln!(out, "{}", palette.paint(&name, Style::BOLD))?;
            let owned: Vec<Finding> = findings.iter().map(|f| (*f).clone()).collect();
            writeln!(out, "{}", findings_table(&owned, width, color))?;
            for f in findings {
                writeln!(out)?;
                finding_details(f, palette, out)?;
            }
        }
    } else {
        writeln!(
            out,
            "{}",
            palette.paint("Root causes, most important first", Style::BOLD)
        )?;
        writeln!(out, "{}", findings_table(&report.findings, width, color))?;
        for f in &report.findings {
            writeln!(out)?;
            finding_details(f, palette, out)?;
        }
    }
    if let Some(pg) = &report.pg
        && !pg.statements.is_empty()
    {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            palette.paint(
                "Top statements by total time (per fingerprint)",
                Style::BOLD
            )
        )?;
        writeln!(out, "{}", statements_table(&pg.statements, width, color))?;
    }
    if let Some(impact) = &report.client_impact {
        writeln!(out)?;
        writeln!(out, "{}", safe(&client_impact_line(impact)))?;
    }
    if let Some(endpoints) = report.endpoints.as_deref().filter(|e| !e.is_empty()) {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            palette.paint(
                &format!(
                    "Endpoints, slowest first (from the {})",
                    endpoints[0].source.name()
                ),
                Style::BOLD
            )
        )?;
        writeln!(out, "{}", endpoints_table(endpoints, width, color))?;
    }
    if let Some(pg) = &report.pg
        && !pg.errors_by_sqlstate_class.is_empty()
    {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            sqlstate_classes_line(&pg.errors_by_sqlstate_class)
        )?;
    }
    for w in &report.warnings {
        writeln!(out)?;
        writeln!(
            out,
            "{} {}",
            palette.paint(&format!("note [{}]:", w.code), Style::YELLOW),
            safe(&w.message)
        )?;
        writeln!(out, "  what to do: {}", safe(&w.advice))?;
    }
    for input in &report.inputs {
        for s in &input.skipped {
            writeln!(
                out,
                "skipped: {}: {} line(s), {} (first at line {})",
                safe(&input.path),
                s.count,
                safe(&s.reason),
                s.first_line
            )?;
        }
    }
    Ok(())
}

/// `Errors by SQLSTATE class: 23 Integrity Constraint Violation 3 (2 inferred from the
/// wording), unknown 1`.
fn sqlstate_classes_line(classes: &[crate::report::SqlstateClassCount]) -> String {
    let parts: Vec<String> = classes
        .iter()
        .map(|c| {
            let mut s = match &c.name {
                Some(name) => format!("{} {name} {}", c.class, c.errors),
                None => format!("{} {}", c.class, c.errors),
            };
            if c.inferred > 0 {
                s.push_str(&format!(" ({} inferred from the wording)", c.inferred));
            }
            s
        })
        .collect();
    format!("Errors by SQLSTATE class: {}", parts.join(", "))
}

/// Findings grouped by origin, in the order of each origin's best-ranked finding, when they
/// come from more than one; findings of no single origin (endpoints, the database) go last.
fn by_origin(findings: &[Finding]) -> Option<Vec<(String, Vec<&Finding>)>> {
    let mut groups: Vec<(String, Vec<&Finding>)> = Vec::new();
    for f in findings {
        let name = match f.origins.as_slice() {
            [one] => one.clone(),
            [] => "all origins".to_string(),
            many => many.join(", "),
        };
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(f),
            None => groups.push((name, vec![f])),
        }
    }
    if groups.iter().filter(|(n, _)| n != "all origins").count() < 2 {
        return None;
    }
    if let Some(at) = groups.iter().position(|(n, _)| n == "all origins") {
        let rest = groups.remove(at);
        groups.push(rest);
    }
    Some(groups)
}

/// A table that wraps to `width` columns, or never wraps (output to a file or a pipe, where
/// long lines stay greppable).
fn new_table(width: Option<u16>, color: bool) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    // comfy-table colors cells only when told to; never on its own guess of the terminal.
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    match width {
        Some(w) => t
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(w),
        None => t.set_content_arrangement(ContentArrangement::Disabled),
    };
    t
}

/// One row per finding: what it is and how much it explains.
fn findings_table(findings: &[Finding], width: Option<u16>, color: bool) -> Table {
    let mut t = new_table(width, color);
    t.set_header(vec!["#", "Severity", "Cause", "Count", "Finding"]);
    for f in findings {
        t.add_row(vec![
            Cell::new(f.rank),
            styled(Cell::new(f.severity), severity_style(f.severity)),
            styled(Cell::new(f.cause), cause_style(f.cause)),
            Cell::new(f.count),
            Cell::new(safe(&f.title)),
        ]);
    }
    t
}

/// A row of other people's text, made safe to print.
fn clean(row: Vec<String>) -> Vec<String> {
    row.into_iter().map(|c| safe(&c).into_owned()).collect()
}

/// A table cell in one of the palette's styles.
fn styled(cell: Cell, style: Style) -> Cell {
    let (bold, dim, color) = match style {
        Style::RED_BOLD => (true, false, Some(Color::Red)),
        Style::RED => (false, false, Some(Color::Red)),
        Style::YELLOW => (false, false, Some(Color::Yellow)),
        Style::CYAN => (false, false, Some(Color::Cyan)),
        Style::MAGENTA => (false, false, Some(Color::Magenta)),
        Style::BLUE => (false, false, Some(Color::Blue)),
        Style::GREEN => (false, false, Some(Color::Green)),
        Style::BOLD => (true, false, None),
        _ => (false, true, None),
    };
    let mut cell = cell;
    if let Some(c) = color {
        cell = cell.fg(c);
    }
    if bold {
        cell = cell.add_attribute(Attribute::Bold);
    }
    if dim {
        cell = cell.add_attribute(Attribute::Dim);
    }
    cell
}

/// Each finding's why, evidence and fix, as plain lines (no wrapping, so they stay greppable
/// and copyable: file:line first).
fn finding_details(f: &Finding, palette: Palette, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{} {} ({}): {}",
        palette.paint(&format!("#{}", f.rank), Style::BOLD),
        palette.paint(f.cause.name(), cause_style(f.cause)),
        palette.paint(f.severity.name(), severity_style(f.severity)),
        palette.paint(&safe(&f.title), Style::BOLD)
    )?;
    if !f.reason.is_empty() {
        writeln!(
            out,
            "  why ({} confidence): {}",
            f.confidence,
            safe(&f.reason)
        )?;
        // Causes sharing one reason are listed together.
        let mut shown: Vec<(&str, Vec<String>)> = Vec::new();
        for r in &f.ruled_out {
            match shown.iter_mut().find(|(reason, _)| *reason == r.reason) {
                Some((_, causes)) => causes.push(r.cause.to_string()),
                None => shown.push((&r.reason, vec![r.cause.to_string()])),
            }
        }
        for (reason, causes) in shown {
            writeln!(
                out,
                "  {} {}: {}",
                palette.paint("ruled out:", Style::DIM),
                causes.join(", "),
                safe(reason)
            )?;
        }
    }
    if !f.evidence.is_empty() {
        writeln!(out, "  evidence:")?;
    }
    for e in f.evidence.iter().take(EVIDENCE_ROWS) {
        match e.line {
            Some(line) => writeln!(out, "    {}:{line}  {}", safe(&e.path), safe(&e.text))?,
            None => writeln!(out, "    {}  {}", safe(&e.path), safe(&e.text))?,
        }
    }
    if f.evidence.len() > EVIDENCE_ROWS {
        writeln!(
            out,
            "    ... {} more (--format json lists all)",
            f.evidence.len() - EVIDENCE_ROWS
        )?;
    }
    writeln!(
        out,
        "  {} {}",
        palette.paint("fix:", Style::GREEN),
        safe(&f.advice)
    )
}

fn workers_table(workers: &[WorkerState], width: Option<u16>, color: bool) -> Table {
    let mut t = new_table(width, color);
    t.set_header(vec![
        "PID",
        "State",
        "Stuck for",
        "Cause",
        "Frame",
        "Seconds left",
        "RSS",
        "Swap",
    ]);
    let dash = || "-".to_string();
    for w in workers {
        let gthread = w.worker_class.as_deref() == Some("gthread");
        let mut state = w.state.clone();
        if let (Some(busy), Some(total)) = (w.threads_busy, w.threads_total) {
            state.push_str(&format!(" ({busy}/{total} threads)"));
        }
        if w.loop_blocked == Some(true) {
            state.push_str(" (loop blocked)");
        }
        // Under gthread the master never kills for a hung request: say so rather than "-".
        let never = |busy: bool| {
            if gthread && busy {
                "never".to_string()
            } else {
                dash()
            }
        };
        t.add_row(clean(vec![
            w.pid.to_string(),
            state,
            format!("{:.1}s", w.stuck_seconds),
            w.cause.map(|c| c.to_string()).unwrap_or_else(dash),
            w.frame.clone().unwrap_or_else(dash),
            w.seconds_left
                .map(|s| format!("{s:.0}"))
                .unwrap_or_else(|| never(w.state != "idle")),
            w.rss_bytes.map(mib).unwrap_or_else(dash),
            w.swap_bytes.map(mib).unwrap_or_else(dash),
        ]));
        if !gthread {
            continue;
        }
        for th in &w.threads {
            t.add_row(clean(vec![
                format!(
                    "  └ {}",
                    th.thread_name
                        .clone()
                        .unwrap_or_else(|| format!("thread {:#x}", th.thread_id))
                ),
                th.state.clone(),
                format!("{:.1}s", th.stuck_seconds),
                th.cause.map(|c| c.to_string()).unwrap_or_else(dash),
                th.frame.clone().unwrap_or_else(dash),
                th.seconds_left
                    .map(|s| format!("{s:.0}"))
                    .unwrap_or_else(|| never(true)),
                dash(),
                dash(),
            ]));
        }
    }
    t
}

/// `wtdiag pg`: the statement shapes that took the most time.
fn statements_table(statements: &[StatementSummary], width: Option<u16>, color: bool) -> Table {
    let mut t = new_table(width, color);
    t.set_header(vec!["Count", "Total", "Mean", "p95", "Max", "Statement"]);
    for s in statements {
        t.add_row(vec![
            s.count.to_string(),
            ms(s.total_ms),
            ms(s.mean_ms),
            ms(s.p95_ms),
            ms(s.max_ms),
            safe(&s.normalized.chars().take(100).collect::<String>()).into_owned(),
        ]);
    }
    t
}

fn client_impact_line(c: &ClientImpact) -> String {
    let statuses: Vec<String> = c
        .by_status
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let mut s = format!(
        "Clients: {} of {} request(s) answered 5xx, per the {}",
        c.errors_5xx,
        c.requests,
        c.source.name()
    );
    if !statuses.is_empty() {
        s.push_str(&format!(" ({})", statuses.join(", ")));
    }
    let paths: Vec<String> = c
        .paths
        .iter()
        .take(5)
        .map(|p| format!("{} {}", p.request, p.errors_5xx))
        .collect();
    if !paths.is_empty() {
        s.push_str(&format!("; by path: {}", paths.join(", ")));
    }
    s
}

fn endpoints_table(endpoints: &[EndpointSummary], width: Option<u16>, color: bool) -> Table {
    let mut t = new_table(width, color);
    t.set_header(vec![
        "Request",
        "Requests",
        "p50",
        "p95",
        "Max",
        ">2/3 timeout",
        "5xx",
    ]);
    let s = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} s"));
    for e in endpoints.iter().take(10) {
        t.add_row(vec![
            safe(&e.request.chars().take(80).collect::<String>()).into_owned(),
            e.requests.to_string(),
            s(e.p50_s),
            s(e.p95_s),
            s(Some(e.max_s)),
            e.over_two_thirds_timeout.to_string(),
            e.errors_5xx.to_string(),
        ]);
    }
    t
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}
