//! `patterns mine`: load logs, find their workflows, print them, write them into the library.

pub(super) mod json;
pub(super) mod table;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::logargs::LogArgs;
use super::mining_args::MiningArgs;
use super::table::count;
use crate::events::EventLog;
use crate::load::{self, LoadReport, REPORTED_BAD_ROWS};
use crate::pipeline::{self, MineOptions, MineReport, Progress};
use crate::score::Keep;
use crate::template::{ChainStats, Library, SaveOptions};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Input: one row per tool call with a session id, a timestamp and a tool name (and optionally a
success flag). Columns are found by name (session_id/session/trace_id/case_id…, timestamp/ts/time…,
tool/tool_name/name/activity…, success/ok/status/error) unless given by the --*-col flags.
A session's task outcome (outcome/reward/resolved/…, or a results file given by --outcomes)
makes the score support × solved and lists the paths to failure.
Timestamps: RFC 3339 / ISO 8601 text (no zone = UTC), epoch seconds, milliseconds, microseconds or
nanoseconds, or integers below 100,000,000 as plain order keys. Calls in a session are ordered by
timestamp, ties by input order. Several files are one log: a session id found in two files is one
session, its calls merged in time order (a warning says when they are more than a day apart;
--session-per-file keeps each file's sessions apart).

What is listed (--keep workflows, the default): the distinct workflows, each whole. One workflow
at a time is grown from the strongest pair of calls that no workflow explains yet: a step belongs
to it when most of its runs (--continuation) go on with it; tools that run in any order form one
stage. Its runs are then taken out of the log. A piece, a window or a one-call variant of a
workflow is folded into it: its funnel (sessions that reached each stage or a later one), its
variants (a step skipped, an extra call, a related chain) and its orderings. There is no length
cap.
--keep all lists every frequent chain of --min-len..--max-len tools instead; --keep closed drops
the chains that a longer one nearly always extends.

Figures: support = sessions in which the workflow (chain) occurs whole, steps at most --max-gap
calls apart; success = share of those sessions in which some whole run had every step succeed;
score = support × success; sessions = sessions with a run of at least two of its stages.

Examples:
  patterns mine data/sample.csv
  patterns mine 'logs/*.jsonl' logs/extra.parquet --min-support 0.01 --top 50
  patterns mine data/helpdesk.csv --json --no-write | jq '.patterns[0].funnel'
  patterns mine data/helpdesk.csv --max-gap 0 --keep all --json
  patterns mine data/taubench_airline_gpt4o.csv --outcomes data/taubench_airline_gpt4o.outcomes.csv
  cat today.csv | patterns mine - --strict

On Spark, with the same flags and the same answer (README, \"Beyond one machine\"):
  python3 src/spark/patterns_spark.py --spark-master 'local[2]' --patterns PATH/TO/patterns data/sample.csv")]
pub struct Args {
    /// Log files (CSV, JSONL/NDJSON, Parquet; gzip-compressed too), folders (their log files,
    /// recursively), globs, or '-' for standard input (any of those formats)
    #[arg(required = true, value_name = "LOGS")]
    pub(super) logs: Vec<String>,

    #[command(flatten)]
    pub(super) input: LogArgs,

    #[command(flatten)]
    pub(super) mining: MiningArgs,

    /// Library folder that every workflow found is written to as a template (with --keep
    /// closed|all: the chains shown)
    #[arg(
        long,
        env = "PATTERNS_LIBRARY",
        default_value = "workflows",
        value_name = "DIR",
        help_heading = "Library"
    )]
    pub(super) library: PathBuf,
    /// Only print; do not write templates
    #[arg(long, help_heading = "Library")]
    pub(super) no_write: bool,
    /// Add this run's counts to those already in the library (for nightly runs over each day's
    /// new logs); by default a re-mined template gets this run's counts
    #[arg(long, help_heading = "Library")]
    pub(super) accumulate: bool,
    /// Delete mined templates whose chain is no longer frequent; by default they are kept and
    /// marked "stale": true
    #[arg(long, help_heading = "Library")]
    pub(super) prune: bool,
    /// Seconds to wait for another process that is writing the library
    #[arg(
        long,
        default_value_t = 600,
        value_name = "SECONDS",
        help_heading = "Library"
    )]
    pub(super) lock_wait: u64,

    /// How many workflows (chains) to print (0 = all); with --keep closed|all also how many to
    /// write as templates
    #[arg(long, default_value_t = 20, value_name = "N", help_heading = "Output")]
    pub(super) top: usize,
    /// Print one JSON object instead of a table
    #[arg(long, help_heading = "Output")]
    pub(super) json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let options = args.mining.options(args.top)?;
    let (log, loaded, report) = load_and_mine(&args.logs, &args.input, &options)?;
    let shown = match args.top {
        0 => &report.workflows[..],
        n => &report.workflows[..n.min(report.workflows.len())],
    };
    // What is printed and what is written are separate choices: the library gets every
    // workflow found (so that a template goes stale only when its workflow is no longer found),
    // whatever `--top` shows. Chains of `--keep closed|all` are too many: those shown.
    let written = match options.keep {
        Keep::Workflows => &report.workflows[..],
        Keep::Closed | Keep::All => shown,
    };
    // A library that cannot be written (read-only, full) fails the command, after the answer
    // is printed: the mining was not wasted.
    let saved = match args.no_write {
        true => Ok(()),
        false => {
            let chains: Vec<_> = (written.iter())
                .map(|w| pipeline::template_stats(w, &report, &log, &options))
                .collect();
            save(&args, &chains)
        }
    };

    // Stdout is line-buffered: one write per line of a large JSON answer would dominate.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        json::write(&mut out, &loaded, &log, &report, &options, shown)?;
    } else {
        table::write(
            &mut out,
            &loaded,
            &log,
            &report,
            &options,
            shown,
            started.elapsed(),
        )?;
    }
    out.flush()?;
    if let Some(note) = nothing_found(&report, &options) {
        eprintln!("{note}");
    }
    // The process ends next: the log and the report are left to it. Freed one allocation at a
    // time, those of 10M calls took 40 ms (BENCHMARKS.md).
    std::mem::forget((log, report));
    saved
}

