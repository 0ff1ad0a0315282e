//! Parsers: one format each, text in, typed events out. They know nothing about causes or
//! reports' findings.

pub mod applog;
pub mod gunicorn;
pub mod number;
pub mod pg;
pub mod skips;
pub mod timestamp;
pub mod traceback;
pub mod zones;
