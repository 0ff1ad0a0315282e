//! The `--since`/`--until` time window events are kept in, and the one piece of time
//! arithmetic on input-derived durations.

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

/// When something that lasted `ms` and was logged at `end` began; `None` when the
/// subtraction would leave chrono's range (a duration from a corrupt or hostile line).
pub fn started_before(end: DateTime<FixedOffset>, ms: f64) -> Option<DateTime<FixedOffset>> {
    if !ms.is_finite() || ms < 0.0 {
        return None;
    }
    // `as` saturates; a saturated delta simply fails the checked subtraction below.
    let delta = chrono::TimeDelta::microseconds((ms * 1000.0) as i64);
    end.checked_sub_signed(delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_out_of_range_give_no_start_instead_of_a_panic() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T10:00:01.500+00:00").unwrap();
        assert_eq!(
            started_before(t, 1500.0),
            DateTime::parse_from_rfc3339("2026-11-27T10:00:00+00:00").ok()
        );
        for ms in [f64::INFINITY, f64::NAN, 1e300, -1.0] {
            assert_eq!(started_before(t, ms), None, "{ms}");
        }
    }
}
