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
//! 4. **Fold**: a workflow found later that repeats a better one (a part of it, it with more
//!    steps, or it with one step different) becomes a variant of that one.
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

/// The reach of a gap of 2, the default: how far evidence looks when there is no gap limit.
const DEFAULT_REACH: usize = 3;

/// Two orders of two tools that come together in more than this share of the rarer order's
/// sessions (or runs) are a loop, not a stage: concurrency runs one order per run.
const LOOP_SHARE: f64 = 0.5;

/// Per (slot, tool), over the whole runs: runs with the tool there, and for joins the runs with
/// it before the stage, after it, and on both sides.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Tally {
    runs: usize,
    before: usize,
    after: usize,
    both: usize,
}

impl Sum for Tally {
    fn add(&mut self, o: Tally) {
        self.runs += o.runs;
        self.before += o.before;
        self.after += o.after;
        self.both += o.both;
    }
}

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
    /// Per stage, the sessions whose run reached it (ran its tools).
    pub funnel: Vec<usize>,
    /// What runs did differently, most sessions first.
    pub variants: Vec<Variant>,
    /// Per flat ordering of the steps seen in whole runs, its sessions; the most common first.
    pub orderings: Vec<(Vec<u32>, usize)>,
    /// The first whole run of each supporting session, positions in canonical step order (the
    /// flattened stages).
    pub whole: Vec<Embedding>,
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
        let mut runs = runs_everywhere(&residual, &stages);
        // A branch's runs go through its trunk (those that stop after it show in its funnel);
        // it takes out only those that went on into the branch: the others are the other
        // branches'.
        let mut cover = Vec::new();
        if !trunk.is_empty() {
            runs = through(runs, &trunk, false);
            cover = through(runs.clone(), &trunk, true);
        }
        let mut workflow = describe(&residual, stages, &runs, min_support);
        if !trunk.is_empty() {
            workflow.sessions = exchange::sum(ex, cover.len());
        } else {
            cover = runs;
        }
        workflow.trunk = trunk;
        let covered = residual.cover(&cover);
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

