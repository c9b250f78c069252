//! Frequent tool chains: pattern growth over interned sequences, in parallel with rayon.
//!
//! A chain occurs in a session when its tools appear in order with at most `max_gap` other calls
//! between consecutive steps. Mining is a depth-first pattern growth (PrefixSpan) whose projected
//! database keeps, for every supporting session, *every* position at which an embedding of the
//! prefix can end: with a gap constraint the leftmost embedding alone is not enough, because a
//! later one may be the only one close enough to the next step.
//!
//! No I/O and no polars here; the result does not depend on the number of threads.

mod projection;
pub mod summary;

use std::ops::Range;

use rayon::prelude::*;
use rustc_hash::FxHashSet;

use crate::events::{EventLog, split_at_lengths};
use projection::{Extension, Projection, Scratch};

/// The sequences that are mined: one per session, each call a tool id with its success in the
/// top bit, so that the miner's inner loop reads one array.
#[derive(Debug, Clone)]
pub struct Sequences {
    offsets: Vec<u32>,
    calls: Vec<u32>,
    tool_count: usize,
    /// The sessions' keys ([`EventLog::session_keys`]).
    keys: Vec<u64>,
    /// With loops folded (see [`Sequences::with_loops`]): per call, its position among the
    /// session's calls before folding, and the loop whose body it starts (body length, rounds;
    /// `(0, 0)` for none). Empty otherwise.
    origin: Vec<u32>,
    loops: Vec<(u8, u8)>,
    /// Calls after collapsing repeats, before folding loops.
    collapsed: usize,
}

/// Most calls in the body of a loop that [`Sequences::with_loops`] folds.
const MAX_BODY: usize = 3;

/// The success flag of a call in [`Sequences`] and of a position in a projection.
const OK: u32 = 1 << 31;
/// A call also holds how many immediate retries were collapsed into it (at most 7)…
const RETRY_SHIFT: u32 = 28;
const MAX_RETRIES: u32 = 7;
/// …and, in the low bits, its tool id.
const TOOL: u32 = (1 << RETRY_SHIFT) - 1;

impl Sequences {
    /// Takes the sessions of `log`; unless `keep_repeats`, immediate repeats of one tool collapse
    /// into one call whose outcome is the last attempt's, and which remembers how many of the
    /// repeats were retries (see [`is_retry`]).
    ///
    /// # Panics
    /// With 2^31 calls or 2^28 tools or more.
    pub fn new(log: &EventLog, keep_repeats: bool) -> Sequences {
        Sequences::build(log, keep_repeats, false)
    }

    /// As [`Sequences::new`], and then every loop (a body of two or three calls repeated back to
    /// back: edit → test → edit → test) is folded into its last round, whose first call
    /// remembers the body's length and the rounds ([`Sequences::loop_at`]); positions of
    /// embeddings found here are mapped back with [`Sequences::origin`]. The last round stands
    /// for the loop: it is the one the run went on from.
    pub fn with_loops(log: &EventLog, keep_repeats: bool) -> Sequences {
        Sequences::build(log, keep_repeats, true)
    }

    fn build(log: &EventLog, keep_repeats: bool, loops: bool) -> Sequences {
        let per_task = log.event_count() / (rayon::current_num_threads() * 16);
        Sequences::build_in_tasks(log, keep_repeats, loops, per_task.max(1 << 12))
    }

