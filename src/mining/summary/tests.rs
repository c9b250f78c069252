//! The summary in-process: each phase on small logs made by hand, and the same answer when the
//! log is split into parts that exchange their counts (as on Spark) as when it is whole.

use std::sync::{Arc, Condvar, Mutex};

use proptest::prelude::*;

use super::*;
use crate::events::EventLog;
use crate::exchange::Alone;

/// A log of `n` sessions per chain, each chain's tools given as one letter per call.
fn log(runs: &[(usize, &str)]) -> EventLog {
    let sessions: Vec<Vec<(String, bool)>> = (runs.iter())
        .flat_map(|&(n, chain)| {
            let calls: Vec<(String, bool)> = chain.chars().map(|c| (c.to_string(), true)).collect();
            std::iter::repeat_n(calls, n)
        })
        .collect();
    EventLog::from_sessions(&sessions)
}

fn params() -> SummaryParams {
    SummaryParams {
        min_support: 3,
        ..SummaryParams::default()
    }
}

fn summarise_alone(log: &EventLog) -> Vec<Found> {
    summarise(
        &Sequences::with_loops(log, false),
        &params(),
        &Alone,
        &|_| {},
    )
}

/// The workflows as their tools' names, one string each (`abc`).
fn chains(log: &EventLog, found: &[Found]) -> Vec<String> {
    found
        .iter()
        .map(|f| log.names(&f.pattern()).collect())
        .collect()
}

#[test]
fn each_branch_after_a_shared_start_is_a_workflow_that_names_the_others() {
    let l = log(&[(30, "abc"), (20, "abd"), (12, "abef"), (4, "ab")]);
    let found = summarise_alone(&l);
    let mut got = chains(&l, &found);
    got.sort();
    assert_eq!(got, ["abc", "abd", "abef"]);
    let abc = &found[0];
    assert_eq!(l.names(&abc.pattern()).collect::<String>(), "abc");
    let branch = abc.branch.as_ref().expect("a branch");
    assert_eq!(l.names(&branch.trunk).collect::<String>(), "ab");
    assert!(branch.at_start);
    let siblings: Vec<(String, usize)> = (branch.siblings.iter())
        .map(|(p, n)| (l.names(p).collect(), *n))
        .collect();
    assert_eq!(
        siblings,
        [("abd".to_string(), 20), ("abef".to_string(), 12)]
    );
    // The runs that stopped after the trunk show in a funnel, not as an entry.
    assert!(found.iter().all(|f| f.pattern().len() > 2));
}

#[test]
fn workflows_that_share_steps_are_not_fused() {
    // search → edit → commit → pr, and search → read → edit → test → pr: start, middle and end
    // shared.
    let l = log(&[(20, "secp"), (20, "sretp")]);
    let mut got = chains(&l, &summarise_alone(&l));
    got.sort();
    assert_eq!(got, ["secp", "sretp"]);
}

#[test]
fn a_loop_is_its_body_once_with_its_rounds() {
    let l = log(&[(10, "tetcp"), (10, "tetetcp"), (10, "tetetetcp")]);
    let found = summarise_alone(&l);
    assert_eq!(chains(&l, &found), ["tetcp"]);
    let loops = &found[0].loops;
    assert_eq!(loops.len(), 1);
    assert_eq!((loops[0].start, loops[0].end), (1, 3));
    assert_eq!(loops[0].rounds, [(1, 10), (2, 10), (3, 10)]);
    assert_eq!((loops[0].median(), loops[0].most()), (2, 3));
    // The whole runs' positions are the calls of the log: the last round's.
    let third = found[0]
        .whole
        .iter()
        .find(|e| e.session == 20)
        .expect("a run");
    assert_eq!(third.positions, [0, 5, 6, 7, 8]);
}

#[test]
fn a_skipped_stage_is_a_variant_only_when_the_run_goes_on_with_two_more() {
    let tools = |s: &str| s.bytes().map(u32::from).collect::<Vec<u32>>();
    let stages: Vec<Vec<u32>> = "abcd".bytes().map(|b| vec![u32::from(b)]).collect();
    // a → c → d: b skipped, bridged by c and d.
    let runs = runs::runs_in(&tools("acd"), &stages, 3, true);
    assert_eq!((runs.len(), runs[0].skipped), (1, Some(1)));
    // a → x → d: c skipped with only the last stage after it: another workflow's run.
    let runs = runs::runs_in(&tools("abxd"), &stages, 3, true);
    assert!(runs.iter().all(|r| r.skipped.is_none()), "{runs:?}");
}