/// Tells each workflow that shares a trunk with others (its own, or one that another branch was
/// grown from) which others share it.
fn link_branches(kept: &mut [Found]) {
    let mut trunks: Vec<(Vec<u32>, bool)> = (kept.iter())
        .filter(|w| !w.trunk.is_empty())
        .map(|w| (w.trunk_pattern(), w.trunk[0] == 0))
        .collect();
    trunks.sort();
    trunks.dedup();
    // The longest trunk a workflow shares first.
    trunks.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    for (trunk, at_start) in trunks {
        let members: Vec<usize> = (0..kept.len())
            .filter(|&i| {
                let p = kept[i].pattern();
                p.len() > trunk.len()
                    && kept[i].branch.is_none()
                    && match at_start {
                        true => p.starts_with(&trunk),
                        false => p.ends_with(&trunk),
                    }
            })
            .collect();
        if members.len() < 2 {
            continue;
        }
        for &m in &members {
            let siblings = (members.iter())
                .filter(|&&o| o != m)
                .map(|&o| (kept[o].pattern(), kept[o].support))
                .collect();
            kept[m].branch = Some(Branch {
                trunk: trunk.clone(),
                at_start,
                siblings,
            });
        }
    }
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

/// The runs of a branch: those that went through the shared start of its `trunk` (stage
/// indices; the trunk's stages before the first stage of its own), and with `on`, or when the
/// trunk is an end that runs came to, only those that took a stage of its own. A run that has
/// some of the branch's stages without the shared start, or only the trunk, is another
/// workflow's; one that went through the start and stopped shows in the funnel.
fn through(runs: Vec<(usize, Vec<Run>)>, trunk: &[usize], on: bool) -> Vec<(usize, Vec<Run>)> {
    let n = runs.first().map_or(0, |(_, r)| r[0].at.len());
    let own = (0..n).find(|k| !trunk.contains(k)).unwrap_or(n);
    let on = on || own == 0;
    runs.into_iter()
        .filter_map(|(s, session_runs)| {
            let took: Vec<Run> = (session_runs.into_iter())
                .filter(|r| {
                    let ran = |k: usize| !r.at[k].is_empty();
                    let went_on = (0..n).any(|k| ran(k) && !trunk.contains(&k));
                    (0..own).all(ran) && (!on || went_on)
                })
                .collect();
            (!took.is_empty()).then_some((s, took))
        })
        .collect()
}

/// Folds every workflow that repeats a better one (a part of it, it with more steps, or it with
/// one step different) into that one, as a variant; a workflow with more steps than a better one
/// and as much support takes its place. Branches are not repeats: two workflows
/// that share a start (or an end) and then have nothing more in common are both kept, and a
/// trunk (a start of longer workflows) is folded into its best branch, not the branch into it,
/// unless the trunk is commonly the whole run (`continuation` of its sessions do nothing else
/// after it) and as common as that branch: then both are kept.
fn fold(found: Vec<Found>, continuation: f64) -> Vec<Found> {
    let chains: Vec<Vec<u32>> = found.iter().map(Found::pattern).collect();
    // Longest first, so that a trunk's branch is decided before the trunk.
    let mut by_length: Vec<usize> = (0..found.len()).collect();
    by_length.sort_by_key(|&i| std::cmp::Reverse(chains[i].len()));
    let mut trunk_of: Vec<Option<usize>> = vec![None; found.len()];
    let mut whole_trunk = vec![false; found.len()];
    for &i in &by_length {
        let branch = (0..found.len()).find(|&j| {
            trunk_of[j].is_none()
                && chains[j].len() > chains[i].len()
                && chains[j].starts_with(&chains[i])
        });
        let Some(j) = branch else { continue };
        let w = &found[i];
        let whole_run = w.ends as f64 >= continuation * w.support as f64;
        match whole_run && w.support >= found[j].support {
            true => whole_trunk[i] = true,
            false => trunk_of[i] = Some(j),
        }
    }
    let mut kept: Vec<(usize, Found)> = Vec::new();
    // Where each workflow went: its index in `kept`.
    let mut home_of: Vec<usize> = vec![usize::MAX; found.len()];
    let mut trunks = Vec::new();
    for (i, w) in found.into_iter().enumerate() {
        if let Some(j) = trunk_of[i] {
            trunks.push((j, w));
            continue;
        }
        let chain = &chains[i];
        let home = kept.iter().position(|(k, _)| {
            // A trunk kept on its own and its branches are different workflows.
            let trunk_pair = (whole_trunk[i] && chains[*k].starts_with(chain))
                || (whole_trunk[*k] && chain.starts_with(&chains[*k]));
            !trunk_pair && repeats(chain, &chains[*k]).is_some()
        });
        match home {
            Some(h) => {
                let kind = repeats(chain, &chains[kept[h].0]).expect("related");
                home_of[i] = h;
                if kind == Relation::Longer && w.support >= kept[h].1.support {
                    // The whole of a workflow found as a part of it first, as common: the
                    // whole is the entry, the part its variant.
                    let (j, part) = std::mem::replace(&mut kept[h], (i, w));
                    add_variant(
                        &mut kept[h].1,
                        chains[j].clone(),
                        Relation::Part,
                        part.support,
                    );
                } else {
                    add_variant(&mut kept[h].1, chain.clone(), kind, w.support);
                }
            }
            None => {
                home_of[i] = kept.len();
                kept.push((i, w));
            }
        }
    }
    for (j, w) in trunks {
        let chain = w.pattern();
        add_variant(&mut kept[home_of[j]].1, chain, Relation::Part, w.support);
    }
    kept.into_iter().map(|(_, w)| w).collect()
}

fn add_variant(home: &mut Found, chain: Vec<u32>, kind: Relation, sessions: usize) {
    home.variants.push(Variant {
        change: Change::Related { chain, kind },
        sessions,
    });
    home.variants.sort_by_key(|v| std::cmp::Reverse(v.sessions));
}

/// How `chain` repeats `of`, if it does: as [`relation`], but branches are no repeats: two
/// chains that share a start and then have nothing more in common (or share an end and have
/// nothing in common before it) are different workflows, however many steps they share.
fn repeats(chain: &[u32], of: &[u32]) -> Option<Relation> {
    if chain == of {
        return Some(Relation::Part);
    }
    let start = chain.iter().zip(of).take_while(|(a, b)| a == b).count();
    let end = (chain.iter().rev().zip(of.iter().rev()))
        .take_while(|(a, b)| a == b)
        .count();
    let split_after = start > 0 && lcs(&chain[start..], &of[start..]) == 0;
    let split_before = end > 0 && lcs(&chain[..chain.len() - end], &of[..of.len() - end]) == 0;
    if (split_after || split_before) && relation(chain, of) == Some(Relation::OneStepDiffers) {
        return None;
    }
    relation(chain, of)
}

/// How `chain` repeats `of`, if it does.
pub fn relation(chain: &[u32], of: &[u32]) -> Option<Relation> {
    if is_subsequence(chain, of) {
        return Some(Relation::Part);
    }
    if is_subsequence(of, chain) {
        return Some(Relation::Longer);
    }
    // One step replaced, added or left out on either side; not two workflows that share steps.
    let (k, most) = (chain.len().min(of.len()), chain.len().max(of.len()));
    (k >= 3 && lcs(chain, of) + 1 >= most).then_some(Relation::OneStepDiffers)
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

fn is_subsequence(small: &[u32], big: &[u32]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|t| rest.any(|b| b == t))
}

/// Length of the longest common subsequence.
fn lcs(a: &[u32], b: &[u32]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                diagonal + 1
            } else {
                row[j + 1].max(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The calls that no workflow explains yet, with the support of every pair and tool among them.
struct Residual<'a> {
    seqs: &'a Sequences,
    /// Sums counts over the parts of the log (the pairs, follows and frequencies are the whole
    /// log's).
    ex: &'a dyn Exchange,
    /// Calls in the whole log.
    total_calls: usize,
    /// How far a run reaches from one step to the next (`max_gap + 1` calls, or no limit).
    reach: usize,
    /// How far the evidence for a step looks: the reach, or with no limit the calls that a gap of
    /// the default would reach (the rest of a session is not evidence that one call follows
    /// another).
    look: usize,
    /// Per session `s`, the positions (in the session) of its calls not yet covered, at
    /// `live[offsets[s]..offsets[s] + live_len[s]]`: one flat array, compacted in place.
    live: Vec<u32>,
    live_len: Vec<u32>,
    /// Sessions in which each ordered pair occurs within `look`, keyed `a << 32 | b`.
    pairs: FxHashMap<u64, usize>,
    /// Calls of `a` followed within `look` by `b`, keyed `a << 32 | b`.
    follows: FxHashMap<u64, usize>,
    /// Sessions in which each tool occurs in the log, for finding the runs of a workflow.
    with_tool: Vec<Vec<u32>>,
    /// Share of the log's calls that are calls of each tool.
    frequency: Vec<f64>,
}

/// What one thread of [`Residual::cover`] took out: per session the calls left (a range of
/// `left`), and the change of each pair's count; with its buffers.
#[derive(Default)]
struct Covered {
    sessions: Vec<(usize, std::ops::Range<usize>)>,
    left: Vec<u32>,
    pairs: FxHashMap<u64, isize>,
    follows: FxHashMap<u64, isize>,
    keep: Vec<bool>,
    calls: Vec<u32>,
    old: Pairs,
    new: Pairs,
}

/// The pairs of a sequence of calls: distinct (for sessions) and per call (for follows).
#[derive(Default)]
struct Pairs {
    distinct: Vec<u64>,
    per_call: Vec<u64>,
}

impl<'a> Residual<'a> {
    fn new(seqs: &'a Sequences, reach: usize, ex: &'a dyn Exchange) -> Residual<'a> {
        let mut live = Vec::with_capacity(seqs.calls.len());
        for s in 0..seqs.len() {
            live.extend(0..seqs.offsets[s + 1] - seqs.offsets[s]);
        }
        let mut r = Residual {
            seqs,
            ex,
            total_calls: 0,
            reach,
            look: reach.min(DEFAULT_REACH),
            live,
            live_len: (0..seqs.len())
                .map(|s| seqs.offsets[s + 1] - seqs.offsets[s])
                .collect(),
            pairs: FxHashMap::default(),
            follows: FxHashMap::default(),
            with_tool: vec![Vec::new(); seqs.tool_count],
            frequency: vec![0.0; seqs.tool_count],
        };
        type PairCounts = (Counts<u64, usize>, Counts<u64, usize>);
        let (pairs, follows) = (0..seqs.len())
            .into_par_iter()
            .fold(
                || (PairCounts::default(), Vec::new(), Pairs::default()),
                |(mut counts, mut calls, mut pairs), s| {
                    r.live_tools(s, &mut calls);
                    r.pairs_of(&calls, &mut pairs);
                    for &k in &pairs.distinct {
                        *counts.0.0.entry(k).or_insert(0) += 1;
                    }
                    for &k in &pairs.per_call {
                        *counts.1.0.entry(k).or_insert(0) += 1;
                    }
                    (counts, calls, pairs)
                },
            )
            .map(|(counts, _, _)| counts)
            .reduce(PairCounts::default, |mut a, b| {
                a.add(b);
                a
            });
        // This part's counts, then the whole log's.
        (r.pairs, r.follows) = (
            exchange::sum_map(ex, pairs.0),
            exchange::sum_map(ex, follows.0),
        );
        let mut calls = vec![0usize; seqs.tool_count];
        for &c in &seqs.calls {
            calls[(c & TOOL) as usize] += 1;
        }
        let calls = exchange::sum(ex, calls);
        r.total_calls = calls.iter().sum();
        for (f, n) in r.frequency.iter_mut().zip(calls) {
            *f = n as f64 / r.total_calls.max(1) as f64;
        }
        // A tool is listed once per session: the last session each tool was seen in.
        let mut seen_in = vec![u32::MAX; seqs.tool_count];
        for s in 0..seqs.len() {
            let calls = &seqs.calls[seqs.offsets[s] as usize..seqs.offsets[s + 1] as usize];
            for &c in calls {
                let t = (c & TOOL) as usize;
                if seen_in[t] != s as u32 {
                    seen_in[t] = s as u32;
                    r.with_tool[t].push(s as u32);
                }
            }
        }
        r
    }

    fn call(&self, s: usize, p: u32) -> u32 {
        self.seqs.calls[self.seqs.offsets[s] as usize + p as usize]
    }

    fn tool(&self, s: usize, p: u32) -> u32 {
        self.call(s, p) & TOOL
    }

    /// The positions of session `s`'s live calls.
    fn live(&self, s: usize) -> &[u32] {
        let start = self.seqs.offsets[s] as usize;
        &self.live[start..start + self.live_len[s] as usize]
    }

    /// The tools of session `s`'s live calls, into `out`.
    fn live_tools(&self, s: usize, out: &mut Vec<u32>) {
        out.clear();
        out.extend(self.live(s).iter().map(|&p| self.tool(s, p)));
    }

    /// The pairs of different tools within reach in `calls`: each call's (`per_call`, a tool
    /// once per call) and the session's (`distinct`, sorted).
    fn pairs_of(&self, calls: &[u32], pairs: &mut Pairs) {
        pairs.per_call.clear();
        for (i, &a) in calls.iter().enumerate() {
            let from = pairs.per_call.len();
            for &b in calls[i + 1..].iter().take(self.look) {
                let key = u64::from(a) << 32 | u64::from(b);
                if a != b && !pairs.per_call[from..].contains(&key) {
                    pairs.per_call.push(key);
                }
            }
        }
        pairs.distinct.clear();
        pairs.distinct.extend_from_slice(&pairs.per_call);
        pairs.distinct.sort_unstable();
        pairs.distinct.dedup();
    }

    /// The chance that `tool` is among `window` calls picked at random from the log.
    fn chance(&self, tool: u32, window: usize) -> f64 {
        1.0 - (1.0 - self.frequency[tool as usize]).powi(window.min(i32::MAX as usize) as i32)
    }

    /// The strongest pair left: the most sessions, among pairs where one tool mostly leads to
    /// the other (in `continuation` of the sessions of the log that have it); and whether both
    /// of its orders are common (a stage of two).
    fn seed(
        &self,
        min_support: usize,
        continuation: f64,
        order_share: f64,
        tried: &FxHashSet<(u32, u32)>,
    ) -> Option<(u32, u32, bool)> {
        let mut best: Option<(usize, u32, u32)> = None;
        for (&key, &n) in &self.pairs {
            let (a, b) = ((key >> 32) as u32, key as u32);
            if n < min_support || tried.contains(&(a, b)) {
                continue;
            }
            if !self.leads(a, b, continuation) {
                continue;
            }
            let better = match best {
                None => true,
                Some((m, x, y)) => n > m || (n == m && (a, b) < (x, y)),
            };
            if better {
                best = Some((n, a, b));
            }
        }
        let (n, a, b) = best?;
        let back = self
            .pairs
            .get(&(u64::from(b) << 32 | u64::from(a)))
            .copied()
            .unwrap_or(0);
        // Both orders in most of the same sessions is a loop (a → b → a …), not a stage.
        let stage = back as f64 >= order_share * n as f64
            && self.sessions_with_both_orders(a, b) as f64 <= LOOP_SHARE * back.min(n) as f64;
        Some((a, b, stage))
    }

    /// Whether `a` mostly leads to `b`: the calls of `a` followed by `b` within reach, or the
    /// calls of `b` with `a` before them, are at least `continuation` of the calls of that tool
    /// beyond chance (the share that a tool as common as the other would get anyway). Shares
    /// are of the tool's calls in the whole log: once most calls of a tool are explained, a few
    /// stray ones must not pass for a workflow of their own.
    fn leads(&self, a: u32, b: u32, continuation: f64) -> bool {
        let n = self
            .follows
            .get(&(u64::from(a) << 32 | u64::from(b)))
            .copied()
            .unwrap_or(0);
        let total = self.total_calls as f64;
        let window = self.look;
        [(a, b), (b, a)].iter().any(|&(mine, other)| {
            let calls = self.frequency[mine as usize] * total;
            beyond_chance(n as f64 / calls, self.chance(other, window)) >= continuation
        })
    }

    /// Whether runs of `trunk` may go on another way that a branch could take: some tool
    /// outside it follows its last stage (or precedes its first) in at least `min_support` of
    /// the calls left and in a fifth of that tool's calls, as a branch must (see [`grow`]). A
    /// look at the pair counts instead of a scan of the sessions.
    fn may_branch(&self, trunk: &[Vec<u32>], min_support: usize) -> bool {
        let (first, last) = (&trunk[0], &trunk[trunk.len() - 1]);
        let inside = |x: u32| trunk.iter().flatten().any(|&t| t == x);
        let total = self.total_calls as f64;
        let common = |x: u32, n: usize| {
            !inside(x) && n >= min_support && n as f64 >= self.frequency[x as usize] * total / 5.0
        };
        self.follows.iter().any(|(&key, &n)| {
            let (a, b) = ((key >> 32) as u32, key as u32);
            (last.contains(&a) && common(b, n)) || (first.contains(&b) && common(a, n))
        })
    }

    /// Sessions in which `a → b` and `b → a` both occur within reach.
    fn sessions_with_both_orders(&self, a: u32, b: u32) -> usize {
        let (ab, ba) = (
            u64::from(a) << 32 | u64::from(b),
            u64::from(b) << 32 | u64::from(a),
        );
        let here = self.with_tool[a as usize]
            .par_iter()
            .map_init(
                || (Vec::new(), Pairs::default()),
                |(calls, pairs), &s| {
                    self.live_tools(s as usize, calls);
                    self.pairs_of(calls, pairs);
                    let has = |k| pairs.distinct.binary_search(k).is_ok();
                    has(&ab) && has(&ba)
                },
            )
            .filter(|&both| both)
            .count();
        exchange::sum(self.ex, here)
    }

    /// Takes the spans of `runs` out of the live calls and updates the counts; returns the
    /// number of calls taken out (in the whole log).
    fn cover(&mut self, runs: &[(usize, Vec<Run>)]) -> usize {
        let this = &*self;
        let covered = runs
            .par_iter()
            .fold(Covered::default, |mut c, (s, session_runs)| {
                let s = *s;
                this.live_tools(s, &mut c.calls);
                this.pairs_of(&c.calls, &mut c.old);
                c.keep.clear();
                c.keep.resize(this.live_len[s] as usize, true);
                for j in session_runs.iter().flat_map(Run::span) {
                    c.keep[j] = false;
                }
                let start = c.left.len();
                let kept = this.live(s).iter().zip(&c.keep).filter(|(_, k)| **k);
                c.left.extend(kept.map(|(p, _)| *p));
                c.sessions.push((s, start..c.left.len()));
                c.calls.clear();
                c.calls
                    .extend(c.left[start..].iter().map(|&p| this.tool(s, p)));
                this.pairs_of(&c.calls, &mut c.new);
                for k in &c.old.distinct {
                    if c.new.distinct.binary_search(k).is_err() {
                        *c.pairs.entry(*k).or_default() -= 1;
                    }
                }
                for k in &c.new.distinct {
                    if c.old.distinct.binary_search(k).is_err() {
                        *c.pairs.entry(*k).or_default() += 1;
                    }
                }
                for k in &c.old.per_call {
                    *c.follows.entry(*k).or_default() -= 1;
                }
                for k in &c.new.per_call {
                    *c.follows.entry(*k).or_default() += 1;
                }
                c
            })
            .collect::<Vec<Covered>>();
        let mut taken = 0;
        let (mut pairs, mut follows) = (Counts::default(), Counts::default());
        for c in covered {
            for (s, range) in c.sessions {
                let start = self.seqs.offsets[s] as usize;
                taken += self.live_len[s] as usize - range.len();
                self.live[start..start + range.len()].copy_from_slice(&c.left[range.clone()]);
                self.live_len[s] = range.len() as u32;
            }
            pairs.add(Counts(c.pairs));
            follows.add(Counts(c.follows));
        }
        let (taken, pairs, follows) = exchange::sum(self.ex, (taken, pairs, follows));
        for (counts, deltas) in [(&mut self.pairs, pairs), (&mut self.follows, follows)] {
            for (k, d) in deltas.0 {
                let n = counts.entry(k).or_insert(0);
                *n = n.checked_add_signed(d).expect("a count stays positive");
                if *n == 0 {
                    counts.remove(&k);
                }
            }
        }
        taken
    }

    /// Sessions that may hold a run of `stages`: those with a tool of the first two stages.
    fn candidates(&self, stages: &[Vec<u32>]) -> Vec<usize> {
        let mut out: Vec<usize> = stages
            .iter()
            .take(2)
            .flatten()
            .flat_map(|&t| self.with_tool[t as usize].iter().map(|&s| s as usize))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// One run of a workflow in a session: for each stage, the indices (into the session's live
/// calls) where its tools were matched, in the order they ran; empty when not reached or skipped.
#[derive(Debug, Clone)]
struct Run {
    at: Vec<Vec<usize>>,
    /// The stage skipped, if any.
    skipped: Option<usize>,
    /// Live indices of the first and last matched call.
    first: usize,
    last: usize,
    /// Live indices between two steps that were further apart than the reach (the run resumed
    /// after them): not part of the run.
    resumed: Vec<std::ops::Range<usize>>,
}

impl Run {
    fn is_whole(&self) -> bool {
        self.skipped.is_none() && self.at.iter().all(|a| !a.is_empty())
    }

    /// The live indices of the run: its steps and the calls between them, but not those of a
    /// gap it resumed after.
    fn span(&self) -> impl Iterator<Item = usize> + '_ {
        (self.first..=self.last).filter(|j| !self.resumed.iter().any(|r| r.contains(j)))
    }
}

/// Matches `stage` in `tools` starting right after live index `after` (or, for the first stage,
/// with its first call exactly at `start`): every tool of the stage, each within `reach` of the
/// call matched before it. Returns the live indices in the order matched.
fn match_stage(
    tools: &[u32],
    stage: &[u32],
    start: usize,
    after: Option<usize>,
    reach: usize,
) -> Option<Vec<usize>> {
    let mut need: Vec<u32> = stage.to_vec();
    let mut at = Vec::with_capacity(stage.len());
    let mut last = after;
    let mut j = start;
    if after.is_none() {
        let first = *tools.get(start)?;
        let i = need.iter().position(|&t| t == first)?;
        need.swap_remove(i);
        at.push(start);
        last = Some(start);
        j = start + 1;
    }
    while !need.is_empty() {
        let l = last.expect("set");
        if j >= tools.len() || j - l > reach {
            return None;
        }
        if let Some(i) = need.iter().position(|&t| t == tools[j]) {
            need.swap_remove(i);
            at.push(j);
            last = Some(j);
        }
        j += 1;
    }
    Some(at)
}

/// The runs of `stages` among `tools` (a session's live calls), left to right, none
/// overlapping. Only whole runs count, unless `lenient`: then a run may skip one stage (the first
/// too), may stop early, and may resume after a gap longer than the reach when the next two
/// stages follow each other there and no new run has started before; it counts when it matched
/// at least two stages.
fn runs_in(tools: &[u32], stages: &[Vec<u32>], reach: usize, lenient: bool) -> Vec<Run> {
    let n = stages.len();
    let top = |m: &[usize]| *m.iter().max().expect("a stage has a tool");
    let mut out = Vec::new();
    let mut i = 0;
    while i < tools.len() {
        let starts: &[usize] = if lenient && n > 2 { &[0, 1] } else { &[0] };
        let run = starts.iter().find_map(|&k| {
            let first = match_stage(tools, &stages[k], i, None, reach)?;
            let mut run = Run {
                at: vec![Vec::new(); n],
                skipped: (k == 1).then_some(0),
                first: i,
                last: top(&first),
                resumed: Vec::new(),
            };
            run.at[k] = first;
            let mut next = k + 1;
            while next < n {
                let last = run.last;
                if let Some(m) = match_stage(tools, &stages[next], last + 1, Some(last), reach) {
                    run.last = top(&m);
                    run.at[next] = m;
                    next += 1;
                    continue;
                }
                if !lenient || next + 1 >= n {
                    break;
                }
                // A stage skipped is a variant of this workflow only when the run goes on with
                // two of its stages after the skip: a run that skips one stage and then goes its
                // own way (or only has the last stage in common) is another workflow's.
                let bridged = |m: &Vec<usize>| {
                    let end = top(m);
                    next + 2 < n
                        && match_stage(tools, &stages[next + 2], end + 1, Some(end), reach)
                            .is_some()
                };
                if run.skipped.is_none()
                    && let Some(m) =
                        match_stage(tools, &stages[next + 1], last + 1, Some(last), reach)
                    && bridged(&m)
                {
                    run.skipped = Some(next);
                    run.last = top(&m);
                    run.at[next + 1] = m;
                    next += 2;
                    continue;
                }
                // Resume further on: stage `next`, then `next + 1` within reach of it, before
                // the first stage comes again.
                let boundary = (last + 1..tools.len())
                    .find(|&j| stages[0].contains(&tools[j]))
                    .unwrap_or(tools.len());
                let resumed = (last.saturating_add(reach).saturating_add(1)..boundary)
                    .filter(|&j| stages[next].contains(&tools[j]))
                    .find_map(|j| {
                        let m = match_stage(tools, &stages[next], j, None, reach)?;
                        let end = top(&m);
                        let then =
                            match_stage(tools, &stages[next + 1], end + 1, Some(end), reach)?;
                        Some((j, m, then))
                    });
                let Some((j, m, then)) = resumed else {
                    break;
                };
                run.resumed.push(last + 1..j);
                run.last = top(&then);
                run.at[next] = m;
                run.at[next + 1] = then;
                next += 2;
            }
            let matched = run.at.iter().filter(|a| !a.is_empty()).count();
            let counts = if lenient {
                matched >= 2
            } else {
                run.is_whole()
            };
            counts.then_some(run)
        });
        match run {
            Some(run) => {
                i = run.last + 1;
                out.push(run);
            }
            None => i += 1,
        }
    }
    out
}

/// The whole runs of `stages` in the given sessions.
fn whole_runs(
    residual: &Residual,
    stages: &[Vec<u32>],
    sessions: &[usize],
) -> Vec<(usize, Vec<Run>)> {
    runs_of(residual, stages, sessions, false)
}

/// The runs of `stages` in the given sessions, strict or lenient (see [`runs_in`]).
fn runs_of(
    residual: &Residual,
    stages: &[Vec<u32>],
    sessions: &[usize],
    lenient: bool,
) -> Vec<(usize, Vec<Run>)> {
    sessions
        .par_iter()
        .map_init(Vec::new, |tools, &s| {
            residual.live_tools(s, tools);
            let runs = runs_in(tools, stages, residual.reach, lenient);
            (!runs.is_empty()).then_some((s, runs))
        })
        .flatten()
        .collect()
}

/// Every run of `stages` (lenient) in the sessions that may hold one.
fn runs_everywhere(residual: &Residual, stages: &[Vec<u32>]) -> Vec<(usize, Vec<Run>)> {
    runs_of(residual, stages, &residual.candidates(stages), true)
}

/// Sessions whose runs are read to decide how a workflow grows: a share estimated from 20,000
/// runs has a standard error under 0.4 %.
const GROW_SAMPLE: usize = 20_000;

/// Where a candidate step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Slot {
    /// A new stage before stage `k` (k = stages: after the last).
    Before(usize),
    /// Into stage `k`.
    Join(usize),
}

/// Grows `stages` while most of its runs go on with one more step. When they stop growing,
/// also the branch that most of their runs take at either end among those that at least
/// `params.branch` of them take (see [`SummaryParams::branch`]).
fn grow(
    residual: &Residual,
    mut stages: Vec<Vec<u32>>,
    params: &SummaryParams,
    min_support: usize,
    base: usize,
) -> (Vec<Vec<u32>>, Option<(Slot, u32)>) {
    let look = residual.look;
    let ex = residual.ex;
    // Growth decides on shares of runs: on a big log, a sample of the sessions estimates them
    // as well as all of them would, at a fraction of the cost. Counts are scaled back for the
    // support threshold. (The figures of the workflow are exact: they are counted on every
    // session afterwards.) The sample is the sessions whose keys are the smallest, so that it
    // is the same however the log is split.
    let mut sessions = residual.candidates(&stages);
    let all = exchange::sum(ex, sessions.len());
    let mut scale = 1.0;
    if all > GROW_SAMPLE {
        let cut = (GROW_SAMPLE as f64 / all as f64 * u64::MAX as f64) as u64;
        let keys = &residual.seqs.keys;
        sessions.retain(|&s| keys[s] < cut);
        scale = all as f64 / exchange::sum(ex, sessions.len()).max(1) as f64;
    }
    let mut branch = None;
    while stages.iter().map(Vec::len).sum::<usize>() < params.max_steps {
        let runs = whole_runs(residual, &stages, &sessions);
        sessions = runs.iter().map(|(s, _)| *s).collect();
        let total: usize = runs.iter().map(|(_, r)| r.len()).sum();
        type Found = (
            FxHashMap<(Slot, u32), Tally>,
            FxHashMap<(Slot, usize), usize>,
        );
        let (counts, windows): Found = runs
            .par_iter()
            .fold(
                || (Found::default(), Vec::new(), Vec::new()),
                |((mut counts, mut windows), mut tools, mut seen), (s, session_runs)| {
                    residual.live_tools(*s, &mut tools);
                    for run in session_runs {
                        let found = (&mut counts, &mut windows);
                        tally(&tools, &stages, run, look, &mut seen, found.0, found.1);
                    }
                    ((counts, windows), tools, seen)
                },
            )
            .map(|(found, _, _)| found)
            .reduce(Found::default, |mut a, b| {
                for (k, t) in b.0 {
                    a.0.entry(k).or_default().add(t);
                }
                for (k, n) in b.1 {
                    *a.1.entry(k).or_default() += n;
                }
                a
            });
        let (total, Counts(counts), Counts(windows)) =
            exchange::sum(ex, (total, Counts(counts), Counts(windows)));
        if (total as f64) * scale < min_support as f64 {
            break;
        }
        // The share of runs in which a tool as common as `tool` would be in `slot` by chance.
        let chance = |slot: Slot, tool: u32| {
            let expected: f64 = (windows.iter())
                .filter(|((s, _), _)| *s == slot)
                .map(|(&(_, len), &runs)| runs as f64 * residual.chance(tool, len))
                .sum();
            expected / total as f64
        };
        // In key order, so that ties go the same way whatever the threads did.
        let mut counts: Vec<((Slot, u32), Tally)> = counts.into_iter().collect();
        counts.sort_unstable_by_key(|(k, _)| *k);
        let mut best: Option<(usize, Slot, u32)> = None;
        // Every way common enough for a branch that runs go on before, between or after the
        // stages.
        let mut ways: Vec<(usize, Slot, u32)> = Vec::new();
        let ends = [Slot::Before(0), Slot::Before(stages.len())];
        for &((slot, tool), t) in &counts {
            let n = t.runs;
            if (n as f64) * scale < min_support as f64 || !allowed(&stages, slot, tool) {
                continue;
            }
            let share = beyond_chance(surely(n as f64, total as f64), chance(slot, tool));
            // A branch is a share of all the runs of the stages, those that earlier branches
            // explained included: of what is left, chance visitors can look common.
            let of_all = total as f64 + base as f64 / scale;
            // …and, at an end, the tool is one that often runs there: at least a fifth of its
            // calls in the log come right before or after these stages (a tool called
            // everywhere is near every workflow in some runs, more often than chance in some by
            // chance). Between stages, two ways that most runs take between them are the test.
            let calls = residual.frequency[tool as usize] * residual.total_calls as f64;
            let often_here = n as f64 * scale >= calls / 5.0;
            let branch_share = beyond_chance(surely(n as f64, of_all), chance(slot, tool));
            if branch_share >= params.branch
                && let Slot::Before(k) = slot
                && (often_here || (k > 0 && k < stages.len()))
            {
                ways.push((n, slot, tool));
            }
            if share < params.continuation {
                continue;
            }
            if let Slot::Join(_) = slot {
                // Before the stage in some runs, after it in others, each order common: one
                // stage. On both sides of it in the same runs: a loop.
                let (lo, hi) = (t.before.min(t.after), t.before.max(t.after));
                let mixed = (lo as f64) >= params.order_share * hi as f64 && n > hi;
                let looping = t.both as f64 > LOOP_SHARE * lo as f64;
                if params.order_share >= 1.0 || !mixed || looping {
                    continue;
                }
            }
            if best.is_none_or(|(m, _, _)| n > m) {
                best = Some((n, slot, tool));
            }
        }
        // Where runs split: at an end, a common way that most runs do not take; between two
        // stages, two common ways (one alone is a variant: an extra call in some runs).
        // Where runs split: at an end, a common way that most runs do not take; between two
        // stages, two or more common ways that most runs take one of (one alone is a variant:
        // an extra call in some runs).
        let rivals = |slot: Slot, tool: u32| {
            let here = ways.iter().filter(|w| w.1 == slot);
            let taken: usize = here.clone().map(|w| w.0).sum();
            let others = here.filter(|w| w.2 != tool).count();
            match ends.contains(&slot) {
                true => others > 0,
                false => others > 0 && taken as f64 >= params.continuation * total as f64,
            }
        };
        let Some((_, slot, tool)) = best else {
            branch = (ways.iter())
                .filter(|w| ends.contains(&w.1) || rivals(w.1, w.2))
                .max_by_key(|w| (w.0, std::cmp::Reverse((w.1, w.2))))
                .map(|&(_, slot, tool)| (slot, tool));
            break;
        };
        // The way most runs go on between two stages is a branch too when another way is
        // common there: each is a workflow, not the other's variant. (At an end, another way
        // may be an extra call before this one: it is a variant, or its own branch later.)
        if !ends.contains(&slot) && rivals(slot, tool) {
            branch = Some((slot, tool));
            break;
        }
        // A whole run of the grown workflow holds one of the workflow so far: the sessions
        // to look in only shrink.
        match slot {
            Slot::Before(k) => stages.insert(k, vec![tool]),
            Slot::Join(k) => stages[k].push(tool),
        }
    }
    // Each stage in its most common order.
    (order_stages(residual, stages, &sessions), branch)
}

/// Counts, for one whole run, the tools in each slot: before the first stage, between stages,
/// after the last (within `look`), and around each stage (for joins). `seen` is a buffer.
fn tally(
    tools: &[u32],
    stages: &[Vec<u32>],
    run: &Run,
    look: usize,
    seen: &mut Vec<(Slot, u32, u8)>,
    counts: &mut FxHashMap<(Slot, u32), Tally>,
    windows: &mut FxHashMap<(Slot, usize), usize>,
) {
    const ANY: u8 = 3;
    let n = stages.len();
    let lo = |k: usize| *run.at[k].iter().min().expect("whole");
    let hi = |k: usize| *run.at[k].iter().max().expect("whole");
    let matched = |j: usize| run.at.iter().any(|a| a.contains(&j));
    // Every (slot, tool, side) of the run; side 0 before the stage, 1 inside, 2 after it.
    seen.clear();
    // The number of calls each slot looked at, for the chance of finding a tool there.
    let mut lengths: Vec<(Slot, usize)> = Vec::with_capacity(3 * n + 1);
    let mut window = |slot: Slot, range: std::ops::Range<usize>, side: u8| {
        match lengths.last_mut() {
            Some((s, _)) if *s == slot => {}
            _ => lengths.push((slot, 0)),
        }
        for j in range.filter(|&j| !matched(j)) {
            lengths.last_mut().expect("pushed").1 += 1;
            seen.push((slot, tools[j], ANY));
            if matches!(slot, Slot::Join(_)) {
                seen.push((slot, tools[j], side));
            }
        }
    };
    window(Slot::Before(0), lo(0).saturating_sub(look)..lo(0), 1);
    for k in 1..n {
        window(Slot::Before(k), hi(k - 1) + 1..lo(k), 1);
    }
    window(
        Slot::Before(n),
        hi(n - 1) + 1..(hi(n - 1) + 1 + look).min(tools.len()),
        1,
    );
    for k in 0..n {
        // Around stage k: from the previous stage (or look before) to the next (or look after).
        let start = match k {
            0 => lo(0).saturating_sub(look),
            _ => hi(k - 1) + 1,
        };
        let end = match k + 1 == n {
            true => (hi(k) + 1 + look).min(tools.len()),
            false => lo(k + 1),
        };
        window(Slot::Join(k), start..lo(k), 0);
        window(Slot::Join(k), lo(k) + 1..hi(k), 1);
        window(Slot::Join(k), hi(k) + 1..end, 2);
    }
    for (slot, len) in lengths {
        *windows.entry((slot, len)).or_default() += 1;
    }
    // Each (slot, tool) and each side counts once per run.
    seen.sort_unstable();
    seen.dedup();
    for (i, &(slot, tool, side)) in seen.iter().enumerate() {
        let e = counts.entry((slot, tool)).or_default();
        match side {
            0 => e.before += 1,
            2 => {
                e.after += 1;
                // Sides sort 0, 1, 2: side 0 of this key is at most two entries back.
                if seen[i.saturating_sub(2)..i].contains(&(slot, tool, 0)) {
                    e.both += 1;
                }
            }
            ANY => e.runs += 1,
            _ => {}
        }
    }
}

/// Whether `tool` may go into `slot`: a stage holds a tool once, and a workflow does not go
/// round a loop twice (no pair of consecutive tools twice).
fn allowed(stages: &[Vec<u32>], slot: Slot, tool: u32) -> bool {
    let mut next = stages.to_vec();
    match slot {
        Slot::Before(k) => next.insert(k, vec![tool]),
        Slot::Join(k) => {
            if stages[k].contains(&tool) {
                return false;
            }
            next[k].push(tool)
        }
    }
    let flat: Vec<u32> = next.iter().flatten().copied().collect();
    let mut seen = FxHashSet::default();
    flat.windows(2).all(|w| seen.insert((w[0], w[1])))
}

/// Sorts the tools of each stage by how often they ran first, then by id.
fn order_stages(
    residual: &Residual,
    mut stages: Vec<Vec<u32>>,
    sessions: &[usize],
) -> Vec<Vec<u32>> {
    if stages.iter().all(|s| s.len() == 1) {
        return stages;
    }
    let runs = whole_runs(residual, &stages, sessions);
    let mut orders: FxHashMap<(usize, Vec<u32>), usize> = FxHashMap::default();
    for (s, session_runs) in &runs {
        for run in session_runs {
            for (k, at) in run.at.iter().enumerate() {
                if at.len() > 1 {
                    let live = residual.live(*s);
                    let order = at.iter().map(|&j| residual.tool(*s, live[j])).collect();
                    *orders.entry((k, order)).or_default() += 1;
                }
            }
        }
    }
    let orders = exchange::sum_map(residual.ex, orders);
    for (k, stage) in stages.iter_mut().enumerate() {
        if stage.len() < 2 {
            continue;
        }
        if let Some(((_, order), _)) = orders
            .iter()
            .filter(|((i, _), _)| *i == k)
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.1.cmp(&a.0.1)))
        {
            *stage = order.clone();
        }
    }
    stages
}

