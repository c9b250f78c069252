//! `patterns report` as one engine entry: from a mined log to everything its page shows
//! ([`build`]). The page is a writer over the [`Report`] (`cmd/report/html.rs`).

mod loops;

use std::collections::{HashMap, HashSet};
use std::path::Path;

pub use loops::{Loop, MIN_ROUNDS};

use crate::events::{EventLog, TimeKind, UNKNOWN_DURATION};
use crate::load::LoadReport;
use crate::mining::Embedding;
use crate::pipeline::{self, MineOptions, MineReport};
use crate::structure::Workflow;
use crate::template::{self, Library, LibraryError, Source, WorkflowTemplate};

/// The most tools the transition heat map shows (the most called).
pub const HEAT_MAP_TOOLS: usize = 15;

/// Everything the report shows, computed from the log and what was mined from it.
#[derive(Debug)]
pub struct Report {
    pub overview: Overview,
    /// Calls per day (or per hour), when the log has dates.
    pub activity: Option<Activity>,
    pub workflows: Vec<Card>,
    /// Every tool, most called first.
    pub tools: Vec<ToolStats>,
    pub transitions: Transitions,
    pub loops: Vec<Loop>,
    /// With task outcomes: the tools, calls in a row and workflows whose sessions solve their
    /// task markedly less often than the others.
    pub paths_to_failure: Vec<FailureRow>,
    /// Against the library's mined templates, when one was given.
    pub since: Option<Since>,
}

/// A path to failure as the report lists it.
#[derive(Debug)]
pub struct FailureRow {
    /// `tool`, `calls` (in a row) or `workflow`.
    pub kind: &'static str,
    pub chain: Vec<String>,
    pub comparison: crate::outcome::Comparison,
    /// What came next, in words, with its sessions: `(end) 402`, `transfer_to_agent 31`.
    pub then: Vec<(String, u64)>,
}

#[derive(Debug)]
pub struct Overview {
    pub files: Vec<String>,
    pub sessions: usize,
    pub calls: usize,
    pub tools: usize,
    pub failed: usize,
    /// First and last call, microseconds since 1970, when the log has dates.
    pub span: Option<(i64, i64)>,
    pub min_support: usize,
    /// Workflows found in all (the report shows the first `workflows.len()`).
    pub found: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Week,
}

impl Bucket {
    pub fn micros(self) -> i64 {
        match self {
            Bucket::Hour => 3_600_000_000,
            Bucket::Day => 86_400_000_000,
            Bucket::Week => 7 * 86_400_000_000,
        }
    }
}

/// Calls per bucket from the first bucket of the log to the last, empty buckets included.
#[derive(Debug)]
pub struct Activity {
    pub bucket: Bucket,
    /// Start of the first bucket, microseconds since 1970.
    pub start: i64,
    pub calls: Vec<usize>,
    pub failed: Vec<usize>,
}

/// One workflow, as its card shows it.
#[derive(Debug)]
pub struct Card {
    /// The template it is (or would be) in the library, named as `mine` names it.
    pub template: WorkflowTemplate,
    /// Tool names of the canonical ordering.
    pub chain: Vec<String>,
    /// The workflow in words, a loop's body in parentheses (`a → (b → c)+ → d`).
    pub title: String,
    /// Its loops in words: body, median and most rounds, sessions by rounds.
    pub loops: Vec<String>,
    /// The others that share its trunk, in words (`after a → b also c 96 · d 89`).
    pub branches: Option<String>,
    /// Step indices (canonical order) by stage, and the ranges of those of several tools.
    pub stages: Vec<Vec<usize>>,
    pub blocks: Vec<std::ops::Range<usize>>,
    pub support: usize,
    pub occurrences: u64,
    pub success_rate: f64,
    /// Sessions with a run of at least two stages, and per stage the sessions that reached it or a later one
    /// (with `--keep workflows`).
    pub sessions: Option<usize>,
    pub funnel: Vec<(String, usize)>,
    /// The orderings its whole runs took, most runs first.
    pub runs: Vec<Runs>,
    /// Variants in words, with their sessions.
    pub variants: Vec<(String, usize)>,
    /// The variables `patterns run` needs.
    pub variables: Vec<String>,
    /// Model round-trips that running it as a template saves: one per step after the first, per
    /// occurrence.
    pub round_trips_saved: u64,
    /// Turns and tokens that running it as one call saves, measured from the log's usage;
    /// `None`: unknown (the log has no usage).
    pub savings: Option<pipeline::Savings>,
    /// Time its parallel stages save over its runs: the steps' durations against the critical
    /// path (runs whose calls all have durations).
    pub parallel_saved_ms: Option<u64>,
    /// Against the library, when one was given.
    pub status: Option<Status>,
    /// The task outcomes of its sessions against the others', in words, when the log has them.
    pub outcome: Option<String>,
    /// Where runs left it and how those sessions fared, in words, when the log has outcomes.
    pub exits: Option<String>,
}

