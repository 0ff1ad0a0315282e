//! The timeline block of the table output: one row per time bucket, one column per kind of
//! event that occurred, each a bar scaled to that column's busiest bucket and the count; the
//! buckets holding the top finding's events are marked. Unicode eighth blocks, or `#` when the
//! terminal cannot show them (`--ascii`, `TERM=dumb`, a non-UTF-8 locale).

use std::io::{self, Write};

use crate::analyze::buckets::{Series, TimeBuckets};
use crate::render::color::{Palette, Style};

/// Characters of the longest bar.
const BAR: usize = 8;
/// Runs of at least this many empty buckets are folded into one line.
const FOLD_EMPTY: usize = 3;

pub fn draw(
    t: &TimeBuckets,
    unicode: bool,
    palette: Palette,
    out: &mut dyn Write,
) -> io::Result<()> {
    let series = t.present();
    let (first, end) = match (t.buckets.first(), t.end()) {
        (Some(b), Some(end)) => (b.start, end),
        _ => return Ok(()),
    };
    let marker = if unicode { "◆" } else { "*" };
    let mut heading = format!(
        "Timeline: {} per row, {} to {}",
        t.size_label,
        first.format("%Y-%m-%d %H:%M:%S"),
        end.format(if first.date_naive() == end.date_naive() {
            "%H:%M:%S %:z"
        } else {
            "%Y-%m-%d %H:%M:%S %:z"
        })
    );
    if let Some((rank, cause)) = t.top_finding
        && t.buckets.iter().any(|b| b.top_finding)
    {
        heading.push_str(&format!("; {marker} = events of finding #{rank} ({cause})"));
    }
    writeln!(out, "{}", palette.paint(&heading, Style::BOLD))?;
    if t.untimed > 0 {
        writeln!(out, "({} event(s) without a time are not drawn)", t.untimed)?;
    }
    if t.unlisted > 0 {
        writeln!(
            out,
            "({} worker timeout(s) and kill(s) beyond the listed events are not drawn; the \
             findings count them)",
            t.unlisted
        )?;
    }
    if t.omitted > 0 {
        writeln!(
            out,
            "({} database or proxy event(s) beyond the first {} are not drawn)",
            t.omitted,
            crate::report::MAX_SIDE_EVENTS
        )?;
    }
    let same_day = first.date_naive() == (end - chrono::Duration::seconds(1)).date_naive();
    let time_format = match t.size_seconds {
        s if s < 60 => "%H:%M:%S",
        s if s < 86_400 && same_day => "%H:%M",
        s if s < 86_400 => "%m-%d %H:%M",
        _ => "%Y-%m-%d",
    };
    let time_width = first.format(time_format).to_string().chars().count();
    let widths: Vec<usize> = series
        .iter()
        .map(|s| {
            let digits = t.peak(*s).to_string().len();
            (BAR + 1 + digits).max(s.label().len())
        })
        .collect();
    let mut head = format!("{:time_width$}", "");
    for (s, w) in series.iter().zip(&widths) {
        head.push_str(&format!("  {:<w$}", s.label()));
    }
    writeln!(out, "{}", head.trim_end())?;

    let mut i = 0;
    while i < t.buckets.len() {
        let empty = |b: &crate::analyze::buckets::Bucket| b.counts.iter().all(|n| *n == 0);
        let run = t.buckets[i..].iter().take_while(|b| empty(b)).count();
        if run >= FOLD_EMPTY {
            let dots = if unicode { "┊" } else { ":" };
            writeln!(
                out,
                "{}",
                palette.paint(
                    &format!(
                        "{:<time_width$}  {dots} {run} quiet rows",
                        t.buckets[i].start.format(time_format).to_string()
                    ),
                    Style::DIM
                )
            )?;
            i += run;
            continue;
        }
        let b = &t.buckets[i];
        let mut row = format!("{:<time_width$}", b.start.format(time_format).to_string());
        for (s, w) in series.iter().zip(&widths) {
            let n = b.count(*s);
            let cell = if n == 0 {
                let dot = if unicode { "·" } else { "." };
                format!("{}{}", palette.paint(dot, Style::DIM), " ".repeat(w - 1))
            } else {
                let digits = t.peak(*s).to_string().len();
                let bar = bar(n, t.peak(*s), unicode);
                let plain = format!("{bar:<BAR$} {n:>digits$}");
                let pad = w - plain.chars().count();
                format!(
                    "{}{}",
                    palette.paint(&plain, series_style(*s)),
                    " ".repeat(pad)
                )
            };
            row.push_str("  ");
            row.push_str(&cell);
        }
        let row = row.trim_end().to_string();
        if b.top_finding {
            writeln!(out, "{row}  {}", palette.paint(marker, Style::BOLD))?;
        } else {
            writeln!(out, "{row}")?;
        }
        i += 1;
    }
    Ok(())
}

/// A bar of `n` against `peak`, in eighths of a character (at least one eighth for any event).
fn bar(n: u64, peak: u64, unicode: bool) -> String {
    if peak == 0 || n == 0 {
        return String::new();
    }
    if !unicode {
        let cells = ((n * BAR as u64).div_ceil(peak)).max(1) as usize;
        return "#".repeat(cells);
    }
    let eighths = ((n * 8 * BAR as u64 + peak / 2) / peak).max(1) as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[eighths % 8]);
    s
}

/// The color of a series, as the causes are colored: timeouts red, kills yellow (the process),
/// the database's events magenta and blue, the proxy's cyan (a peer).
pub fn series_style(s: Series) -> Style {
    match s {
        Series::WorkerTimeouts => Style::RED,
        Series::WorkerKills => Style::YELLOW,
        Series::LockWaits => Style::MAGENTA,
        Series::SlowStatements => Style::BLUE,
        Series::Deadlocks => Style::MAGENTA,
        Series::ProxyErrors => Style::CYAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_peak() {
        assert_eq!(bar(4, 4, true), "████████");
        assert_eq!(bar(1, 2, true), "████");
        assert_eq!(bar(1, 1000, true), "▏");
        assert_eq!(bar(1, 2, false), "####");
        assert_eq!(bar(1, 1000, false), "#");
        assert_eq!(bar(0, 3, true), "");
    }
}
