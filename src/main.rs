//! The `dcnet` command.
use clap::Parser;

fn main() {
    // Logs go to stderr, filtered by RUST_LOG (default: warnings). Secrets are never logged.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = dcnet::cli::Cli::parse();
    std::process::exit(dcnet::cli::run(cli));
}
