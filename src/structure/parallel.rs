//! Parallel blocks: chains that differ only by the order of two adjacent steps are one workflow
//! when the evidence says the order does not matter.

use std::collections::{BTreeSet, HashMap};

use super::Workflow;
use crate::events::{EventLog, TimeKind, UNKNOWN_DURATION};
use crate::exchange::{self, Exchange};
use crate::mining::{self, Mined, Sequences};

/// When two orderings are merged.
#[derive(Debug, Clone, Copy)]
pub struct ParallelParams {
    /// The rarer ordering must occur in at least this share of the sessions of the commoner one.
    pub min_share: f64,
    /// Or: the block's calls overlapped in time in at least this share of its occurrences.
    pub min_overlap: f64,
    /// A loop (a → b → a …) runs both orders in the same session; concurrency does not. Orderings
    /// that share more than this share of the rarer one's sessions are not merged.
    pub max_shared: f64,
    /// After merging, a plain chain that is part of a merged workflow with at least
    /// `1 - tolerance` of its support is dropped, as closed mining drops fragments.
    pub tolerance: f64,
    /// Each step of a block must occur in at least this share of the sessions that run the rest
    /// of the workflow: a tool called now and then around a workflow, before or after one of
    /// its steps, is not part of it.
    pub min_part: f64,
    /// Only the first `limit` ranked chains are examined (each check scans the log).
    pub limit: usize,
}

impl Default for ParallelParams {
    fn default() -> ParallelParams {
        ParallelParams {
            min_share: 0.2,
            min_overlap: 0.5,
            max_shared: 0.5,
            tolerance: 0.05,
            min_part: 0.5,
            limit: 200,
        }
    }
}

/// Merges the orderings of `ranked` (best first) into workflows, best first. `frequent` holds
/// the support of every frequent chain (before pruning), which rules most candidates out
/// without a scan of the log. What the scans count is summed over the parts of the log (`ex`).
#[allow(clippy::too_many_arguments)]
pub fn merge_orderings(
    ex: &dyn Exchange,
    ranked: Vec<Mined>,
    frequent: &HashMap<Vec<u32>, usize>,
    seqs: &Sequences,
    log: &EventLog,
    keep_repeats: bool,
    max_gap: Option<usize>,
    params: &ParallelParams,
) -> Vec<Workflow> {
    let index: HashMap<Vec<u32>, usize> = ranked
        .iter()
        .enumerate()
        .map(|(i, m)| (m.pattern.clone(), i))
        .collect();
    let mut merged_into: Vec<Option<usize>> = vec![None; ranked.len()];
    let mut workflows: Vec<Option<Workflow>> = Vec::with_capacity(ranked.len());
    for (i, m) in ranked.iter().enumerate() {
        if merged_into[i].is_some() {
            workflows.push(None);
            continue;
        }
        let found = (i < params.limit)
            .then(|| {
                let known = Known {
                    index: &index,
                    merged_into: &merged_into,
                    frequent,
                    ranked: &ranked,
                };
                sibling(ex, m, i, &known, seqs, log, keep_repeats, max_gap, params)
            })
            .flatten();
        match found {
            Some((j, workflow)) => {
                merged_into[j] = Some(i);
                workflows.push(Some(workflow));
            }
            None => workflows.push(Some(Workflow::chain(m.clone()))),
        }
    }
    let mut out: Vec<Workflow> = workflows.into_iter().flatten().collect();
    // Plain chains that are parts of a merged workflow with about their support are fragments.
    let merged: Vec<Workflow> = out
        .iter()
        .filter(|w| !w.blocks.is_empty())
        .cloned()
        .collect();
    out.retain(|w| {
        !w.blocks.is_empty()
            || !merged.iter().any(|big| {
                big.mined.pattern.len() > w.mined.pattern.len()
                    && big.mined.support as f64 >= (1.0 - params.tolerance) * w.mined.support as f64
                    && big
                        .orderings
                        .iter()
                        .any(|o| is_subsequence(&w.mined.pattern, o))
            })
    });
    out.sort_by(|a, b| {
        b.mined
            .successes
            .cmp(&a.mined.successes)
            .then(b.mined.support.cmp(&a.mined.support))
            .then_with(|| a.mined.pattern.cmp(&b.mined.pattern))
    });
    out
}

