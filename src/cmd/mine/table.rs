//! `patterns mine`'s table: one row per workflow, its funnel and main variants below it, and a
//! summary line.

use std::io::Write;
use std::time::Duration;

use super::plural;
use crate::cmd::table::{Table, count, printable};
use crate::events::EventLog;
use crate::load::LoadReport;
use crate::outcome::{Comparison, Effect};
use crate::pipeline::{self, MineOptions, MineReport};
use crate::structure::Workflow;

/// Variants shown under a workflow; `--json` has them all.
const SHOWN_VARIANTS: usize = 3;

pub fn write(
    out: &mut impl Write,
    loaded: &LoadReport,
    log: &EventLog,
    report: &MineReport,
    options: &MineOptions,
    shown: &[Workflow],
    elapsed: Duration,
) -> std::io::Result<()> {
    let summarised = report.frequent.is_none();
    // A time column when some workflow shown has one (a log can have an empty duration column).
    let times: Vec<Option<f64>> = (shown.iter())
        .map(|w| pipeline::duration_ms(w, report, log, options))
        .collect();
    let timed = times.iter().any(Option::is_some);
    let outcomes = log.outcomes.is_some();
    let mut columns = vec![("rank", true), ("support", true), ("success", true)];
    if outcomes {
        columns.push(("solved", true));
    }
    columns.push(("score", true));
    if summarised {
        columns.push(("sessions", true));
    }
    if timed {
        columns.push(("time", true));
    }
    columns.push((if summarised { "workflow" } else { "chain" }, false));
    let mut table = Table::new(&columns);
    // Lines under a row: they go after it, indented to the chain's column.
    let mut details: Vec<Vec<String>> = Vec::new();
    for (i, w) in shown.iter().enumerate() {
        let p = &w.mined;
        let mut row = vec![
            (i + 1).to_string(),
            count(p.support as u64),
            format!("{:.1}%", p.success_rate() * 100.0),
        ];
        if outcomes {
            row.push(w.outcome.map_or("-".into(), |c| outcome_cell(&c)));
        }
        row.push(count(w.score().round().max(0.0) as u64));
        if let Some(f) = &w.folded {
            let share = f.sessions as f64 / report.sessions.max(1) as f64;
            row.push(format!(
                "{} ({:.0}%)",
                count(f.sessions as u64),
                share * 100.0
            ));
        }
        if timed {
            row.push(times[i].map_or("-".into(), duration));
        }
        row.push(pipeline::workflow_text(w, log));
        table.push(row);
        details.push(detail_lines(w, log));
    }
    if !shown.is_empty() {
        let rendered = table.render();
        let mut lines = rendered.lines();
        let header = lines.next().unwrap_or_default();
        // The detail lines start where the last column does.
        let indent = header
            .rfind(if summarised { "workflow" } else { "chain" })
            .unwrap_or(0);
        writeln!(out, "{header}")?;
        for (line, extra) in lines.zip(&details) {
            writeln!(out, "{line}")?;
            for d in extra {
                writeln!(out, "{:indent$}{}", "", printable(d))?;
            }
        }
        writeln!(out)?;
    }
    if !report.paths_to_failure.is_empty() {
        writeln!(
            out,
            "paths to failure (markedly fewer tasks solved than in the other sessions):"
        )?;
        for p in &report.paths_to_failure {
            writeln!(out, "  {}", printable(&pipeline::failure_text(p, log)))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "{}",
        summary(loaded, log, report, shown.len(), elapsed)
    )
}

/// A mean time of a workflow: `850 ms`, `3.1 s`, `2.5 min`.
fn duration(ms: f64) -> String {
    match ms {
        ms if ms < 1_000.0 => format!("{ms:.0} ms"),
        ms if ms < 60_000.0 => format!("{:.1} s", ms / 1_000.0),
        ms => format!("{:.1} min", ms / 60_000.0),
    }
}

/// The outcome rate of a workflow's sessions (`56.2%`, or a mean reward `0.41`), marked when it
/// is markedly above (`↑`) or below (`↓`) the other sessions'.
fn outcome_cell(c: &Comparison) -> String {
    let value = c.shown(c.with.mean());
    match c.effect() {
        Effect::Lift => format!("{value} ↑"),
        Effect::Drop => format!("{value} ↓"),
        Effect::Unclear => value,
    }
}

/// `funnel: a 120 · b 110 · c 95` and `variants: without b 12 · + x after a 9 · …`, and the
/// task outcomes when the log has them.
fn detail_lines(w: &Workflow, log: &EventLog) -> Vec<String> {
    let outcome = w.outcome.as_ref().and_then(pipeline::outcome_text);
    let Some(f) = &w.folded else {
        return outcome.into_iter().collect();
    };
    let stages = pipeline::stage_names(w, log);
    let mut lines = vec![format!(
        "funnel: {}",
        stages
            .iter()
            .zip(&f.funnel)
            .map(|(s, n)| format!("{s} {}", count(*n as u64)))
            .collect::<Vec<_>>()
            .join(" · ")
    )];
    if !f.variants.is_empty() {
        let mut text: Vec<String> = f
            .variants
            .iter()
            .take(SHOWN_VARIANTS)
            .map(|v| {
                format!(
                    "{} {}",
                    pipeline::variant_text(&v.change, w, log),
                    count(v.sessions as u64)
                )
            })
            .collect();
        if f.variants.len() > SHOWN_VARIANTS {
            text.push(format!(
                "{} more in --json",
                f.variants.len() - SHOWN_VARIANTS
            ));
        }
        lines.push(format!("variants: {}", text.join(" · ")));
    }
    for l in &f.loops {
        lines.push(format!("loop: {}", pipeline::loop_text(l, w, log)));
    }
    if let Some(b) = &f.branch {
        lines.push(format!("branches: {}", pipeline::branch_text(b, log)));
    }
    lines.extend(outcome);
    lines.extend(pipeline::exits_text(w, log));
    lines
}

fn summary(
    loaded: &LoadReport,
    log: &EventLog,
    report: &MineReport,
    shown: usize,
    elapsed: Duration,
) -> String {
    // "1,234 sessions", "1 session".
    let n = |n: usize, what: &str| format!("{} {what}{}", count(n as u64), plural(n));
    let found = match report.frequent {
        None => n(report.workflows.len(), "workflow"),
        Some(frequent) => format!(
            "{} kept of {} frequent",
            n(report.workflows.len(), "chain"),
            count(frequent as u64)
        ),
    };
    let score = match log.outcomes {
        Some(_) => " · score = support × solved",
        None => "",
    };
    format!(
        "{} · {} ({} skipped) · {} · {} · min support {} · {found}, {shown} shown{score} · {:.2} s",
        n(loaded.files.len(), "file"),
        n(loaded.rows, "row"),
        count(loaded.skipped as u64),
        n(report.sessions, "session"),
        n(log.tool_names.len(), "tool"),
        count(report.min_support as u64),
        elapsed.as_secs_f64()
    )
}
