//! `patterns` learns reusable workflows from the tool-usage logs of AI agents.
//!
//! The engine (loading, mining, scoring, generation) is library code that knows nothing of the
//! command line; [`cli`] and [`cmd`] are thin glue over it.

/// A line on stderr that never panics, for what runs inside a server: a client that closed the
/// server's stderr must not break the calls that report on it (`eprintln!` panics when it cannot
/// write).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        writeln!(std::io::stderr(), $($arg)*).ok();
    }};
}

pub mod cli;
pub mod cmd;
pub mod events;
pub mod exchange;
pub mod executor;
pub mod generate;
pub mod load;
pub mod mining;
pub mod numbers;
pub mod outcome;
pub mod pipeline;
pub mod report;
pub mod score;
pub mod serve;
pub mod structure;
pub mod suggest;
pub mod template;
pub mod transcribe;

/// An error caused by how the tool was called or by its input (exit code 2), as opposed to a
/// failure of the work itself (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error: 2 for bad usage or input, 130 for an interrupted run, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let bad_input = err.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<load::LoadError>()
            || e.is::<executor::PlanError>()
            || e.is::<clap::Error>()
    });
    if err.is::<cmd::run::Interrupted>() {
        // As a shell reports a command stopped by Ctrl-C.
        130
    } else if bad_input {
        2
    } else {
        1
    }
}
