//! `patterns mine`: load logs, find their workflows, print them, write them into the library.

mod json;
mod table;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::logargs::LogArgs;
use super::table::count;
use crate::load::{self, LoadReport, REPORTED_BAD_ROWS};
use crate::mining::MinSupport;
use crate::mining::summary::SummaryParams;
use crate::pipeline::{self, MineOptions, MineReport, Progress};
use crate::score::{self, Keep};
use crate::structure::{FlowParams, ParallelParams};
use crate::template::{Library, SaveOptions};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Input: one row per tool call with a session id, a timestamp and a tool name (and optionally a
success flag). Columns are found by name (session_id/session/trace_id/case_id…, timestamp/ts/time…,
tool/tool_name/name/activity…, success/ok/status/outcome/error) unless given by the --*-col flags.
Timestamps: RFC 3339 / ISO 8601 text (no zone = UTC), epoch seconds, milliseconds, microseconds or
nanoseconds, or integers below 100,000,000 as plain order keys. Calls in a session are ordered by
timestamp, ties by input order. Several files are one log: a session id found in two files is one
session, its calls merged in time order (a warning says when they are more than a day apart;
--session-per-file keeps each file's sessions apart).

What is listed (--keep workflows, the default): the distinct workflows, each whole. One workflow
at a time is grown from the strongest pair of calls that no workflow explains yet: a step belongs
to it when most of its runs (--continuation) go on with it; tools that run in any order form one
stage. Its runs are then taken out of the log. A piece, a window or a one-call variant of a
workflow is folded into it: its funnel (sessions that reached each stage), its variants (a step
skipped, an extra call, a related chain) and its orderings. There is no length cap.
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
  cat today.csv | patterns mine - --strict")]
pub struct Args {
    /// Log files (CSV, JSONL/NDJSON, Parquet; gzip-compressed too), folders (their log files,
    /// recursively), globs, or '-' for standard input (any of those formats)
    #[arg(required = true, value_name = "LOGS")]
    logs: Vec<String>,

    #[command(flatten)]
    input: LogArgs,

    /// Least number of sessions a chain must occur in: a count (5), a fraction of the sessions
    /// (0.01, rounded up), or 'auto' = max(5, 0.1 % of the sessions)
    #[arg(
        long,
        default_value = "auto",
        value_name = "N|FRACTION",
        help_heading = "Mining"
    )]
    min_support: MinSupport,
    /// Shortest chain to report (--keep closed|all)
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Mining")]
    min_len: usize,
    /// Longest chain to report (--keep closed|all; workflows have no length cap)
    #[arg(long, default_value_t = 6, value_name = "N", help_heading = "Mining")]
    max_len: usize,
    /// Most other calls allowed between two steps of a chain (0 = contiguous), or 'none'
    #[arg(
        long,
        default_value = "2",
        value_name = "N|none",
        help_heading = "Mining"
    )]
    max_gap: MaxGap,
    /// Keep immediate repeats of a tool as separate calls (by default a run of retries is one
    /// call whose outcome is the last attempt's)
    #[arg(long, help_heading = "Mining")]
    keep_repeats: bool,
    /// 'workflows': the distinct workflows, each whole, with their funnels and variants;
    /// 'closed': frequent chains, dropping a chain when a longer chain containing it occurs in
    /// nearly as many sessions (see --closed-tolerance); 'all': every frequent chain
    #[arg(
        long,
        default_value = "workflows",
        value_name = "workflows|closed|all",
        help_heading = "Mining"
    )]
    keep: Keep,
    /// With --keep workflows: a step is part of a workflow when at least this share of its runs
    /// go on with it (0.5: most runs); steps that fewer runs take are variants
    #[arg(long, default_value_t = SummaryParams::default().continuation, value_name = "SHARE", help_heading = "Mining")]
    continuation: f64,
    /// With --keep closed: drop a chain when a longer one has at least (1 - this) × its support
    #[arg(long, default_value_t = score::DEFAULT_TOLERANCE, value_name = "SHARE", value_parser = parse_share, help_heading = "Mining")]
    closed_tolerance: f64,

    /// Tools run in any order (one stage) when the rarer order occurs in at least this share of the runs of the other
    #[arg(long, default_value_t = ParallelParams::default().min_share, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    parallel_min_share: f64,
    /// With --keep closed|all: … or when the two calls overlapped in time in at least this share of occurrences (logs with durations)
    #[arg(long, default_value_t = ParallelParams::default().min_overlap, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    parallel_min_overlap: f64,
    /// Keep every ordering a chain of its own
    #[arg(long, help_heading = "Structure")]
    no_parallel: bool,
    /// A binding or shared variable must hold in at least this share of a workflow's occurrences
    #[arg(long, default_value_t = FlowParams::default().min_share, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    flow_min_share: f64,
    /// An argument with one value in at least this share of the occurrences is a constant
    #[arg(long, default_value_t = FlowParams::default().constant_share, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    flow_constant_share: f64,

    /// Library folder that every workflow found is written to as a template (with --keep
    /// closed|all: the chains shown)
    #[arg(
        long,
        env = "PATTERNS_LIBRARY",
        default_value = "workflows",
        value_name = "DIR",
        help_heading = "Library"
    )]
    library: PathBuf,
    /// Only print; do not write templates
    #[arg(long, help_heading = "Library")]
    no_write: bool,
    /// Add this run's counts to those already in the library (for nightly runs over each day's
    /// new logs); by default a re-mined template gets this run's counts
    #[arg(long, help_heading = "Library")]
    accumulate: bool,
    /// Delete mined templates whose chain is no longer frequent; by default they are kept and
    /// marked "stale": true
    #[arg(long, help_heading = "Library")]
    prune: bool,
    /// Seconds to wait for another process that is writing the library
    #[arg(
        long,
        default_value_t = 600,
        value_name = "SECONDS",
        help_heading = "Library"
    )]
    lock_wait: u64,

    /// How many workflows (chains) to print (0 = all); with --keep closed|all also how many to
    /// write as templates
    #[arg(long, default_value_t = 20, value_name = "N", help_heading = "Output")]
    top: usize,
    /// Print one JSON object instead of a table
    #[arg(long, help_heading = "Output")]
    json: bool,
}

