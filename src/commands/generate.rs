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

pub fn man(out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}
