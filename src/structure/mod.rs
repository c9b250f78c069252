//! Structure of mined workflows beyond chains: blocks of steps that run in either order (or at
//! once), and values that flow from one step's result into a later step's arguments.

mod dataflow;
mod parallel;

pub use dataflow::{FlowParams, Source, infer, parameters};
pub use parallel::{ParallelParams, merge_orderings};

use crate::mining::Mined;

/// A mined workflow: a chain, or several orderings of one chain merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The most frequent ordering, with support and successes counted over every ordering.
    pub mined: Mined,
    /// Every ordering merged into it, the canonical one first; one for a plain chain.
    pub orderings: Vec<Vec<u32>>,
    /// Steps of the canonical ordering that run in either order.
    pub block: Option<std::ops::Range<usize>>,
    /// Share of the block's occurrences whose calls overlapped in time (when the log has
    /// durations).
    pub overlap: Option<f64>,
}

impl Workflow {
    /// A plain chain.
    pub fn chain(mined: Mined) -> Workflow {
        Workflow {
            orderings: vec![mined.pattern.clone()],
            mined,
            block: None,
            overlap: None,
        }
    }

    /// Stages of step indices (canonical order): a block is one stage, every other step its own.
    pub fn stages(&self) -> Vec<Vec<usize>> {
        let mut stages = Vec::new();
        let mut i = 0;
        while i < self.mined.pattern.len() {
            match &self.block {
                Some(b) if b.start == i => {
                    stages.push(b.clone().collect());
                    i = b.end;
                }
                _ => {
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
