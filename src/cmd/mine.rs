//! `patterns mine`: load logs, mine frequent tool chains, score them, print them.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::table::{Table, count};
use crate::UsageError;
use crate::events::EventLog;
use crate::events::{TimeKind, UNKNOWN_DURATION};
use crate::load::{self, ColumnNames, LoadOptions, LoadReport, McpNames, REPORTED_BAD_ROWS};
use crate::mining::{self, Embedding, MinSupport, MineParams, Sequences};
use crate::score::{self, Keep};
use crate::structure::{self, FlowParams, ParallelParams, Workflow};
use crate::template::{self, ChainStats, Library, SaveOptions};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Input: one row per tool call with a session id, a timestamp and a tool name (and optionally a
success flag). Columns are found by name (session_id/session/trace_id/case_id…, timestamp/ts/time…,
tool/tool_name/name/activity…, success/ok/status/outcome/error) unless given by the --*-col flags.
Timestamps: RFC 3339 / ISO 8601 text (no zone = UTC), epoch seconds, milliseconds, microseconds or
nanoseconds, or integers below 100,000,000 as plain order keys. Calls in a session are ordered by
timestamp, ties by input order.

Figures: support = sessions in which the chain occurs; success = share of those sessions in which
some occurrence had every step succeed; score = support × success.

Examples:
  patterns mine data/sample.csv
  patterns mine 'logs/*.jsonl' logs/extra.parquet --min-support 0.01 --top 50
  patterns mine data/helpdesk.csv --max-gap 0 --keep all --json
  cat today.csv | patterns mine - --strict")]
pub struct Args {
    /// Log files (CSV, JSONL/NDJSON, Parquet), globs, or '-' for CSV on stdin
    #[arg(required = true, value_name = "LOGS")]
    logs: Vec<String>,

    /// Column holding the session id
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    session_col: Option<String>,
    /// Column holding the timestamp
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    timestamp_col: Option<String>,
    /// Column holding the tool name
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    tool_col: Option<String>,
    /// Column holding the success flag (a column named 'error' means: empty = success)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    success_col: Option<String>,
    /// Column holding each call's duration in milliseconds (optional; feeds avg_duration_ms)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    duration_col: Option<String>,
    /// Rewrite MCP tool names logged as mcp__server__tool as `tool` (default) or `server.tool`
    #[arg(long, value_name = "STYLE", num_args = 0..=1, default_missing_value = "tool", help_heading = "Columns")]
    normalize_mcp: Option<McpNames>,
    /// Column holding each call's arguments as JSON text (optional; feeds data flow)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    arguments_col: Option<String>,
    /// Column holding each call's result as JSON text (optional; feeds data flow)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    result_col: Option<String>,
    /// Stop with exit code 2 at the first bad row instead of skipping and counting bad rows
    #[arg(long)]
    strict: bool,

