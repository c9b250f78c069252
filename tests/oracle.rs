//! The miner against a brute-force oracle: enumerate every embedding of every chain in every
//! session, count, and compare exactly.

use std::collections::{BTreeMap, BTreeSet};

use patterns::events::EventLog;
use patterns::mining::{MineParams, Sequences, mine};
use proptest::prelude::*;

/// chain (tool names) → (support, occurrences, successful sessions)
type Counts = BTreeMap<Vec<String>, (usize, u64, usize)>;
type Tally = (usize, BTreeSet<(usize, usize)>, usize);

fn oracle(sessions: &[Vec<(String, bool)>], params: &MineParams, keep_repeats: bool) -> Counts {
    // chain → (sessions, distinct (session, end) pairs, sessions with an all-success embedding)
    let mut per_chain: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    for (s, calls) in sessions.iter().enumerate() {
        let mut seq: Vec<(String, bool)> = Vec::new();
        for call in calls {
            match seq.last_mut() {
                Some(last) if !keep_repeats && last.0 == call.0 => last.1 = call.1,
                _ => seq.push(call.clone()),
            }
        }
        // Every embedding: index chains with at most max_gap calls between consecutive steps.
        let mut found: BTreeMap<Vec<String>, (BTreeSet<usize>, bool)> = BTreeMap::new();
        let mut stack: Vec<Vec<usize>> = (0..seq.len()).map(|i| vec![i]).collect();
        while let Some(emb) = stack.pop() {
            let chain: Vec<String> = emb.iter().map(|&i| seq[i].0.clone()).collect();
            if chain.len() >= params.min_len {
                let entry = found.entry(chain).or_default();
                entry.0.insert(*emb.last().unwrap());
                entry.1 |= emb.iter().all(|&i| seq[i].1);
            }
            if emb.len() < params.max_len {
                let last = *emb.last().unwrap();
                let reach = params
                    .max_gap
                    .map_or(seq.len(), |g| last + g + 2)
                    .min(seq.len());
                stack.extend((last + 1..reach).map(|j| [emb.clone(), vec![j]].concat()));
            }
        }
        for (chain, (ends, ok)) in found {
            let e = per_chain.entry(chain).or_default();
            e.0 += 1;
            e.1.extend(ends.into_iter().map(|end| (s, end)));
            e.2 += ok as usize;
        }
    }
    per_chain
        .into_iter()
        .filter(|(_, (support, _, _))| *support >= params.min_support)
        .map(|(chain, (support, ends, ok))| (chain, (support, ends.len() as u64, ok)))
        .collect()
}

fn mined(sessions: &[Vec<(String, bool)>], params: &MineParams, keep_repeats: bool) -> Counts {
    let log = EventLog::from_sessions(sessions);
    let seqs = Sequences::new(&log, keep_repeats);
    mine(&seqs, params, &|| {})
        .into_iter()
        .map(|m| {
            let chain = m
                .pattern
                .iter()
                .map(|&t| log.tool_names[t as usize].clone())
                .collect();
            (chain, (m.support, m.occurrences, m.successes))
        })
        .collect()
}

fn sessions() -> impl Strategy<Value = Vec<Vec<(String, bool)>>> {
    // A few common tools and some rare ones (below the least support, which the miner drops
    // before growing when there is no gap limit).
    let tool = prop_oneof![4 => 0..4u8, 1 => 4..12u8];
    let call = (tool, prop::bool::weighted(0.8)).prop_map(|(t, ok)| (format!("t{t}"), ok));
    prop::collection::vec(prop::collection::vec(call, 0..10), 0..25)
}

