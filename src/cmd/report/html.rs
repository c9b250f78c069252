//! The report as one self-contained HTML page: inline CSS and SVG, no script, no network. Charts
//! are drawn by plotters' SVG backend; the workflow drawings (layered by stage) are written here.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::cmd::table::count;
use crate::report::{Activity, Bucket, Card, MIN_ROUNDS, Report, Status, Transitions};
use crate::template::data_edges;

/// The most tools the tools table lists, and loops the loops table.
const TOOLS_LISTED: usize = 50;
const LOOPS_LISTED: usize = 20;
/// The most orderings a workflow's runs table lists.
const ORDERINGS_LISTED: usize = 4;

pub fn write(report: &Report, generator: &str) -> String {
    let mut page = String::with_capacity(1 << 16);
    let o = &report.overview;
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>patterns report: {} sessions, {} workflows</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        count(o.sessions as u64),
        count(o.found as u64),
    );
    header(&mut page, report);
    overview(&mut page, report);
    workflows(&mut page, report);
    if !report.paths_to_failure.is_empty() {
        paths_to_failure(&mut page, report);
    }
    tools(&mut page, report);
    loops(&mut page, report);
    savings(&mut page, report);
    if report.since.is_some() {
        since(&mut page, report);
    }
    let _ = write!(
        page,
        "<footer>Written by {}. Figures as in <code>patterns mine</code>: support = sessions with a whole run; \
         success = share of those with a run whose steps all succeeded.</footer>\n</body>\n</html>\n",
        esc(generator)
    );
    page
}

