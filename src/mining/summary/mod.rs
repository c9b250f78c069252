//! The distinct workflows of a log, each whole: a greedy cover of the sessions by workflows.
//!
//! Enumerating every frequent window and pruning afterwards keeps the pieces of a workflow
//! whenever its whole is broken in a few runs (an abandoned run, a long gap), and explodes on
//! long processes. Instead, as SQS (Tatti & Vreeken, KDD 2012) covers a sequence database with
//! the patterns that explain it best, one workflow at a time is grown from the strongest pair
//! of the calls no workflow explains yet, and then its runs are taken out of the log:
//!
//! 1. **Seed**: the pair `a → b` (at most `max_gap` calls apart) that occurs in the most sessions,
//!    among the pairs where one tool mostly leads to the other: `b` follows within reach in
//!    `continuation` of the calls of `a` beyond chance, or `a` precedes `b` so.
//! 2. **Grow**: a step is added (before, after, or between two steps) when `continuation` of
//!    the runs of the workflow so far go on with it — by default most of them — beyond chance
//!    (a tool as common would be in the same window in some runs anyway: the share counts the
//!    room above that chance) and surely (the share less one standard error, so that a handful
//!    of runs decides nothing). A tool that runs before a stage in some runs and after
//!    it in others (each order in at least `order_share` of the other's runs, and not on both
//!    sides in the same runs, which is a loop) joins the stage: a stage is a set of tools in any
//!    order, of any width. No length cap: a process grows as long as its runs go on together.
//! 3. **Cover**: every run of the workflow (at least two of its stages; one stage may be
//!    skipped; a run resumes after a longer gap when its next two stages follow each other
//!    there) is taken out of the log with the calls between its steps; the next seed is found
//!    among what is left. Where runs stop is the funnel; what they did differently (a skipped
//!    step, an extra call, a branch after the end, another order) are its variants.
//! 4. **Branch**: where runs part ways — at an end, a way that a tenth of all the runs take
//!    (and a tool that mostly runs there) but not most; between two stages, two common ways —
//!    each way is grown into a workflow of its own, and only the runs that took it are taken
//!    out. The start (or end) they share, the trunk, is tried again for its next way; every
//!    start, end and stage of a workflow found is tried as a trunk (a stage alone only when the
//!    pair counts allow a branch there). Branches name each other (`Found::branch`).
//! 5. **Loops**: a body of two or three calls repeated back to back is seen as its last round
//!    ([`Sequences::with_loops`]); a workflow lists the rounds its whole runs went through it.
//! 6. **Fold**: a workflow found later that repeats a better one (a part of it, it with more
//!    steps, or it with one step different) becomes a variant of that one; branches are not
//!    repeats, and a trunk alone folds into its best branch.
//!
//! The parts: the residual (`residual`), runs of a workflow in a session (`runs`), growth
//! (`grow`), the figures of its runs (`describe`), folding (`fold`).
//!
//! The one knob is `continuation`: the share of runs that must go on with a step for it to be
//! part of the workflow. A step that fewer runs take is a variant, not a new workflow, and a
//! piece of a workflow is never found on its own because its calls are already explained.
//!
//! The result does not depend on the number of threads.

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::{Embedding, OK, Sequences, TOOL, retries_of};
use crate::exchange::{self, Counts, Exchange, Sum};

mod describe;
mod fold;
mod grow;
mod residual;
mod runs;

use describe::*;
pub use fold::relation;
use fold::*;
use grow::*;
use residual::*;
use runs::*;

/// The reach of a gap of 2, the default: how far evidence looks when there is no gap limit.
const DEFAULT_REACH: usize = 3;

/// Two orders of two tools that come together in more than this share of the rarer order's
/// sessions (or runs) are a loop, not a stage: concurrency runs one order per run.
const LOOP_SHARE: f64 = 0.5;

/// How workflows are grown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryParams {
    /// Most other calls between two consecutive steps of a run; `None` for no limit.
    pub max_gap: Option<usize>,
    /// Fewest sessions a workflow must run whole in.
    pub min_support: usize,
    /// Share of a workflow's runs that must go on with a step for it to be part of the workflow.
    pub continuation: f64,
    /// A tool joins a stage when it runs before it in at least this share of the runs where it
    /// runs after it, and the other way round; 1.0 or more: no stages of several tools.
    pub order_share: f64,
    /// Steps at most (a guard against runaway growth on pathological logs).
    pub max_steps: usize,
    /// When a workflow stops growing, a tool that at least this share of its runs (but fewer
    /// than `continuation`) go on with at one end is a branch: the workflow with it is grown
    /// and found on its own, the runs that took another way left for the other branches.
    pub branch: f64,
}