/// The figures of the workflow `stages` from its runs.
fn describe(
    residual: &Residual,
    stages: Vec<Vec<u32>>,
    runs: &[(usize, Vec<Run>)],
    min_support: usize,
) -> Found {
    let n = stages.len();
    let flat: Vec<u32> = stages.iter().flatten().copied().collect();
    let mut funnel = vec![0usize; n];
    let mut skipped = vec![0usize; n];
    let mut extras: FxHashMap<(usize, u32), usize> = FxHashMap::default();
    let mut then: FxHashMap<u32, usize> = FxHashMap::default();
    let mut orderings: FxHashMap<Vec<u32>, usize> = FxHashMap::default();
    let mut whole = Vec::new();
    let mut rounds: FxHashMap<(usize, usize, u32), usize> = FxHashMap::default();
    let (mut support, mut successes, mut occurrences) = (0, 0, 0u64);
    for (s, session_runs) in runs {
        let s = *s;
        let live = residual.live(s);
        let tool = |j: usize| residual.tool(s, live[j]);
        for (k, f) in funnel.iter_mut().enumerate() {
            if session_runs.iter().any(|r| !r.at[k].is_empty()) {
                *f += 1;
            }
        }
        let mut session_skips = FxHashSet::default();
        let mut session_extras = FxHashSet::default();
        for run in session_runs {
            if let Some(k) = run.skipped
                && run.at[k + 1..].iter().any(|a| !a.is_empty())
            {
                session_skips.insert(k);
            }
            // Calls between the steps of a run, by the stage they follow.
            let mut stage_of_last = None;
            for j in run.span() {
                match run.at.iter().position(|a| a.contains(&j)) {
                    Some(k) => stage_of_last = Some(k),
                    None => {
                        if let Some(k) = stage_of_last {
                            session_extras.insert((k, tool(j)));
                        }
                    }
                }
            }
        }
        for k in session_skips {
            skipped[k] += 1;
        }
        for e in session_extras {
            *extras.entry(e).or_default() += 1;
        }
        let Some(run) = session_runs.iter().find(|r| r.is_whole()) else {
            continue;
        };
        support += 1;
        if let Some(&next) = live.get(run.last + 1) {
            *then.entry(residual.tool(s, next)).or_default() += 1;
        }
        occurrences += session_runs.iter().filter(|r| r.is_whole()).count() as u64;
        let ok = session_runs.iter().filter(|r| r.is_whole()).any(|r| {
            r.at.iter()
                .flatten()
                .all(|&j| residual.call(s, live[j]) & OK != 0)
        });
        if ok {
            successes += 1;
        }
        let order: Vec<u32> = run.at.iter().flatten().map(|&j| tool(j)).collect();
        *orderings.entry(order).or_default() += 1;
        // Positions in canonical order: each stage's tools as the stage lists them.
        let positions: Vec<usize> = stages
            .iter()
            .zip(&run.at)
            .flat_map(|(stage, at)| {
                stage.iter().map(move |&t| {
                    at.iter()
                        .copied()
                        .find(|&j| tool(j) == t)
                        .expect("a whole run matched every tool")
                })
            })
            .map(|j| live[j] as usize)
            .collect();
        let retries = positions
            .iter()
            .map(|&p| retries_of(residual.call(s, p as u32)))
            .collect();
        // A step that starts a folded loop whose body is the next steps of the run.
        for (i, &p) in positions.iter().enumerate() {
            if let Some((body, r)) = residual.seqs.loop_at(s, p)
                && positions
                    .get(i..i + body)
                    .is_some_and(|b| b.iter().eq(&(p..p + body).collect::<Vec<_>>()))
            {
                *rounds.entry((i, i + body, r)).or_default() += 1;
            }
        }
        whole.push(Embedding {
            session: s,
            positions: (positions.iter())
                .map(|&p| residual.seqs.origin(s, p))
                .collect(),
            retries,
        });
    }
    // The figures of the whole log; the runs (`whole`) stay this part's.
    let (
        (funnel, skipped, Counts(extras)),
        (Counts(then), Counts(orderings), Counts(rounds)),
        (support, successes, (occurrences, sessions)),
    ) = exchange::sum(
        residual.ex,
        (
            (funnel, skipped, Counts(extras)),
            (Counts(then), Counts(orderings), Counts(rounds)),
            (support, successes, (occurrences, runs.len())),
        ),
    );
    let loops = loops_of(rounds, support, min_support);
    let mut variants: Vec<Variant> = skipped
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n >= min_support)
        .map(|(k, &n)| Variant {
            change: Change::Skipped(k),
            sessions: n,
        })
        .collect();
    // An extra call is a variant when it is no chance visitor: it comes in at least
    // min_support sessions and more than twice as often as its share of all calls between
    // steps predicts.
    let between: usize = extras.values().sum();
    let mut by_tool: FxHashMap<u32, usize> = FxHashMap::default();
    for (&(_, t), &c) in &extras {
        *by_tool.entry(t).or_default() += c;
    }
    let gaps = n.saturating_sub(1).max(1);
    for (&(after, tool), &c) in &extras {
        let expected = by_tool[&tool] as f64 / gaps as f64;
        if c >= min_support && (c as f64) > 2.0 * expected.min(between as f64) {
            variants.push(Variant {
                change: Change::Extra { after, tool },
                sessions: c,
            });
        }
    }
    // What comes right after a whole run, when it is no chance visitor either: in at least
    // min_support sessions and surely twice as often as the tool's share of the calls of other
    // tools than the workflow's (which cannot come next).
    let others = 1.0
        - flat
            .iter()
            .collect::<FxHashSet<_>>()
            .iter()
            .map(|&&t| residual.frequency[t as usize])
            .sum::<f64>();
    for (&tool, &c) in &then {
        let expected = residual.frequency[tool as usize] / others.max(f64::MIN_POSITIVE);
        if c >= min_support && surely(c as f64, support as f64) > 2.0 * expected {
            variants.push(Variant {
                change: Change::Then(tool),
                sessions: c,
            });
        }
    }
    variants.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.change.cmp(&b.change))
    });
    let mut orderings: Vec<(Vec<u32>, usize)> = orderings.into_iter().collect();
    orderings.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if orderings.is_empty() {
        orderings.push((flat, 0));
    }
    let ends = support - then.values().sum::<usize>();
    Found {
        stages,
        support,
        successes,
        occurrences,
        sessions,
        funnel,
        variants,
        orderings,
        whole,
        ends,
        loops,
        trunk: Vec::new(),
        branch: None,
    }
}