const STYLE: &str = "
:root{--ink:#1d2330;--muted:#5b6475;--line:#d8dde6;--soft:#f4f6fa;--accent:#2f6fdb;--bad:#c8402f;--good:#2e8b57}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);margin:0;background:#fff}
header,section,footer{max-width:1180px;margin:0 auto;padding:0 24px}
header{padding-top:28px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 12px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:16px;margin:0 0 6px;word-break:break-word}
nav a{margin-right:14px;color:var(--accent);text-decoration:none}
.muted{color:var(--muted)}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px;margin:16px 0}
.tile{background:var(--soft);border-radius:8px;padding:10px 14px}
.tile b{display:block;font-size:22px}
.tile span{color:var(--muted);font-size:13px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:14px}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.workflow{border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:16px 0}
.figures{color:var(--muted);margin:0 0 10px}
.drawing{overflow-x:auto;margin:6px 0 10px}
.cols{display:flex;flex-wrap:wrap;gap:28px}
.cols>div{flex:1 1 340px;min-width:0}
.cols>div.wide{flex:2 1 500px}
.cols>div.fit{flex:0 0 auto;max-width:100%;overflow-x:auto}
.bar{height:12px;background:var(--accent);border-radius:2px;min-width:1px}
pre{background:var(--soft);padding:8px 12px;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px}
.badge{display:inline-block;font-size:12px;padding:1px 8px;border-radius:9px;margin-left:8px;vertical-align:2px;background:var(--soft)}
.badge.new{background:#dcf3e4;color:var(--good)}.badge.changed{background:#fdf0d5;color:#8a5a00}
.chart svg{max-width:100%;height:auto}
footer{color:var(--muted);font-size:13px;margin:40px auto 30px}
";

fn header(page: &mut String, r: &Report) {
    let o = &r.overview;
    let files = match o.files.len() {
        0 => String::new(),
        n if n <= 3 => o
            .files
            .iter()
            .map(|f| esc(f))
            .collect::<Vec<_>>()
            .join(", "),
        n => format!(
            "{} and {} more files",
            (o.files[..3].iter().map(|f| esc(f)))
                .collect::<Vec<_>>()
                .join(", "),
            n - 3
        ),
    };
    let _ = write!(
        page,
        "<header>\n<h1>Workflows in {} sessions</h1>\n<p class=\"muted\">{files}</p>\n<nav>\
         <a href=\"#overview\">Overview</a><a href=\"#workflows\">Workflows</a><a href=\"#tools\">Tools</a>\
         <a href=\"#loops\">Loops</a><a href=\"#savings\">What workflows would save</a>{}</nav>\n</header>\n",
        count(o.sessions as u64),
        if r.since.is_some() {
            "<a href=\"#since\">Since the last mine</a>"
        } else {
            ""
        }
    );
}

fn overview(page: &mut String, r: &Report) {
    let o = &r.overview;
    let round_trips: u64 = r.workflows.iter().map(|c| c.round_trips_saved).sum();
    let saved_ms: Option<u64> = r.workflows.iter().map(|c| c.parallel_saved_ms).sum();
    let mut tiles = vec![
        (count(o.sessions as u64), "sessions".to_string()),
        (count(o.calls as u64), "calls".to_string()),
        (count(o.tools as u64), "tools".to_string()),
        (
            percent(o.failed as f64 / o.calls.max(1) as f64),
            "of calls failed".to_string(),
        ),
        (
            count(o.found as u64),
            format!("workflows (in ≥ {} sessions)", count(o.min_support as u64)),
        ),
        (count(round_trips), "model round-trips saved".to_string()),
    ];
    if let Some(ms) = saved_ms {
        tiles.push((duration(ms as f64), "saved by parallel stages".to_string()));
    }
    if let Some((first, last)) = o.span {
        tiles.push((
            duration((last - first) as f64 / 1000.0),
            format!("from {} to {}", date(first, true), date(last, true)),
        ));
    }
    page.push_str("<section id=\"overview\">\n<h2>Overview</h2>\n<div class=\"tiles\">\n");
    for (value, what) in tiles {
        let _ = writeln!(
            page,
            "<div class=\"tile\"><b>{}</b><span>{}</span></div>",
            esc(&value),
            esc(&what)
        );
    }
    page.push_str("</div>\n");
    match &r.activity {
        Some(a) => {
            let _ = write!(
                page,
                "<h3>Calls per {} <span class=\"muted\">(failed in red)</span></h3>\n<div class=\"chart\">{}</div>\n",
                match a.bucket {
                    Bucket::Hour => "hour",
                    Bucket::Day => "day",
                    Bucket::Week => "week",
                },
                activity_chart(a)
            );
        }
        None => page.push_str(
            "<p class=\"muted\">The log's timestamps are order keys, not dates: no calls over time.</p>\n",
        ),
    }
    page.push_str("</section>\n");
}

fn workflows(page: &mut String, r: &Report) {
    let _ = write!(
        page,
        "<section id=\"workflows\">\n<h2>Workflows</h2>\n<p class=\"muted\">{} of {} found, best first.</p>\n",
        r.workflows.len(),
        r.overview.found
    );
    if r.workflows.is_empty() {
        let _ = writeln!(
            page,
            "<p>No workflow runs whole in {} or more sessions: try a lower <code>--min-support</code> or a larger <code>--max-gap</code>.</p>",
            r.overview.min_support
        );
    }
    for (i, c) in r.workflows.iter().enumerate() {
        card(page, i, c);
    }
    page.push_str("</section>\n");
}

fn card(page: &mut String, i: usize, c: &Card) {
    let t = &c.template;
    let badge = match &c.status {
        None => String::new(),
        Some(Status::New) => "<span class=\"badge new\">new</span>".into(),
        Some(Status::Unchanged) => "<span class=\"badge\">unchanged</span>".into(),
        Some(Status::Changed {
            support,
            success_rate,
        }) => format!(
            "<span class=\"badge changed\">changed: was support {}, success {}</span>",
            support.map_or("?".into(), count),
            success_rate.map_or("?".into(), percent)
        ),
    };
    let _ = write!(
        page,
        "<article class=\"workflow\" id=\"wf-{}\" data-name=\"{}\">\n<h3>{}. {}{badge}</h3>\n",
        esc(&t.name),
        esc(&t.name),
        i + 1,
        esc(&c.title),
    );
    let mut figures = vec![
        format!("support {}", count(c.support as u64)),
        format!("success {}", percent(c.success_rate)),
        format!("{} runs", count(c.occurrences)),
    ];
    if let Some(s) = c.sessions {
        figures.push(format!("{} sessions with a part of it", count(s as u64)));
    }
    let _ = writeln!(page, "<p class=\"figures\">{}</p>", figures.join(" · "));
    for l in &c.loops {
        let _ = writeln!(page, "<p class=\"loop\">loop: {}</p>", esc(l));
    }
    if let Some(b) = &c.branches {
        let _ = writeln!(page, "<p class=\"branches\">branches: {}</p>", esc(b));
    }
    for o in c.outcome.iter().chain(&c.exits) {
        let _ = writeln!(page, "<p class=\"outcome\">{}</p>", esc(o));
    }
    let _ = writeln!(page, "<div class=\"drawing\">{}</div>", dag(i, c));
    page.push_str("<div class=\"cols\">\n<div>\n");
    if !c.funnel.is_empty() {
        let first = c.funnel[0].1.max(1) as f64;
        page.push_str(
            "<table class=\"funnel\"><tr><th>Reached</th><th class=\"num\">sessions</th><th></th></tr>\n",
        );
        for (stage, n) in &c.funnel {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td class=\"num\" data-sessions=\"{n}\">{}</td>\
                 <td style=\"width:40%\"><div class=\"bar\" style=\"width:{:.1}%\"></div></td></tr>",
                esc(stage),
                count(*n as u64),
                *n as f64 / first * 100.0
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str(
        "<table class=\"runs\"><tr><th>Whole runs in the order</th><th class=\"num\">runs</th>\
         <th class=\"num\">success</th><th class=\"num\">median</th><th class=\"num\">p90</th></tr>\n",
    );
    for run in c.runs.iter().take(ORDERINGS_LISTED) {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&run.ordering.join(" → ")),
            count(run.runs as u64),
            percent(run.success_rate),
            run.median_ms.map_or("–".into(), |ms| duration(ms as f64)),
            run.p90_ms.map_or("–".into(), |ms| duration(ms as f64)),
        );
    }
    page.push_str("</table>\n");
    if let Some(rest) = c.runs.get(ORDERINGS_LISTED..).filter(|r| !r.is_empty()) {
        let _ = writeln!(
            page,
            "<p class=\"muted\">… and {} more orderings ({} runs).</p>",
            rest.len(),
            count(rest.iter().map(|r| r.runs as u64).sum::<u64>())
        );
    }
    page.push_str("</div>\n<div>\n");
    if !c.variants.is_empty() {
        page.push_str(
            "<table class=\"variants\"><tr><th>Variant</th><th class=\"num\">sessions</th></tr>\n",
        );
        for (text, n) in &c.variants {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(text),
                count(*n as u64)
            );
        }
        page.push_str("</table>\n");
    }
    let vars: String = c
        .variables
        .iter()
        .map(|v| format!(" --var {v}=…"))
        .collect();
    let _ = write!(
        page,
        "<p class=\"muted\">Template <code>{}</code>{}:</p>\n<pre>patterns run {}{}</pre>\n",
        esc(&t.name),
        match c.status {
            Some(Status::New) | None => " (written by <code>patterns mine</code>)",
            _ => "",
        },
        esc(&t.name),
        esc(&vars)
    );
    page.push_str("</div>\n</div>\n</article>\n");
}