    /// Least number of sessions a chain must occur in: a count (5), a fraction of the sessions
    /// (0.01, rounded up), or 'auto' = max(5, 0.1 % of the sessions)
    #[arg(
        long,
        default_value = "auto",
        value_name = "N|FRACTION",
        help_heading = "Mining"
    )]
    min_support: MinSupport,
    /// Shortest chain to report
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Mining")]
    min_len: usize,
    /// Longest chain to report
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
    /// 'closed' drops a chain when a longer chain containing it occurs in nearly as many
    /// sessions (see --closed-tolerance); 'all' keeps every frequent chain
    #[arg(
        long,
        default_value = "closed",
        value_name = "closed|all",
        help_heading = "Mining"
    )]
    keep: Keep,
    /// With --keep closed: drop a chain when a longer one has at least (1 - this) × its support
    #[arg(long, default_value_t = score::DEFAULT_TOLERANCE, value_name = "SHARE", value_parser = parse_share, help_heading = "Mining")]
    closed_tolerance: f64,

    /// Merge two orderings of a chain into a parallel block when the rarer one occurs in at least this share of the sessions of the other
    #[arg(long, default_value_t = ParallelParams::default().min_share, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    parallel_min_share: f64,
    /// … or when the two calls overlapped in time in at least this share of occurrences (logs with durations)
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

    /// Library folder that the top chains are written to as workflow templates
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

    /// How many chains to print and write as templates (0 = all)
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.min_len == 0 || args.min_len > args.max_len {
        return Err(UsageError(format!(
            "--min-len {} and --max-len {} do not make a range of chain lengths (1 ≤ min ≤ max)",
            args.min_len, args.max_len
        ))
        .into());
    }
    let inputs = load::expand_inputs(&args.logs)?;
    let options = LoadOptions {
        columns: ColumnNames {
            session: args.session_col.clone(),
            timestamp: args.timestamp_col.clone(),
            tool: args.tool_col.clone(),
            success: args.success_col.clone(),
            duration: args.duration_col.clone(),
            arguments: args.arguments_col.clone(),
            result: args.result_col.clone(),
        },
        strict: args.strict,
        mcp_names: args.normalize_mcp,
    };

    let progress = ProgressBar::new_spinner();
    progress.enable_steady_tick(Duration::from_millis(120));
    let (log, report) = load::load(&inputs, &options, &|input| {
        progress.set_message(format!("loading {input}"))
    })?;
    progress.finish_and_clear();
    warn(&report);

    let seqs = Sequences::new(&log, args.keep_repeats);
    let params = MineParams {
        min_len: args.min_len,
        max_len: args.max_len,
        max_gap: args.max_gap.0,
        min_support: args.min_support.resolve(log.session_count()),
    };
    let progress = ProgressBar::new(log.tool_names.len() as u64).with_style(
        ProgressStyle::with_template("mining {bar:30} {pos}/{len} tools {elapsed}")
            .expect("valid template"),
    );
    let mined = mining::mine(&seqs, &params, &|| progress.inc(1));
    progress.finish_and_clear();
    let found = mined.len();
    let frequent: HashMap<Vec<u32>, usize> = mined
        .iter()
        .map(|m| (m.pattern.clone(), m.support))
        .collect();
    let ranked = score::rank(mined, args.keep, args.closed_tolerance);
    let parallel = ParallelParams {
        min_share: args.parallel_min_share,
        min_overlap: args.parallel_min_overlap,
        tolerance: args.closed_tolerance,
        // No chain examined, none merged.
        limit: if args.no_parallel {
            0
        } else {
            ParallelParams::default()
                .limit
                .max(args.top.saturating_mul(4))
        },
        ..ParallelParams::default()
    };
    let ranked = structure::merge_orderings(
        ranked,
        &frequent,
        &seqs,
        &log,
        args.keep_repeats,
        params.max_gap,
        &parallel,
    );
    let shown = match args.top {
        0 => &ranked[..],
        n => &ranked[..n.min(ranked.len())],
    };

    if !args.no_write {
        save(&args, shown, &log, &seqs, &params)?;
    }

    // Stdout is line-buffered: one write per line of a large JSON answer would dominate.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let json = JsonOutput {
            input: JsonInput {
                files: &report.files,
                rows: report.rows,
                skipped: report.skipped,
                sessions: log.session_count(),
                tools: log.tool_names.len(),
                calls: log.event_count(),
                calls_after_collapsing: seqs.event_count(),
            },
            settings: JsonSettings {
                min_support: params.min_support,
                min_len: params.min_len,
                max_len: params.max_len,
                max_gap: params.max_gap,
                keep_repeats: args.keep_repeats,
                keep: args.keep,
                closed_tolerance: args.closed_tolerance,
                parallel: !args.no_parallel,
                parallel_min_share: args.parallel_min_share,
                parallel_min_overlap: args.parallel_min_overlap,
                flow_min_share: args.flow_min_share,
                flow_constant_share: args.flow_constant_share,
            },
            frequent: found,
            kept: ranked.len(),
            patterns: shown.iter().map(|w| JsonPattern::new(w, &log)).collect(),
        };
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else {
        let mut table = Table::new(&[
            ("rank", true),
            ("support", true),
            ("success", true),
            ("score", true),
            ("chain", false),
        ]);
        for (i, w) in shown.iter().enumerate() {
            let p = &w.mined;
            table.push(vec![
                (i + 1).to_string(),
                count(p.support as u64),
                format!("{:.1}%", p.success_rate() * 100.0),
                count(p.successes as u64),
                chain(w, &log),
            ]);
        }
        if !shown.is_empty() {
            out.write_all(table.render().as_bytes())?;
            writeln!(out)?;
        }
        writeln!(
            out,
            "{}",
            summary(
                &report,
                &log,
                &params,
                found,
                ranked.len(),
                shown.len(),
                started.elapsed()
            )
        )?;
    }
    out.flush()?;
    if ranked.is_empty() {
        eprintln!(
            "note: no chain of {}–{} tools occurs in {} or more sessions; try a lower --min-support or a larger --max-gap",
            params.min_len, params.max_len, params.min_support
        );
    }
    Ok(())
}

