//! The `patterns` binary: parses arguments, runs, and maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use patterns::cmd::table::printable;

// Polars allocates heavily while reading; mimalloc cut a 1M-row CSV read from 0.44 s to 0.35 s.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc's `mi_option_t` (not among libmimalloc-sys's constants).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

fn main() -> ExitCode {
    // Freed pages go back to the system after this many milliseconds. mimalloc's default of 10
    // returns pages that the next stage faults in again (zeroed), 0 does so at once. Measured at
    // 1M and 10M calls since CSV rows no longer go through polars' arrays (BENCHMARKS.md, "An
    // eighth sitting"): at 1M every delay from 100 to 1000 is within the noise; at 10M 1000 is the
    // fastest that keeps the peak within 1.2× the CSV (3.86–4.00 s, 1.16×; 100: 4.21–4.47 s,
    // 1.10×; never: 3.78–3.81 s but 1.24×). A setting of the user's own (`MIMALLOC_PURGE_DELAY`)
    // wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; valid at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    // Transparent huge pages: a first touch of memory the reader allocates zeroes 2 MiB at
    // once, whether used or not (1M calls: system time 0.30 s → 0.23 s on average; 10M: peak
    // 1.22 GB → 1.17 GB; BENCHMARKS.md). A setting of the user's own (`MIMALLOC_ALLOW_THP`) wins.
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: sets a flag of this process's memory; fails harmlessly on kernels without it.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    // Polars memory-maps a local log while it reads it, and every page it touched counted in
    // the process's resident memory: a 1 GB CSV of 10M calls peaked at 2.0 GB, half of it the
    // file. Its asynchronous reader reads files in chunks instead: 1.2 GB, as fast (BENCHMARKS.md).
    // A setting of the user's own wins.
    if std::env::var_os("POLARS_FORCE_ASYNC").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("POLARS_FORCE_ASYNC", "1") };
    }
    on_bus_error();
    let cli = patterns::cli::Cli::parse();
    match patterns::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`patterns mine … | head`) is not a failure.
            if broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // Messages quote names from logs: their control characters are shown, not obeyed.
            let message = format!("{err:#}");
            let lines: Vec<String> = message.lines().map(printable).collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::from(patterns::exit_code(&err) as u8)
        }
    }
}

/// Logs may be read through memory maps (with `POLARS_FORCE_ASYNC=0`, and wherever a reader maps
/// a file): a file truncated while it is read raises SIGBUS, which
/// would kill the process with a core dump. Say what happened instead, and exit 2. Reading
/// writes nothing, so nothing is left half-written.
fn on_bus_error() {
    extern "C" fn handler(_: libc::c_int) {
        const MESSAGE: &[u8] = b"error: an input file shrank while it was being read (truncated or rewritten meanwhile, SIGBUS); read it again once it is complete\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::_exit(2);
        }
    }
    // SAFETY: a handler that only calls async-signal-safe functions, installed before any thread
    // starts.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

/// Whether `err` comes from writing into a closed pipe, however the writer wrapped it (the CSV
/// and JSON writers keep the I/O error inside their own error types).
fn broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let kind = if let Some(e) = e.downcast_ref::<std::io::Error>() {
            Some(e.kind())
        } else if let Some(e) = e.downcast_ref::<serde_json::Error>() {
            e.io_error_kind()
        } else if let Some(e) = e.downcast_ref::<csv::Error>() {
            match e.kind() {
                csv::ErrorKind::Io(e) => Some(e.kind()),
                _ => None,
            }
        } else {
            None
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}
