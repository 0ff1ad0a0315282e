//! The `--since`/`--until` time window events are kept in.

use chrono::{DateTime, FixedOffset};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub since: Option<DateTime<FixedOffset>>,
    pub until: Option<DateTime<FixedOffset>>,
}

impl Window {
    /// True when `t` is inside; an event without a time is always kept.
    pub fn contains(&self, t: Option<DateTime<FixedOffset>>) -> bool {
        let Some(t) = t else { return true };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    pub fn is_set(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}
