//! `wtdiag completions` and `wtdiag man`: generated from the clap definition, and committed
//! under `completions/` and `man/` (a test checks they are current).

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::Cli;

pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "wtdiag", out);
    Ok(())
}

/// Renders wtdiag(1), or wtdiag-SUB(1) for a subcommand.
pub fn man(subcommand: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let root = Cli::command();
    let cmd = match subcommand {
        None => root,
        Some(name) => {
            let sub = root.find_subcommand(name).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no subcommand {name}"))
            })?;
            let (page, bin) = match name {
                "logs" => ("wtdiag-logs", "wtdiag logs"),
                "pg" => ("wtdiag-pg", "wtdiag pg"),
                _ => ("wtdiag-live", "wtdiag live"),
            };
            sub.name(page).bin_name(bin)
        }
    };
    clap_mangen::Man::new(cmd).render(out)
}
