//! Paths to failure: the tools, the calls in a row and the workflows whose sessions solve their
//! task markedly less often than the others (the interval of the difference below zero), each
//! with what the agents did right after it, so that "after X the agent gives up, hands over,
//! loops" shows. Tools and pairs are scanned by the hundred, so one of them is listed only when
//! its 99.9 % interval is below zero (a 95 % one would list a few by chance in every log); a
//! workflow, tested once, at 95 % as everywhere else.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::{Comparison, Effect, Moments, Totals, Z_SCAN};
use crate::events::EventLog;
use crate::exchange::{self, Counts, Exchange};
use crate::mining::Sequences;
use crate::structure::Workflow;

/// How many tools and pairs of calls are listed at most (the workflows with a drop all are).
pub const SHOWN_CHAINS: usize = 10;

/// What a session did after a path: the end of the session, in the keys of [`Then`].
const END: u32 = u32::MAX;

/// A path to failure.
#[derive(Debug, Clone, PartialEq)]
pub struct FailurePath {
    /// Tool ids in order.
    pub chain: Vec<u32>,
    /// One of the workflows found (else a tool, or two calls in a row).
    pub workflow: bool,
    pub comparison: Comparison,
    /// What the sessions did right after it: a tool, or `None` for the end of the session, with
    /// the outcomes of those sessions; most sessions first.
    pub then: Vec<(Option<u32>, Moments)>,
}

impl FailurePath {
    /// `tool`, `calls` (two in a row) or `workflow`.
    pub fn kind(&self) -> &'static str {
        match (self.workflow, self.chain.len()) {
            (true, _) => "workflow",
            (false, 1) => "tool",
            (false, _) => "calls",
        }
    }
}

/// A chain of one tool (`[t, END]`) or two calls in a row (`[a, b]`), as a key.
type Key = (u32, u32);

/// A thread's tally, and its buffers of a session's calls and of the chains seen in it (with the
/// call after each).
type Scratch = (Tally, Vec<u32>, FxHashMap<Key, u32>);

/// Per chain, the outcomes of the sessions with it, and per next call, of those that went on so.
#[derive(Default)]
struct Tally {
    chains: FxHashMap<Key, Moments>,
    then: FxHashMap<(Key, u32), Moments>,
}

impl Tally {
    fn merge(mut self, other: Tally) -> Tally {
        for (k, m) in other.chains {
            exchange::Sum::add(self.chains.entry(k).or_default(), m);
        }
        for (k, m) in other.then {
            exchange::Sum::add(self.then.entry(k).or_default(), m);
        }
        self
    }
}

/// The paths to failure of a log with outcomes (whose `totals` they are compared with): tools and pairs of calls in a
/// row that at least `min_support` sessions with a known outcome ran, and the `workflows`, whose
/// difference is a drop; chains worst first (a pair only when its sessions also do markedly
/// worse than the other sessions of its worse tool), then workflows in their order.
pub fn paths_to_failure(
    totals: &Totals,
    seqs: &Sequences,
    log: &EventLog,
    workflows: &[Workflow],
    min_support: usize,
    keep_repeats: bool,
    ex: &dyn Exchange,
) -> Vec<FailurePath> {
    let outcomes = log.outcomes.as_deref().unwrap_or_default();
    let known = |s: usize| outcomes.get(s).copied().filter(|v| !v.is_nan());
    let tally = (0..seqs.len())
        .into_par_iter()
        .filter_map(|s| Some((s, known(s)?)))
        // One buffer of calls and of chains seen per thread, cleared per session.
        .fold(
            Default::default,
            |(mut tally, mut calls, mut seen): Scratch, (s, v)| {
                calls.clear();
                calls.extend(seqs.session(s).map(|(t, _)| t));
                for (i, &t) in calls.iter().enumerate() {
                    let next = calls.get(i + 1).copied().unwrap_or(END);
                    seen.entry((t, END)).or_insert(next);
                    if next != END {
                        let after = calls.get(i + 2).copied().unwrap_or(END);
                        seen.entry((t, next)).or_insert(after);
                    }
                }
                for (key, next) in seen.drain() {
                    tally.chains.entry(key).or_default().push(v);
                    tally.then.entry((key, next)).or_default().push(v);
                }
                (tally, calls, seen)
            },
        )
        .map(|(tally, ..)| tally)
        .reduce(Tally::default, Tally::merge);
    let chains = exchange::sum(ex, Counts(tally.chains)).0;
    let then = exchange::sum(ex, Counts(tally.then)).0;
    let tool = |t: u32| chains.get(&(t, END)).copied().unwrap_or_default();
    let mut found: Vec<(Key, Comparison)> = (chains.iter())
        .filter(|(_, m)| m.n >= min_support as u64)
        .map(|(&k, &m)| (k, totals.compare(m)))
        .filter(|(_, c)| c.effect_at(Z_SCAN) == Effect::Drop)
        .filter(|((a, b), c)| {
            // Two calls in a row say more than their tools only when their sessions do markedly
            // worse than the other sessions of the worse of the two tools.
            let worse = match tool(*a).mean() <= tool(*b).mean() {
                true => tool(*a),
                false => tool(*b),
            };
            let alone = Comparison {
                without: worse.minus(c.with),
                ..*c
            };
            *b == END || alone.effect_at(Z_SCAN) == Effect::Drop
        })
        .collect();
    let worst = |c: &Comparison| c.difference().map_or(0.0, |(d, ..)| d);
    found.sort_by(|(ka, a), (kb, b)| worst(a).total_cmp(&worst(b)).then(ka.cmp(kb)));
    found.truncate(SHOWN_CHAINS);
    let mut paths: Vec<FailurePath> = (found.into_iter())
        .map(|(key, comparison)| {
            let next = (then.iter())
                .filter(|((k, _), _)| *k == key)
                .map(|((_, n), m)| (*n, *m));
            FailurePath {
                chain: match key {
                    (t, END) => vec![t],
                    (a, b) => vec![a, b],
                },
                workflow: false,
                comparison,
                then: ordered(next),
            }
        })
        .collect();
    for w in workflows {
        let Some(comparison) = w.outcome.filter(|c| c.effect() == Effect::Drop) else {
            continue;
        };
        let mut next: Counts<u32, Moments> = Counts::default();
        if let Some(f) = &w.folded {
            for e in &f.whole {
                let (Some(v), Some(&last)) = (known(e.session), e.positions.iter().max()) else {
                    continue;
                };
                // Whole runs are in the log's positions (loops not folded), as the calls are.
                let after = (log.collapsed(e.session, keep_repeats).nth(last + 1))
                    .map_or(END, |calls| log.tools[calls.start]);
                next.0.entry(after).or_default().push(v);
            }
        }
        let next = exchange::sum(ex, next).0;
        paths.push(FailurePath {
            chain: w.mined.pattern.clone(),
            workflow: true,
            comparison,
            then: ordered(next.into_iter()),
        });
    }
    paths
}

/// What came next, most sessions first (ties by tool id, the end last).
fn ordered(next: impl Iterator<Item = (u32, Moments)>) -> Vec<(Option<u32>, Moments)> {
    let mut next: Vec<(u32, Moments)> = next.collect();
    next.sort_by(|a, b| b.1.n.cmp(&a.1.n).then(a.0.cmp(&b.0)));
    (next.into_iter())
        .map(|(t, m)| ((t != END).then_some(t), m))
        .collect()
}
