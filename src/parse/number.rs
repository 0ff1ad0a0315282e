//! Decimal numbers inside log lines, read from bytes without allocating.

/// The whole of `b` as a u32 (at most 10 digits, nothing else).
pub fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    u32::try_from(v).ok()
}

/// The decimal number `b` starts with.
pub fn leading_u32(b: &[u8]) -> Option<u32> {
    let end = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    parse_u32(&b[..end])
}

/// Durations longer than this (about three years) are not from a real server: a line that
/// claims one is unreadable, like any other malformed line.
pub const MAX_DURATION_MS: f64 = 1e11;

/// A duration in milliseconds as PostgreSQL prints it (`1234.567`): finite, not negative, and
/// at most [`MAX_DURATION_MS`]. `inf`, `NaN` and `1e309` are refused, so that no time
/// arithmetic downstream can overflow.
pub fn parse_ms(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && (0.0..=MAX_DURATION_MS).contains(&v)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses() {
        assert_eq!(parse_u32(b"4242"), Some(4242));
        assert_eq!(parse_u32(b"42a"), None);
        assert_eq!(parse_u32(b"99999999999"), None);
        assert_eq!(leading_u32(b"123) was sent"), Some(123));
        assert_eq!(leading_u32(b"x"), None);
        assert_eq!(parse_ms("1234.5"), Some(1234.5));
        for bad in ["inf", "NaN", "1e309", "-1", "1e12", ""] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
