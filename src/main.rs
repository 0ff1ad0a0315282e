use std::io;

use clap::Parser;

use wtdiag::cli::Cli;
use wtdiag::{commands, exit_code};

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|err| exit_on_usage_error(err));
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => exit_code::OK,
        Err(err) => {
            // One line, whatever a path or name from the target holds.
            let text = format!("{err:#}");
            eprintln!(
                "wtdiag: error: {}",
                wtdiag::render::neutralize_controls(&text, false)
            );
            exit_code::ERROR
        }
    };
    std::process::exit(code);
}

/// clap's usage error, printed as clap does unless it quotes a word that reads like a `--pg`
/// password (a DSN typed without quotes): then without it.
fn exit_on_usage_error(err: clap::Error) -> ! {
    if err.use_stderr() {
        let text = err.render().to_string();
        let redacted = wtdiag::live::pg_activity::redact_password_like(&text);
        if redacted != text {
            eprint!("{redacted}");
            std::process::exit(err.exit_code());
        }
    }
    err.exit()
}

/// `wtdiag ... | head` closing the pipe early is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
