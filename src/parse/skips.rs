//! Counting lines a parser could not use, by reason, so a report never drops input silently.

use std::collections::BTreeMap;

use crate::report::SkippedLines;

#[derive(Debug, Default)]
pub struct Skips {
    by_reason: BTreeMap<&'static str, (u64, u64)>,
}

impl Skips {
    pub fn record(&mut self, reason: &'static str, line: u64) {
        let entry = self.by_reason.entry(reason).or_insert((0, line));
        entry.0 += 1;
    }

    /// Adds `other`'s counts (the first line kept is the smaller).
    pub fn merge(&mut self, other: Skips) {
        for (reason, (count, line)) in other.by_reason {
            let entry = self.by_reason.entry(reason).or_insert((0, line));
            entry.0 += count;
            entry.1 = entry.1.min(line);
        }
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().map(|(n, _)| n).sum()
    }

    pub fn into_summary(self) -> Vec<SkippedLines> {
        self.by_reason
            .into_iter()
            .map(|(reason, (count, first_line))| SkippedLines {
                reason: reason.to_string(),
                count,
                first_line,
            })
            .collect()
    }
}

pub const OVERLONG: &str = "line longer than 1 MiB";
pub const BAD_TIMESTAMP: &str = "unreadable timestamp";
