//! Parsers: one format each, text in, typed events out. They know nothing about causes or
//! reports' findings.

pub mod access;
pub mod applog;
pub mod detect;
pub mod envelope;
pub mod gunicorn;
pub mod heroku;
pub mod kernel;
pub mod nginx;
pub mod number;
pub mod pg;
pub mod requests;
pub mod skips;
pub mod timestamp;
pub mod traceback;
pub mod watch;
pub mod zones;

/// `s` cut to at most `max` bytes at a char boundary: text from inputs that ends up in titles,
/// evidence or memory is bounded with this.
pub fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