/// What to say when nothing was found.
pub(super) fn nothing_found(report: &MineReport, options: &MineOptions) -> Option<String> {
    if !report.workflows.is_empty() {
        return None;
    }
    let what = match options.keep {
        Keep::Workflows => "no workflow runs whole".to_string(),
        _ => format!(
            "no chain of {}–{} tools occurs",
            options.min_len, options.max_len
        ),
    };
    Some(format!(
        "note: {what} in {} or more sessions; try a lower --min-support or a larger --max-gap",
        report.min_support
    ))
}

/// Loads `logs` and mines them, with a progress bar, and warns on stderr about what the loading
/// passed over.
pub(super) fn load_and_mine(
    logs: &[String],
    input: &LogArgs,
    options: &MineOptions,
) -> anyhow::Result<(EventLog, LoadReport, MineReport)> {
    let (inputs, passed_over) = load::expand_inputs(logs)?;
    let progress = ProgressBar::new_spinner();
    progress.enable_steady_tick(Duration::from_millis(120));
    let (log, mut loaded) = load::load(&inputs, &input.load_options(), &|input| {
        progress.set_message(format!("loading {input}"))
    })?;
    loaded.not_logs.extend(passed_over);
    warn(&mut std::io::stderr(), &loaded)?;
    progress.set_message("finding workflows");
    let report = pipeline::mine(&log, options, &|step| match step {
        Progress::Chains { tools } => {
            progress.set_style(
                ProgressStyle::with_template("mining {bar:30} {pos}/{len} tools {elapsed}")
                    .expect("valid template"),
            );
            progress.set_length(tools as u64);
        }
        Progress::ToolDone => progress.inc(1),
        Progress::Workflows(n) => progress.set_message(format!("finding workflows: {n} found")),
    });
    progress.finish_and_clear();
    Ok((log, loaded, report?))
}

/// Writes the templates of mined chains into the library and says what changed on stderr.
pub(super) fn save(args: &Args, chains: &[(Vec<String>, ChainStats)]) -> anyhow::Result<()> {
    let library = Library::new(&args.library);
    let options = SaveOptions {
        accumulate: args.accumulate,
        prune: args.prune,
        lock_wait: Duration::from_secs(args.lock_wait),
    };
    let saved = library
        .save_mined(chains, options, |lock| {
            eprintln!(
                "waiting for {} (another patterns process is writing the library)…",
                lock.display()
            )
        })
        .with_context(|| format!("could not update the library '{}'", args.library.display()))?;
    eprintln!(
        "library {}: {} new, {} updated, {} unchanged, {} marked stale, {} removed",
        args.library.display(),
        saved.created.len(),
        saved.updated.len(),
        saved.unchanged.len(),
        saved.marked_stale.len(),
        saved.removed.len()
    );
    for name in &saved.too_large {
        eprintln!(
            "warning: template '{}' not written: it would be over the library's limit of {} MB per file",
            crate::cmd::table::printable(&name.chars().take(80).collect::<String>()),
            crate::template::MAX_FILE_BYTES / (1024 * 1024)
        );
    }
    for (name, problems) in &saved.invalid {
        eprintln!(
            "warning: template '{}' not written, it fails the library's checks: {}",
            crate::cmd::table::printable(&name.chars().take(80).collect::<String>()),
            crate::cmd::table::printable(&problems.join("; "))
        );
    }
    Ok(())
}