impl Default for SummaryParams {
    fn default() -> SummaryParams {
        SummaryParams {
            max_gap: Some(2),
            min_support: 5,
            continuation: 0.5,
            order_share: 0.2,
            max_steps: 64,
            branch: 0.1,
        }
    }
}

/// A workflow found in the log, with what its runs did.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Stages in order; the tools of a stage run in any order (most common order first).
    pub stages: Vec<Vec<u32>>,
    /// Sessions with a whole run (every stage, no step skipped).
    pub support: usize,
    /// Sessions with a whole run in which every step succeeded.
    pub successes: usize,
    /// Whole runs.
    pub occurrences: u64,
    /// Sessions with a run of at least two stages (whole, stopped early, or with a step skipped).
    pub sessions: usize,
    /// Per stage, the sessions whose run reached it or a later one (a run that skipped it went
    /// past it): it never rises.
    pub funnel: Vec<usize>,
    /// What runs did differently, most sessions first.
    pub variants: Vec<Variant>,
    /// Per flat ordering of the steps seen in whole runs, its sessions; the most common first.
    pub orderings: Vec<(Vec<u32>, usize)>,
    /// The first whole run of each supporting session, positions in canonical step order (the
    /// flattened stages).
    pub whole: Vec<Embedding>,
    /// This part's sessions with a run but none whole, each with the last stage its runs
    /// reached, before the last one (where they left the workflow).
    pub stopped: Vec<(usize, usize)>,
    /// Sessions whose whole run is followed by no call no other workflow explains: how often
    /// the workflow is the whole of what a session did.
    pub ends: usize,
    /// Bodies of steps that runs repeated back to back, with their rounds.
    pub loops: Vec<Loop>,
    /// When the workflow is a branch: the indices of its stages that are the trunk it shares
    /// with other branches (runs split after it, or came to it from different starts); empty
    /// when it is not a branch.
    pub trunk: Vec<usize>,
    /// The trunk and the other workflows that share it, when some do.
    pub branch: Option<Branch>,
}

/// Workflows that share a trunk: a start after which runs split, or an end that runs that
/// started differently come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The steps shared.
    pub trunk: Vec<u32>,
    /// Whether the trunk starts the workflows (else it ends them).
    pub at_start: bool,
    /// The other workflows with this trunk: their steps and support, most support first.
    pub siblings: Vec<(Vec<u32>, usize)>,
}

/// Steps of a workflow that its runs repeat back to back (a loop: edit → test until green).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loop {
    /// The body: steps `start..end` of the canonical order.
    pub start: usize,
    pub end: usize,
    /// Sessions by the rounds their whole run went through the body (1: once), fewest first.
    pub rounds: Vec<(u32, usize)>,
}

impl Loop {
    /// The rounds of the median session.
    pub fn median(&self) -> u32 {
        let n: usize = self.rounds.iter().map(|r| r.1).sum();
        let mut before = 0;
        for &(r, k) in &self.rounds {
            before += k;
            if 2 * before > n {
                return r;
            }
        }
        self.rounds.last().map_or(1, |r| r.0)
    }

    /// The most rounds a session went through.
    pub fn most(&self) -> u32 {
        self.rounds.last().map_or(1, |r| r.0)
    }
}

/// A way in which runs of a workflow differ from it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// The stage at this index was skipped; the run went on with the next one.
    Skipped(usize),
    /// This tool was called between the stage at this index and the next one (or after the last).
    Extra { after: usize, tool: u32 },
    /// Whole runs went on with this tool right after the last stage (a branch after the
    /// workflow, taken by a minority of its runs).
    Then(u32),
    /// A chain found among the calls no workflow explained that repeats this one: a part of it,
    /// it with more steps, or it with one step different.
    Related { chain: Vec<u32>, kind: Relation },
}

/// How a related chain repeats a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Its steps are some of the workflow's, in order (a window or fragment).
    Part,
    /// It holds every step of the workflow and more.
    Longer,
    /// All steps but one in common: the longer has one step the other has not, or one step
    /// differs.
    OneStepDiffers,
}

/// A variant and the sessions that ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub change: Change,
    pub sessions: usize,
}

impl Found {
    /// The steps in canonical order.
    pub fn pattern(&self) -> Vec<u32> {
        self.stages.iter().flatten().copied().collect()
    }

    /// The steps of the trunk this branch shares with others; empty if it is not a branch.
    pub fn trunk_pattern(&self) -> Vec<u32> {
        (self.trunk.iter())
            .flat_map(|&k| self.stages[k].iter().copied())
            .collect()
    }

