//! The `dcnet` command.
use clap::Parser;

fn main() {
    let cli = dcnet::cli::Cli::parse();
    std::process::exit(dcnet::cli::run(cli));
}
