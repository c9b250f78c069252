//! `patterns mine --json`: the input, the settings, and the workflows with everything folded
//! into them.

use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::events::EventLog;
use crate::load::LoadReport;
use crate::pipeline::{self, MineOptions, MineReport};
use crate::score::Keep;
use crate::structure::Workflow;

pub fn write(
    out: &mut impl Write,
    loaded: &LoadReport,
    log: &EventLog,
    report: &MineReport,
    options: &MineOptions,
    shown: &[Workflow],
) -> anyhow::Result<()> {
    let parallel = options.parallel.unwrap_or_default();
    let json = JsonOutput {
        input: JsonInput {
            files: &loaded.files,
            rows: loaded.rows,
            skipped: loaded.skipped,
            sessions: report.sessions,
            tools: log.tool_names.len(),
            calls: report.calls,
            calls_after_collapsing: report.collapsed_calls,
            formats: &loaded.formats,
            outcomes: loaded.outcomes.as_ref(),
        },
        score: match log.outcomes {
            Some(_) => "support × outcome rate",
            None => "support × success rate",
        },
        settings: JsonSettings {
            min_support: report.min_support,
            min_len: options.min_len,
            max_len: options.max_len,
            max_gap: options.max_gap,
            keep_repeats: options.keep_repeats,
            keep: options.keep,
            continuation: options.continuation,
            closed_tolerance: options.closed_tolerance,
            parallel: options.parallel.is_some(),
            parallel_min_share: parallel.min_share,
            parallel_min_overlap: parallel.min_overlap,
            flow_min_share: options.flow.min_share,
            flow_constant_share: options.flow.constant_share,
        },
        frequent: report.frequent,
        kept: report.workflows.len(),
        patterns: shown
            .iter()
            .map(|w| JsonPattern::new(w, log, report, options))
            .collect(),
        paths_to_failure: (log.outcomes.is_some()).then(|| {
            (report.paths_to_failure.iter())
                .map(|p| pipeline::failure_fields(p, log))
                .collect()
        }),
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)?;
    Ok(())
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    input: JsonInput<'a>,
    settings: JsonSettings,
    /// What `score` is: support × outcome rate when the log has task outcomes.
    score: &'static str,
    /// With --keep closed|all: frequent chains before pruning.
    #[serde(skip_serializing_if = "Option::is_none")]
    frequent: Option<usize>,
    /// Workflows (chains) found, of which `patterns` holds the top ones.
    kept: usize,
    patterns: Vec<JsonPattern<'a>>,
    /// With task outcomes: the tools, calls in a row and workflows whose sessions solve the
    /// task markedly less often than the others, and what came after them.
    #[serde(skip_serializing_if = "Option::is_none")]
    paths_to_failure: Option<Vec<Value>>,
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
    /// What was read of each kind of input (tables, transcripts, traces).
    formats: &'a [crate::load::FormatSummary],
    /// The sessions' task outcomes, when the log or a results file had them.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcomes: Option<&'a crate::load::OutcomeSummary>,
}

#[derive(Serialize)]
struct JsonSettings {
    min_support: usize,
    min_len: usize,
    max_len: usize,
    max_gap: Option<usize>,
    keep_repeats: bool,
    keep: Keep,
    continuation: f64,
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
    /// The steps by stage: a stage of several tools runs them in any order.
    stages: Vec<Vec<&'a str>>,
    support: usize,
    occurrences: u64,
    success_rate: f64,
    score: f64,
    /// The tools that run in any order, one list per stage of several tools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parallel: Vec<Vec<&'a str>>,
    /// Every ordering merged into this workflow (support and success count them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    orderings: Option<Vec<Vec<&'a str>>>,
    /// With --keep workflows: the sessions whose whole run took each ordering.
    #[serde(skip_serializing_if = "Option::is_none")]
    ordering_sessions: Option<&'a [usize]>,
    /// Share of the block's occurrences whose calls overlapped in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    overlap: Option<f64>,
    /// Mean time of an occurrence, when the log has durations.
    #[serde(skip_serializing_if = "Option::is_none")]
    avg_duration_ms: Option<f64>,
    /// With --keep workflows: sessions, funnel, variants; with outcomes, `outcome_rate`, …
    #[serde(flatten)]
    folded: Map<String, Value>,
}

impl<'a> JsonPattern<'a> {
    fn new(
        w: &'a Workflow,
        log: &'a EventLog,
        report: &MineReport,
        options: &MineOptions,
    ) -> JsonPattern<'a> {
        let p = &w.mined;
        let pattern: Vec<&str> = log.names(&p.pattern).collect();
        JsonPattern {
            stages: w
                .stages()
                .iter()
                .map(|s| s.iter().map(|&i| pattern[i]).collect())
                .collect(),
            parallel: w
                .blocks
                .iter()
                .map(|b| pattern[b.clone()].to_vec())
                .collect(),
            orderings: (w.orderings.len() > 1)
                .then(|| w.orderings.iter().map(|o| log.names(o).collect()).collect()),
            ordering_sessions: (w.orderings.len() > 1)
                .then_some(w.folded.as_ref().map(|f| &f.ordering_sessions[..]))
                .flatten(),
            overlap: w.overlap.map(|o| (o * 1000.0).round() / 1000.0),
            avg_duration_ms: pipeline::duration_ms(w, report, log, options),
            folded: {
                let mut fields = pipeline::folded_fields(w, log, report.sessions);
                let savings = pipeline::savings(w, report, log, options);
                fields.extend(pipeline::savings_fields(w, savings.as_ref()));
                fields
            },
            pattern,
            support: p.support,
            occurrences: p.occurrences,
            success_rate: p.success_rate(),
            score: w.score(),
        }
    }
}