/// What is known of the chains without scanning the log.
struct Known<'a> {
    index: &'a HashMap<Vec<u32>, usize>,
    merged_into: &'a [Option<usize>],
    frequent: &'a HashMap<Vec<u32>, usize>,
    ranked: &'a [Mined],
}

/// The first ordering of `m` with two adjacent steps swapped that the evidence merges with it.
#[allow(clippy::too_many_arguments)]
fn sibling(
    ex: &dyn Exchange,
    m: &Mined,
    i: usize,
    known: &Known,
    seqs: &Sequences,
    log: &EventLog,
    keep_repeats: bool,
    max_gap: Option<usize>,
    params: &ParallelParams,
) -> Option<(usize, Workflow)> {
    let (index, merged_into, ranked) = (known.index, known.merged_into, known.ranked);
    let timed = log.durations.is_some() && log.time_kind == TimeKind::EpochMicros;
    let p = &m.pattern;
    // A block is a stage of a workflow: a pair of tools alone is just two independent calls.
    // A chain that comes back to a tool is a loop, not a block of concurrent steps.
    if p.len() < 3 || p.iter().collect::<BTreeSet<_>>().len() < p.len() {
        return None;
    }
    for w in 0..p.len().saturating_sub(1) {
        let mut swapped = p.clone();
        swapped.swap(w, w + 1);
        let Some(&j) = index.get(&swapped) else {
            continue;
        };
        if j <= i || merged_into[j].is_some() {
            continue;
        }
        // From the supports alone: without durations both orders must be common, and each
        // block step must be in enough runs of the rest (the union is at most the sum).
        let (sa, sb) = (m.support, ranked[j].support);
        if !timed && (sa.min(sb) as f64) < params.min_share * sa.max(sb) as f64 {
            continue;
        }
        let rest_support = |t: usize| {
            let mut rest = p.clone();
            rest.remove(t);
            known.frequent.get(&rest).copied()
        };
        let too_rare = |union: usize| {
            (w..w + 2).any(|t| {
                rest_support(t).is_some_and(|r| (union as f64) < params.min_part * r as f64)
            })
        };
        if too_rare(sa + sb) {
            continue;
        }
        // One scan per ordering: its occurrences give both its sessions and the overlap.
        let found = [
            mining::first_embeddings(seqs, p, max_gap),
            mining::first_embeddings(seqs, &swapped, max_gap),
        ];
        let sessions =
            |k: usize| -> BTreeSet<usize> { found[k].iter().map(|e| e.session).collect() };
        let (a, b) = (sessions(0), sessions(1));
        let successes: BTreeSet<usize> = [p, &swapped]
            .iter()
            .flat_map(|o| mining::successful_sessions(seqs, o, max_gap))
            .collect();
        // Sessions lie whole in one part: counts of sessions add up over the parts.
        let here = (
            a.len(),
            b.len(),
            (a.intersection(&b).count(), successes.len()),
        );
        let (a, b, (shared, successes)) = exchange::sum(ex, here);
        let overlap = stage_overlap(ex, log, found.iter().flatten(), w..w + 2, keep_repeats);
        let (rare, common) = (a.min(b), a.max(b));
        if rare == 0 || shared as f64 > params.max_shared * rare as f64 {
            continue;
        }
        let both_orders = rare as f64 >= params.min_share * common as f64;
        let at_once = overlap.is_some_and(|o| o >= params.min_overlap);
        if !(both_orders || at_once) {
            continue;
        }
        let support = a + b - shared;
        if too_rare(support) {
            continue;
        }
        let workflow = Workflow {
            mined: Mined {
                pattern: p.clone(),
                support,
                occurrences: m.occurrences + ranked[j].occurrences,
                successes,
            },
            orderings: vec![p.clone(), swapped],
            blocks: std::iter::once(w..w + 2).collect(),
            overlap,
            folded: None,
            outcome: None,
            exits: Vec::new(),
        };
        return Some((j, workflow));
    }
    None
}