/// The whole runs of a workflow that took one ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct Runs {
    pub ordering: Vec<String>,
    pub runs: usize,
    /// Share of the runs whose steps all succeeded (last attempt).
    pub success_rate: f64,
    /// Median and 90th percentile of a run's time (its calls' durations summed), when known.
    pub median_ms: Option<u64>,
    pub p90_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    New,
    Unchanged,
    /// The library's figures before.
    Changed {
        support: Option<u64>,
        success_rate: Option<f64>,
    },
}

#[derive(Debug)]
pub struct ToolStats {
    pub name: String,
    pub calls: usize,
    pub failed: usize,
    pub median_ms: Option<u32>,
}

/// Calls of one tool followed by another, among the most called tools.
#[derive(Debug)]
pub struct Transitions {
    /// Indices into [`Report::tools`].
    pub tools: Vec<usize>,
    /// `counts[i][j]`: calls of `tools[i]` directly followed by `tools[j]` in a session.
    pub counts: Vec<Vec<usize>>,
}

/// What changed against the library's mined templates.
#[derive(Debug)]
pub struct Since {
    pub library: String,
    pub new: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Mined templates of the library whose workflow is not found any more (name, chain).
    pub stale: Vec<(String, Vec<String>)>,
    /// Of the workflows found, how many the report does not show.
    pub not_shown: usize,
}