    /// [`Sequences::build`] in tasks of sessions of about `per_task` calls each.
    fn build_in_tasks(
        log: &EventLog,
        keep_repeats: bool,
        loops: bool,
        per_task: usize,
    ) -> Sequences {
        assert!(
            log.event_count() < OK as usize && log.tool_names.len() < TOOL as usize,
            "more than 2^31 calls or 2^28 tools cannot be mined in one run"
        );
        // A run of sessions per task, the tasks on every thread: each session's calls are
        // written where its calls start in the log (it has no more than those), then moved up.
        let n = log.event_count();
        let mut calls = vec![0u32; n];
        let (mut origin, mut loops_at) = match loops {
            true => (vec![0u32; n], vec![(0u8, 0u8); n]),
            false => (Vec::new(), Vec::new()),
        };
        let mut lens = vec![0u32; log.session_count()];
        let (mut runs, mut first) = (Vec::new(), 0);
        while first < log.session_count() {
            let start = log.offsets[first];
            let end = (first + 1..log.session_count())
                .find(|&s| log.offsets[s] - start >= per_task)
                .unwrap_or(log.session_count());
            runs.push(first..end);
            first = end;
        }
        let calls_of = |r: &Range<usize>| log.offsets[r.end] - log.offsets[r.start];
        let folded = |r: &Range<usize>| if loops { calls_of(r) } else { 0 };
        let tasks: Vec<_> = itertools::izip!(
            runs.iter().cloned(),
            split_at_lengths(&mut calls, runs.iter().map(calls_of)),
            split_at_lengths(&mut origin, runs.iter().map(folded)),
            split_at_lengths(&mut loops_at, runs.iter().map(folded)),
            split_at_lengths(&mut lens, runs.iter().map(|r| r.len())),
        )
        .collect();
        let written: Vec<(usize, usize, usize)> = (tasks.into_par_iter())
            .map(|(sessions, calls, origin, loops_at, lens)| {
                let start = log.offsets[sessions.start];
                let (mut session, mut folded) = (Vec::new(), Vec::new());
                let (mut at, mut collapsed) = (0, 0);
                for (s, len) in sessions.zip(lens) {
                    session_calls(log, s, keep_repeats, &mut session);
                    collapsed += session.len();
                    let before = at;
                    if loops {
                        fold_loops(&session, &mut folded);
                        for &(i, body, rounds) in &folded {
                            (calls[at], origin[at], loops_at[at]) =
                                (session[i as usize], i, (body, rounds));
                            at += 1;
                        }
                    } else {
                        calls[at..at + session.len()].copy_from_slice(&session);
                        at += session.len();
                    }
                    *len = (at - before) as u32;
                }
                (start, at, collapsed)
            })
            .collect();
        // Each task's calls moved up to follow those of the tasks before it.
        let mut end = 0;
        for &(start, len, _) in &written {
            calls.copy_within(start..start + len, end);
            if loops {
                origin.copy_within(start..start + len, end);
                loops_at.copy_within(start..start + len, end);
            }
            end += len;
        }
        calls.truncate(end);
        origin.truncate(end);
        loops_at.truncate(end);
        let mut offsets = Vec::with_capacity(lens.len() + 1);
        offsets.push(0);
        for len in lens {
            offsets.push(offsets.last().expect("starts with 0") + len);
        }
        Sequences {
            offsets,
            calls,
            tool_count: log.tool_names.len(),
            keys: log.session_keys.clone(),
            origin,
            loops: loops_at,
            collapsed: written.iter().map(|w| w.2).sum(),
        }
    }

    /// The position among session `s`'s calls (before loops were folded) of its call `p`.
    pub fn origin(&self, s: usize, p: usize) -> usize {
        match self.origin.is_empty() {
            true => p,
            false => self.origin[self.offsets[s] as usize + p] as usize,
        }
    }

    /// The loop whose body starts at session `s`'s call `p`, as (body length, rounds), when
    /// loops were folded and it ran more than once.
    pub fn loop_at(&self, s: usize, p: usize) -> Option<(usize, u32)> {
        let &(body, rounds) = self.loops.get(self.offsets[s] as usize + p)?;
        (rounds > 1).then_some((usize::from(body), u32::from(rounds)))
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of calls after collapsing repeats (before folding loops).
    pub fn event_count(&self) -> usize {
        self.collapsed
    }

    /// These sequences without the calls of tools that occur in fewer than `min_support`
    /// sessions: no chain with such a step is that frequent, and without a gap limit the
    /// chains without one occur where they did.
    fn frequent_only(&self, min_support: usize) -> Sequences {
        let mut support = vec![0usize; self.tool_count];
        let mut last_seen = vec![u32::MAX; self.tool_count];
        for s in 0..self.len() {
            for (t, _) in self.session(s) {
                if last_seen[t as usize] != s as u32 {
                    last_seen[t as usize] = s as u32;
                    support[t as usize] += 1;
                }
            }
        }
        let kept = |i: usize| support[(self.calls[i] & TOOL) as usize] >= min_support;
        fn keep<T: Copy>(v: &[T], kept: impl Fn(usize) -> bool) -> Vec<T> {
            (0..v.len()).filter(|&i| kept(i)).map(|i| v[i]).collect()
        }
        let mut offsets = Vec::with_capacity(self.offsets.len());
        offsets.push(0);
        for s in 0..self.len() {
            let range = self.offsets[s] as usize..self.offsets[s + 1] as usize;
            let n = range.filter(|&i| kept(i)).count() as u32;
            offsets.push(offsets[s] + n);
        }
        Sequences {
            offsets,
            calls: keep(&self.calls, kept),
            tool_count: self.tool_count,
            keys: self.keys.clone(),
            origin: if self.origin.is_empty() {
                Vec::new()
            } else {
                keep(&self.origin, kept)
            },
            loops: if self.loops.is_empty() {
                Vec::new()
            } else {
                keep(&self.loops, kept)
            },
            collapsed: self.collapsed,
        }
    }

    /// The tools of session `s` and whether each call succeeded.
    pub fn session(&self, s: usize) -> impl Iterator<Item = (u32, bool)> + '_ {
        let range = self.offsets[s] as usize..self.offsets[s + 1] as usize;
        self.calls[range].iter().map(|&c| (c & TOOL, c & OK != 0))
    }
}

