//! The glue layer: each subcommand wires its inputs, parsers, analysis and renderer together.
//! Nothing here parses a format or decides a cause.

mod fleet;
mod generate;
mod live;
mod logs;
mod parallel;
mod pg;
mod watch;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Cli, Command, OutputArgs, WindowArgs};
use crate::exit_code;
use crate::parse::timestamp;
use crate::render;
use crate::report::Report;

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Logs(args) => {
            let report = logs::run(&args)?;
            emit(&report, &args.output)
        }
        Command::Pg(args) => {
            let report = pg::run(&args)?;
            emit(&report, &args.output)
        }
        Command::Live(args) => {
            let report = live::run(&args)?;
            emit(&report, &args.output)
        }
        Command::Watch(args) => watch::run(&args),
        Command::Completions { shell } => {
            generate::completions(shell, &mut io::stdout().lock())?;
            Ok(exit_code::OK)
        }
        Command::Man { subcommand } => {
            generate::man(subcommand.as_deref(), &mut io::stdout().lock())?;
            Ok(exit_code::OK)
        }
    }
}

/// Writes the report where `--output` says and turns `--fail-on` into the exit code.
fn emit(report: &Report, args: &OutputArgs) -> Result<i32> {
    if args.output == "-" {
        let stdout = io::stdout();
        let terminal = stdout.is_terminal();
        let options = output_options(args, terminal);
        let mut out = BufWriter::new(stdout.lock());
        render::render(report, options, &mut out)?;
        out.flush()?;
    } else {
        let file = create_report_file(&args.output)
            .with_context(|| format!("cannot write the report to {}", args.output))?;
        let mut out = BufWriter::new(file);
        render::render(report, output_options(args, false), &mut out)?;
        out.flush()
            .with_context(|| format!("cannot write the report to {}", args.output))?;
    }
    let failed = match (args.fail_on, report.worst_severity()) {
        (Some(gate), Some(worst)) => worst >= gate,
        _ => false,
    };
    Ok(if failed {
        exit_code::FINDINGS
    } else {
        exit_code::OK
    })
}

/// The `--output` file. As root, not through a symlink: in a directory another user can write,
/// they could point it at any file, which root would then overwrite.
fn create_report_file(path: &str) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = File::options();
    options.write(true).create(true).truncate(true);
    if crate::live::trust::Privilege::current().elevated {
        options.custom_flags(nix::libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            anyhow::anyhow!(
                "it is a symbolic link, which wtdiag does not write through as root; give the \
                 file's real path"
            )
        } else {
            e.into()
        }
    })
}

/// What the output allows: wrapping and color only on a terminal (unless `--color` or the
/// environment says otherwise), Unicode unless `--ascii` or the terminal cannot show it.
fn output_options(args: &OutputArgs, terminal: bool) -> render::Options {
    let var = |name: &str| std::env::var(name).ok();
    render::Options {
        format: args.format,
        width: if terminal { terminal_width() } else { None },
        color: args.color.resolve(terminal, var),
        unicode: !args.ascii && render::unicode_terminal(var),
    }
}

fn terminal_width() -> Option<u16> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or(Some(120))
}

/// Inputs this large get a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// A byte progress bar for reading `path`, when stderr is a terminal and the file is large.
fn progress_for(path: &str, args: &OutputArgs) -> Option<ProgressBar> {
    if args.no_progress || path == "-" || !io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(path).ok()?.len();
    if len < PROGRESS_MIN_BYTES {
        return None;
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .ok()?,
    );
    bar.set_message(path.to_string());
    Some(bar)
}

pub use crate::analyze::window::Window;

impl Window {
    /// Reads `--since`/`--until`; a time that does not parse is a usage error.
    pub fn from_args(args: &WindowArgs) -> Result<Window> {
        let parse = |flag: &str, v: &Option<String>| -> Result<Option<DateTime<FixedOffset>>> {
            match v {
                None => Ok(None),
                Some(s) => timestamp::parse(s).map(Some).with_context(|| {
                    format!("{flag} {s:?}: not a time; use RFC 3339 or 'YYYY-MM-DD HH:MM:SS +0000'")
                }),
            }
        };
        Ok(Window {
            since: parse("--since", &args.since)?,
            until: parse("--until", &args.until)?,
        })
    }
}

/// Refuses `-` given twice: stdin can be read once.
fn check_stdin_once<'a>(paths: impl IntoIterator<Item = &'a String>) -> Result<()> {
    if paths.into_iter().filter(|p| p.as_str() == "-").count() > 1 {
        bail!("'-' (stdin) is given more than once; stdin can be read only once");
    }
    Ok(())
}