/// The workflow drawn by stage, left to right: steps as boxes, a stage of several tools stacked,
/// an arrow per dependency and a dashed arc per data-flow binding, labelled with the field.
fn dag(i: usize, c: &Card) -> String {
    const W: f64 = 184.0;
    const H: f64 = 46.0;
    const GAP_X: f64 = 48.0;
    const GAP_Y: f64 = 14.0;
    const PAD: f64 = 12.0;
    let t = &c.template;
    let tallest = c.stages.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let column_h = tallest * H + (tallest - 1.0) * GAP_Y;
    let mut at = vec![(0.0, 0.0); t.steps.len()];
    for (k, stage) in c.stages.iter().enumerate() {
        let h = stage.len() as f64 * H + (stage.len() as f64 - 1.0) * GAP_Y;
        for (row, &s) in stage.iter().enumerate() {
            at[s] = (
                PAD + k as f64 * (W + GAP_X),
                PAD + (column_h - h) / 2.0 + row as f64 * (H + GAP_Y),
            );
        }
    }
    let index = |id: &str| t.steps.iter().position(|s| s.step_id == id);
    let edges = data_edges(t);
    let width = PAD * 2.0 + c.stages.len() as f64 * (W + GAP_X) - GAP_X;
    let bottom = PAD + column_h;
    let height =
        bottom + PAD + edges.len() as f64 * 20.0 + if edges.is_empty() { 0.0 } else { 8.0 };
    let mut svg = format!(
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"{}\" font-family=\"system-ui,sans-serif\">\n\
         <defs><marker id=\"arrow{i}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#5b6475\"/></marker></defs>\n",
        esc(&c.chain.join(" → "))
    );
    for (s, step) in t.steps.iter().enumerate() {
        for d in step.depends_on.iter().filter_map(|d| index(d)) {
            let (x1, y1) = (at[d].0 + W, at[d].1 + H / 2.0);
            let (x2, y2) = (at[s].0, at[s].1 + H / 2.0);
            let mid = (x1 + x2) / 2.0;
            let _ = writeln!(
                svg,
                "<path d=\"M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}\" fill=\"none\" \
                 stroke=\"#5b6475\" stroke-width=\"1.4\" marker-end=\"url(#arrow{i})\"/>"
            );
        }
    }
    // Data flow runs in lanes below the boxes: down from the source, along its lane, up into the
    // target. A box with another below it (in a stage of several tools) is left or entered from
    // the side, through the gap between columns.
    let lowest: Vec<bool> = (0..t.steps.len())
        .map(|s| c.stages.iter().any(|stage| stage.last() == Some(&s)))
        .collect();
    for (n, e) in edges.iter().enumerate() {
        let (Some(a), Some(b)) = (index(&e.from), index(&e.to)) else {
            continue;
        };
        let lane = bottom + 16.0 + n as f64 * 20.0;
        let shift = (n % 4) as f64 * 5.0;
        let mut d = String::new();
        let x1 = if lowest[a] {
            let x = at[a].0 + W * 0.55 + shift;
            let _ = write!(d, "M{x:.1},{:.1} V{lane:.1}", at[a].1 + H);
            x
        } else {
            let x = at[a].0 + W + 8.0 + shift;
            let _ = write!(
                d,
                "M{:.1},{:.1} H{x:.1} V{lane:.1}",
                at[a].0 + W,
                at[a].1 + H * 0.75
            );
            x
        };
        let x2 = if lowest[b] {
            let x = at[b].0 + W * 0.35 - shift;
            let _ = write!(d, " H{x:.1} V{:.1}", at[b].1 + H);
            x
        } else {
            let x = at[b].0 - 8.0 - shift;
            let _ = write!(d, " H{x:.1} V{:.1} H{:.1}", at[b].1 + H * 0.75, at[b].0);
            x
        };
        let _ = writeln!(
            svg,
            "<path class=\"flow\" d=\"{d}\" fill=\"none\" stroke=\"#2f6fdb\" stroke-width=\"1.3\" \
             stroke-dasharray=\"5 3\" marker-end=\"url(#arrow{i})\"><title>{} of {} → {} of {}</title></path>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#2f6fdb\" text-anchor=\"middle\" stroke=\"#fff\" \
             stroke-width=\"3\" paint-order=\"stroke\">{} → {}</text>",
            esc(&e.field),
            esc(&e.from),
            esc(&e.param),
            esc(&e.to),
            (x1 + x2) / 2.0,
            lane - 3.0,
            esc(&clip(&e.field, 24)),
            esc(&clip(&e.param, 18)),
        );
    }
    for (s, step) in t.steps.iter().enumerate() {
        let (x, y) = at[s];
        let retries = match step.retry_count {
            0 => String::new(),
            n => format!(" · retry ×{n}"),
        };
        let _ = writeln!(
            svg,
            "<g class=\"step\"><title>{} ({}){}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{W}\" height=\"{H}\" rx=\"7\" \
             fill=\"#f4f6fa\" stroke=\"#9aa4b5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"600\" text-anchor=\"middle\" fill=\"#1d2330\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6475\">{}{}</text></g>",
            esc(&step.tool_name),
            esc(&step.step_id),
            esc(&retries),
            x + W / 2.0,
            y + 19.0,
            esc(&clip(&c.chain[s], 21)),
            x + W / 2.0,
            y + 36.0,
            esc(&clip(&step.step_id, 18)),
            esc(&retries),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn tools(page: &mut String, r: &Report) {
    let _ = write!(
        page,
        "<section id=\"tools\">\n<h2>Tools</h2>\n<div class=\"cols\">\n<div class=\"fit\">\n<table class=\"tools\"><tr><th>Tool</th><th class=\"num\">calls</th>\
         <th class=\"num\">failed</th><th class=\"num\">median time</th></tr>\n"
    );
    for t in r.tools.iter().take(TOOLS_LISTED) {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&t.name),
            count(t.calls as u64),
            percent(t.failed as f64 / t.calls.max(1) as f64),
            t.median_ms.map_or("–".into(), |ms| duration(f64::from(ms))),
        );
    }
    page.push_str("</table>\n");
    if r.tools.len() > TOOLS_LISTED {
        let _ = writeln!(
            page,
            "<p class=\"muted\">… and {} tools called less.</p>",
            count((r.tools.len() - TOOLS_LISTED) as u64)
        );
    }
    page.push_str("</div>\n<div class=\"wide\">\n");
    if r.transitions.tools.len() > 1 {
        let _ = write!(
            page,
            "<h3>What comes next <span class=\"muted\">(share of a tool's calls followed directly by each tool; the {} most called)</span></h3>\n\
             <div class=\"chart\">{}</div>\n",
            r.transitions.tools.len(),
            heat_map(&r.transitions, r)
        );
    }
    page.push_str("</div>\n</div>\n</section>\n");
}

fn loops(page: &mut String, r: &Report) {
    page.push_str("<section id=\"loops\">\n<h2>Loops</h2>\n");
    let _ = writeln!(
        page,
        "<p class=\"muted\">A cycle of one to three tools repeated {MIN_ROUNDS} or more rounds in a row within a session.</p>"
    );
    if r.loops.is_empty() {
        page.push_str("<p>No loops.</p>\n</section>\n");
        return;
    }
    page.push_str(
        "<table class=\"loops\"><tr><th>Cycle</th><th class=\"num\">sessions</th><th class=\"num\">loops</th>\
         <th class=\"num\">median rounds</th><th class=\"num\">most rounds</th><th class=\"num\">calls failed</th></tr>\n",
    );
    for l in r.loops.iter().take(LOOPS_LISTED) {
        let _ = writeln!(
            page,
            "<tr><td>{} → …</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&l.cycle.join(" → ")),
            count(l.sessions as u64),
            count(l.loops as u64),
            l.median_rounds,
            l.max_rounds,
            percent(l.failed_share)
        );
    }
    page.push_str("</table>\n");
    if r.loops.len() > LOOPS_LISTED {
        let _ = writeln!(
            page,
            "<p class=\"muted\">… and {} more cycles.</p>",
            r.loops.len() - LOOPS_LISTED
        );
    }
    page.push_str("</section>\n");
}

fn paths_to_failure(page: &mut String, r: &Report) {
    page.push_str(
        "<section id=\"failure\">\n<h2>Paths to failure</h2>\n<p class=\"muted\">Tools, calls in a row and \
         workflows whose sessions solve their task markedly less often than the other sessions (the 95% interval \
         of the difference is below zero), and what the agent did right after them.</p>\n\
         <table class=\"failure\"><tr><th>Path</th><th>kind</th><th class=\"num\">sessions</th>\
         <th class=\"num\">solved</th><th class=\"num\">others</th><th class=\"num\">difference (95% CI)</th>\
         <th>then</th></tr>\n",
    );
    for p in &r.paths_to_failure {
        let c = &p.comparison;
        let value = |v: f64| c.shown(Some(v));
        let difference = c.difference().map_or("–".into(), |(d, low, high)| {
            format!("{} ({} to {})", value(d), value(low), value(high))
        });
        let then = (p.then.iter().take(3))
            .map(|(what, n)| format!("{what} {}", count(*n)))
            .collect::<Vec<_>>()
            .join(" · ");
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&p.chain.join(" → ")),
            p.kind,
            count(c.with.n),
            c.shown(c.with.mean()),
            c.shown(c.without.mean()),
            esc(&difference),
            esc(&then),
        );
    }
    page.push_str("</table>\n</section>\n");
}

