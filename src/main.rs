//! The `dcnet` command.
use clap::Parser;
use std::io::IsTerminal;

fn main() {
    let cli = dcnet::cli::Cli::parse();
    // Logs go to stderr, filtered by RUST_LOG when it is set, else by -v/-q (default:
    // warnings). Colour only when stderr is a terminal, so that captured logs stay plain text.
    // Secrets are never logged.
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => {
            tracing_subscriber::EnvFilter::try_new(&s).unwrap_or_else(|e| {
                eprintln!("dcnet: RUST_LOG={s:?} is not a valid filter ({e}); using warnings");
                tracing_subscriber::EnvFilter::new("warn")
            })
        }
        _ => tracing_subscriber::EnvFilter::new(cli.log_level()),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    std::process::exit(dcnet::cli::run(cli));
}
