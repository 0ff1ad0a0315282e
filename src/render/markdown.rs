//! The Markdown renderer: GitHub-flavoured Markdown for `$GITHUB_STEP_SUMMARY` and pull-request
//! comments. The summary line, the findings as a table, the timeline (folded), then each finding
//! with its evidence and the causes it rules out folded in `<details>`, the endpoints' latency
//! and what clients got (access logs), the top statements, the notes and the inputs.
//! Everything is in the report's own order (findings by rank, notes as raised), so two runs on
//! the same logs give the same text and a diff between runs shows what changed.

use std::io::{self, Write};

use crate::analyze::buckets::TimeBuckets;
use crate::render::{command_name, headline, ms};
use crate::report::{Finding, Report};

/// Evidence lines shown per finding (JSON has them all).
const EVIDENCE_ROWS: usize = 20;
/// Statements listed.
const STATEMENT_ROWS: usize = 10;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "## wtdiag {}: {}",
        command_name(report),
        verdict(report)
    )?;
    writeln!(out)?;
    writeln!(out, "{}", inline(&headline(report)))?;
    writeln!(out)?;
    if report.findings.is_empty() {
        writeln!(
            out,
            "No findings: nothing in the inputs points to a cause of worker timeouts."
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "| # | Severity | Cause | Count | Confidence | Finding |"
        )?;
        writeln!(out, "|---:|---|---|---:|---|---|")?;
        for f in &report.findings {
            writeln!(
                out,
                "| {} | **{}** | `{}` | {} | {} | {} |",
                f.rank,
                f.severity,
                f.cause,
                f.count,
                f.confidence,
                cell(&f.title)
            )?;
        }
        writeln!(out)?;
        if let Some(t) = TimeBuckets::from_report(report) {
            timeline(&t, out)?;
        }
        for f in &report.findings {
            finding(f, out)?;
        }
    }
    if let Some(endpoints) = report.endpoints.as_deref().filter(|e| !e.is_empty()) {
        writeln!(
            out,
            "### Endpoints, slowest first (from the {})",
            endpoints[0].source.name()
        )?;
        writeln!(out)?;
        if let Some(c) = &report.client_impact {
            let statuses: Vec<String> = c
                .by_status
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            writeln!(
                out,
                "Clients: {} of {} request(s) answered 5xx, per the {}{}.",
                c.errors_5xx,
                c.requests,
                c.source.name(),
                if statuses.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", statuses.join(", "))
                }
            )?;
            writeln!(out)?;
        }
        let timeout = report
            .endpoint_timeout_s
            .map_or(String::new(), |t| format!(" (timeout {t:.0} s)"));
        writeln!(
            out,
            "| Request | Requests | p50 | p95 | Max | ≥ ⅔ timeout{timeout} | 5xx |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
        let s = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} s"));
        for e in endpoints.iter().take(STATEMENT_ROWS) {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                code_cell(&e.request),
                e.requests,
                s(e.p50_s),
                s(e.p95_s),
                s(Some(e.max_s)),
                e.over_two_thirds_timeout,
                e.errors_5xx
            )?;
        }
        writeln!(out)?;
    }
    if let Some(pg) = &report.pg
        && !pg.statements.is_empty()
    {
        writeln!(out, "### Top statements by total time")?;
        writeln!(out)?;
        writeln!(out, "| Count | Total | Mean | p95 | Max | Statement |")?;
        writeln!(out, "|---:|---:|---:|---:|---:|---|")?;
        for s in pg.statements.iter().take(STATEMENT_ROWS) {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                s.count,
                ms(s.total_ms),
                ms(s.mean_ms),
                ms(s.p95_ms),
                ms(s.max_ms),
                code_cell(&s.normalized.chars().take(200).collect::<String>())
            )?;
        }
        writeln!(out)?;
    }
    if !report.warnings.is_empty() {
        writeln!(out, "### Notes")?;
        writeln!(out)?;
        for w in &report.warnings {
            writeln!(
                out,
                "- **`{}`**: {} *What to do:* {}",
                w.code,
                inline(&w.message),
                inline(&w.advice)
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "<details><summary>Inputs</summary>")?;
    writeln!(out)?;
    writeln!(out, "| Input | Format | Lines | Skipped |")?;
    writeln!(out, "|---|---|---:|---:|")?;
    for i in &report.inputs {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            code_cell(&i.path),
            cell(&i.format),
            i.lines,
            i.skipped_lines
        )?;
    }
    writeln!(out)?;
    for i in &report.inputs {
        for s in &i.skipped {
            writeln!(
                out,
                "- skipped in {}: {} line(s), {} (first at line {})",
                code_span(&i.path),
                s.count,
                inline(&s.reason),
                s.first_line
            )?;
        }
    }
    writeln!(out, "</details>")?;
    writeln!(out)?;
    writeln!(
        out,
        "<sub>wtdiag {} · JSON: `--format json`</sub>",
        report.wtdiag_version
    )
}

/// The heading's few words: how many findings, and the worst.
fn verdict(report: &Report) -> String {
    match (report.findings.first(), report.worst_severity()) {
        (None, _) => "no findings".to_string(),
        (Some(top), Some(worst)) => format!(
            "{} finding{}, worst {worst}; top cause `{}`",
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" },
            top.cause
        ),
        (Some(_), None) => format!("{} findings", report.findings.len()),
    }
}

