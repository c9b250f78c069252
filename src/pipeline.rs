//! `mine` as one engine entry: from a loaded log to its workflows ([`mine`]), and from a workflow
//! to what its template keeps ([`template_stats`]). `patterns mine`, `suggest --logs` and the
//! benches call these; the command line only parses flags into [`MineOptions`] and writes the
//! [`MineReport`].

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{Map, Value, json};

use crate::UsageError;
use crate::events::{EventLog, NO_USAGE, SAME_TURN, TimeKind, UNKNOWN_DURATION};
use crate::exchange::{self, Alone, Counts, Exchange};
use crate::mining::summary::{self, Change, SummaryParams};
use crate::mining::{self, Embedding, MinSupport, MineParams, Mined, Sequences};
use crate::outcome::paths::{FailurePath, paths_to_failure};
use crate::outcome::{Comparison, Moments, Totals};
use crate::score::{self, Keep};
use crate::structure::{self, FlowParams, ParallelParams, Workflow};
use crate::template::{self, ChainStats};

/// What to mine and how, validated once by [`MineOptions::check`].
#[derive(Debug, Clone)]
pub struct MineOptions {
    /// Keep immediate repeats of a tool as separate calls.
    pub keep_repeats: bool,
    pub min_support: MinSupport,
    /// Chain lengths for `--keep closed|all` (the summary has no length cap).
    pub min_len: usize,
    pub max_len: usize,
    pub max_gap: Option<usize>,
    pub keep: Keep,
    /// With `Keep::Closed`: drop a chain when a longer one has `1 - this` of its support.
    pub closed_tolerance: f64,
    /// With `Keep::Workflows`: the share of runs that must go on with a step for it to be part
    /// of the workflow.
    pub continuation: f64,
    /// How orderings become stages; `None`: every ordering is a chain of its own.
    pub parallel: Option<ParallelParams>,
    pub flow: FlowParams,
}

impl Default for MineOptions {
    fn default() -> MineOptions {
        MineOptions {
            keep_repeats: false,
            min_support: MinSupport::Auto,
            min_len: 2,
            max_len: 6,
            max_gap: Some(2),
            keep: Keep::Workflows,
            closed_tolerance: score::DEFAULT_TOLERANCE,
            continuation: SummaryParams::default().continuation,
            parallel: Some(ParallelParams::default()),
            flow: FlowParams::default(),
        }
    }
}

impl MineOptions {
    /// Every problem with the options, at once.
    pub fn check(&self) -> Result<(), UsageError> {
        let mut problems = Vec::new();
        if self.min_len == 0 || self.min_len > self.max_len {
            problems.push(format!(
                "--min-len {} and --max-len {} do not make a range of chain lengths (1 ≤ min ≤ max)",
                self.min_len, self.max_len
            ));
        }
        if !(self.continuation > 0.0 && self.continuation <= 1.0) {
            problems.push(format!(
                "--continuation {} is not a share in (0, 1]",
                self.continuation
            ));
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(UsageError(problems.join("\n"))),
        }
    }
}

/// What [`mine`] found.
#[derive(Debug)]
pub struct MineReport {
    /// This part's sessions (alone: the log's).
    pub seqs: Sequences,
    /// Sums counts over the parts of the log (see [`crate::exchange`]); [`Alone`] for one log.
    pub parts: Arc<dyn Exchange>,
    /// Sessions, calls, and calls after collapsing repeats, in the whole log.
    pub sessions: usize,
    pub calls: usize,
    pub collapsed_calls: usize,
    /// The least support, resolved for this log.
    pub min_support: usize,
    /// With `Keep::Closed|All`: the frequent chains enumerated before pruning.
    pub frequent: Option<usize>,
    /// Best first.
    pub workflows: Vec<Workflow>,
    /// With task outcomes: the tools, calls in a row and workflows whose sessions solve the
    /// task markedly less often.
    pub paths_to_failure: Vec<FailurePath>,
    /// When the log has model usage: the tokens of all its tool-calling turns (what a
    /// workflow's savings are a share of).
    pub usage_tokens: Option<u64>,
}

/// Where [`mine`] is, for progress bars.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Enumerating chains, one tool at a time, of this many.
    Chains { tools: usize },
    /// The chains starting with one more tool are done.
    ToolDone,
    /// Summarising: this many workflows found so far.
    Workflows(usize),
}

