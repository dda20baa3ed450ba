//! The `flowc` command line: parses arguments and hands over to `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    quiet_on_broken_pipe();
    cli::main()
}

/// A closed standard output or error (`flowc check 2>&1 | true`) ends the process quietly
/// with 141 (128 + SIGPIPE, what a shell reports for a command killed by it) instead of
/// panicking: a failed write to a closed pipe is where the reader went away.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