/// Builds the report of `log`: the overview, cards of the `shown` workflows of `mined`, tools,
/// transitions, loops, and, with a `library`, what changed since its last mine.
pub fn build(
    log: &EventLog,
    loaded: &LoadReport,
    mined: &MineReport,
    opts: &MineOptions,
    shown: usize,
    library: Option<&Path>,
) -> Result<Report, LibraryError> {
    let known = match library {
        Some(dir) => Some(mined_templates(dir)?),
        None => None,
    };
    let mut taken: HashSet<String> = known.iter().flat_map(|k| k.names.iter().cloned()).collect();
    let mut workflows = Vec::new();
    let mut statuses = Vec::new();
    for w in &mined.workflows {
        let chain: Vec<String> = log.names(&w.mined.pattern).map(String::from).collect();
        let old = known.as_ref().and_then(|k| k.by_chain.get(&chain));
        let status = known.as_ref().map(|_| match old {
            None => Status::New,
            // Read back from JSON, a rate may differ in its last bit.
            Some(t)
                if t.metadata.usage_count == Some(w.mined.support as u64)
                    && (t.metadata.success_rate)
                        .is_some_and(|r| (r - w.mined.success_rate()).abs() < 1e-9) =>
            {
                Status::Unchanged
            }
            Some(t) => Status::Changed {
                support: t.metadata.usage_count,
                success_rate: t.metadata.success_rate,
            },
        });
        statuses.push(status.clone());
        if workflows.len() == shown {
            continue;
        }
        let name = match old {
            Some(t) => t.name.clone(),
            None => template::unique_name(&chain, |n| taken.contains(n)),
        };
        taken.insert(name.clone());
        let (chain, stats) = pipeline::template_stats(w, mined, log, opts);
        let template = template::from_chain(name, &chain, &stats);
        workflows.push(card(w, mined, log, opts, template, chain, stats, status));
    }
    let since = known.map(|k| {
        let found: HashSet<Vec<String>> = (mined.workflows.iter())
            .map(|w| log.names(&w.mined.pattern).map(String::from).collect())
            .collect();
        let mut stale: Vec<(String, Vec<String>)> = (k.by_chain.into_iter())
            .filter(|(chain, _)| !found.contains(chain))
            .map(|(chain, t)| (t.name, chain))
            .collect();
        stale.sort();
        let count = |f: fn(&Status) -> bool| statuses.iter().flatten().filter(|s| f(s)).count();
        Since {
            library: library.expect("given").display().to_string(),
            new: count(|s| *s == Status::New),
            changed: count(|s| matches!(s, Status::Changed { .. })),
            unchanged: count(|s| *s == Status::Unchanged),
            stale,
            not_shown: mined.workflows.len() - workflows.len(),
        }
    });
    let tools = tool_stats(log);
    Ok(Report {
        overview: Overview {
            files: loaded.files.clone(),
            sessions: log.session_count(),
            calls: log.event_count(),
            tools: log.tool_names.len(),
            failed: log.success.iter().filter(|ok| !**ok).count(),
            span: span(log),
            min_support: mined.min_support,
            found: mined.workflows.len(),
        },
        activity: activity(log),
        workflows,
        transitions: transitions(log, &tools),
        tools,
        loops: loops::loops(log),
        paths_to_failure: (mined.paths_to_failure.iter())
            .map(|p| FailureRow {
                kind: p.kind(),
                chain: log.names(&p.chain).map(String::from).collect(),
                comparison: p.comparison,
                then: (p.then.iter())
                    .map(|(t, m)| {
                        let what = t.map_or("(end)", |t| log.tool_names[t as usize].as_str());
                        (what.to_string(), m.n)
                    })
                    .collect(),
            })
            .collect(),
        since,
    })
}

/// The library's mined templates by chain, and every file name it has.
struct Known {
    by_chain: HashMap<Vec<String>, WorkflowTemplate>,
    names: Vec<String>,
}

fn mined_templates(dir: &Path) -> Result<Known, LibraryError> {
    let mut known = Known {
        by_chain: HashMap::new(),
        names: Vec::new(),
    };
    for e in Library::new(dir).entries()? {
        if let Some(stem) = e.path.file_stem() {
            known.names.push(stem.to_string_lossy().into_owned());
        }
        if let Ok(t) = e.template
            && t.metadata.source == Source::Mined
            && !t.metadata.stale
        {
            known.by_chain.insert(t.metadata.pattern.clone(), t);
        }
    }
    Ok(known)
}

#[allow(clippy::too_many_arguments)]
fn card(
    w: &Workflow,
    mined: &MineReport,
    log: &EventLog,
    opts: &MineOptions,
    template: WorkflowTemplate,
    chain: Vec<String>,
    stats: template::ChainStats,
    status: Option<Status>,
) -> Card {
    let stages = w.stages();
    let occurrences = pipeline::occurrences(w, &mined.seqs, opts.max_gap);
    let runs = runs(w, &occurrences, log, opts.keep_repeats);
    // Over the runs whose calls all have durations; none such: unknown.
    let saved: Vec<u64> = (occurrences.iter())
        .filter_map(|(k, e)| {
            let d = step_durations(w, *k, e, log, opts.keep_repeats)?;
            let critical: u64 = (stages.iter())
                .map(|s| s.iter().map(|&i| d[i]).max().unwrap_or(0))
                .sum();
            Some(d.iter().sum::<u64>() - critical)
        })
        .collect();
    let parallel_saved_ms = (!saved.is_empty()).then(|| saved.iter().sum());
    let stage_names = pipeline::stage_names(w, log);
    let folded = w.folded.as_ref();
    Card {
        round_trips_saved: (chain.len() as u64 - 1) * w.mined.occurrences,
        savings: pipeline::savings_over(&occurrences, mined, log, opts.keep_repeats),
        parallel_saved_ms,
        support: w.mined.support,
        occurrences: w.mined.occurrences,
        success_rate: w.mined.success_rate(),
        sessions: folded.map(|f| f.sessions),
        funnel: folded
            .map(|f| stage_names.iter().cloned().zip(f.funnel.clone()).collect())
            .unwrap_or_default(),
        variants: folded
            .map(|f| {
                (f.variants.iter())
                    .map(|v| (pipeline::variant_text(&v.change, w, log), v.sessions))
                    .collect()
            })
            .unwrap_or_default(),
        variables: stats.variables.into_iter().map(|(v, _)| v).collect(),
        runs,
        stages,
        blocks: w.blocks.clone(),
        template,
        chain,
        title: pipeline::workflow_text(w, log),
        loops: folded
            .map(|f| {
                f.loops
                    .iter()
                    .map(|l| pipeline::loop_text(l, w, log))
                    .collect()
            })
            .unwrap_or_default(),
        branches: folded
            .and_then(|f| f.branch.as_ref())
            .map(|b| pipeline::branch_text(b, log)),
        status,
        outcome: w.outcome.as_ref().and_then(pipeline::outcome_text),
        exits: pipeline::exits_text(w, log),
    }
}

