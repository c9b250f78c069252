//! Scoring and pruning of mined chains: score = support × success rate, fragments of larger
//! chains pruned, a deterministic order.

use rustc_hash::FxHashMap;

use crate::mining::Mined;

/// The default `tolerance` of [`rank`]: a chain goes when a longer one has 95 % of its support.
pub const DEFAULT_TOLERANCE: f64 = 0.05;

/// Which chains to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The distinct workflows, each whole, with what was folded into them (see
    /// [`crate::mining::summary`]).
    Workflows,
    /// Near-closed chains: drop a chain when a longer frequent chain containing it occurs in
    /// almost as many sessions (see `tolerance`).
    Closed,
    /// Every frequent chain.
    All,
}

impl std::str::FromStr for Keep {
    type Err = String;

    fn from_str(s: &str) -> Result<Keep, String> {
        match s {
            "workflows" => Ok(Keep::Workflows),
            "closed" => Ok(Keep::Closed),
            "all" => Ok(Keep::All),
            _ => Err(format!("'{s}' is not one of: workflows, closed, all")),
        }
    }
}

impl Mined {
    /// Share of the supporting sessions in which some occurrence had every step succeed.
    pub fn success_rate(&self) -> f64 {
        self.successes as f64 / self.support as f64
    }

    /// support × success rate, which is the number of sessions with a successful occurrence.
    pub fn score(&self) -> f64 {
        self.successes as f64
    }
}

/// Scores `mined`, drops fragments when `keep` is `Closed`, and sorts by score, then support
/// (both descending), then the chain's tool ids (ascending, which is name order).
///
/// A chain is a fragment when a longer mined chain that contains it (reached by deleting one step
/// at a time, each intermediate chain mined too) occurs in at least `(1 - tolerance)` times as
/// many sessions. With `tolerance = 0` these are the closed chains of the lattice.
pub fn rank(mined: Vec<Mined>, keep: Keep, tolerance: f64) -> Vec<Mined> {
    let pruned = match keep {
        Keep::Closed => fragments(&mined, tolerance),
        Keep::All | Keep::Workflows => vec![false; mined.len()],
    };
    let mut scored: Vec<Mined> = mined
        .into_iter()
        .zip(pruned)
        .filter(|(_, pruned)| !pruned)
        .map(|(m, _)| m)
        .collect();
    scored.sort_by(|a, b| {
        b.successes
            .cmp(&a.successes)
            .then(b.support.cmp(&a.support))
            .then_with(|| a.pattern.cmp(&b.pattern))
    });
    scored
}

/// Marks every chain that has a near-equally supported super-chain.
fn fragments(mined: &[Mined], tolerance: f64) -> Vec<bool> {
    let index: FxHashMap<&[u32], usize> = mined
        .iter()
        .enumerate()
        .map(|(i, m)| (m.pattern.as_slice(), i))
        .collect();
    // The largest support of any mined super-chain, pushed down from long chains to short ones.
    let mut best_super = vec![0usize; mined.len()];
    let mut by_length: Vec<usize> = (0..mined.len()).collect();
    by_length.sort_by_key(|&i| std::cmp::Reverse(mined[i].pattern.len()));
    let mut shorter = Vec::new();
    for q in by_length {
        let pattern = &mined[q].pattern;
        let best = best_super[q].max(mined[q].support);
        for skip in 0..pattern.len() {
            shorter.clear();
            shorter.extend(
                pattern
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != skip)
                    .map(|(_, &t)| t),
            );
            if let Some(&p) = index.get(shorter.as_slice()) {
                best_super[p] = best_super[p].max(best);
            }
        }
    }
    mined
        .iter()
        .zip(&best_super)
        .map(|(m, &best)| best > 0 && best as f64 >= (1.0 - tolerance) * m.support as f64)
        .collect()
}