/// The timeline, folded: one row per bucket that had events, the top finding's marked.
fn timeline(t: &TimeBuckets, out: &mut dyn Write) -> io::Result<()> {
    let series = t.present();
    let busy: Vec<_> = t
        .buckets
        .iter()
        .filter(|b| b.counts.iter().any(|n| *n > 0))
        .collect();
    let (Some(first), Some(end)) = (t.buckets.first(), t.end()) else {
        return Ok(());
    };
    writeln!(
        out,
        "<details><summary>Timeline: {} bucket{} of {} with events, {} to {}</summary>",
        busy.len(),
        if busy.len() == 1 { "" } else { "s" },
        t.size_label,
        first.start.format("%Y-%m-%d %H:%M:%S"),
        end.format("%Y-%m-%d %H:%M:%S %:z")
    )?;
    writeln!(out)?;
    let heads: Vec<&str> = series.iter().map(|s| s.label()).collect();
    writeln!(out, "| Time | {} | |", heads.join(" | "))?;
    writeln!(out, "|---|{}---|", "---:|".repeat(series.len()))?;
    for b in busy {
        let counts: Vec<String> = series.iter().map(|s| b.count(*s).to_string()).collect();
        let mark = match (b.top_finding, t.top_finding) {
            (true, Some((rank, _))) => format!("finding #{rank}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "| {} | {} | {mark} |",
            b.start.format("%Y-%m-%d %H:%M:%S"),
            counts.join(" | ")
        )?;
    }
    writeln!(out)?;
    writeln!(out, "</details>")?;
    writeln!(out)
}

fn finding(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "### {}. `{}` ({}): {}",
        f.rank,
        f.cause,
        f.severity,
        inline(&f.title)
    )?;
    writeln!(out)?;
    if !f.reason.is_empty() {
        writeln!(
            out,
            "**Why** ({} confidence): {}",
            f.confidence,
            inline(&f.reason)
        )?;
        writeln!(out)?;
    }
    if let (Some(a), Some(z)) = (f.first_seen, f.last_seen) {
        let when = if a == z {
            a.to_rfc3339()
        } else {
            format!("{} to {}", a.to_rfc3339(), z.to_rfc3339())
        };
        writeln!(out, "**When:** {when}")?;
        writeln!(out)?;
    }
    writeln!(out, "**Fix:** {}", inline(&f.advice))?;
    writeln!(out)?;
    if !f.evidence.is_empty() {
        writeln!(
            out,
            "<details><summary>Evidence ({} line{})</summary>",
            f.evidence.len(),
            if f.evidence.len() == 1 { "" } else { "s" }
        )?;
        writeln!(out)?;
        let lines: Vec<String> = f
            .evidence
            .iter()
            .take(EVIDENCE_ROWS)
            .map(|e| match e.line {
                Some(n) => format!("{}:{n}  {}", e.path, e.text),
                None => format!("{}  {}", e.path, e.text),
            })
            .collect();
        let mut block = lines.join("\n");
        if f.evidence.len() > EVIDENCE_ROWS {
            block.push_str(&format!(
                "\n... {} more (--format json lists all)",
                f.evidence.len() - EVIDENCE_ROWS
            ));
        }
        code_block(&block, out)?;
        writeln!(out, "</details>")?;
        writeln!(out)?;
    }
    if !f.ruled_out.is_empty() {
        writeln!(
            out,
            "<details><summary>Ruled out ({})</summary>",
            f.ruled_out
                .iter()
                .map(|r| r.cause.name())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        writeln!(out)?;
        for r in &f.ruled_out {
            writeln!(out, "- `{}`: {}", r.cause, inline(&r.reason))?;
        }
        writeln!(out)?;
        writeln!(out, "</details>")?;
        writeln!(out)?;
    }
    Ok(())
}

/// `text` as Markdown prose: one line, with the characters that Markdown or HTML would read as
/// markup escaped (a `__init__` stays a name, a `<script>` stays text).
fn inline(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                s.push('\\');
                s.push(c);
            }
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '&' => s.push_str("&amp;"),
            '\n' | '\r' => s.push(' '),
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

/// `text` in a table cell.
fn cell(text: &str) -> String {
    inline(text)
}

/// `text` as inline code: a backtick fence longer than any run inside it.
fn code_span(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let fence = "`".repeat(longest_run(&text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// Inline code in a table cell, where a pipe would end the cell even inside code unless
/// escaped (GFM reads `\|` there as `|`).
fn code_cell(text: &str) -> String {
    code_span(text).replace('|', "\\|")
}

/// A fenced code block that no line of `text` can close.
fn code_block(text: &str, out: &mut dyn Write) -> io::Result<()> {
    let fence = "`".repeat(longest_run(text, '`').max(2) + 1);
    let text: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    writeln!(out, "{fence}text")?;
    writeln!(out, "{text}")?;
    writeln!(out, "{fence}")?;
    writeln!(out)
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_log_text_stays_text() {
        assert_eq!(
            inline("a|b __init__ <script> *x* [l](u)"),
            "a\\|b \\_\\_init\\_\\_ &lt;script&gt; \\*x\\* \\[l\\](u)"
        );
        assert_eq!(code_span("a `b` c"), "``a `b` c``");
        assert_eq!(code_cell("x|y"), "`x\\|y`");
        let mut out = Vec::new();
        code_block("```\nend", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "````text\n```\nend\n````\n\n"
        );
    }
}