/// The calls of session `s` of `log` into `out`, repeats collapsed unless `keep_repeats` (see
/// [`Sequences::new`]).
fn session_calls(log: &EventLog, s: usize, keep_repeats: bool, out: &mut Vec<u32>) {
    out.clear();
    for call in log.collapsed(s, keep_repeats) {
        let retries = (call.start + 1..call.end)
            .filter(|&i| is_retry(log, i))
            .count()
            .min(MAX_RETRIES as usize) as u32;
        let ok = if log.success[call.end - 1] { OK } else { 0 };
        out.push(log.tools[call.start] | ok | retries << RETRY_SHIFT);
    }
}

/// Folds the loops of one session's `calls` into their last round: into `out`, per call kept,
/// its index in `calls` and, on the first call of a folded body, the body's length and the
/// rounds (else `(0, 1)`). Read from the end, so that of `test edit test edit test` the body
/// kept is `edit test` (the round the run went on from) and the first `test` stays.
fn fold_loops(calls: &[u32], out: &mut Vec<(u32, u8, u8)>) {
    out.clear();
    let tool = |e: &(u32, u8, u8)| calls[e.0 as usize] & TOOL;
    for i in (0..calls.len()).rev() {
        out.push((i as u32, 0, 1));
        'fold: loop {
            let n = out.len();
            for body in 2..=MAX_BODY {
                if n < 2 * body {
                    break;
                }
                let (kept, earlier) = (&out[n - 2 * body..n - body], &out[n - body..]);
                if !kept.iter().map(tool).eq(earlier.iter().map(tool)) {
                    continue;
                }
                // The earlier round's rounds, if it was a folded loop of this body itself.
                let rounds = |e: &(u32, u8, u8)| match usize::from(e.1) == body {
                    true => e.2,
                    false => 1,
                };
                let added = rounds(&out[n - 1]);
                let first = &mut out[n - body - 1];
                *first = (first.0, body as u8, rounds(first).saturating_add(added));
                out.truncate(n - body);
                continue 'fold;
            }
            break;
        }
    }
    out.reverse();
}

/// What to mine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MineParams {
    /// Shortest chain reported (at least 1).
    pub min_len: usize,
    /// Longest chain reported.
    pub max_len: usize,
    /// Most other calls allowed between two consecutive steps; `None` for no limit.
    pub max_gap: Option<usize>,
    /// Fewest sessions a chain must occur in (at least 1).
    pub min_support: usize,
}

impl MineParams {
    /// `patterns mine`'s defaults for a log of `sessions` sessions: chains of 2 to 6 tools, at most
    /// 2 calls between steps, support max(5, 0.1 % of the sessions).
    pub fn defaults(sessions: usize) -> MineParams {
        MineParams {
            min_len: 2,
            max_len: 6,
            max_gap: Some(2),
            min_support: MinSupport::Auto.resolve(sessions),
        }
    }
}

/// A frequent chain and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    /// Tool ids in order.
    pub pattern: Vec<u32>,
    /// Sessions in which the chain occurs.
    pub support: usize,
    /// Times the chain was completed: distinct (session, position of the last step) pairs.
    pub occurrences: u64,
    /// Sessions in which some occurrence had every step succeed.
    pub successes: usize,
}