fn savings(page: &mut String, r: &Report) {
    page.push_str(
        "<section id=\"savings\">\n<h2>What workflows would save</h2>\n<p class=\"muted\">Running a workflow as a template \
         saves the model a round-trip per step after the first, each time it runs (by the step count); measured where the \
         log records the model's usage (Claude Code, Codex, OpenTelemetry, Langfuse, a tokens column): the turns \
         that issued steps 2 and on, and their tokens (median per run, total, and the share of the tokens of all the \
         log's tool-calling turns). Its parallel stages save the steps' time beyond the longest step of each stage.</p>\n\
         <table class=\"savings\"><tr><th>Workflow</th><th class=\"num\">runs</th><th class=\"num\">steps</th>\
         <th class=\"num\">round-trips saved</th><th class=\"num\">turns saved</th><th class=\"num\">tokens per run</th>\
         <th class=\"num\">tokens saved</th><th class=\"num\">share of tokens</th><th class=\"num\">time saved</th></tr>\n",
    );
    for c in &r.workflows {
        let measured = |f: &dyn Fn(&crate::pipeline::Savings) -> String| {
            c.savings.as_ref().map_or("unknown".to_string(), f)
        };
        let _ = writeln!(
            page,
            "<tr><td><a href=\"#wf-{}\">{}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&c.template.name),
            esc(&c.template.name),
            count(c.occurrences),
            c.chain.len(),
            count(c.round_trips_saved),
            measured(&|s| count(s.turns_total)),
            measured(&|s| count(s.tokens_median.round() as u64)),
            measured(&|s| count(s.tokens_total)),
            measured(&|s| percent(s.tokens_share)),
            c.parallel_saved_ms
                .map_or("–".into(), |ms| duration(ms as f64)),
        );
    }
    page.push_str("</table>\n</section>\n");
}

