//! The table renderer: what an on-call engineer reads first. A one-line summary, the ranked
//! root causes with their evidence and fix, live workers when sampled, then what the inputs
//! could not show and what was skipped.

use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets};

use crate::report::{Finding, Report, StatementSummary, WorkerState};

/// Evidence lines shown per finding in the table (JSON has them all).
const EVIDENCE_ROWS: usize = 6;

pub fn render(report: &Report, width: Option<u16>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", headline(report))?;
    if let Some(workers) = &report.workers {
        writeln!(out)?;
        writeln!(out, "Workers")?;
        writeln!(out, "{}", workers_table(workers, width))?;
    }
    writeln!(out)?;
    if report.findings.is_empty() {
        writeln!(
            out,
            "No findings: nothing in the inputs points to a cause of worker timeouts."
        )?;
    } else {
        writeln!(out, "Root causes, most important first")?;
        writeln!(out, "{}", findings_table(&report.findings, width))?;
        for f in &report.findings {
            writeln!(out)?;
            finding_details(f, out)?;
        }
    }
    if let Some(pg) = &report.pg
        && !pg.statements.is_empty()
    {
        writeln!(out)?;
        writeln!(out, "Top statements by total time (per fingerprint)")?;
        writeln!(out, "{}", statements_table(&pg.statements, width))?;
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
        writeln!(out, "note [{}]: {}", w.code, w.message)?;
        writeln!(out, "  what to do: {}", w.advice)?;
    }
    for input in &report.inputs {
        for s in &input.skipped {
            writeln!(
                out,
                "skipped: {}: {} line(s), {} (first at line {})",
                input.path, s.count, s.reason, s.first_line
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

fn headline(report: &Report) -> String {
    let lines: u64 = report.inputs.iter().map(|i| i.lines).sum();
    let skipped: u64 = report.inputs.iter().map(|i| i.skipped_lines).sum();
    let mut s = format!(
        "wtdiag {}: {} input{}, {} lines read",
        serde_json::to_value(report.command)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        report.inputs.len(),
        if report.inputs.len() == 1 { "" } else { "s" },
        lines
    );
    if skipped > 0 {
        s.push_str(&format!(" ({skipped} skipped)"));
    }
    if report.workers.is_some() {
        // `live` reads processes, not files.
        s = "wtdiag live: sampled with py-spy".to_string();
    }
    let counts: Vec<String> = report
        .summary
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if !counts.is_empty() {
        s.push_str("; seen: ");
        s.push_str(&counts.join(", "));
    }
    s
}

/// A table that wraps to `width` columns, or never wraps (output to a file or a pipe, where
/// long lines stay greppable).
fn new_table(width: Option<u16>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    match width {
        Some(w) => t
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(w),
        None => t.set_content_arrangement(ContentArrangement::Disabled),
    };
    t
}

/// One row per finding: what it is and how much it explains.
fn findings_table(findings: &[Finding], width: Option<u16>) -> Table {
    let mut t = new_table(width);
    t.set_header(vec!["#", "Severity", "Cause", "Count", "Finding"]);
    for f in findings {
        t.add_row(vec![
            f.rank.to_string(),
            f.severity.to_string(),
            f.cause.to_string(),
            f.count.to_string(),
            f.title.clone(),
        ]);
    }
    t
}

/// Each finding's why, evidence and fix, as plain lines (no wrapping, so they stay greppable
/// and copyable: file:line first).
fn finding_details(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "#{} {} ({}): {}", f.rank, f.cause, f.severity, f.title)?;
    if !f.reason.is_empty() {
        writeln!(out, "  why ({} confidence): {}", f.confidence, f.reason)?;
        // Causes sharing one reason are listed together.
        let mut shown: Vec<(&str, Vec<String>)> = Vec::new();
        for r in &f.ruled_out {
            match shown.iter_mut().find(|(reason, _)| *reason == r.reason) {
                Some((_, causes)) => causes.push(r.cause.to_string()),
                None => shown.push((&r.reason, vec![r.cause.to_string()])),
            }
        }
        for (reason, causes) in shown {
            writeln!(out, "  ruled out: {}: {reason}", causes.join(", "))?;
        }
    }
    if !f.evidence.is_empty() {
        writeln!(out, "  evidence:")?;
    }
    for e in f.evidence.iter().take(EVIDENCE_ROWS) {
        match e.line {
            Some(line) => writeln!(out, "    {}:{line}  {}", e.path, e.text)?,
            None => writeln!(out, "    {}  {}", e.path, e.text)?,
        }
    }
    if f.evidence.len() > EVIDENCE_ROWS {
        writeln!(
            out,
            "    ... {} more (--format json lists all)",
            f.evidence.len() - EVIDENCE_ROWS
        )?;
    }
    writeln!(out, "  fix: {}", f.advice)
}

fn workers_table(workers: &[WorkerState], width: Option<u16>) -> Table {
    let mut t = new_table(width);
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
        t.add_row(vec![
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
        ]);
        if !gthread {
            continue;
        }
        for th in &w.threads {
            t.add_row(vec![
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
            ]);
        }
    }
    t
}

/// `wtdiag pg`: the statement shapes that took the most time.
fn statements_table(statements: &[StatementSummary], width: Option<u16>) -> Table {
    let mut t = new_table(width);
    t.set_header(vec!["Count", "Total", "Mean", "p95", "Max", "Statement"]);
    let ms = |v: f64| {
        if v >= 1000.0 {
            format!("{:.2} s", v / 1000.0)
        } else {
            format!("{v:.1} ms")
        }
    };
    for s in statements {
        t.add_row(vec![
            s.count.to_string(),
            ms(s.total_ms),
            ms(s.mean_ms),
            ms(s.p95_ms),
            ms(s.max_ms),
            s.normalized.chars().take(100).collect(),
        ]);
    }
    t
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}