/// Mines every chain of `params.min_len..=params.max_len` tools that occurs in at least
/// `params.min_support` sessions. `on_root_done` is called once per tool whose chains are done
/// (for progress bars). The result is in depth-first order of tool ids, whatever the thread count.
pub fn mine(seqs: &Sequences, params: &MineParams, on_root_done: &(dyn Fn() + Sync)) -> Vec<Mined> {
    mine_bounded(seqs, params, usize::MAX, on_root_done).expect("no limit")
}

/// More frequent chains than a caller's limit: mining stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    pub limit: usize,
}

/// [`mine`], stopping as soon as more than `limit` chains were found: a support of 1 in a
/// session of 100,000 calls has tens of millions, gigabytes of them.
pub fn mine_bounded(
    seqs: &Sequences,
    params: &MineParams,
    limit: usize,
    on_root_done: &(dyn Fn() + Sync),
) -> Result<Vec<Mined>, TooMany> {
    grow_all(seqs, params, limit, None, on_root_done)
}

/// The exact counts, in `seqs`, of the chains of `candidates` that occur there at all: the
/// second pass of SON (Savasere, Omiecinski & Navathe, VLDB 1995) over one part of a log, whose
/// first pass mined every part at its share of the least support. The miner's own counting,
/// with a support of 1, grown only along the candidates.
pub fn count_candidates(
    seqs: &Sequences,
    params: &MineParams,
    candidates: &FxHashSet<Vec<u32>>,
) -> Vec<Mined> {
    let prefixes: FxHashSet<Vec<u32>> = (candidates.iter())
        .flat_map(|c| (1..=c.len()).map(|k| c[..k].to_vec()))
        .collect();
    let params = MineParams {
        min_support: 1,
        ..*params
    };
    let mut counted =
        grow_all(seqs, &params, usize::MAX, Some(&prefixes), &|| {}).expect("no limit");
    counted.retain(|m| candidates.contains(&m.pattern));
    counted
}

/// Pattern growth from every frequent tool; with `only`, into those chains alone.
fn grow_all(
    seqs: &Sequences,
    params: &MineParams,
    limit: usize,
    only: Option<&FxHashSet<Vec<u32>>>,
    on_root_done: &(dyn Fn() + Sync),
) -> Result<Vec<Mined>, TooMany> {
    assert!(
        params.min_len >= 1 && params.min_len <= params.max_len,
        "bad length range"
    );
    let min_support = params.min_support.max(1);
    // A window reaches this far past the previous step.
    let reach = params.max_gap.map_or(usize::MAX, |g| g.saturating_add(1));
    // Without a gap limit, the calls of a tool too rare to be in any frequent chain change
    // nothing but the work: drop them first (on FIFA at support 4,000, three calls in five).
    let frequent_only;
    let seqs = match reach {
        usize::MAX => {
            frequent_only = seqs.frequent_only(min_support);
            &frequent_only
        }
        _ => seqs,
    };
    let miner = Miner {
        seqs,
        params: MineParams {
            min_support,
            ..*params
        },
        reach,
        found: std::sync::atomic::AtomicUsize::new(0),
        limit,
        only,
    };
    let mined: Vec<Mined> = Projection::roots(seqs, min_support)
        .into_par_iter()
        .filter(|(tool, _)| only.is_none_or(|o| o.contains(&vec![*tool])))
        .map(|(tool, proj)| {
            let mut out = Vec::new();
            if miner.params.min_len == 1 {
                out.push(Mined::new(&[], proj.counts(tool)));
            }
            if miner.params.max_len > 1 {
                miner.grow(&[tool], proj, &mut out);
            }
            on_root_done();
            out
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    match miner.found.into_inner() > limit {
        true => Err(TooMany { limit }),
        false => Ok(mined),
    }
}

impl Mined {
    fn new(prefix: &[u32], e: Extension) -> Mined {
        Mined {
            pattern: [prefix, &[e.tool]].concat(),
            support: e.support,
            occurrences: e.occurrences,
            successes: e.successes,
        }
    }
}

struct Miner<'a> {
    seqs: &'a Sequences,
    params: MineParams,
    reach: usize,
    /// Chains found so far, over all threads, and how many may be.
    found: std::sync::atomic::AtomicUsize,
    limit: usize,
    /// Grow only into these chains.
    only: Option<&'a FxHashSet<Vec<u32>>>,
}

impl Miner<'_> {
    /// Adds the frequent one-tool extensions of `pattern` (whose projection is `proj`) to `out`,
    /// then theirs, depth first. The last level is only counted, never materialised.
    fn grow(&self, pattern: &[u32], proj: Projection, out: &mut Vec<Mined>) {
        let len = pattern.len() + 1;
        let build = len < self.params.max_len;
        // With `only`: the tools that extend `pattern` into one of those chains.
        let allowed: Option<Vec<bool>> = self.only.map(|only| {
            (0..self.seqs.tool_count as u32)
                .map(|t| only.contains(&[pattern, &[t]].concat()))
                .collect()
        });
        let wanted = |t: u32| allowed.as_ref().is_none_or(|a| a[t as usize]);
        let mut extensions = Scratch::with(self.seqs.tool_count, |scratch| match self.only {
            None => proj.extend(
                self.seqs,
                self.reach,
                self.params.min_support,
                build,
                |_| true,
                scratch,
            ),
            Some(_) => proj.extend(
                self.seqs,
                self.reach,
                self.params.min_support,
                build,
                wanted,
                scratch,
            ),
        });
        if self.only.is_some() {
            extensions.retain(|(e, _)| wanted(e.tool));
        }
        drop(proj);
        if len >= self.params.min_len {
            out.extend(extensions.iter().map(|(e, _)| Mined::new(pattern, *e)));
        }
        let found = (self.found).fetch_add(extensions.len(), std::sync::atomic::Ordering::Relaxed);
        if !build || found + extensions.len() > self.limit {
            return;
        }
        let found: Vec<Vec<Mined>> = extensions
            .into_par_iter()
            .map(|(e, child)| {
                let mut out = Vec::new();
                self.grow(
                    &[pattern, &[e.tool]].concat(),
                    child.expect("built"),
                    &mut out,
                );
                out
            })
            .collect();
        out.extend(found.into_iter().flatten());
    }
}

