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
    }
}
