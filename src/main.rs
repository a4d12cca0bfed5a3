//! The `segno` executable.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = segno::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    segno::cli::run(cli)
}