fn params() -> impl Strategy<Value = (MineParams, bool)> {
    (
        1..4usize,
        0..3usize,
        prop::option::of(0..3usize),
        1..4usize,
        any::<bool>(),
    )
        .prop_map(|(min_len, extra, max_gap, min_support, keep_repeats)| {
            (
                MineParams {
                    min_len,
                    max_len: min_len + extra,
                    max_gap,
                    min_support,
                },
                keep_repeats,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn miner_agrees_with_brute_force(sessions in sessions(), (params, keep_repeats) in params()) {
        prop_assert_eq!(mined(&sessions, &params, keep_repeats), oracle(&sessions, &params, keep_repeats));
    }

    #[test]
    fn the_direct_scan_finds_an_occurrence_in_every_supporting_session(sessions in sessions(), (params, keep_repeats) in params()) {
        let log = EventLog::from_sessions(&sessions);
        let seqs = Sequences::new(&log, keep_repeats);
        for m in mine(&seqs, &params, &|| {}) {
            let found = patterns::mining::first_embeddings(&seqs, &m.pattern, params.max_gap);
            prop_assert_eq!(found.len(), m.support, "{:?}", m.pattern);
            for e in &found {
                let tools: Vec<u32> = seqs.session(e.session).map(|(t, _)| t).collect();
                for (i, &q) in e.positions.iter().enumerate() {
                    prop_assert_eq!(tools[q], m.pattern[i]);
                    if i > 0 {
                        let gap = q.checked_sub(e.positions[i - 1] + 1);
                        prop_assert!(gap.is_some_and(|g| params.max_gap.is_none_or(|max| g <= max)), "{:?}", e);
                    }
                }
            }
        }
    }
}

#[test]
fn unlimited_gap_with_repeats_is_classic_sequential_pattern_mining() {
    // PrefixSpan's frequent sequences of single-item events, counted by hand.
    let raw = [
        vec!["a", "b", "a", "c"],
        vec!["a", "c", "b"],
        vec!["b", "a", "a"],
    ];
    let sessions: Vec<Vec<(String, bool)>> = raw
        .iter()
        .map(|s| s.iter().map(|t| (t.to_string(), true)).collect())
        .collect();
    let params = MineParams {
        min_len: 1,
        max_len: 4,
        max_gap: None,
        min_support: 2,
    };
    let got: BTreeMap<String, usize> = mined(&sessions, &params, true)
        .into_iter()
        .map(|(chain, (support, _, _))| (chain.join(""), support))
        .collect();
    let want: BTreeMap<String, usize> = [
        ("a", 3),
        ("b", 3),
        ("c", 2),
        ("aa", 2),
        ("ab", 2),
        ("ac", 2),
        ("ba", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn miner_agrees_with_brute_force_on_the_sample_data() {
    let log = patterns::load::load(
        &[patterns::load::Input::File(crate::common::data(
            "sample.csv",
        ))],
        &Default::default(),
        &|_| {},
    )
    .expect("sample loads")
    .0;
    let sessions: Vec<Vec<(String, bool)>> = (0..log.session_count())
        .map(|s| {
            log.range(s)
                .map(|i| {
                    (
                        log.tool_names[log.tools[i] as usize].clone(),
                        log.success[i],
                    )
                })
                .collect()
        })
        .collect();
    let params = MineParams {
        min_len: 2,
        max_len: 4,
        max_gap: Some(2),
        min_support: 5,
    };
    let got = mined(&sessions, &params, false);
    assert!(
        got.len() > 100,
        "the sample should have many frequent chains, got {}",
        got.len()
    );
    assert_eq!(got, oracle(&sessions, &params, false));
}

#[test]
fn output_is_the_same_for_any_thread_count() {
    let mut text = Vec::new();
    patterns::generate::generate(
        patterns::generate::GenerateParams {
            sessions: 2000,
            seed: 9,
            payloads: false,
            ..Default::default()
        },
        &mut text,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.csv");
    std::fs::write(&path, text).unwrap();
    for keep in ["all", "workflows"] {
        let run = |threads: &str| {
            crate::common::patterns()
                .env("RAYON_NUM_THREADS", threads)
                .args(["mine", "--json", "--no-write", "--top", "0"])
                .args(["--min-support", "3", "--keep", keep])
                .arg(&path)
                .output()
                .unwrap()
                .stdout
        };
        let one = run("1");
        let expected = if keep == "all" { 10_000 } else { 5_000 };
        assert!(one.len() > expected, "expected many entries: {keep}");
        assert_eq!(one, run("2"), "{keep}");
        assert_eq!(one, run("5"), "{keep}");
    }
}