/// The share of the occurrences (of every part of the log) in which the calls of `block` (a
/// range of their positions) overlapped in time: some call started before one that started
/// earlier had ended. `None` when the log has no durations or no times.
pub fn stage_overlap<'a>(
    ex: &dyn Exchange,
    log: &EventLog,
    occurrences: impl IntoIterator<Item = &'a mining::Embedding>,
    block: std::ops::Range<usize>,
    keep_repeats: bool,
) -> Option<f64> {
    let here = overlap_counts(log, occurrences, block, keep_repeats);
    let (seen, overlapping) = exchange::sum(ex, here);
    (seen > 0).then(|| overlapping as f64 / seen as f64)
}

/// The occurrences with a time for every call of `block`, and those among them whose calls
/// overlapped; none when the log has no durations or no times.
fn overlap_counts<'a>(
    log: &EventLog,
    occurrences: impl IntoIterator<Item = &'a mining::Embedding>,
    block: std::ops::Range<usize>,
    keep_repeats: bool,
) -> (usize, usize) {
    let (mut seen, mut overlapping) = (0usize, 0usize);
    let Some(durations) = log.durations.as_ref() else {
        return (seen, overlapping);
    };
    if log.time_kind != TimeKind::EpochMicros {
        return (seen, overlapping);
    }
    let mut calls: Vec<(i64, i64)> = Vec::new();
    for e in occurrences {
        let session: Vec<_> = log.collapsed(e.session, keep_repeats).collect();
        calls.clear();
        for &p in &e.positions[block.clone()] {
            // From the first attempt's start to the last attempt's end.
            let (first, last) = (session[p].start, session[p].end - 1);
            if durations[last] == UNKNOWN_DURATION {
                break;
            }
            let end = log.timestamps[last] + i64::from(durations[last]) * 1_000;
            calls.push((log.timestamps[first], end));
        }
        if calls.len() < block.len() {
            continue;
        }
        calls.sort_unstable();
        seen += 1;
        let mut ends = calls[0].1;
        if calls[1..].iter().any(|&(start, end)| {
            let overlaps = start < ends;
            ends = ends.max(end);
            overlaps
        }) {
            overlapping += 1;
        }
    }
    (seen, overlapping)
}

fn is_subsequence(small: &[u32], big: &[u32]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|t| rest.any(|b| b == t))
}

#[cfg(test)]
mod tests {
    //! Each rule that merges two orderings into a stage, alone, just below and just above its
    //! threshold (the defaults: order share 0.2, overlap 0.5, shared sessions 0.5, part 0.5).

    use crate::events::{EventLog, TimeKind};
    use crate::mining::MinSupport;
    use crate::pipeline::{self, MineOptions};
    use crate::score::Keep;
    use crate::structure::Workflow;
    use crate::template;

    /// `n` sessions of each chain (tools named by letters).
    fn log(runs: &[(usize, &str)]) -> EventLog {
        let sessions: Vec<Vec<(String, bool)>> = runs
            .iter()
            .flat_map(|&(n, chain)| {
                std::iter::repeat_n(chain.chars().map(|c| (c.to_string(), true)).collect(), n)
            })
            .collect();
        EventLog::from_sessions(&sessions)
    }

    /// Every frequent chain (support 1), orderings merged as `mine --keep all` does.
    fn mine(log: &EventLog) -> Vec<Workflow> {
        let opts = MineOptions {
            keep: Keep::All,
            min_support: MinSupport::Count(1),
            ..MineOptions::default()
        };
        pipeline::mine(log, &opts, &|_| {}).unwrap().workflows
    }

    /// The merged workflow a → {b ∥ c} → d, if any.
    fn merged(log: &EventLog) -> Option<Workflow> {
        mine(log).into_iter().find(|w| {
            w.blocks.as_slice() == std::slice::from_ref(&(1..3))
                && log.names(&w.mined.pattern).collect::<String>() == "abcd"
        })
    }