/// The loops of a workflow from the sessions of its `support` whose whole run repeated a body
/// (keyed by the body's steps and the rounds): a body repeated in at least `min_support`
/// sessions is a loop, the other sessions went through it once. Loops that overlap a more
/// common one are left out.
fn loops_of(
    rounds: FxHashMap<(usize, usize, u32), usize>,
    support: usize,
    min_support: usize,
) -> Vec<Loop> {
    /// Per body (its steps), the sessions by rounds.
    type Bodies = Vec<((usize, usize), Vec<(u32, usize)>)>;
    let mut bodies: FxHashMap<(usize, usize), Vec<(u32, usize)>> = FxHashMap::default();
    for ((start, end, r), n) in rounds {
        bodies.entry((start, end)).or_default().push((r, n));
    }
    let mut bodies: Bodies = (bodies.into_iter())
        .filter(|(_, r)| r.iter().map(|x| x.1).sum::<usize>() >= min_support)
        .collect();
    let repeated = |r: &[(u32, usize)]| r.iter().map(|x| x.1).sum::<usize>();
    bodies.sort_by(|a, b| repeated(&b.1).cmp(&repeated(&a.1)).then(a.0.cmp(&b.0)));
    let mut loops: Vec<Loop> = Vec::new();
    for ((start, end), mut r) in bodies {
        if loops.iter().any(|l| start < l.end && l.start < end) {
            continue;
        }
        let once = support.saturating_sub(repeated(&r));
        if once > 0 {
            r.push((1, once));
        }
        r.sort_unstable();
        loops.push(Loop {
            start,
            end,
            rounds: r,
        });
    }
    loops.sort_by_key(|l| l.start);
    loops
}