fn since(page: &mut String, r: &Report) {
    let s = r.since.as_ref().expect("with a library");
    let _ = write!(
        page,
        "<section id=\"since\">\n<h2>Since the last mine</h2>\n<p>Against the mined templates of <code>{}</code>: \
         <b>{}</b> new, <b>{}</b> changed, <b>{}</b> unchanged, <b>{}</b> no longer found{}.</p>\n",
        esc(&s.library),
        s.new,
        s.changed,
        s.unchanged,
        s.stale.len(),
        match s.not_shown {
            0 => String::new(),
            n => format!(" (of the workflows found, {n} are not shown above)"),
        }
    );
    if !s.stale.is_empty() {
        page.push_str("<table class=\"stale\"><tr><th>No longer found</th><th>Chain</th></tr>\n");
        for (name, chain) in &s.stale {
            let _ = writeln!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(name),
                esc(&chain.join(" → "))
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n");
}

/// Calls per bucket as bars, the failed part in red.
fn activity_chart(a: &Activity) -> String {
    let mut svg = String::new();
    let n = a.calls.len();
    let top = a.calls.iter().copied().max().unwrap_or(0).max(1);
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 240)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
            let mut chart = ChartBuilder::on(&root)
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..n as f64, 0f64..top as f64 * 1.05)?;
            let label = |x: &f64| {
                let t = a.start + (*x as i64) * a.bucket.micros();
                date(t, a.bucket == Bucket::Hour)
            };
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(8.min(n + 1))
                .x_label_formatter(&label)
                .y_labels(5)
                .y_label_formatter(&|y| count(*y as u64))
                .label_style(
                    ("sans-serif", 13)
                        .into_font()
                        .color(&RGBColor(91, 100, 117)),
                )
                .draw()?;
            let bar = |i: usize, v: usize, color: RGBColor| {
                Rectangle::new(
                    [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, v as f64)],
                    color.filled(),
                )
            };
            chart.draw_series((0..n).map(|i| bar(i, a.calls[i], RGBColor(47, 111, 219))))?;
            chart.draw_series((0..n).map(|i| bar(i, a.failed[i], RGBColor(200, 64, 47))))?;
            root.present()?;
            Ok(())
        })();
        drawn.expect("drawing into a string cannot fail");
    }
    svg
}