/// The most frequent chains `mine` keeps in memory before it gives up (about 100 bytes each).
pub const MAX_CHAINS: usize = 5_000_000;

/// Mines `log`: the distinct workflows (`Keep::Workflows`), or every frequent chain, pruned to
/// the near-closed ones with `Keep::Closed`, with orderings merged into parallel stages. More
/// than [`MAX_CHAINS`] frequent chains is an error that says which option to change.
pub fn mine(
    log: &EventLog,
    opts: &MineOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<MineReport, UsageError> {
    mine_parts(log, opts, Arc::new(Alone), progress)
}

/// [`mine`] over one part of a log split by session, the others mined at the same time in
/// other processes and `parts` summing every count over them: the workflows and their figures
/// are the whole log's, their runs this part's.
pub fn mine_parts(
    log: &EventLog,
    opts: &MineOptions,
    parts: Arc<dyn Exchange>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<MineReport, UsageError> {
    let ex = &*parts;
    // The summary sees a loop's rounds as one (see `Sequences::with_loops`); chains are counted
    // on the calls as they are.
    let seqs = match opts.keep == Keep::Workflows && !opts.keep_repeats {
        true => Sequences::with_loops(log, false),
        false => Sequences::new(log, opts.keep_repeats),
    };
    let (sessions, calls, collapsed_calls) = exchange::sum(
        ex,
        (log.session_count(), log.event_count(), seqs.event_count()),
    );
    let min_support = opts.min_support.resolve(sessions);
    // Every part has usage or none (`EventLog::align`).
    let usage_tokens = log.usage.as_ref().map(|usage| {
        let here: u64 = (usage.iter())
            .filter(|&&u| u != NO_USAGE && u != SAME_TURN)
            .map(|&u| u64::from(u))
            .sum();
        exchange::sum(ex, here)
    });
    if opts.keep == Keep::Workflows {
        let params = SummaryParams {
            max_gap: opts.max_gap,
            min_support,
            continuation: opts.continuation,
            order_share: opts.parallel.map_or(f64::INFINITY, |p| p.min_share),
            ..SummaryParams::default()
        };
        let found = summary::summarise(&seqs, &params, ex, &|n| progress(Progress::Workflows(n)));
        let workflows = found
            .into_iter()
            .map(|f| {
                let mut w = Workflow::from(f);
                let whole = &w.folded.as_ref().expect("summarised").whole;
                if let Some(b) = w.blocks.first().cloned() {
                    w.overlap = structure::stage_overlap(ex, log, whole, b, opts.keep_repeats);
                }
                w
            })
            .collect();
        let (workflows, paths_to_failure) =
            weigh_outcomes(workflows, &seqs, log, opts, min_support, ex);
        return Ok(MineReport {
            seqs,
            parts,
            sessions,
            calls,
            collapsed_calls,
            min_support,
            frequent: None,
            workflows,
            paths_to_failure,
            usage_tokens,
        });
    }
    let params = MineParams {
        min_len: opts.min_len,
        max_len: opts.max_len,
        max_gap: opts.max_gap,
        min_support,
    };
    progress(Progress::Chains {
        tools: log.tool_names.len(),
    });
    let mined = frequent_chains(&seqs, &params, sessions, log.session_count(), ex, progress)?;
    let frequent = mined.len();
    let supports: std::collections::HashMap<Vec<u32>, usize> = mined
        .iter()
        .map(|m| (m.pattern.clone(), m.support))
        .collect();
    let ranked = score::rank(mined, opts.keep, opts.closed_tolerance);
    let parallel = opts.parallel.unwrap_or(ParallelParams {
        // No chain examined, none merged.
        limit: 0,
        ..ParallelParams::default()
    });
    let workflows = structure::merge_orderings(
        ex,
        ranked,
        &supports,
        &seqs,
        log,
        opts.keep_repeats,
        opts.max_gap,
        &ParallelParams {
            tolerance: opts.closed_tolerance,
            ..parallel
        },
    );
    let (workflows, paths_to_failure) =
        weigh_outcomes(workflows, &seqs, log, opts, min_support, ex);
    Ok(MineReport {
        seqs,
        parts,
        sessions,
        calls,
        collapsed_calls,
        min_support,
        frequent: Some(frequent),
        workflows,
        paths_to_failure,
        usage_tokens,
    })
}

/// When the log has task outcomes: each workflow's sessions against the others', the workflows
/// ranked by support × outcome rate (a stable sort: ties keep their order), and the paths to
/// failure.
fn weigh_outcomes(
    mut workflows: Vec<Workflow>,
    seqs: &Sequences,
    log: &EventLog,
    opts: &MineOptions,
    min_support: usize,
    ex: &dyn Exchange,
) -> (Vec<Workflow>, Vec<FailurePath>) {
    // Every part has outcomes or none (`EventLog::align`).
    let Some(totals) = Totals::of(log, ex) else {
        return (workflows, Vec::new());
    };
    for w in &mut workflows {
        let sessions = sessions_of(w, seqs, opts.max_gap);
        w.outcome = Some(totals.compare_sessions(log, &sessions, ex));
        w.exits = exits(w, log, ex);
    }
    workflows.sort_by(|a, b| b.score().total_cmp(&a.score()));
    let paths = paths_to_failure(
        &totals,
        seqs,
        log,
        &workflows,
        min_support,
        opts.keep_repeats,
        ex,
    );
    (workflows, paths)
}

/// Per stage of a workflow the summary found, the outcomes of the sessions whose runs left it
/// after that stage; empty for a chain of `--keep closed|all`.
fn exits(w: &Workflow, log: &EventLog, ex: &dyn Exchange) -> Vec<Moments> {
    let Some(f) = &w.folded else {
        return Vec::new();
    };
    let outcomes = log.outcomes.as_deref().unwrap_or_default();
    let mut exits = vec![Moments::default(); f.funnel.len()];
    for &(s, k) in &f.stopped {
        if let Some(&v) = outcomes.get(s).filter(|v| !v.is_nan()) {
            exits[k].push(v);
        }
    }
    exchange::sum(ex, exits)
}

/// This part's sessions that ran `w` whole, each once, in order.
pub fn sessions_of(w: &Workflow, seqs: &Sequences, max_gap: Option<usize>) -> Vec<usize> {
    let mut sessions: Vec<usize> = (occurrences(w, seqs, max_gap).iter())
        .map(|(_, e)| e.session)
        .collect();
    sessions.sort_unstable();
    sessions.dedup();
    sessions
}

/// Every chain of `params` frequent in the whole log of `sessions` sessions, this part holding
/// `here` of them. Alone, mined directly. In parts, by SON (Savasere, Omiecinski & Navathe,
/// VLDB 1995): a chain frequent overall is frequent in some part at that part's share of the
/// least support (else its supports would add up to less), so each part mines at its share,
/// the union of what they found is counted exactly in every part, and the counts are summed.
/// Sorted by chain (ranking orders them afterwards).
fn frequent_chains(
    seqs: &Sequences,
    params: &MineParams,
    sessions: usize,
    here: usize,
    ex: &dyn Exchange,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<Mined>, UsageError> {
    let share = match ex.parts() {
        1 => params.min_support,
        _ => {
            let scaled = params.min_support as u128 * here as u128;
            (scaled.div_ceil(sessions.max(1) as u128) as usize).max(1)
        }
    };
    let local = MineParams {
        min_support: share,
        ..*params
    };
    let mined = mining::mine_bounded(seqs, &local, MAX_CHAINS, &|| progress(Progress::ToolDone));
    let too_many = |limit: usize| {
        UsageError(format!(
            "more than {} million frequent chains (support {}, up to {} tools, gap {}): they \
             would take gigabytes of memory; raise --min-support, or lower --max-len or --max-gap",
            limit / 1_000_000,
            local.min_support,
            params.max_len,
            params.max_gap.map_or("none".to_string(), |g| g.to_string()),
        ))
    };
    if ex.parts() == 1 {
        return mined.map_err(|t| too_many(t.limit));
    }
    // Every part goes on or stops together.
    let candidates: Option<Vec<Vec<u32>>> = mined
        .ok()
        .map(|m| m.into_iter().map(|m| m.pattern).collect());
    let failed = exchange::sum(ex, usize::from(candidates.is_none()));
    if failed > 0 {
        return Err(too_many(MAX_CHAINS));
    }
    let candidates = exchange::gather(ex, candidates.expect("no part failed"));
    let candidates: FxHashSet<Vec<u32>> = candidates.into_iter().collect();
    let counted = mining::count_candidates(seqs, params, &candidates);
    let counts: FxHashMap<Vec<u32>, (usize, u64, usize)> = (counted.into_iter())
        .map(|m| (m.pattern, (m.support, m.occurrences, m.successes)))
        .collect();
    let mut mined: Vec<Mined> = (exchange::sum_map(ex, counts).into_iter())
        .filter(|(_, (support, ..))| *support >= params.min_support)
        .map(|(pattern, (support, occurrences, successes))| Mined {
            pattern,
            support,
            occurrences,
            successes,
        })
        .collect();
    mined.sort_unstable_by(|a, b| a.pattern.cmp(&b.pattern));
    Ok(mined)
}

/// The mean time of a whole run of a workflow the summary found, in milliseconds, when the log
/// has durations. (Not for the chains of `--keep closed|all`: that would scan the log again for
/// each; their templates have it.)
pub fn duration_ms(
    w: &Workflow,
    report: &MineReport,
    log: &EventLog,
    opts: &MineOptions,
) -> Option<f64> {
    let whole: Vec<&Embedding> = w.folded.as_ref()?.whole.iter().collect();
    mean_duration_ms(&whole, log, opts.keep_repeats, &*report.parts)
}

/// What running a workflow as one call saves the model, measured on its whole runs whose calls
/// all have usage: the turns that issued steps 2..N (a step issued in the same turn as an
/// earlier one saves none) and their tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Savings {
    /// Whole runs whose calls all have usage.
    pub runs: usize,
    pub turns_total: u64,
    pub turns_median: f64,
    pub tokens_total: u64,
    pub tokens_median: f64,
    /// The share of all the tokens of the log's sessions that `tokens_total` is.
    pub tokens_share: f64,
}

/// The [`Savings`] of `w`; `None` when the log has no usage or no run of it has usage for
/// every call (unknown, not zero).
pub fn savings(
    w: &Workflow,
    report: &MineReport,
    log: &EventLog,
    opts: &MineOptions,
) -> Option<Savings> {
    report.usage_tokens?;
    let found = occurrences(w, &report.seqs, opts.max_gap);
    savings_over(&found, report, log, opts.keep_repeats)
}

/// [`savings`] over occurrences already found (as [`occurrences`] gives them).
pub fn savings_over(
    occurrences: &[(usize, Embedding)],
    report: &MineReport,
    log: &EventLog,
    keep_repeats: bool,
) -> Option<Savings> {
    let (all, usage) = (report.usage_tokens?, log.usage.as_ref()?);
    let runs: Vec<(u64, u64)> = (occurrences.iter())
        .filter_map(|(_, e)| {
            let calls: Vec<_> = log.collapsed(e.session, keep_repeats).collect();
            let first = *e.positions.iter().min()?;
            let mut saved = (0u64, 0u64);
            for &p in e.positions.iter().filter(|&&p| p != first) {
                for i in calls[p].clone() {
                    match usage[i] {
                        NO_USAGE => return None,
                        SAME_TURN => {}
                        tokens => saved = (saved.0 + 1, saved.1 + u64::from(tokens)),
                    }
                }
            }
            Some(saved)
        })
        .collect();
    let runs = exchange::gather(&*report.parts, runs);
    if runs.is_empty() {
        return None;
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        let n = v.len();
        match n % 2 {
            1 => v[n / 2] as f64,
            _ => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
        }
    };
    let tokens_total: u64 = runs.iter().map(|r| r.1).sum();
    Some(Savings {
        runs: runs.len(),
        turns_total: runs.iter().map(|r| r.0).sum(),
        turns_median: median(runs.iter().map(|r| r.0).collect()),
        tokens_total,
        tokens_median: median(runs.iter().map(|r| r.1).collect()),
        tokens_share: tokens_total as f64 / all.max(1) as f64,
    })
}

/// The savings of a workflow as JSON fields for `--json` and the templates: `round_trips_saved`
/// (one per step after the first, per run: what the step count says) and, measured,
/// `turns_saved` and `tokens_saved` (`null`: the log has no usage, unknown).
pub fn savings_fields(w: &Workflow, savings: Option<&Savings>) -> Map<String, Value> {
    let mut out = Map::new();
    let steps = w.mined.pattern.len() as u64;
    out.insert(
        "round_trips_saved".into(),
        json!((steps - 1) * w.mined.occurrences),
    );
    let round = |v: f64| (v * 1e4).round() / 1e4;
    out.insert(
        "turns_saved".into(),
        savings.map_or(
            Value::Null,
            |s| json!({"runs": s.runs, "total": s.turns_total, "median": s.turns_median}),
        ),
    );
    out.insert(
        "tokens_saved".into(),
        savings.map_or(Value::Null, |s| {
            json!({
                "runs": s.runs,
                "total": s.tokens_total,
                "median": s.tokens_median,
                "share_of_all_tokens": round(s.tokens_share),
            })
        }),
    );
    out
}

/// The occurrences of `w`, as (ordering, occurrence): the summary's whole runs, or a scan of
/// the log for each ordering of a chain.
pub fn occurrences(
    w: &Workflow,
    seqs: &Sequences,
    max_gap: Option<usize>,
) -> Vec<(usize, Embedding)> {
    match &w.folded {
        Some(f) => f.whole.iter().map(|e| (0, e.clone())).collect(),
        None => (w.orderings.iter().enumerate())
            .flat_map(|(k, o)| {
                let found = mining::first_embeddings(seqs, o, max_gap);
                found.into_iter().map(move |e| (k, e))
            })
            .collect(),
    }
}

/// The chain of `w` by name and what its template keeps: figures, retries, data flow, stages,
/// and what the summary folded into it.
pub fn template_stats(
    w: &Workflow,
    report: &MineReport,
    log: &EventLog,
    opts: &MineOptions,
) -> (Vec<String>, ChainStats) {
    let p = &w.mined;
    let ex = &*report.parts;
    let occurrences = occurrences(w, &report.seqs, opts.max_gap);
    let found: Vec<&Embedding> = occurrences.iter().map(|(_, e)| e).collect();
    let time = |t: i64| {
        chrono::DateTime::from_timestamp_micros(t)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    // The first and last call of the sessions that ran it, over every part.
    let first = (found.iter())
        .map(|e| log.timestamps[log.offsets[e.session]])
        .min();
    let last = (found.iter())
        .map(|e| log.timestamps[log.offsets[e.session + 1] - 1])
        .max();
    let (first, last) = exchange::combine(ex, (first, last), |a, b| {
        (
            a.0.into_iter().chain(b.0).min(),
            a.1.into_iter().chain(b.1).max(),
        )
    });
    let (first_seen, last_seen) = match log.time_kind {
        TimeKind::EpochMicros => (first.and_then(time), last.and_then(time)),
        TimeKind::OrderKey => (None, None),
    };
    let avg_duration_ms = mean_duration_ms(&found, log, opts.keep_repeats, ex);
    // Retries by canonical step, whatever the ordering of the occurrence: how many
    // occurrences had each number of retries.
    let canonical: Vec<Vec<usize>> = (0..w.orderings.len())
        .map(|k| w.canonical_index(k))
        .collect();
    let mut observed: Vec<Counts<u32, usize>> = vec![Counts::default(); p.pattern.len()];
    for (k, e) in &occurrences {
        for (x, &i) in canonical[*k].iter().enumerate() {
            *observed[i].0.entry(e.retries[x]).or_default() += 1;
        }
    }
    let retries = (exchange::sum(ex, observed).iter())
        .map(|counts| planned_retries(&counts.0))
        .collect();
    let chain: Vec<String> = log.names(&p.pattern).map(String::from).collect();
    let (parameters, variables) =
        structure::infer(w, &occurrences, log, opts.keep_repeats, &opts.flow, ex)
            .map(|sources| structure::parameters(&sources, &template::step_ids(&chain)))
            .unwrap_or_default();
    let loops = (w.folded.iter())
        .flat_map(|f| &f.loops)
        .map(|l| (l.start..l.end, l.most()))
        .collect();
    let stats = ChainStats {
        loops,
        tools: chain
            .iter()
            .map(|t| log.refined.get(t).unwrap_or(t).clone())
            .collect(),
        blocks: w.blocks.clone(),
        orderings: w.orderings[1..]
            .iter()
            .map(|o| log.names(o).map(String::from).collect())
            .collect(),
        parameters,
        variables,
        support: p.support as u64,
        success_rate: p.success_rate(),
        score: w.score(),
        first_seen,
        last_seen,
        retries,
        avg_duration_ms,
        folded: {
            let mut fields = folded_fields(w, log, report.sessions);
            let savings = savings_over(&occurrences, report, log, opts.keep_repeats);
            fields.extend(savings_fields(w, savings.as_ref()));
            fields
        },
    };
    (chain, stats)
}

/// The mean time of an occurrence (its steps' calls, retries included), over the occurrences
/// (of every part) whose calls all have a duration; `None` when the log has no durations.
fn mean_duration_ms(
    found: &[&Embedding],
    log: &EventLog,
    keep_repeats: bool,
    ex: &dyn Exchange,
) -> Option<f64> {
    let (sum, n) = match log.durations.as_ref() {
        Some(durations) => occurrence_durations(found, log, keep_repeats, durations),
        None => (0, 0),
    };
    let (sum, n) = exchange::sum(ex, (sum, n));
    (n > 0).then(|| (sum as f64 / n as f64).round())
}

/// The total time of the occurrences whose calls all have a duration, and their number. On
/// every thread: a workflow's occurrences at 10M calls are a million.
fn occurrence_durations(
    found: &[&Embedding],
    log: &EventLog,
    keep_repeats: bool,
    durations: &[u32],
) -> (u64, usize) {
    found
        .par_iter()
        .map_init(Vec::new, |calls, e| {
            calls.clear();
            calls.extend(log.collapsed(e.session, keep_repeats));
            let mut total = 0u64;
            for i in e.positions.iter().flat_map(|&p| calls[p].clone()) {
                // An occurrence with a call of unknown duration does not count.
                if durations[i] == UNKNOWN_DURATION {
                    return (0, 0);
                }
                total += u64::from(durations[i]);
            }
            (total, 1)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// The retries to plan for a step from how many occurrences had each number of retries: when
/// at least one occurrence in ten was retried, the median retries of the retried ones (a
/// median, so that one runaway retry loop does not set the plan).
fn planned_retries(observed: &FxHashMap<u32, usize>) -> u32 {
    let all: usize = observed.values().sum();
    let mut retried: Vec<(u32, usize)> = (observed.iter())
        .filter(|(r, _)| **r > 0)
        .map(|(r, n)| (*r, *n))
        .collect();
    let n: usize = retried.iter().map(|(_, n)| n).sum();
    if n == 0 || n * 10 < all {
        return 0;
    }
    retried.sort_unstable();
    // The (n / 2)-th retried occurrence, counting from 0.
    let mut before = 0;
    for (r, k) in retried {
        before += k;
        if before > n / 2 {
            return r;
        }
    }
    unreachable!("n / 2 < n")
}

/// `outcome: solved in 5.0% of 80 sessions, 56.1% of the 420 others: −51.1 points (95% CI −58.0
/// to −43.2), a drop`.
pub fn outcome_text(c: &Comparison) -> Option<String> {
    let (a, b) = (c.with.mean()?, c.without.mean()?);
    let (scale, unit, what) = match c.binary {
        true => (100.0, "%", "solved in"),
        false => (1.0, "", "mean reward"),
    };
    let mut line = format!(
        "outcome: {what} {:.1}{unit} of {} session{}, {:.1}{unit} of the {} other{}",
        a * scale,
        crate::numbers::count(c.with.n),
        if c.with.n == 1 { "" } else { "s" },
        b * scale,
        crate::numbers::count(c.without.n),
        if c.without.n == 1 { "" } else { "s" },
    );
    if let Some((d, low, high)) = c.difference() {
        let points = if c.binary { " points" } else { "" };
        let p = if c.binary { 1 } else { 2 };
        line.push_str(&format!(
            ": {:+.p$}{points} (95% CI {:+.p$} to {:+.p$}){}",
            d * scale,
            low * scale,
            high * scale,
            match c.effect() {
                crate::outcome::Effect::Lift => ", a lift",
                crate::outcome::Effect::Drop => ", a drop",
                crate::outcome::Effect::Unclear => "",
            }
        ));
    }
    Some(line)
}

/// Where runs left `w` with a known outcome, and how those sessions fared, in words: `left
/// after: get_booking 566 (12.3% solved) · cancel_booking 4 (0.0% solved)`; `None` without.
pub fn exits_text(w: &Workflow, log: &EventLog) -> Option<String> {
    let c = w.outcome?;
    let stages = stage_names(w, log);
    let exits: Vec<String> = (stages.iter().zip(&w.exits))
        .filter(|(_, m)| m.n > 0)
        .map(|(s, m)| {
            let (n, v) = (crate::numbers::count(m.n), c.shown(m.mean()));
            match c.binary {
                true => format!("{s} {n} ({v} solved)"),
                false => format!("{s} {n} (mean reward {v})"),
            }
        })
        .collect();
    (!exits.is_empty()).then(|| format!("left after: {}", exits.join(" · ")))
}

/// A path to failure as `--json` and the report give it: its kind (`tool`, `calls` in a row,
/// `workflow`), chain, outcome fields (see [`Comparison::fields`]) and what came next.
pub fn failure_fields(p: &FailurePath, log: &EventLog) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!(p.kind()));
    out.insert(
        "chain".into(),
        json!(log.names(&p.chain).collect::<Vec<_>>()),
    );
    out.extend(p.comparison.fields());
    let then = (p.then.iter()).map(|(tool, m)| {
        json!({
            "tool": tool.map(|t| &log.tool_names[t as usize]),
            "sessions": m.n,
            "outcome_rate": m.mean().map(|v| (v * 1e4).round() / 1e4),
        })
    });
    out.insert("then".into(), Value::Array(then.collect()));
    Value::Object(out)
}

/// A path to failure in words: `get_booking → cancel_booking: solved in 5.0% of 451 sessions,
/// 56.1% of the others; then (end) 402 · think 31`.
pub fn failure_text(p: &FailurePath, log: &EventLog) -> String {
    let c = &p.comparison;
    let then = (p.then.iter().take(3))
        .map(|(t, m)| {
            let what = t.map_or("(end)", |t| log.tool_names[t as usize].as_str());
            format!("{what} {}", crate::numbers::count(m.n))
        })
        .collect::<Vec<_>>()
        .join(" · ");
    format!(
        "{}: {} {} of {} sessions, {} of the others; then {then}",
        log.names(&p.chain).collect::<Vec<_>>().join(" → "),
        if c.binary { "solved in" } else { "mean reward" },
        c.shown(c.with.mean()),
        crate::numbers::count(c.with.n),
        c.shown(c.without.mean()),
    )
}

/// The stages of `w` as text, one per stage: `a`, `{b ∥ c}`.
pub fn stage_names(w: &Workflow, log: &EventLog) -> Vec<String> {
    let names: Vec<&str> = log.names(&w.mined.pattern).collect();
    w.stages()
        .iter()
        .map(|s| template::stage_text(&s.iter().map(|&i| names[i]).collect::<Vec<_>>()))
        .collect()
}

/// The workflow in words: its stages joined by arrows, a loop's body in parentheses with a
/// `+` (`run_tests → (edit → run_tests)+ → commit`).
pub fn workflow_text(w: &Workflow, log: &EventLog) -> String {
    let names: Vec<&str> = log.names(&w.mined.pattern).collect();
    let loops: Vec<std::ops::Range<usize>> = (w.folded.iter())
        .flat_map(|f| &f.loops)
        .map(|l| l.start..l.end)
        .collect();
    template::chain_text(&names, &w.blocks, &loops)
}

/// A loop in words: `(edit → test)+ median 2 rounds, most 4: 1× 66 · 2× 71`.
pub fn loop_text(l: &summary::Loop, w: &Workflow, log: &EventLog) -> String {
    let body: Vec<&str> = log.names(&w.mined.pattern[l.start..l.end]).collect();
    let spread = (l.rounds.iter())
        .map(|(r, n)| format!("{r}× {}", crate::numbers::count(*n as u64)))
        .collect::<Vec<_>>()
        .join(" · ");
    let median = l.median();
    format!(
        "({})+ median {median} round{}, most {}: {spread}",
        body.join(" → "),
        if median == 1 { "" } else { "s" },
        l.most()
    )
}

/// The others that share a branch's trunk, in words: `after a → b also c 96 · d → e 89`.
pub fn branch_text(b: &summary::Branch, log: &EventLog) -> String {
    let trunk = log.names(&b.trunk).collect::<Vec<_>>().join(" → ");
    let others = (b.siblings.iter())
        .map(|(p, n)| {
            let rest = match b.at_start {
                true => &p[b.trunk.len()..],
                false => &p[..p.len() - b.trunk.len()],
            };
            let rest = log.names(rest).collect::<Vec<_>>().join(" → ");
            format!("{rest} {}", crate::numbers::count(*n as u64))
        })
        .collect::<Vec<_>>();
    let side = if b.at_start { "after" } else { "before" };
    format!("{side} {trunk} also {}", others.join(" · "))
}

/// A variant in words: `without b`, `+ x after b`, `then y`, `part: a → b`.
pub fn variant_text(change: &Change, w: &Workflow, log: &EventLog) -> String {
    let stages = stage_names(w, log);
    match change {
        Change::Skipped(k) => format!("without {}", stages[*k]),
        Change::Extra { after, tool } => {
            format!(
                "+ {} after {}",
                log.tool_names[*tool as usize], stages[*after]
            )
        }
        Change::Then(tool) => format!("then {}", log.tool_names[*tool as usize]),
        Change::Related { chain, kind } => {
            let text = log.names(chain).collect::<Vec<_>>().join(" → ");
            match kind {
                summary::Relation::Part => format!("part: {text}"),
                summary::Relation::Longer => format!("longer: {text}"),
                summary::Relation::OneStepDiffers => format!("one step differs: {text}"),
            }
        }
    }
}

/// What the summary folded into `w`, as JSON fields (`sessions`, `coverage`, `funnel`,
/// `variants`; none for a chain of `--keep closed|all`), and the task outcomes of its sessions
/// when the log has them (see [`Comparison::fields`]). The same fields go into `--json` and the
/// template.
/// `sessions` is the number of sessions of the whole log.
pub fn folded_fields(w: &Workflow, log: &EventLog, sessions: usize) -> Map<String, Value> {
    let mut out = w.outcome.map(|c| c.fields()).unwrap_or_default();
    let Some(f) = &w.folded else {
        return out;
    };
    let stages = stage_names(w, log);
    if !w.exits.is_empty() {
        let exits = (stages.iter().zip(&w.exits))
            .filter(|(_, m)| m.n > 0)
            .map(|(s, m)| {
                json!({
                    "after": s,
                    "sessions": m.n,
                    "outcome_rate": m.mean().map(|v| (v * 1e4).round() / 1e4),
                })
            });
        out.insert("exits".into(), Value::Array(exits.collect()));
    }
    out.insert("sessions".into(), json!(f.sessions));
    let coverage = f.sessions as f64 / sessions.max(1) as f64;
    out.insert("coverage".into(), json!((coverage * 1e4).round() / 1e4));
    out.insert(
        "funnel".into(),
        Value::Array(
            stages
                .iter()
                .zip(&f.funnel)
                .map(|(s, n)| json!({"step": s, "sessions": n}))
                .collect(),
        ),
    );
    let variants = f.variants.iter().map(|v| {
        let mut entry = Map::new();
        match &v.change {
            Change::Skipped(k) => {
                entry.insert("kind".into(), json!("skipped"));
                entry.insert("step".into(), json!(stages[*k]));
            }
            Change::Extra { after, tool } => {
                entry.insert("kind".into(), json!("extra"));
                entry.insert("tool".into(), json!(log.tool_names[*tool as usize]));
                entry.insert("after".into(), json!(stages[*after]));
            }
            Change::Then(tool) => {
                entry.insert("kind".into(), json!("then"));
                entry.insert("tool".into(), json!(log.tool_names[*tool as usize]));
            }
            Change::Related { chain, kind } => {
                entry.insert("kind".into(), json!(kind));
                entry.insert("chain".into(), json!(log.names(chain).collect::<Vec<_>>()));
            }
        }
        entry.insert("sessions".into(), json!(v.sessions));
        Value::Object(entry)
    });
    out.insert("variants".into(), Value::Array(variants.collect()));
    let loops = f.loops.iter().map(|l| {
        json!({
            "start": l.start,
            "end": l.end - 1,
            "body": log.names(&w.mined.pattern[l.start..l.end]).collect::<Vec<_>>(),
            "rounds": {
                "median": l.median(),
                "most": l.most(),
                "sessions": l.rounds.iter().map(|(r, n)| json!({"rounds": r, "sessions": n})).collect::<Vec<_>>(),
            },
        })
    });
    if !f.loops.is_empty() {
        out.insert("loops".into(), Value::Array(loops.collect()));
    }
    if let Some(b) = &f.branch {
        out.insert(
            "branch".into(),
            json!({
                "trunk": log.names(&b.trunk).collect::<Vec<_>>(),
                "at": if b.at_start { "start" } else { "end" },
                "siblings": b.siblings.iter().map(|(p, n)| json!({
                    "pattern": log.names(p).collect::<Vec<_>>(),
                    "support": n,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    out
}
