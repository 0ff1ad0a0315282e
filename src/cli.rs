//! The command-line interface, declared once: parsing, `--help`, completions and the man page
//! all come from these types.

use clap::{Args, Parser, Subcommand};

use crate::exit_code;
use crate::render::{ColorChoice, Format};
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
    /// Wait beside a Gunicorn master; when a worker's heartbeat goes stale, sample it with
    /// py-spy until it recovers or the master kills it, and write one incident per episode
    #[command(after_help = exit_code::HELP)]
    Watch(WatchArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): wtdiag(1), or wtdiag-SUBCOMMAND(1)
    Man {
        /// The subcommand whose page to print
        #[arg(value_parser = ["logs", "pg", "live", "watch"])]
        subcommand: Option<String>,
    },
}

/// Options every diagnosing subcommand shares.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output format: table (with a timeline), json, markdown (GitHub), html (one
    /// self-contained page with charts; use with -o)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to this file instead of stdout ('-' is stdout)
    #[arg(long, short = 'o', value_name = "FILE", default_value = "-")]
    pub output: String,
    /// Color the table: auto (only on a terminal; NO_COLOR disables, CLICOLOR_FORCE forces),
    /// always, never
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Draw the table's timeline with ASCII characters only (the default is ASCII anyway under
    /// TERM=dumb or a non-UTF-8 locale)
    #[arg(long)]
    pub ascii: bool,
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
    /// Gunicorn error logs; '-' reads stdin; gzip, bzip2, xz and zstd are decompressed; rotated
    /// files are merged by time. The other logs of the deployment are recognised among them from
    /// their content: access logs (Gunicorn's, nginx's, Heroku's router), nginx's error log,
    /// application logs (slow-request lines, django.request errors), PostgreSQL logs, kernel logs
    /// (dmesg, kern.log, journalctl -k)
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
    /// Gunicorn's --timeout in seconds (default: Gunicorn's 30), to read request times from
    /// access and slow-request logs against: endpoints close to it, requests past it
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    pub timeout: Option<f64>,
    /// Threads reading Gunicorn logs and multi-origin streams (default: one per core); the
    /// report is the same for any number
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds above 0 (e.g. 30)"
        )),
    }
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

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The Gunicorn master: its workers are followed as they come and go
    #[arg(long, value_name = "PID")]
    pub pid: u32,
    /// PostgreSQL connection string, to look a caught worker's backend up in pg_stat_activity
    /// and pg_locks (its password is never shown; prefer PGPASSFILE or ~/.pgpass)
    #[arg(long, value_name = "DSN")]
    pub pg: Option<String>,
    /// The py-spy binary (default: py-spy on PATH; one beside the target is named, never run).
    /// As root: it and every directory above it owned by root and writable by no one else
    #[arg(long, value_name = "PATH")]
    pub py_spy: Option<std::path::PathBuf>,
    /// When a worker counts as caught: a fraction of the master's timeout (0.5) or seconds
    /// (3s, 2500ms). An idle sync worker's heartbeat ages up to half the timeout between loop
    /// turns, so a worker is caught only once it is 1 s past that too
    #[arg(long, value_name = "FRACTION|SECONDS", default_value = "0.5")]
    pub threshold: String,
    /// Time between two py-spy dumps of a caught worker, e.g. 200ms
    #[arg(long, value_name = "DURATION", default_value = "200ms")]
    pub interval: String,
    /// Stop after this long (e.g. 10m, 1h); default: until Ctrl-C or SIGTERM
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// The master's timeout in seconds, when it cannot be read from its command line
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Output: json writes JSON Lines (one object per incident, then the summary report on one
    /// line); table writes one line per incident, then the summary report
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write incidents and the summary to this file instead of stdout ('-' is stdout)
    #[arg(long, short = 'o', value_name = "FILE", default_value = "-")]
    pub output: String,
}