/// The least support a chain needs, as given by the user.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinSupport {
    /// max(5, 0.1 % of the sessions, rounded up).
    Auto,
    /// A number of sessions.
    Count(usize),
    /// A share of the sessions in (0, 1), rounded up.
    Fraction(f64),
}

impl MinSupport {
    /// The number of sessions for a log of `sessions` sessions.
    pub fn resolve(self, sessions: usize) -> usize {
        // Rounding up must not turn 0.07 × 100 (7.000000000000001 in floating point) into 8.
        let share = |f: f64| ((f * sessions as f64) - 1e-9).ceil().max(1.0) as usize;
        match self {
            MinSupport::Auto => share(0.001).max(5),
            MinSupport::Count(n) => n.max(1),
            MinSupport::Fraction(f) => share(f),
        }
    }
}

impl std::str::FromStr for MinSupport {
    type Err = String;

    fn from_str(s: &str) -> Result<MinSupport, String> {
        if s == "auto" {
            return Ok(MinSupport::Auto);
        }
        if let Ok(n) = s.parse::<usize>() {
            return match n {
                0 => Err("a count must be at least 1".into()),
                n => Ok(MinSupport::Count(n)),
            };
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => Ok(MinSupport::Fraction(f)),
            _ => Err(format!(
                "'{s}' is neither a count of sessions (5) nor a fraction between 0 and 1 (0.01)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Built in tasks of one session each or in one task, the sequences are the same:
        /// calls, loops and offsets (the tasks' calls are moved up where calls collapsed).
        #[test]
        fn tasks_build_what_one_task_builds(
            sessions in prop::collection::vec(
                prop::collection::vec((0..3u32, any::<bool>()), 0..12), 0..20),
            keep_repeats in any::<bool>(),
            loops in any::<bool>(),
        ) {
            let named: Vec<Vec<(String, bool)>> = (sessions.iter())
                .map(|s| s.iter().map(|&(t, ok)| (format!("t{t}"), ok)).collect())
                .collect();
            let log = EventLog::from_sessions(&named);
            let whole = Sequences::build_in_tasks(&log, keep_repeats, loops, usize::MAX);
            let split = Sequences::build_in_tasks(&log, keep_repeats, loops, 1);
            prop_assert_eq!(&split.offsets, &whole.offsets);
            prop_assert_eq!(&split.calls, &whole.calls);
            prop_assert_eq!(&split.origin, &whole.origin);
            prop_assert_eq!(&split.loops, &whole.loops);
            prop_assert_eq!(split.collapsed, whole.collapsed);
            prop_assert_eq!(whole.calls.len(), *whole.offsets.last().unwrap() as usize);
        }
    }

    #[test]
    fn min_support_rounds_up() {
        assert_eq!("0.01".parse::<MinSupport>().unwrap().resolve(1001), 11);
        assert_eq!("0.07".parse::<MinSupport>().unwrap().resolve(100), 7);
        assert_eq!("12".parse::<MinSupport>().unwrap().resolve(3), 12);
        assert_eq!(MinSupport::Auto.resolve(3000), 5);
        assert_eq!(MinSupport::Auto.resolve(1_000_000), 1000);
        assert_eq!(MinSupport::Auto.resolve(1_000_001), 1001);
        for bad in ["0", "1.5", "-1", "x", "0.0"] {
            assert!(bad.parse::<MinSupport>().is_err(), "{bad}");
        }
    }

    /// The tools kept by [`fold_loops`] and, per kept call, (body, rounds) where it starts a loop.
    fn folded(tools: &[u32]) -> (Vec<u32>, Vec<(usize, u8, u8)>) {
        let mut out = Vec::new();
        fold_loops(tools, &mut out);
        let kept = out.iter().map(|e| tools[e.0 as usize]).collect();
        let loops = (out.iter().enumerate())
            .filter(|(_, e)| e.1 > 0)
            .map(|(k, e)| (k, e.1, e.2))
            .collect();
        (kept, loops)
    }

    #[test]
    fn a_loop_folds_into_its_last_round_with_its_rounds() {
        // test (edit test)×3 commit: the first test stays, the body is edit → test.
        let (t, e, c) = (1, 2, 3);
        let (kept, loops) = folded(&[t, e, t, e, t, e, t, c]);
        assert_eq!(kept, [t, e, t, c]);
        assert_eq!(loops, [(1, 2, 3)]);
        // The calls kept are the last round's (the one the run went on from).
        let mut out = Vec::new();
        fold_loops(&[t, e, t, e, t, c], &mut out);
        assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 3, 4, 5]);
        // A body of three, and two loops in one session.
        let (a, b, x) = (4, 5, 6);
        let (kept, loops) = folded(&[a, b, x, a, b, x, c, e, t, e, t]);
        assert_eq!(kept, [a, b, x, c, e, t]);
        assert_eq!(loops, [(0, 3, 2), (4, 2, 2)]);
        // No repeat, nothing folded; a body must repeat whole.
        let (kept, loops) = folded(&[t, e, t, c, e, c]);
        assert_eq!(kept, [t, e, t, c, e, c]);
        assert!(loops.is_empty());
    }
}

/// Whether call `i` retries call `i - 1` (an immediate repeat of its tool): the earlier attempt
/// failed, and the two had the same arguments (or the log has none). A repeat with other
/// arguments — the next reservation looked up, another query searched — is a call of its own
/// kind, and planning it as a retry would repeat a side effect.
fn is_retry(log: &EventLog, i: usize) -> bool {
    !log.success[i - 1]
        && log
            .payloads
            .as_ref()
            .is_none_or(|p| p.arguments(i - 1) == p.arguments(i))
}

/// How many immediate retries were collapsed into a call of [`Sequences`].
fn retries_of(call: u32) -> u32 {
    (call >> RETRY_SHIFT) & MAX_RETRIES
}

/// One occurrence of a chain in a session: the positions of its steps (within the session),
/// the earliest-completing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedding {
    pub session: usize,
    pub positions: Vec<usize>,
    /// Immediate retries collapsed into each step's call.
    pub retries: Vec<u32>,
}

