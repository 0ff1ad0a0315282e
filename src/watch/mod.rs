//! `wtdiag watch`'s sources: a Gunicorn master's workers followed as they come and go, their
//! heartbeat ages read from /proc at a low rate with nothing ptraced ([`fleet`]), and, for a
//! worker whose heartbeat went stale, repeated py-spy dumps (and its PostgreSQL backend) until it
//! recovers or dies ([`episode`]). [`incident`] is what one episode becomes once `analyze::live`
//! has diagnosed it: the JSON Lines object and the table line. Nothing here decides a cause.

pub mod episode;
pub mod fleet;
pub mod incident;

/// When a worker counts as caught, from `--threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// A fraction of the master's timeout.
    Fraction(f64),
    Seconds(f64),
}

impl Threshold {
    /// `0.5` (a fraction, below 1), `3s`, `2500ms`, `1m`, or a bare number of seconds from 1 up.
    pub fn parse(text: &str) -> Option<Threshold> {
        let t = text.trim();
        if t.ends_with("ms") || t.ends_with('s') || t.ends_with('m') {
            return crate::live::parse_duration(t).map(|d| Threshold::Seconds(d.as_secs_f64()));
        }
        let value: f64 = t.parse().ok()?;
        if !value.is_finite() || value <= 0.0 {
            return None;
        }
        Some(if value < 1.0 {
            Threshold::Fraction(value)
        } else {
            Threshold::Seconds(value)
        })
    }

    /// Seconds of heartbeat age for a master whose timeout is `timeout` (0: it never kills, so
    /// a fraction means nothing).
    pub fn seconds(self, timeout: f64) -> Option<f64> {
        match self {
            Threshold::Fraction(f) if timeout > 0.0 => Some(f * timeout),
            Threshold::Fraction(_) => None,
            Threshold::Seconds(s) => Some(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(Threshold::parse("0.5"), Some(Threshold::Fraction(0.5)));
        assert_eq!(Threshold::parse("3s"), Some(Threshold::Seconds(3.0)));
        assert_eq!(Threshold::parse("2500ms"), Some(Threshold::Seconds(2.5)));
        assert_eq!(Threshold::parse("4"), Some(Threshold::Seconds(4.0)));
        assert_eq!(Threshold::parse("0"), None);
        assert_eq!(Threshold::parse("-1"), None);
        assert_eq!(Threshold::parse("half"), None);
        assert_eq!(Threshold::Fraction(0.5).seconds(30.0), Some(15.0));
        assert_eq!(Threshold::Fraction(0.5).seconds(0.0), None);
    }
}