    /// Ranges of the canonical steps that form stages of several tools.
    pub fn blocks(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut at = 0;
        for s in &self.stages {
            if s.len() > 1 {
                out.push(at..at + s.len());
            }
            at += s.len();
        }
        out
    }
}

/// The distinct workflows of `seqs`, best first (sessions with a successful whole run, then
/// whole sessions, then the chain). `on_found` is called once per workflow grown (progress).
/// `ex` sums what is counted over the parts of a log split by session (see [`crate::exchange`]):
/// the figures are the whole log's, the runs (`Found::whole`) this part's.
pub fn summarise(
    seqs: &Sequences,
    params: &SummaryParams,
    ex: &dyn Exchange,
    on_found: &(dyn Fn(usize) + Sync),
) -> Vec<Found> {
    let reach = params.max_gap.map_or(usize::MAX, |g| g.saturating_add(1));
    let min_support = params.min_support.max(1);
    let mut residual = Residual::new(seqs, reach, ex);
    let mut found: Vec<Found> = Vec::new();
    let mut tried: FxHashSet<(u32, u32)> = FxHashSet::default();
    // Starts, ends and single stages of the workflows found, whose other runs may go other
    // ways (see `trunks_of`); each is tried once, before the next seed.
    // With each trunk, the runs of it that the branches found from it explained so far.
    let mut trunks: std::collections::VecDeque<(Vec<Vec<u32>>, usize)> = Default::default();
    let mut tried_trunks: FxHashSet<Vec<Vec<u32>>> = FxHashSet::default();
    loop {
        let (start, seed, base) = match trunks.pop_front() {
            // A stage alone is tried only when the pair counts say a branch may start there.
            Some((t, _)) if t.len() == 1 && !residual.may_branch(&t, min_support) => continue,
            // A trunk that no longer runs whole often enough grows into nothing.
            Some((t, _)) if !residual.may_run(&t, min_support) => continue,
            Some((t, base)) => (t, None, base),
            None => {
                let o = &params.order_share;
                let Some((a, b, both)) =
                    residual.seed(min_support, params.continuation, *o, &tried)
                else {
                    break;
                };
                let start = match both {
                    true => vec![vec![a, b]],
                    false => vec![vec![a], vec![b]],
                };
                (start, Some((a, b)), 0)
            }
        };
        let (mut stages, mut branch) = grow(&residual, start.clone(), params, min_support, base);
        // Grown from a trunk, the workflow is a branch of it; one that split when it stopped
        // growing is a branch of what it was then. Each branch, trunk included, is a workflow.
        let mut trunk = match seed {
            Some(_) => Vec::new(),
            None => start.clone(),
        };
        while let Some((slot, tool)) = branch {
            trunk = stages.clone();
            let Slot::Before(k) = slot else {
                unreachable!("a branch is a stage of its own")
            };
            stages.insert(k, vec![tool]);
            (stages, branch) = grow(&residual, stages, params, min_support, 0);
        }
        let trunk = stage_indices(&trunk, &stages);
        if seed.is_none() && trunk.len() == stages.len() {
            // The trunk's runs go on no common way.
            continue;
        }
        let (mut workflow, covered) = explain(&mut residual, stages, &trunk, min_support);
        workflow.trunk = trunk;
        if workflow.support >= min_support {
            if seed.is_none() && covered > 0 {
                // The trunk again, for its next branch.
                trunks.push_front((start, base + workflow.sessions));
            }
            for t in trunks_of(&workflow.stages) {
                if tried_trunks.insert(t.clone()) {
                    trunks.push_back((t, workflow.sessions));
                }
            }
            found.push(workflow);
            on_found(found.len());
        } else if covered == 0
            && let Some(pair) = seed
        {
            // Nothing explained and nothing found: never grow from this pair again.
            tried.insert(pair);
        }
    }
    // Best first; of two as good, the one with more steps (the other may be a part of it).
    found.sort_by(|x, y| {
        y.successes
            .cmp(&x.successes)
            .then(y.support.cmp(&x.support))
            .then_with(|| y.pattern().len().cmp(&x.pattern().len()))
            .then_with(|| x.pattern().cmp(&y.pattern()))
    });
    let mut kept = fold(found, params.continuation);
    link_branches(&mut kept);
    kept
}