/// Writes the shown chains into the library and says what changed on stderr.
fn save(
    args: &Args,
    shown: &[Workflow],
    log: &EventLog,
    seqs: &Sequences,
    params: &MineParams,
) -> anyhow::Result<()> {
    let time = |t: i64| {
        chrono::DateTime::from_timestamp_micros(t)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let chains: Vec<(Vec<String>, ChainStats)> = shown
        .iter()
        .map(|w| {
            let p = &w.mined;
            // Each ordering's occurrences, scanned once for the figures and the data flow.
            let occurrences: Vec<(usize, Embedding)> = (w.orderings.iter().enumerate())
                .flat_map(|(k, o)| {
                    let found = mining::first_embeddings(seqs, o, params.max_gap);
                    found.into_iter().map(move |e| (k, e))
                })
                .collect();
            let found: Vec<&Embedding> = occurrences.iter().map(|(_, e)| e).collect();
            let (mut first_seen, mut last_seen) = (None, None);
            if log.time_kind == TimeKind::EpochMicros {
                first_seen = found
                    .iter()
                    .map(|e| log.timestamps[log.offsets[e.session]])
                    .min()
                    .and_then(time);
                last_seen = found
                    .iter()
                    .map(|e| log.timestamps[log.offsets[e.session + 1] - 1])
                    .max()
                    .and_then(time);
            }
            let avg_duration_ms = log.durations.as_ref().and_then(|durations| {
                let totals: Vec<u64> = found
                    .iter()
                    .filter_map(|e| {
                        let calls: Vec<_> = log.collapsed(e.session, args.keep_repeats).collect();
                        let mut total = 0u64;
                        for i in e.positions.iter().flat_map(|&p| calls[p].clone()) {
                            // An occurrence with a call of unknown duration does not count.
                            if durations[i] == UNKNOWN_DURATION {
                                return None;
                            }
                            total += u64::from(durations[i]);
                        }
                        Some(total)
                    })
                    .collect();
                (!totals.is_empty())
                    .then(|| (totals.iter().sum::<u64>() as f64 / totals.len() as f64).round())
            });
            let retries = (0..p.pattern.len())
                .map(|i| planned_retries(found.iter().map(|e| e.retries[i])))
                .collect();
            let chain: Vec<String> = log.names(&p.pattern).map(String::from).collect();
            let (parameters, variables) = structure::infer(
                w,
                &occurrences,
                log,
                args.keep_repeats,
                &FlowParams {
                    min_share: args.flow_min_share,
                    constant_share: args.flow_constant_share,
                    ..FlowParams::default()
                },
            )
            .map(|sources| structure::parameters(&sources, &template::step_ids(&chain)))
            .unwrap_or_default();
            let stats = ChainStats {
                parallel: w.block.clone(),
                orderings: w.orderings[1..]
                    .iter()
                    .map(|o| log.names(o).map(String::from).collect())
                    .collect(),
                parameters,
                variables,
                support: p.support as u64,
                success_rate: p.success_rate(),
                score: p.score(),
                first_seen,
                last_seen,
                retries,
                avg_duration_ms,
            };
            (chain, stats)
        })
        .collect();
    let library = Library::new(&args.library);
    let options = SaveOptions {
        accumulate: args.accumulate,
        prune: args.prune,
        lock_wait: Duration::from_secs(args.lock_wait),
    };
    let report = library
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
        report.created.len(),
        report.updated.len(),
        report.unchanged.len(),
        report.marked_stale.len(),
        report.removed.len()
    );
    Ok(())
}

