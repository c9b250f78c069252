//! Structure of mined workflows beyond chains: blocks of steps that run in either order (or at
//! once), and values that flow from one step's result into a later step's arguments.

mod dataflow;
mod parallel;

pub use dataflow::{FlowParams, Source, infer, parameters};
pub use parallel::{ParallelParams, merge_orderings, stage_overlap};

use crate::mining::summary::{Branch, Found, Loop, Variant};
use crate::mining::{Embedding, Mined};
use crate::outcome::{Comparison, Moments};

/// A mined workflow: a chain, or several orderings of one chain merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The most frequent ordering, with support and successes counted over every ordering.
    pub mined: Mined,
    /// Every ordering merged into it, the canonical one first; one for a plain chain.
    pub orderings: Vec<Vec<u32>>,
    /// Ranges of steps of the canonical ordering that run in any order (stages of several tools).
    pub blocks: Vec<std::ops::Range<usize>>,
    /// Share of the occurrences in which the calls of a block overlapped in time (the first
    /// block; when the log has durations).
    pub overlap: Option<f64>,
    /// What was folded into the workflow, when it was found by the summary.
    pub folded: Option<Folded>,
    /// The task outcomes of the sessions that ran it whole against the others', when the log
    /// has outcomes.
    pub outcome: Option<Comparison>,
    /// With outcomes: per stage, the outcomes of the sessions whose runs left the workflow
    /// after it (reached it, went no further, none whole).
    pub exits: Vec<Moments>,
}

/// What the summary folded into a workflow: where its runs stopped and how they differed.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    /// Sessions with a run of at least two of its stages.
    pub sessions: usize,
    /// Per stage, the sessions whose run reached it or a later one: it never rises.
    pub funnel: Vec<usize>,
    /// Per ordering (as in [`Workflow::orderings`]), the sessions whose whole run took it.
    pub ordering_sessions: Vec<usize>,
    pub variants: Vec<Variant>,
    /// The first whole run of each supporting session, positions in canonical step order.
    pub whole: Vec<Embedding>,
    /// This part's sessions with a run but none whole, with the last stage their runs reached
    /// before the last one.
    pub stopped: Vec<(usize, usize)>,
    /// Steps that runs repeat back to back, with their rounds.
    pub loops: Vec<Loop>,
    /// The trunk shared with other workflows, when it is a branch.
    pub branch: Option<Branch>,
}

impl From<Found> for Workflow {
    fn from(f: Found) -> Workflow {
        let pattern = f.pattern();
        let blocks = f.blocks();
        // The canonical ordering first, then the others seen, most common first.
        let mut orderings = vec![(pattern.clone(), 0)];
        for (o, n) in f.orderings {
            match orderings.iter_mut().find(|(p, _)| *p == o) {
                Some(entry) => entry.1 = n,
                None => orderings.push((o, n)),
            }
        }
        Workflow {
            mined: Mined {
                pattern,
                support: f.support,
                occurrences: f.occurrences,
                successes: f.successes,
            },
            orderings: orderings.iter().map(|(o, _)| o.clone()).collect(),
            blocks,
            overlap: None,
            outcome: None,
            exits: Vec::new(),
            folded: Some(Folded {
                sessions: f.sessions,
                funnel: f.funnel,
                ordering_sessions: orderings.iter().map(|(_, n)| *n).collect(),
                variants: f.variants,
                whole: f.whole,
                stopped: f.stopped,
                loops: f.loops,
                branch: f.branch,
            }),
        }
    }
}

impl Workflow {
    /// A plain chain.
    pub fn chain(mined: Mined) -> Workflow {
        Workflow {
            orderings: vec![mined.pattern.clone()],
            mined,
            blocks: Vec::new(),
            overlap: None,
            folded: None,
            outcome: None,
            exits: Vec::new(),
        }
    }

    /// Its score: support × outcome rate (or mean reward) when the task outcomes of its
    /// sessions are known, else support × call success rate.
    pub fn score(&self) -> f64 {
        match self.outcome.and_then(|c| c.with.mean()) {
            Some(rate) => self.mined.support as f64 * rate,
            None => self.mined.score(),
        }
    }

    /// Stages of step indices (canonical order): a block is one stage, every other step its own.
    pub fn stages(&self) -> Vec<Vec<usize>> {
        let mut stages = Vec::new();
        let mut i = 0;
        while i < self.mined.pattern.len() {
            match self.blocks.iter().find(|b| b.start == i) {
                Some(b) => {
                    stages.push(b.clone().collect());
                    i = b.end;
                }
                None => {
                    stages.push(vec![i]);
                    i += 1;
                }
            }
        }
        stages
    }

    /// For ordering `k`, the canonical index of each of its steps.
    pub fn canonical_index(&self, k: usize) -> Vec<usize> {
        let canonical = &self.orderings[0];
        let ordering = &self.orderings[k];
        let mut taken = vec![false; canonical.len()];
        ordering
            .iter()
            .map(|t| {
                let i = (0..canonical.len())
                    .find(|&i| !taken[i] && canonical[i] == *t)
                    .expect("orderings are permutations");
                taken[i] = true;
                i
            })
            .collect()
    }
}
