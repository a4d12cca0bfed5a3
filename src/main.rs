//! The `segno` executable.

use std::process::ExitCode;

use clap::Parser;

// Training allocates and frees large patches many times a second; mimalloc keeps that memory
// for reuse instead of returning it to the system and faulting it back in every time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    segno::nn::keep_tensor_memory();
    // Named, so that profilers and per-thread CPU times (`bench viewer`) tell them apart.
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("segno-rayon-{i}"))
        .build_global();
    let cli = segno::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    segno::cli::run(cli)
}
