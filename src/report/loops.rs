//! Loops: a short cycle of tools repeated round after round within a session
//! (`edit → test → edit → test → edit → test`), the stuck agent that people who run agents look
//! for first.

use std::collections::HashMap;

use crate::events::EventLog;

/// The longest cycle looked for, in calls.
const MAX_CYCLE: usize = 3;
/// The fewest rounds that make a loop: twice is a fix that took two tries, three times is not.
pub const MIN_ROUNDS: usize = 3;

/// A cycle of tools and how it repeated over the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Loop {
    /// The cycle's tools as it most often started.
    pub cycle: Vec<String>,
    /// Sessions with at least one loop of it.
    pub sessions: usize,
    /// Loops of it (a session may have several).
    pub loops: usize,
    /// Rounds per loop: median and most.
    pub median_rounds: usize,
    pub max_rounds: usize,
    /// Share of the calls in its loops that failed.
    pub failed_share: f64,
}

/// One loop found in a session: where it starts, the cycle's length and its rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    start: usize,
    len: usize,
    rounds: usize,
}

/// The loops of one sequence of tools, left to right, not overlapping: at each call the shortest
/// cycle that repeats at least [`MIN_ROUNDS`] times from there, whole rounds only. A cycle is
/// primitive (`a b a b` is not a cycle of four), so each loop has one length.
fn find(tools: &[u32]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tools.len() {
        let found = (1..=MAX_CYCLE).find_map(|len| {
            let cycle = tools.get(i..i + len)?;
            if (1..len).any(|p| len % p == 0 && cycle[p..] == cycle[..len - p]) {
                return None; // not primitive: a shorter cycle was tried first
            }
            let same = (i + len..tools.len())
                .take_while(|&j| tools[j] == tools[j - len])
                .count();
            let rounds = (len + same) / len;
            (rounds >= MIN_ROUNDS).then_some(Found {
                start: i,
                len,
                rounds,
            })
        });
        match found {
            Some(f) => {
                out.push(f);
                i += f.len * f.rounds;
            }
            None => i += 1,
        }
    }
    out
}

/// The loops of `log`, by cycle (its rotations are one cycle), most sessions first.
pub fn loops(log: &EventLog) -> Vec<Loop> {
    #[derive(Default)]
    struct Acc {
        sessions: usize,
        rounds: Vec<usize>,
        calls: usize,
        failed: usize,
        /// How often each rotation started a loop.
        starts: HashMap<Vec<u32>, usize>,
    }
    let mut by_cycle: HashMap<Vec<u32>, Acc> = HashMap::new();
    for s in 0..log.session_count() {
        let range = log.range(s);
        let tools = &log.tools[range.clone()];
        let mut seen: Vec<Vec<u32>> = Vec::new();
        for f in find(tools) {
            let cycle = tools[f.start..f.start + f.len].to_vec();
            let key = (0..f.len)
                .map(|r| [&cycle[r..], &cycle[..r]].concat())
                .min()
                .expect("a cycle has a call");
            let calls = range.start + f.start..range.start + f.start + f.len * f.rounds;
            let acc = by_cycle.entry(key.clone()).or_default();
            acc.rounds.push(f.rounds);
            acc.calls += calls.len();
            acc.failed += log.success[calls].iter().filter(|ok| !**ok).count();
            *acc.starts.entry(cycle).or_default() += 1;
            if !seen.contains(&key) {
                acc.sessions += 1;
                seen.push(key);
            }
        }
    }
    let mut out: Vec<Loop> = by_cycle
        .into_values()
        .map(|mut acc| {
            acc.rounds.sort_unstable();
            let cycle = (acc.starts.into_iter())
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .expect("a loop")
                .0;
            Loop {
                cycle: log.names(&cycle).map(String::from).collect(),
                sessions: acc.sessions,
                loops: acc.rounds.len(),
                median_rounds: acc.rounds[acc.rounds.len() / 2],
                max_rounds: *acc.rounds.last().expect("a loop"),
                failed_share: acc.failed as f64 / acc.calls as f64,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (b.sessions.cmp(&a.sessions))
            .then(b.loops.cmp(&a.loops))
            .then_with(|| a.cycle.cmp(&b.cycle))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str) -> Vec<u32> {
        s.bytes().map(|b| u32::from(b - b'a')).collect()
    }

    #[test]
    fn a_cycle_needs_three_whole_rounds() {
        // edit test edit test: two rounds, a fix that took two tries.
        assert_eq!(find(&ids("xetetz")), vec![]);
        // Three rounds and a half: the half is not a round.
        assert_eq!(
            find(&ids("xetetetez")),
            vec![Found {
                start: 1,
                len: 2,
                rounds: 3
            }]
        );
    }

    #[test]
    fn the_shortest_cycle_wins_and_loops_do_not_overlap() {
        // aaaa is a loop of one tool, not of `a a`; then `b c d` three times.
        assert_eq!(
            find(&ids("aaaabcdbcdbcd")),
            vec![
                Found {
                    start: 0,
                    len: 1,
                    rounds: 4
                },
                Found {
                    start: 4,
                    len: 3,
                    rounds: 3
                }
            ]
        );
    }

    #[test]
    fn rotations_are_one_cycle_counted_once_per_session() {
        let log = EventLog::from_sessions(&[
            vec![
                ("edit", true),
                ("test", false),
                ("edit", true),
                ("test", false),
                ("edit", true),
                ("test", true),
            ],
            // Starts with test: the same cycle, twice in this session.
            vec![
                ("test", false),
                ("edit", true),
                ("test", false),
                ("edit", true),
                ("test", false),
                ("edit", true),
                ("read", true),
                ("test", false),
                ("edit", true),
                ("test", false),
                ("edit", true),
                ("test", false),
                ("edit", true),
                ("test", false),
                ("edit", true),
            ],
        ]);
        let found = loops(&log);
        assert_eq!(found.len(), 1);
        let l = &found[0];
        assert_eq!(l.cycle, ["test", "edit"]);
        assert_eq!((l.sessions, l.loops), (2, 3));
        assert_eq!((l.median_rounds, l.max_rounds), (3, 4));
        // 2 + 3 + 4 failed tests of 6 + 6 + 8 calls.
        assert!((l.failed_share - 9.0 / 20.0).abs() < 1e-9);
    }
}