    #[test]
    fn both_orders_common_enough_make_a_stage() {
        // The rarer order in 1 of 10 runs of the commoner (0.1 < 0.2): two chains.
        assert!(merged(&log(&[(10, "abcd"), (1, "acbd")])).is_none());
        // In 2 of 10 (0.2): one workflow, support counting both orders.
        let l = log(&[(10, "abcd"), (2, "acbd")]);
        let w = merged(&l).expect("merged");
        assert_eq!(w.mined.support, 12);
        assert_eq!(w.orderings.len(), 2);
        // Its template fans out to the stage and back in.
        let report = pipeline::MineReport {
            seqs: crate::mining::Sequences::new(&l, false),
            parts: std::sync::Arc::new(crate::exchange::Alone),
            sessions: l.session_count(),
            calls: l.event_count(),
            collapsed_calls: l.event_count(),
            min_support: 1,
            frequent: None,
            workflows: vec![w.clone()],
            paths_to_failure: Vec::new(),
            usage_tokens: None,
        };
        let (chain, stats) = pipeline::template_stats(&w, &report, &l, &MineOptions::default());
        let t = template::from_chain("t".into(), &chain, &stats);
        let deps: Vec<(&str, Vec<&str>)> = (t.steps.iter())
            .map(|s| {
                let d = s.depends_on.iter().map(String::as_str).collect();
                (s.step_id.as_str(), d)
            })
            .collect();
        assert_eq!(
            deps,
            [
                ("a", vec![]),
                ("b", vec!["a"]),
                ("c", vec!["a"]),
                ("d", vec!["b", "c"])
            ]
        );
        assert_eq!(t.parallel_groups, [["b", "c"]]);
    }

    /// `log` with times: call k of a session starts k seconds in; b and c take `b_ms` / 500 ms.
    fn timed(runs: &[(usize, &str, u32)]) -> EventLog {
        let mut l = log(&runs.iter().map(|&(n, c, _)| (n, c)).collect::<Vec<_>>());
        let b_ms: Vec<u32> = (runs.iter())
            .flat_map(|&(n, _, ms)| std::iter::repeat_n(ms, n))
            .collect();
        l.time_kind = TimeKind::EpochMicros;
        let mut durations = Vec::new();
        for (s, &ms) in b_ms.iter().enumerate() {
            for (k, i) in l.range(s).enumerate() {
                l.timestamps[i] =
                    1_700_000_000_000_000 + s as i64 * 100_000_000 + k as i64 * 1_000_000;
                durations.push(match l.tool_names[l.tools[i] as usize].as_str() {
                    "b" => ms,
                    _ => 500,
                });
            }
        }
        l.durations = Some(durations);
        l
    }

    #[test]
    fn calls_that_overlap_in_time_make_a_stage_whatever_the_order_share() {
        // 1 of 10 in the other order (too rare by itself). b takes 1.5 s, so c (1 s later)
        // starts before it ends: overlapping in 5 of 11 runs (0.45 < 0.5), then 6 of 11.
        let slow = 1_500;
        let below = timed(&[(5, "abcd", slow), (5, "abcd", 400), (1, "acbd", 400)]);
        assert!(merged(&below).is_none());
        let above = timed(&[(6, "abcd", slow), (4, "abcd", 400), (1, "acbd", 400)]);
        let w = merged(&above).expect("merged by overlap");
        assert!((w.overlap.unwrap() - 6.0 / 11.0).abs() < 1e-9);
    }

    #[test]
    fn a_loop_that_runs_both_orders_in_one_session_is_no_stage() {
        // `a b c b d` has both orders. Of the 10 sessions with the rarer order, 5 (0.5, not
        // more than half) also have the other: merged; 6: a loop, not merged.
        assert!(merged(&log(&[(20, "abcd"), (5, "abcbd"), (5, "acbd")])).is_some());
        assert!(merged(&log(&[(20, "abcd"), (6, "abcbd"), (4, "acbd")])).is_none());
    }

    #[test]
    fn a_step_absent_from_most_runs_of_the_rest_is_no_part_of_the_stage() {
        // 13 runs with b of 25 runs of a → c → d (0.52): merged; of 27 (0.48): not.
        assert!(merged(&log(&[(10, "abcd"), (3, "acbd"), (12, "acd")])).is_some());
        assert!(merged(&log(&[(10, "abcd"), (3, "acbd"), (14, "acd")])).is_none());
    }

    #[test]
    fn two_tools_in_either_order_are_no_stage() {
        let found = mine(&log(&[(10, "ab"), (10, "ba")]));
        assert!(found.iter().all(|w| w.blocks.is_empty()), "{found:?}");
        assert_eq!(found.len(), 2);
    }
}
