//! `flowc completions SHELL`: a completion script for the shell (`clap_complete`).

use clap::CommandFactory as _;

pub fn run(shell: clap_complete::Shell) -> u8 {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "flowc", &mut out);
    out!("{}", String::from_utf8_lossy(&out));
    0
}
