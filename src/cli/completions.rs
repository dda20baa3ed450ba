//! `flowc completions SHELL`: a completion script for the shell (`clap_complete`).

use std::fmt::Write as _;

use clap::CommandFactory as _;

pub fn run(shell: clap_complete::Shell) -> u8 {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "flowc", &mut out);
    let mut script = String::from_utf8_lossy(&out).into_owned();
    // bash, zsh and the others list `flowc rule`'s codes from its value parser; the fish
    // generator completes no positional values, so the codes are added here
    if shell == clap_complete::Shell::Fish {
        for c in flowc::codes::Code::ALL {
            let _ = writeln!(
                script,
                "complete -c flowc -n \"__fish_flowc_using_subcommand rule\" -f -a \"{}\" -d '{}'",
                c.fixture_name(),
                c.info().summary.replace('\\', "\\\\").replace('\'', "\\'")
            );
        }
    }
    out!("{script}");
    0
}