/// Per canonical step, the time of its calls (retries included) in occurrence `e` of ordering
/// `k`; `None` when one has no duration.
fn step_durations(
    w: &Workflow,
    k: usize,
    e: &Embedding,
    log: &EventLog,
    keep_repeats: bool,
) -> Option<Vec<u64>> {
    let durations = log.durations.as_ref()?;
    let calls: Vec<_> = log.collapsed(e.session, keep_repeats).collect();
    let canonical = canonical_steps(w, k, e);
    let mut out = vec![0u64; e.positions.len()];
    for (x, &p) in e.positions.iter().enumerate() {
        for i in calls[p].clone() {
            if durations[i] == UNKNOWN_DURATION {
                return None;
            }
            out[canonical[x]] += u64::from(durations[i]);
        }
    }
    Some(out)
}

/// For each position of occurrence `e` of ordering `k`, its canonical step. (The summary's
/// whole runs are already in canonical step order.)
fn canonical_steps(w: &Workflow, k: usize, e: &Embedding) -> Vec<usize> {
    match w.folded {
        Some(_) => (0..e.positions.len()).collect(),
        None => w.canonical_index(k),
    }
}

/// The whole runs of `w` by the ordering they took, most first.
fn runs(
    w: &Workflow,
    occurrences: &[(usize, Embedding)],
    log: &EventLog,
    keep_repeats: bool,
) -> Vec<Runs> {
    struct Acc {
        runs: usize,
        ok: usize,
        ms: Vec<u64>,
    }
    let mut by_ordering: Vec<(Vec<u32>, Acc)> = Vec::new();
    for (k, e) in occurrences {
        let calls: Vec<_> = log.collapsed(e.session, keep_repeats).collect();
        let canonical = canonical_steps(w, *k, e);
        // The tools in the order the calls came.
        let mut order: Vec<(usize, u32)> = (e.positions.iter().enumerate())
            .map(|(x, &p)| (p, w.mined.pattern[canonical[x]]))
            .collect();
        order.sort_unstable();
        let ordering: Vec<u32> = order.into_iter().map(|(_, t)| t).collect();
        let ok = (e.positions.iter()).all(|&p| log.success[calls[p].end - 1]);
        let ms = step_durations(w, *k, e, log, keep_repeats).map(|d| d.iter().sum::<u64>());
        let at = match by_ordering.iter().position(|(o, _)| *o == ordering) {
            Some(at) => at,
            None => {
                by_ordering.push((
                    ordering,
                    Acc {
                        runs: 0,
                        ok: 0,
                        ms: Vec::new(),
                    },
                ));
                by_ordering.len() - 1
            }
        };
        let acc = &mut by_ordering[at].1;
        acc.runs += 1;
        acc.ok += usize::from(ok);
        acc.ms.extend(ms);
    }
    let mut out: Vec<Runs> = by_ordering
        .into_iter()
        .map(|(ordering, mut acc)| {
            acc.ms.sort_unstable();
            let quantile = |q: f64| {
                (!acc.ms.is_empty()).then(|| {
                    let i = ((acc.ms.len() as f64 * q).ceil() as usize).clamp(1, acc.ms.len());
                    acc.ms[i - 1]
                })
            };
            Runs {
                ordering: log.names(&ordering).map(String::from).collect(),
                runs: acc.runs,
                success_rate: acc.ok as f64 / acc.runs as f64,
                median_ms: quantile(0.5),
                p90_ms: quantile(0.9),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.runs
            .cmp(&a.runs)
            .then_with(|| a.ordering.cmp(&b.ordering))
    });
    out
}

fn span(log: &EventLog) -> Option<(i64, i64)> {
    if log.time_kind != TimeKind::EpochMicros {
        return None;
    }
    let first = log.timestamps.iter().min()?;
    let last = log.timestamps.iter().max()?;
    Some((*first, *last))
}

/// Calls per hour for a log of less than three days, per week for one of more than half a
/// year, else per day.
fn activity(log: &EventLog) -> Option<Activity> {
    let (first, last) = span(log)?;
    let bucket = match last - first {
        t if t < 3 * Bucket::Day.micros() => Bucket::Hour,
        t if t > 183 * Bucket::Day.micros() => Bucket::Week,
        _ => Bucket::Day,
    };
    let size = bucket.micros();
    // Weeks start on Monday (1970-01-01 was a Thursday).
    let monday = if bucket == Bucket::Week {
        3 * Bucket::Day.micros()
    } else {
        0
    };
    let start = (first + monday).div_euclid(size) * size - monday;
    let n = ((last - start) / size + 1) as usize;
    let (mut calls, mut failed) = (vec![0; n], vec![0; n]);
    for (t, ok) in log.timestamps.iter().zip(&log.success) {
        let b = ((t - start) / size) as usize;
        calls[b] += 1;
        failed[b] += usize::from(!ok);
    }
    Some(Activity {
        bucket,
        start,
        calls,
        failed,
    })
}

/// Calls, failures and median duration of every tool, most called first.
fn tool_stats(log: &EventLog) -> Vec<ToolStats> {
    let n = log.tool_names.len();
    let (mut calls, mut failed) = (vec![0; n], vec![0; n]);
    let mut durations: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, &t) in log.tools.iter().enumerate() {
        calls[t as usize] += 1;
        failed[t as usize] += usize::from(!log.success[i]);
        if let Some(d) = log.durations.as_ref().map(|d| d[i])
            && d != UNKNOWN_DURATION
        {
            durations[t as usize].push(d);
        }
    }
    let mut out: Vec<ToolStats> = (0..n)
        .map(|t| {
            let d = &mut durations[t];
            d.sort_unstable();
            ToolStats {
                name: log.tool_names[t].clone(),
                calls: calls[t],
                failed: failed[t],
                median_ms: d.get(d.len().saturating_sub(1) / 2).copied(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
    out
}

/// Transitions between the [`HEAT_MAP_TOOLS`] most called tools.
fn transitions(log: &EventLog, tools: &[ToolStats]) -> Transitions {
    let top: Vec<usize> = (0..tools.len().min(HEAT_MAP_TOOLS)).collect();
    let mut row: HashMap<u32, usize> = HashMap::new();
    for &i in &top {
        let id = log
            .tool_names
            .binary_search(&tools[i].name)
            .expect("a tool of the log");
        row.insert(id as u32, i);
    }
    let mut counts = vec![vec![0; top.len()]; top.len()];
    for s in 0..log.session_count() {
        for pair in log.tools[log.range(s)].windows(2) {
            if let (Some(&a), Some(&b)) = (row.get(&pair[0]), row.get(&pair[1])) {
                counts[a][b] += 1;
            }
        }
    }
    Transitions { tools: top, counts }
}