/// `--max-gap`: a number of calls, or `none` for no limit.
#[derive(Debug, Clone, Copy)]
struct MaxGap(Option<usize>);

impl std::str::FromStr for MaxGap {
    type Err = String;

    fn from_str(s: &str) -> Result<MaxGap, String> {
        match s {
            "none" => Ok(MaxGap(None)),
            _ => s
                .parse()
                .map(|n| MaxGap(Some(n)))
                .map_err(|_| format!("'{s}' is neither a number of calls nor 'none'")),
        }
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        _ => Err(format!("'{s}' is not a share in [0, 1)")),
    }
}

impl Args {
    /// The engine's options, checked.
    fn options(&self) -> Result<MineOptions, crate::UsageError> {
        let options = MineOptions {
            keep_repeats: self.keep_repeats,
            min_support: self.min_support,
            min_len: self.min_len,
            max_len: self.max_len,
            max_gap: self.max_gap.0,
            keep: self.keep,
            closed_tolerance: self.closed_tolerance,
            continuation: self.continuation,
            parallel: (!self.no_parallel).then(|| ParallelParams {
                min_share: self.parallel_min_share,
                min_overlap: self.parallel_min_overlap,
                limit: ParallelParams::default()
                    .limit
                    .max(self.top.saturating_mul(4)),
                ..ParallelParams::default()
            }),
            flow: FlowParams {
                min_share: self.flow_min_share,
                constant_share: self.flow_constant_share,
                ..FlowParams::default()
            },
        };
        options.check()?;
        Ok(options)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let options = args.options()?;
    let inputs = load::expand_inputs(&args.logs)?;
    let progress = ProgressBar::new_spinner();
    progress.enable_steady_tick(Duration::from_millis(120));
    let (log, loaded) = load::load(&inputs, &args.input.load_options(), &|input| {
        progress.set_message(format!("loading {input}"))
    })?;
    warn(&loaded);
    progress.set_message("finding workflows");
    let report = pipeline::mine(&log, &options, &|step| match step {
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
    let report = report?;
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
    if !args.no_write {
        save(&args, written, &report, &log, &options)?;
    }

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
    if report.workflows.is_empty() {
        let what = match options.keep {
            Keep::Workflows => "no workflow runs whole".to_string(),
            _ => format!(
                "no chain of {}–{} tools occurs",
                options.min_len, options.max_len
            ),
        };
        eprintln!(
            "note: {what} in {} or more sessions; try a lower --min-support or a larger --max-gap",
            report.min_support
        );
    }
    Ok(())
}

/// Writes the shown workflows into the library and says what changed on stderr.
fn save(
    args: &Args,
    shown: &[crate::structure::Workflow],
    report: &MineReport,
    log: &crate::events::EventLog,
    options: &MineOptions,
) -> anyhow::Result<()> {
    let chains: Vec<_> = shown
        .iter()
        .map(|w| pipeline::template_stats(w, report, log, options))
        .collect();
    let library = Library::new(&args.library);
    let options = SaveOptions {
        accumulate: args.accumulate,
        prune: args.prune,
        lock_wait: Duration::from_secs(args.lock_wait),
    };
    let saved = library
        .save_mined(&chains, options, |lock| {
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
    Ok(())
}

fn warn(report: &LoadReport) {
    if !report.not_logs.is_empty() {
        eprintln!(
            "warning: passed over {} file{} in the folders given that {} not a log:",
            count(report.not_logs.len() as u64),
            plural(report.not_logs.len()),
            if report.not_logs.len() == 1 {
                "is"
            } else {
                "are"
            }
        );
        for why in report.not_logs.iter().take(REPORTED_BAD_ROWS) {
            eprintln!("  {why}");
        }
    }
    if let Some((session, first, second)) = &report.split_example {
        eprintln!(
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
        );
    }
    // What was read of each kind, when it is not only tables: transcripts and traces are
    // assembled from many records, and what could not be paired must show.
    if report.formats.iter().any(|f| f.format != load::Kind::Table) {
        for f in &report.formats {
            eprintln!(
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
            );
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
            eprintln!(
                "{level}: {} {} call{} {what}",
                count(n as u64),
                f.format.title(),
                plural(n)
            );
        }
    }
    for file in &report.files_without_success {
        eprintln!("warning: {file} has no success column; every call in it counts as succeeded");
    }
    if report.skipped > 0 {
        eprintln!(
            "warning: skipped {} bad row{} of {}:",
            count(report.skipped as u64),
            plural(report.skipped),
            count(report.rows as u64)
        );
        for row in &report.bad_rows {
            eprintln!("  {row}");
        }
        if report.skipped > REPORTED_BAD_ROWS {
            eprintln!(
                "  … and {} more (--strict stops at the first)",
                count((report.skipped - REPORTED_BAD_ROWS) as u64)
            );
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
