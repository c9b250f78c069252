//! The `patterns` binary: parses arguments, runs, and maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

// Polars allocates heavily while reading; mimalloc cut a 1M-row CSV read from 0.44 s to 0.35 s.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = patterns::cli::Cli::parse();
    match patterns::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`patterns mine … | head`) is not a failure.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(patterns::exit_code(&err) as u8)
        }
    }
}