/// The retries to plan for a step from the retries its calls had in each occurrence: when at
/// least one occurrence in ten was retried, the median retries of the retried ones (a median,
/// so that one runaway retry loop does not set the plan).
fn planned_retries(observed: impl Iterator<Item = u32>) -> u32 {
    let mut all = 0;
    let mut retried: Vec<u32> = observed.inspect(|_| all += 1).filter(|&r| r > 0).collect();
    if retried.is_empty() || retried.len() * 10 < all {
        return 0;
    }
    retried.sort_unstable();
    retried[retried.len() / 2]
}

fn warn(report: &LoadReport) {
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

/// `a → {b ∥ c} → d`: the chain, with a parallel block in braces.
fn chain(w: &Workflow, log: &EventLog) -> String {
    let names: Vec<&str> = log.names(&w.mined.pattern).collect();
    template::chain_text(&names, w.block.clone())
}

fn summary(
    report: &LoadReport,
    log: &EventLog,
    params: &MineParams,
    found: usize,
    kept: usize,
    shown: usize,
    elapsed: Duration,
) -> String {
    // "1,234 sessions", "1 session".
    let n = |n: usize, what: &str| format!("{} {what}{}", count(n as u64), plural(n));
    format!(
        "{} · {} ({} skipped) · {} · {} · min support {} · {} kept of {} frequent, {} shown · {:.2} s",
        n(report.files.len(), "file"),
        n(report.rows, "row"),
        count(report.skipped as u64),
        n(log.session_count(), "session"),
        n(log.tool_names.len(), "tool"),
        count(params.min_support as u64),
        n(kept, "chain"),
        count(found as u64),
        shown,
        elapsed.as_secs_f64()
    )
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    input: JsonInput<'a>,
    settings: JsonSettings,
    /// Frequent chains before pruning.
    frequent: usize,
    /// Chains after pruning, of which `patterns` holds the top ones.
    kept: usize,
    patterns: Vec<JsonPattern<'a>>,
}

#[derive(Serialize)]
struct JsonInput<'a> {
    files: &'a [String],
    rows: usize,
    skipped: usize,
    sessions: usize,
    tools: usize,
    calls: usize,
    calls_after_collapsing: usize,
}

#[derive(Serialize)]
struct JsonSettings {
    min_support: usize,
    min_len: usize,
    max_len: usize,
    max_gap: Option<usize>,
    keep_repeats: bool,
    keep: Keep,
    closed_tolerance: f64,
    parallel: bool,
    parallel_min_share: f64,
    parallel_min_overlap: f64,
    flow_min_share: f64,
    flow_constant_share: f64,
}

#[derive(Serialize)]
struct JsonPattern<'a> {
    pattern: Vec<&'a str>,
    support: usize,
    occurrences: u64,
    success_rate: f64,
    score: f64,
    /// The tools that run in either order.
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel: Option<Vec<&'a str>>,
    /// Every ordering merged into this workflow (support and success count them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    orderings: Option<Vec<Vec<&'a str>>>,
    /// Share of the block's occurrences whose calls overlapped in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    overlap: Option<f64>,
}

impl<'a> JsonPattern<'a> {
    fn new(w: &Workflow, log: &'a EventLog) -> JsonPattern<'a> {
        let p = &w.mined;
        let pattern: Vec<&str> = log.names(&p.pattern).collect();
        JsonPattern {
            parallel: w.block.as_ref().map(|b| pattern[b.clone()].to_vec()),
            orderings: (w.orderings.len() > 1)
                .then(|| w.orderings.iter().map(|o| log.names(o).collect()).collect()),
            overlap: w.overlap.map(|o| (o * 1000.0).round() / 1000.0),
            pattern,
            support: p.support,
            occurrences: p.occurrences,
            success_rate: p.success_rate(),
            score: p.score(),
        }
    }
}