/// Where other runs may split from a workflow's: its starts and its ends (longest first), and
/// each of its stages alone.
fn trunks_of(stages: &[Vec<u32>]) -> Vec<Vec<Vec<u32>>> {
    let n = stages.len();
    let starts = (1..n).rev().map(|k| stages[..k].to_vec());
    let ends = (1..n).rev().map(|k| stages[n - k..].to_vec());
    let singles = stages.iter().map(|s| vec![s.clone()]);
    let mut out: Vec<Vec<Vec<u32>>> = Vec::new();
    for t in starts.chain(ends).chain(singles) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Where the stages of `part` are among `stages`, in order (a stage that a tool joined since
/// still counts); empty when `part` is.
fn stage_indices(part: &[Vec<u32>], stages: &[Vec<u32>]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::with_capacity(part.len());
    for p in part {
        while at < stages.len() && !p.iter().all(|t| stages[at].contains(t)) {
            at += 1;
        }
        if at == stages.len() {
            break;
        }
        out.push(at);
        at += 1;
    }
    out
}

/// What the runs of `stages` did (lenient, in every session that may hold one), and the number
/// of calls taken out with them. A branch's runs are those that went through the shared start
/// of its `trunk` (stage indices; the trunk's stages before the first stage of its own), or
/// when the trunk is an end that runs came to, those that took a stage of its own: a run that
/// has some of the branch's stages without the shared start, or only the trunk, is another
/// workflow's; one that went through the start and stopped shows in the funnel. It takes out
/// only the runs that went on into the branch: the others are the other branches'.
///
/// One pass per session: its runs are found, described and taken out at once, never kept
/// (kept for every session, they were a hundred bytes and an allocation per session at 10M
/// calls, read three times).
fn explain(
    residual: &mut Residual,
    stages: Vec<Vec<u32>>,
    trunk: &[usize],
    min_support: usize,
) -> (Found, usize) {
    let n = stages.len();
    let own = (0..n).find(|k| !trunk.contains(k)).unwrap_or(n);
    let took = |r: &Run| went_on(r, trunk);
    let this = &*residual;
    // In runs of sessions, a few per thread, each a plain loop: folded one session at a time,
    // the parts (hundreds of bytes) were moved in and out of every step.
    let candidates = this.candidates(&stages);
    let per_part = (candidates.len())
        .div_ceil(8 * rayon::current_num_threads())
        .max(1);
    let parts: Vec<(Figures, Covered, usize)> = (candidates.par_chunks(per_part))
        .map(|sessions| {
            let mut figures = Figures::new(n);
            let mut covered = Covered::new(this.seqs.tool_count);
            let mut into_branch = 0;
            let mut tools = Vec::new();
            for &s in sessions {
                this.live_tools(s, &mut tools);
                let mut session_runs = runs_in(&tools, &stages, this.reach, true);
                if !trunk.is_empty() {
                    session_runs.retain(|r| {
                        (0..own).all(|k| !r.at[k].is_empty()) && (own > 0 || went_on(r, trunk))
                    });
                }
                if !session_runs.is_empty() {
                    figures.add(this, &stages, s, &session_runs);
                    if session_runs.iter().any(took) {
                        into_branch += 1;
                        covered.add(this, s, &tools, &session_runs, took);
                    }
                }
            }
            (figures, covered, into_branch)
        })
        .collect();
    let mut figures = Figures::new(n);
    let mut into_branch = 0;
    let mut covers = Vec::with_capacity(parts.len());
    for (f, c, k) in parts {
        figures.join(f);
        covers.push(c);
        into_branch += k;
    }
    let mut workflow = describe(residual, stages, figures, min_support);
    if !trunk.is_empty() {
        workflow.sessions = exchange::sum(residual.ex, into_branch);
    }
    (workflow, residual.cover(covers))
}

/// Whether run `r` of a branch went on into a stage of its own, past its `trunk` (stage
/// indices); every run of a workflow that is no branch does.
fn went_on(r: &Run, trunk: &[usize]) -> bool {
    trunk.is_empty() || (r.at.iter().enumerate()).any(|(k, a)| !a.is_empty() && !trunk.contains(&k))
}

/// The share `k / n` less one standard error: the lower end of its 68 % (Wilson score)
/// interval. A step that 8 of 15 runs take is not yet "most runs"; one that 800 of 1,500 take
/// is, and so is one that all of 3 runs take.
fn surely(k: f64, n: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    const Z2: f64 = 1.0;
    let p = (k / n).min(1.0);
    let centre = p + Z2 / (2.0 * n);
    let margin = (Z2 * (p * (1.0 - p) / n + Z2 / (4.0 * n * n))).sqrt();
    ((centre - margin) / (1.0 + Z2 / n)).max(0.0)
}

/// How far `share` is above the `chance` share, as a share of the room above chance: 1 when
/// every run does it, 0 when no more than chance would.
fn beyond_chance(share: f64, chance: f64) -> f64 {
    match chance < 1.0 {
        true => (share - chance) / (1.0 - chance),
        false => 0.0,
    }
}

#[cfg(test)]
mod tests;