#[test]
fn branches_are_not_repeats_but_pieces_and_one_step_changes_are() {
    let c = |s: &str| s.bytes().map(u32::from).collect::<Vec<u32>>();
    // Siblings after a shared start, and a shared end.
    assert_eq!(fold::repeats(&c("abc"), &c("abd")), None);
    assert_eq!(fold::repeats(&c("xyc"), &c("uvc")), None);
    // A piece, and one step replaced in the middle.
    assert_eq!(fold::repeats(&c("bc"), &c("abcd")), Some(Relation::Part));
    assert_eq!(
        fold::repeats(&c("abxd"), &c("abcd")),
        Some(Relation::OneStepDiffers)
    );
    // Two workflows that share three of their steps are two.
    assert_eq!(fold::repeats(&c("secp"), &c("sretp")), None);
}

/// Parts of one log in threads of this process, exchanging as Spark's parts do.
struct Hub {
    parts: usize,
    state: Mutex<Round>,
    next: Condvar,
}

/// The round, the messages of this round, the last round's, how many arrived.
type Round = (u64, Vec<Option<String>>, Vec<String>, usize);

struct Part {
    hub: Arc<Hub>,
    index: usize,
}

impl Exchange for Part {
    fn parts(&self) -> usize {
        self.hub.parts
    }

    fn all_gather(&self, message: String) -> Vec<String> {
        let mut s = self.hub.state.lock().unwrap();
        let round = s.0;
        s.1[self.index] = Some(message);
        s.3 += 1;
        if s.3 == self.hub.parts {
            s.2 = s.1.iter_mut().map(|m| m.take().expect("sent")).collect();
            s.3 = 0;
            s.0 += 1;
            self.hub.next.notify_all();
        } else {
            while s.0 == round {
                s = self.hub.next.wait(s).unwrap();
            }
        }
        s.2.clone()
    }
}