/// Says on `err` what the loading passed over or assumed.
pub(super) fn warn(err: &mut impl Write, report: &LoadReport) -> std::io::Result<()> {
    if !report.not_logs.is_empty() {
        writeln!(
            err,
            "warning: passed over {} entr{} of the folders given:",
            count(report.not_logs.len() as u64),
            if report.not_logs.len() == 1 {
                "y"
            } else {
                "ies"
            },
        )?;
        for why in report.not_logs.iter().take(REPORTED_BAD_ROWS) {
            writeln!(err, "  {why}")?;
        }
    }
    if let Some((session, first, second)) = &report.split_example {
        writeln!(
            err,
            "warning: {} session id{} {} calls in two files more than a day apart (e.g. {session} in \
             {first} and {second}); they are merged into one session each. If ids restart per file, \
             give --session-per-file",
            count(report.split_sessions as u64),
            plural(report.split_sessions),
            if report.split_sessions == 1 {
                "has"
            } else {
                "have"
            },
        )?;
    }
    // What was read of each kind, when it is not only tables: transcripts and traces are
    // assembled from many records, and what could not be paired must show.
    if report.formats.iter().any(|f| f.format != load::Kind::Table) {
        for f in &report.formats {
            writeln!(
                err,
                "read {} {} file{}: {} session{}{}, {} call{}, {} unpaired, {} skipped",
                count(f.files as u64),
                f.format.title(),
                plural(f.files),
                count(f.sessions as u64),
                plural(f.sessions),
                match f.subagent_sessions {
                    0 => String::new(),
                    n => format!(" ({} of them subagents)", count(n as u64)),
                },
                count(f.calls as u64),
                plural(f.calls),
                count(f.unpaired as u64),
                count(f.skipped as u64),
            )?;
        }
    }
    for f in &report.formats {
        let said = [
            (
                f.unpaired,
                "warning",
                "got no result (cut off?); kept as failed calls",
            ),
            (
                f.repeated,
                "note",
                "found again in a later file (a resumed session's history); counted once",
            ),
            (
                f.assumed_success,
                "warning",
                "with no exit code in the output; counted as succeeded",
            ),
        ];
        for (n, level, what) in said.into_iter().filter(|(n, ..)| *n > 0) {
            writeln!(
                err,
                "{level}: {} {} call{} {what}",
                count(n as u64),
                f.format.title(),
                plural(n)
            )?;
        }
    }
    if let Some(o) = &report.outcomes {
        let known = o.known as f64 / (o.known + o.unknown).max(1) as f64;
        writeln!(
            err,
            "outcomes: {} of {} session{} known ({:.0}%), from {}; {}",
            count(o.known as u64),
            count((o.known + o.unknown) as u64),
            plural(o.known + o.unknown),
            known * 100.0,
            o.source,
            match o.binary {
                true => "solved or not".to_string(),
                false => format!("rewards from {} to {}", o.min, o.max),
            }
        )?;
        let said = [
            (
                o.conflicting,
                "session",
                "given different outcomes (unknown)",
            ),
            (o.bad, "outcome value", "that could not be read (unknown)"),
            (
                o.not_in_log(),
                "session",
                "of the results file not in the log",
            ),
        ];
        for (n, what, why) in said.into_iter().filter(|(n, ..)| *n > 0) {
            writeln!(
                err,
                "warning: {} {what}{} {why}",
                count(n as u64),
                plural(n)
            )?;
        }
        for example in &o.examples {
            writeln!(err, "  {example}")?;
        }
    }
    for file in &report.files_without_success {
        writeln!(
            err,
            "warning: {file} has no success column; every call in it counts as succeeded"
        )?;
    }
    if report.skipped > 0 {
        writeln!(
            err,
            "warning: skipped {} bad row{} of {}:",
            count(report.skipped as u64),
            plural(report.skipped),
            count(report.rows as u64)
        )?;
        for row in &report.bad_rows {
            writeln!(err, "  {row}")?;
        }
        if report.skipped > REPORTED_BAD_ROWS {
            writeln!(
                err,
                "  … and {} more (--strict stops at the first)",
                count((report.skipped - REPORTED_BAD_ROWS) as u64)
            )?;
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
