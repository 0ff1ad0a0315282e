//! The command-line interface, declared once: parsing, `--help`, completions and the man page
//! all come from these types.

use clap::{Args, Parser, Subcommand};

use crate::exit_code;
use crate::render::Format;
use crate::report::Severity;

#[derive(Debug, Parser)]
#[command(
    name = "wtdiag",
    version,
    about = "Find out why Gunicorn workers time out, and say so with evidence",
    long_about = "Find out why Gunicorn workers time out in Django deployments.\n\n\
        wtdiag reads Gunicorn error logs, application request logs and PostgreSQL logs, or \
        samples live workers through py-spy, and ranks the root causes: n_plus_one, \
        missing_api_timeout, slow_query, lock_wait, deadlock, cpu_bound, memory, unknown.",
    after_help = exit_code::HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose worker timeouts and kills from Gunicorn error logs
    #[command(after_help = exit_code::HELP)]
    Logs(LogsArgs),
    /// Analyse PostgreSQL logs: slow statements, lock waits, deadlocks, cancels, N+1 bursts
    #[command(after_help = exit_code::HELP)]
    Pg(PgArgs),
    /// Sample the stacks of a running Gunicorn's workers with py-spy and name what they wait on
    #[command(after_help = exit_code::HELP)]
    Live(LiveArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)
    Man {
        /// The subcommand whose page to print
        #[arg(value_parser = ["logs", "pg", "live"])]
        subcommand: Option<String>,
    },
}

/// Options every diagnosing subcommand shares.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to this file instead of stdout ('-' is stdout)
    #[arg(long, short = 'o', value_name = "FILE", default_value = "-")]
    pub output: String,
    /// Exit with code 1 when a finding of this severity or worse is reported (CI gate)
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Never draw a progress bar (it is drawn only on a terminal, for large inputs)
    #[arg(long)]
    pub no_progress: bool,
}

/// A time window on the events.
#[derive(Debug, Args, Clone)]
pub struct WindowArgs {
    /// Only events at or after this time (RFC 3339, or 'YYYY-MM-DD HH:MM:SS[ +HHMM]'; UTC when no offset)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events at or before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Gunicorn error logs; '-' reads stdin; gzip, bzip2, xz and zstd are decompressed; rotated files are merged by time.
    /// A kernel log among them (dmesg, dmesg -T, kern.log, journalctl -k) is recognised: its OOM
    /// kills confirm out-of-memory SIGKILLs
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Application log with request start/end lines (time, pid, METHOD /path), to name the
    /// request each timed-out worker was serving
    #[arg(long, value_name = "FILE")]
    pub app_log: Vec<String>,
    /// PostgreSQL server log, to tell lock waits, deadlocks and slow statements apart at the
    /// time of each timeout
    #[arg(long, value_name = "FILE")]
    pub pg_log: Vec<String>,
    /// Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30
    /// (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read
    /// as PostgreSQL's default set reads it (IST is Israel's +02:00), with a warning when it has
    /// other meanings
    #[arg(long, value_name = "[ABBREV=]OFFSET")]
    pub pg_tz: Vec<String>,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PgArgs {
    /// PostgreSQL logs (stderr, csvlog, jsonlog, syslog, or a managed service's export; detected); '-' reads stdin; gzip, bzip2, xz and zstd are decompressed
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// The server's log_line_prefix, when auto-detection cannot tell (e.g. '%t [%p]: [%l-1] ')
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Read a time-zone abbreviation of the PostgreSQL log at this UTC offset: IST=+05:30
    /// (repeatable), or a bare +05:30 for every abbreviation. Without it an abbreviation is read
    /// as PostgreSQL's default set reads it (IST is Israel's +02:00), with a warning when it has
    /// other meanings
    #[arg(long, value_name = "[ABBREV=]OFFSET")]
    pub pg_tz: Vec<String>,
    /// How many statements, lock waits and bursts to report per category
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// N+1 burst: at least this many runs of one statement shape by one backend...
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub n1_min_repeats: u32,
    /// ...taking at least this many milliseconds in all (from the first run's start to the last
    /// run's end, or their summed durations if larger; with whole-second log times, the count
    /// alone decides)...
    #[arg(long, value_name = "MS", default_value_t = 50.0)]
    pub n1_min_total_ms: f64,
    /// ...each within this many milliseconds of the previous one (a request-sized window), with
    /// values that change from run to run
    #[arg(long, value_name = "MS", default_value_t = 1000.0)]
    pub n1_max_gap_ms: f64,
    /// List statements at least this slow in the JSON events and report their shapes as
    /// slow_query findings (the rest are counted in events_omitted, and aggregated per
    /// fingerprint all the same)
    #[arg(long, value_name = "MS", default_value_t = 1000.0)]
    pub event_min_ms: f64,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The Gunicorn master (every worker is sampled) or one worker
    #[arg(long, value_name = "PID")]
    pub pid: u32,
    /// How long to sample, e.g. 10s, 500ms, 1m
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub duration: String,
    /// Time between two samples of a worker, e.g. 200ms
    #[arg(long, value_name = "DURATION", default_value = "200ms")]
    pub interval: String,
    /// The py-spy binary (default: py-spy on PATH; one beside the target is named, never run).
    /// As root: it and every directory above it owned by root and writable by no one else
    #[arg(long, value_name = "PATH")]
    pub py_spy: Option<std::path::PathBuf>,
    /// Sample without pausing the targets (py-spy --nonblocking): less accurate, never stops them
    #[arg(long)]
    pub nonblocking: bool,
    /// PostgreSQL connection string, to look stuck backends up in pg_stat_activity and pg_locks
    /// (its password is never shown; prefer PGPASSFILE or ~/.pgpass to a password in the DSN)
    #[arg(long, value_name = "DSN")]
    pub pg: Option<String>,
    /// The master's timeout in seconds, when it cannot be read from its command line
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub output: OutputArgs,
}
