//! `patterns suggest`: workflows that continue a chain of tools, and the tools that come next.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use itertools::Itertools;
use serde::Serialize;

use super::logargs::LogArgs;
use super::table::{Table, count};
use crate::load;
use crate::mining;
use crate::pipeline::{self, MineOptions};
use crate::suggest::{self, MatchKind, NextTools};
use crate::template::{WorkflowTemplate, from_chain, name};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Workflows that contain the tools in that order are ranked: those that start with them first, then
those that contain them as consecutive steps, then with other steps between; by score within each.
'next tools' are the tools that directly follow the chain, with their share of sessions.

Examples:
  patterns suggest github_list_issues github_create_pr
  patterns suggest fetch_data --library /srv/workflows --json
  patterns suggest get_user_details --logs data/taubench_airline_gpt4o.csv")]
pub struct Args {
    /// The chain of tools so far
    #[arg(required = true, value_name = "TOOL")]
    tools: Vec<String>,
    /// Library folder to read
    #[arg(
        long,
        env = "PATTERNS_LIBRARY",
        default_value = "workflows",
        value_name = "DIR"
    )]
    library: PathBuf,
    /// Mine these logs (with mine's defaults) instead of reading the library
    #[arg(long, num_args = 1.., value_name = "LOGS")]
    logs: Vec<String>,
    /// With --logs: how to read them (as `mine`)
    #[command(flatten)]
    input: LogArgs,
    /// With --logs: the least support of a workflow (as `mine`: sessions, a fraction, or auto)
    #[arg(long, default_value = "auto", value_name = "N|FRACTION")]
    min_support: mining::MinSupport,
    /// How many workflows to show (0 = all)
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    query: &'a [String],
    workflows: Vec<JsonWorkflow<'a>>,
    next_tools: Vec<JsonNext>,
}