/// For every session in which `pattern` occurs (with at most `max_gap` calls between steps), in
/// order, its earliest-completing occurrence. A direct scan, for the few chains that become
/// templates or are asked about.
pub fn first_embeddings(
    seqs: &Sequences,
    pattern: &[u32],
    max_gap: Option<usize>,
) -> Vec<Embedding> {
    embeddings(seqs, pattern, max_gap, false)
}

/// The sessions in which `pattern` occurs with every step succeeded, in order: the sessions that
/// count towards its success rate.
pub fn successful_sessions(
    seqs: &Sequences,
    pattern: &[u32],
    max_gap: Option<usize>,
) -> Vec<usize> {
    embeddings(seqs, pattern, max_gap, true)
        .into_iter()
        .map(|e| e.session)
        .collect()
}

/// The earliest-completing occurrence per session; with `only_ok`, of calls that succeeded
/// (failed calls still count as calls between steps).
fn embeddings(
    seqs: &Sequences,
    pattern: &[u32],
    max_gap: Option<usize>,
    only_ok: bool,
) -> Vec<Embedding> {
    let reach = max_gap.map_or(usize::MAX, |g| g.saturating_add(1));
    // levels[j]: every position at which an occurrence of pattern[..=j] ends, ascending.
    let occurs = |levels: &mut Vec<Vec<usize>>, s: usize| -> Option<Embedding> {
        let calls = &seqs.calls[seqs.offsets[s] as usize..seqs.offsets[s + 1] as usize];
        let tool = |q: usize| {
            if only_ok && calls[q] & OK == 0 {
                u32::MAX
            } else {
                calls[q] & TOOL
            }
        };
        levels.resize_with(pattern.len(), Vec::new);
        for (j, &t) in pattern.iter().enumerate() {
            let (before, rest) = levels.split_at_mut(j);
            let here = &mut rest[0];
            here.clear();
            match before.last() {
                None => here.extend((0..calls.len()).filter(|&q| tool(q) == t)),
                Some(prev) => {
                    // The latest end before q decides whether q is close enough.
                    let mut i = 0;
                    for q in (0..calls.len()).filter(|&q| tool(q) == t) {
                        while i + 1 < prev.len() && prev[i + 1] < q {
                            i += 1;
                        }
                        if prev.get(i).is_some_and(|&e| e < q && q - e <= reach) {
                            here.push(q);
                        }
                    }
                }
            }
            if here.is_empty() {
                return None;
            }
        }
        // Walk back from the earliest completion, each step at the latest position that reaches.
        let mut positions = vec![levels[pattern.len() - 1][0]; pattern.len()];
        for j in (0..pattern.len() - 1).rev() {
            let next = positions[j + 1];
            positions[j] = *levels[j]
                .iter()
                .rev()
                .find(|&&p| p < next && next - p <= reach)
                .expect("an end reaches");
        }
        let retries = positions.iter().map(|&q| retries_of(calls[q])).collect();
        Some(Embedding {
            session: s,
            positions,
            retries,
        })
    };
    if pattern.is_empty() {
        return Vec::new();
    }
    (0..seqs.len())
        .into_par_iter()
        .map_init(Vec::new, |levels, s| occurs(levels, s))
        .flatten()
        .collect()
}

/// The sessions in which `pattern` occurs, in order.
pub fn sessions_with(seqs: &Sequences, pattern: &[u32], max_gap: Option<usize>) -> Vec<usize> {
    first_embeddings(seqs, pattern, max_gap)
        .into_iter()
        .map(|e| e.session)
        .collect()
}

/// For the sessions in which `pattern` occurs: how many there are, and how often each tool is
/// the call right after the earliest completion of the chain, most frequent first.
pub fn next_tools(
    seqs: &Sequences,
    pattern: &[u32],
    max_gap: Option<usize>,
) -> (usize, Vec<(u32, usize)>) {
    let found = first_embeddings(seqs, pattern, max_gap);
    let mut counts = vec![0usize; seqs.tool_count];
    for e in &found {
        let next = seqs.offsets[e.session] as usize + e.positions[e.positions.len() - 1] + 1;
        if next < seqs.offsets[e.session + 1] as usize {
            counts[(seqs.calls[next] & TOOL) as usize] += 1;
        }
    }
    let mut next: Vec<(u32, usize)> = counts
        .into_iter()
        .enumerate()
        .filter(|&(_, n)| n > 0)
        .map(|(t, n)| (t as u32, n))
        .collect();
    next.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    (found.len(), next)
}