/// Sessions of planted chains (one a loop) with other calls among them, some failed.
fn sessions() -> impl Strategy<Value = Vec<Vec<(String, bool)>>> {
    const CHAINS: [&str; 6] = ["abc", "abd", "abef", "secp", "sretp", "tetetcp"];
    let session = (
        0..CHAINS.len(),
        prop::collection::vec((0..6usize, 0..4u8), 0..3),
        any::<u8>(),
    );
    prop::collection::vec(session, 30..90).prop_map(|rows| {
        (rows.into_iter())
            .map(|(w, noise, fail)| {
                let mut calls: Vec<(String, bool)> =
                    CHAINS[w].chars().map(|c| (c.to_string(), true)).collect();
                for (at, tool) in noise {
                    let at = at.min(calls.len());
                    calls.insert(at, (format!("n{tool}"), true));
                }
                if fail % 7 == 0 {
                    calls[0].1 = false;
                }
                calls
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Every decision of the summary is taken on counts summed over the parts: split by
    /// session into 2 or 3 parts, each part finds what the whole log gives (the runs, `whole`
    /// and `stopped`, are each part's own).
    #[test]
    fn parts_that_exchange_their_counts_find_what_the_whole_log_gives(
        sessions in sessions(),
        k in 2..4usize,
    ) {
        let whole = EventLog::from_sessions(&sessions);
        let mut alone = summarise_alone(&whole);
        for f in &mut alone {
            f.whole.clear();
            f.stopped.clear();
        }
        let hub = Arc::new(Hub {
            parts: k,
            state: Mutex::new((0, vec![None; k], Vec::new(), 0)),
            next: Condvar::new(),
        });
        let found: Vec<Vec<Found>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..k)
                .map(|index| {
                    let part = Part { hub: hub.clone(), index };
                    let mine: Vec<Vec<(String, bool)>> =
                        sessions.iter().skip(index).step_by(k).cloned().collect();
                    scope.spawn(move || {
                        let mut log = EventLog::from_sessions(&mine);
                        log.align(&part);
                        let seqs = Sequences::with_loops(&log, false);
                        let mut found = summarise(&seqs, &params(), &part, &|_| {});
                        for f in &mut found {
                            f.whole.clear();
                            f.stopped.clear();
                        }
                        found
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for part in found {
            prop_assert_eq!(&part, &alone);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The candidate sessions of a workflow are those with a tool of its first two stages, in
    /// order, each once.
    #[test]
    fn candidates_are_the_sessions_with_a_tool_of_the_first_two_stages(
        sessions in sessions(),
        stages in prop::collection::vec(prop::collection::vec(0..8u32, 1..3), 1..4),
    ) {
        let log = EventLog::from_sessions(&sessions);
        let seqs = Sequences::with_loops(&log, false);
        let residual = Residual::new(&seqs, DEFAULT_REACH, &Alone);
        let stages: Vec<Vec<u32>> = (stages.into_iter())
            .map(|s| s.into_iter().map(|t| t % seqs.tool_count as u32).collect())
            .collect();
        let first: Vec<u32> = stages.iter().take(2).flatten().copied().collect();
        let has_one = |s: usize| {
            let calls = residual.live(s).len() as u32;
            (0..calls).any(|p| first.contains(&residual.tool(s, p)))
        };
        let want: Vec<usize> = (0..seqs.len()).filter(|&s| has_one(s)).collect();
        prop_assert_eq!(residual.candidates(&stages), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A trunk that the pair counts say may not run whole in `min_support` sessions does not:
    /// skipping its growth loses nothing.
    #[test]
    fn a_trunk_the_pairs_rule_out_runs_whole_in_fewer_sessions(
        sessions in sessions(),
        stages in prop::collection::vec(prop::collection::vec(0..8u32, 1..3), 2..4),
        min_support in 1..6usize,
    ) {
        let log = EventLog::from_sessions(&sessions);
        let seqs = Sequences::with_loops(&log, false);
        let residual = Residual::new(&seqs, DEFAULT_REACH, &Alone);
        let mut stages: Vec<Vec<u32>> = (stages.into_iter())
            .map(|s| s.into_iter().map(|t| t % seqs.tool_count as u32).collect())
            .collect();
        for stage in &mut stages {
            stage.dedup();
        }
        let all: Vec<usize> = (0..seqs.len()).collect();
        let whole = whole_runs(&residual, &stages, &all).len();
        if !residual.may_run(&stages, min_support) {
            prop_assert!(whole < min_support, "{whole} sessions run {stages:?} whole");
        }
    }

    /// Pair counts tallied in a table (few tools) and in a hash map (many) are the same.
    #[test]
    fn a_table_and_a_map_tally_pairs_alike(
        changes in prop::collection::vec((0..6u32, 0..6u32, -3..4isize), 0..60),
    ) {
        let (mut table, mut map) = (PairTally::new(6), PairTally::new(TABLE_TOOLS + 1));
        let kinds = (
            matches!(table, PairTally::Table { .. }),
            matches!(map, PairTally::Map { .. }),
        );
        prop_assert_eq!(kinds, (true, true));
        for &(a, b, n) in &changes {
            let key = pair(a, b);
            table.add(key, n);
            map.add(key, n);
        }
        let mut want: FxHashMap<u64, isize> = FxHashMap::default();
        for &(a, b, n) in &changes {
            *want.entry(pair(a, b)).or_default() += n;
        }
        want.retain(|_, n| *n != 0);
        prop_assert_eq!(table.into_counts().0, want.clone());
        prop_assert_eq!(map.into_counts().0, want);
    }

    /// The pairs a session lost and gained (lists where a pair may repeat) are those a set
    /// difference finds, in a table (whose marks may start anew midway) and in a map; and a
    /// list's pairs counted once each are its distinct pairs.
    #[test]
    fn the_changes_of_two_pair_lists_are_their_differences(
        old in prop::collection::vec((0..6u32, 0..6u32), 0..20),
        new in prop::collection::vec((0..6u32, 0..6u32), 0..20),
        near_wrap in any::<bool>(),
    ) {
        let keys = |l: &[(u32, u32)]| l.iter().map(|&(a, b)| pair(a, b)).collect::<Vec<u64>>();
        let (old, new) = (keys(&old), keys(&new));
        let mut want: FxHashMap<u64, isize> = FxHashMap::default();
        for k in old.iter().filter(|k| !new.contains(k)) {
            want.insert(*k, -1);
        }
        for k in new.iter().filter(|k| !old.contains(k)) {
            want.insert(*k, 1);
        }
        for tools in [6, TABLE_TOOLS + 1] {
            let mut tally = PairTally::new(tools);
            tally.once(&[], 0);
            if let (PairTally::Table { stamp, .. }, true) = (&mut tally, near_wrap) {
                *stamp = u32::MAX - 1;
            }
            tally.changes(&old, &new);
            prop_assert_eq!(tally.into_counts().0, want.clone());
            let mut tally = PairTally::new(tools);
            tally.once(&new, 2);
            let distinct: FxHashMap<u64, isize> = new.iter().map(|&k| (k, 2)).collect();
            prop_assert_eq!(tally.into_counts().0, distinct);
        }
    }
}
