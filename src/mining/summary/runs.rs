//! Runs of a workflow in a session's calls: whole, or leniently (stopped early, a stage skipped,
//! resumed after a long gap).

use smallvec::SmallVec;

use super::*;

/// The live indices where a stage's tools were matched, in the order they ran. On the stack:
/// runs are found at every call of every session, and most stages have a tool or two.
pub(super) type Steps = SmallVec<[usize; 4]>;

/// The runs of a workflow in one session: most sessions have one, kept inline.
pub(super) type SessionRuns = SmallVec<[Run; 1]>;

/// One run of a workflow in a session: for each stage, the indices (into the session's live
/// calls) where its tools were matched, in the order they ran; empty when not reached or skipped.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) at: Vec<Steps>,
    /// The stage skipped, if any.
    pub(super) skipped: Option<usize>,
    /// Live indices of the first and last matched call.
    pub(super) first: usize,
    pub(super) last: usize,
    /// Live indices between two steps that were further apart than the reach (the run resumed
    /// after them): not part of the run.
    pub(super) resumed: Vec<std::ops::Range<usize>>,
}

impl Run {
    pub(super) fn is_whole(&self) -> bool {
        self.skipped.is_none() && self.at.iter().all(|a| !a.is_empty())
    }

    /// The live indices of the run: its steps and the calls between them, but not those of a
    /// gap it resumed after.
    pub(super) fn span(&self) -> impl Iterator<Item = usize> + '_ {
        (self.first..=self.last).filter(|j| !self.resumed.iter().any(|r| r.contains(j)))
    }
}

/// Matches `stage` in `tools` starting right after live index `after` (or, for the first stage,
/// with its first call exactly at `start`): every tool of the stage, each within `reach` of the
/// call matched before it. Returns the live indices in the order matched.
pub(super) fn match_stage(
    tools: &[u32],
    stage: &[u32],
    start: usize,
    after: Option<usize>,
    reach: usize,
) -> Option<Steps> {
    // Called at every call of every session, and most calls fail at once: nothing on the heap
    // (as two vectors, their allocation and freeing were a tenth of the summary's time).
    let mut need: SmallVec<[u32; 8]> = SmallVec::from_slice(stage);
    let mut at = Steps::new();
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
pub(super) fn runs_in(
    tools: &[u32],
    stages: &[Vec<u32>],
    reach: usize,
    lenient: bool,
) -> SessionRuns {
    let n = stages.len();
    let top = |m: &[usize]| *m.iter().max().expect("a stage has a tool");
    let mut out = SessionRuns::new();
    // Every attempt fills this one run: only a run that counts is moved out, and the next
    // attempt starts a new one (most attempts fail, and a run's stages are on the heap).
    let empty = || Run {
        at: Vec::new(),
        skipped: None,
        first: 0,
        last: 0,
        resumed: Vec::new(),
    };
    let mut run = empty();
    let starts: &[usize] = if lenient && n > 2 { &[0, 1] } else { &[0] };
    let mut i = 0;
    while i < tools.len() {
        let counts = starts.iter().any(|&k| {
            let Some(first) = match_stage(tools, &stages[k], i, None, reach) else {
                return false;
            };
            run.at.clear();
            run.at.resize(n, Steps::new());
            run.skipped = (k == 1).then_some(0);
            run.first = i;
            run.last = top(&first);
            run.resumed.clear();
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
                let bridged = |m: &Steps| {
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
            match lenient {
                true => run.at.iter().filter(|a| !a.is_empty()).count() >= 2,
                false => run.is_whole(),
            }
        });
        match counts {
            true => {
                i = run.last + 1;
                out.push(std::mem::replace(&mut run, empty()));
            }
            false => i += 1,
        }
    }
    out
}

/// The whole runs of `stages` in the given sessions.
pub(super) fn whole_runs(
    residual: &Residual,
    stages: &[Vec<u32>],
    sessions: &[usize],
) -> Vec<(usize, SessionRuns)> {
    // One slot per session, written in place, and the sessions without a run dropped after:
    // collected unindexed, the runs went through a list of growing vectors and then were
    // copied into one, fresh memory three times over.
    let mut runs: Vec<(usize, SessionRuns)> = sessions
        .par_iter()
        .map_init(Vec::new, |tools, &s| {
            residual.live_tools(s, tools);
            (s, runs_in(tools, stages, residual.reach, false))
        })
        .collect();
    runs.retain(|(_, r)| !r.is_empty());
    runs
}