/// The transition heat map: row = a tool, column = the tool called right after it, colour =
/// share of the row's calls, the count and share on hover. Written by hand: plotters places
/// category labels on cell edges, not centres, and cannot rotate them in place.
fn heat_map(t: &Transitions, r: &Report) -> String {
    const CELL: f64 = 30.0;
    const LABEL: f64 = 180.0;
    let n = t.tools.len();
    let names: Vec<&str> = t.tools.iter().map(|&i| r.tools[i].name.as_str()).collect();
    let side = LABEL + CELL * n as f64;
    let mut svg = format!(
        "<svg class=\"heat\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" \
         viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"system-ui,sans-serif\" font-size=\"12\">\n",
        w = side + 120.0,
        h = n as f64 * CELL + 150.0
    );
    for (k, name) in names.iter().enumerate() {
        let middle = (k as f64 + 0.5) * CELL;
        // Rows on the left; columns along the bottom, slanted.
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{middle:.1}\" dy=\"0.35em\" text-anchor=\"end\" fill=\"#1d2330\">{}</text>\n\
             <text transform=\"translate({:.1},{:.1}) rotate(45)\" fill=\"#1d2330\">{}</text>",
            LABEL - 6.0,
            esc(&clip(name, 24)),
            LABEL + middle - 3.0,
            n as f64 * CELL + 8.0,
            esc(&clip(name, 24)),
        );
    }
    for (row, counts) in t.counts.iter().enumerate() {
        let total = counts.iter().sum::<usize>().max(1) as f64;
        for (col, &k) in counts.iter().enumerate() {
            let share = k as f64 / total;
            let shade = |c: u8| (255.0 - (255.0 - f64::from(c)) * share.sqrt()).round() as u8;
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{CELL}\" height=\"{CELL}\" fill=\"rgb({},{},{})\" stroke=\"#fff\">\
                 <title>{} → {}: {} calls, {} of {}'s next calls</title></rect>",
                LABEL + col as f64 * CELL,
                row as f64 * CELL,
                shade(47),
                shade(111),
                shade(219),
                esc(names[row]),
                esc(names[col]),
                count(k as u64),
                percent(share),
                esc(names[row]),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// `s` for HTML text and attributes; control characters shown as � (they are not allowed).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `n` characters, an ellipsis marking a cut.
fn clip(s: &str, n: usize) -> String {
    match s.chars().count() > n {
        true => s.chars().take(n - 1).chain(['…']).collect(),
        false => s.to_string(),
    }
}

fn percent(share: f64) -> String {
    match share {
        s if s > 0.0 && s < 0.001 => "<0.1 %".into(),
        s => format!("{:.1} %", s * 100.0),
    }
}

/// Milliseconds in the unit that reads best.
fn duration(ms: f64) -> String {
    match ms {
        ms if ms < 1000.0 => format!("{ms:.0} ms"),
        ms if ms < 60_000.0 => format!("{:.1} s", ms / 1000.0),
        ms if ms < 3_600_000.0 => format!("{:.1} min", ms / 60_000.0),
        ms if ms < 86_400_000.0 => format!("{:.1} h", ms / 3_600_000.0),
        ms if ms < 365.0 * 86_400_000.0 => format!("{:.1} days", ms / 86_400_000.0),
        ms => format!("{:.1} years", ms / (365.25 * 86_400_000.0)),
    }
}

/// A time (microseconds since 1970) as a UTC date, with the hour when asked.
fn date(micros: i64, hour: bool) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(String::new, |t| {
        t.format(if hour { "%Y-%m-%d %H:00" } else { "%Y-%m-%d" })
            .to_string()
    })
}
