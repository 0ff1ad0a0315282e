use std::io;

use clap::Parser;

use wtdiag::cli::Cli;
use wtdiag::{commands, exit_code};

fn main() {
    let cli = Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => exit_code::OK,
        Err(err) => {
            eprintln!("wtdiag: error: {err:#}");
            exit_code::ERROR
        }
    };
    std::process::exit(code);
}

/// `wtdiag ... | head` closing the pipe early is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
