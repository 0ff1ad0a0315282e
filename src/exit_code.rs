//! Process exit codes. They are part of the interface: CI pipelines gate on them.

/// The command ran; no finding reached `--fail-on`.
pub const OK: i32 = 0;
/// A finding at or above `--fail-on SEVERITY` was reported.
pub const FINDINGS: i32 = 1;
/// Usage error, unreadable input, or a failure that stopped the diagnosis.
pub const ERROR: i32 = 2;

/// The exit-code section of `--help` and the man page.
pub const HELP: &str = "\
Exit codes:
  0  the diagnosis ran (and no finding reached --fail-on)
  1  a finding at or above --fail-on SEVERITY was reported
  2  usage error, unreadable input, or a failure that stopped the diagnosis";