#[derive(Serialize)]
struct JsonWorkflow<'a> {
    name: &'a str,
    #[serde(rename = "match")]
    kind: MatchKind,
    score: Option<f64>,
    support: Option<u64>,
    success_rate: Option<f64>,
    /// Share of its sessions that solved their task, when it was mined with task outcomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome_rate: Option<f64>,
    remaining: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonNext {
    tool: String,
    share: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (templates, next, logged) = if args.logs.is_empty() {
        let templates = super::read_catalog(&args.library)?;
        let next = suggest::next_tools(&templates, &args.tools);
        (templates, next, Vec::new())
    } else {
        from_logs(&args)?
    };

    // A tool is known when a workflow uses it, or (with --logs) the log has it: its next tools
    // are counted in the log whether or not a workflow reached the least support.
    let known: BTreeSet<&str> = (templates.iter().flat_map(|t| t.tools()))
        .chain(logged.iter().map(String::as_str))
        .collect();
    let unknown: Vec<&String> = args
        .tools
        .iter()
        .filter(|t| !known.contains(t.as_str()))
        .collect();
    if !unknown.is_empty() {
        // A chain with a tool nothing knows has no answer: that is bad input, not an empty one.
        let lines: Vec<String> = unknown
            .iter()
            .map(|tool| {
                let close = suggest::did_you_mean(tool, &known);
                match close.is_empty() {
                    true => format!("unknown tool '{tool}': no workflow uses it"),
                    false => format!("unknown tool '{tool}': did you mean {}?", close.join(", ")),
                }
            })
            .collect();
        return Err(crate::UsageError(lines.join("\n")).into());
    }
    let found = suggest::rank(&templates, &args.tools);
    let shown = match args.top {
        0 => &found[..],
        n => &found[..n.min(found.len())],
    };
    if found.is_empty() {
        eprintln!(
            "no workflow contains {} in that order",
            args.tools.join(" → ")
        );
    }

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let json = JsonOutput {
            query: &args.tools,
            workflows: shown
                .iter()
                .map(|s| JsonWorkflow {
                    name: &s.template.name,
                    kind: s.kind,
                    score: s.template.metadata.score,
                    support: s.template.metadata.usage_count,
                    success_rate: s.template.metadata.success_rate,
                    outcome_rate: s.template.metadata.measured("outcome_rate", None),
                    remaining: s.remaining.clone(),
                })
                .collect(),
            next_tools: next
                .iter()
                .map(|(tool, share)| JsonNext {
                    tool: tool.clone(),
                    share: *share,
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else if !shown.is_empty() {
        // A column of task outcomes when some workflow shown was mined from a log with them.
        let outcomes = shown
            .iter()
            .any(|s| s.template.metadata.measured("outcome_rate", None).is_some());
        let mut columns = vec![
            ("rank", true),
            ("match", false),
            ("score", true),
            ("support", true),
            ("success", true),
        ];
        if outcomes {
            columns.push(("solved", true));
        }
        columns.extend([("workflow", false), ("then", false)]);
        let mut table = Table::new(&columns);
        for (i, s) in shown.iter().enumerate() {
            let m = &s.template.metadata;
            let kind = match s.kind {
                MatchKind::Prefix => "prefix",
                MatchKind::Contiguous => "contiguous",
                MatchKind::Gapped => "gapped",
            };
            let mut row = vec![
                (i + 1).to_string(),
                kind.into(),
                m.score
                    .map_or("-".into(), |s| count(s.round().max(0.0) as u64)),
                m.usage_count.map_or("-".into(), count),
                m.success_rate
                    .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
            ];
            if outcomes {
                let rate = s.template.metadata.measured("outcome_rate", None);
                row.push(rate.map_or("-".into(), |r| format!("{:.1}%", r * 100.0)));
            }
            row.extend([
                s.template.name.clone(),
                if s.remaining.is_empty() {
                    "(ends here)".into()
                } else {
                    s.remaining.iter().join(" → ")
                },
            ]);
            table.push(row);
        }
        out.write_all(table.render().as_bytes())?;
        if !next.is_empty() {
            writeln!(out, "\nnext tools after {}:", args.tools.join(" → "))?;
            let mut table = Table::new(&[("tool", false), ("share", true)]);
            for (tool, share) in next.iter().take(5) {
                table.push(vec![tool.clone(), format!("{:.0}%", share * 100.0)]);
            }
            for line in table.render().lines().skip(1) {
                writeln!(out, "  {line}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Templates for the workflows mined from `--logs` with mine's defaults, and the next tools
/// counted in the log itself (share of the sessions in which the chain occurs).
/// The log's tools come back too, in name order.
fn from_logs(args: &Args) -> anyhow::Result<(Vec<WorkflowTemplate>, NextTools, Vec<String>)> {
    let (inputs, passed_over) = load::expand_inputs(&args.logs)?;
    let (log, mut loaded) = load::load(&inputs, &args.input.load_options(), &|_| {})?;
    loaded.not_logs.extend(passed_over);
    crate::cmd::mine::warn(&mut std::io::stderr(), &loaded)?;
    let options = MineOptions {
        min_support: args.min_support,
        ..MineOptions::default()
    };
    let report = pipeline::mine(&log, &options, &|_| {})?;
    let mut templates: Vec<WorkflowTemplate> = report
        .workflows
        .iter()
        .map(|w| {
            let (chain, stats) = pipeline::template_stats(w, &report, &log, &options);
            from_chain(name(&chain), &chain, &stats)
        })
        .collect();
    templates.extend(crate::template::builtins());
    let ids: Option<Vec<u32>> = args
        .tools
        .iter()
        .map(|t| log.tool_names.binary_search(t).ok().map(|i| i as u32))
        .collect();
    let next = match ids {
        None => Vec::new(),
        Some(ids) => {
            let (support, next) = mining::next_tools(&report.seqs, &ids, options.max_gap);
            next.into_iter()
                .map(|(t, n)| {
                    (
                        log.tool_names[t as usize].clone(),
                        n as f64 / support as f64,
                    )
                })
                .collect()
        }
    };
    Ok((templates, next, log.tool_names))
}
