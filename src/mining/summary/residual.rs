//! The calls that no workflow explains yet, with the counts of pairs and tools among them that
//! seeds, growth and branches decide on; taking the runs of a workflow out updates them.

use super::*;

/// The calls that no workflow explains yet, with the support of every pair and tool among them.
pub(super) struct Residual<'a> {
    pub(super) seqs: &'a Sequences,
    /// Sums counts over the parts of the log (the pairs, follows and frequencies are the whole
    /// log's).
    pub(super) ex: &'a dyn Exchange,
    /// Calls in the whole log.
    pub(super) total_calls: usize,
    /// How far a run reaches from one step to the next (`max_gap + 1` calls, or no limit).
    pub(super) reach: usize,
    /// How far the evidence for a step looks: the reach, or with no limit the calls that a gap of
    /// the default would reach (the rest of a session is not evidence that one call follows
    /// another).
    pub(super) look: usize,
    /// Per session `s`, the positions (in the session) of its calls not yet covered, at
    /// `live[offsets[s]..offsets[s] + live_len[s]]`: one flat array, compacted in place.
    pub(super) live: Vec<u32>,
    pub(super) live_len: Vec<u32>,
    /// Sessions in which each ordered pair occurs within `look`, keyed by [`pair`].
    pub(super) pairs: FxHashMap<u64, usize>,
    /// Calls of `a` followed within `look` by `b`, keyed by [`pair`].
    pub(super) follows: FxHashMap<u64, usize>,
    /// Sessions in which each tool occurs in the log, for finding the runs of a workflow.
    pub(super) with_tool: Vec<Vec<u32>>,
    /// Share of the log's calls that are calls of each tool.
    pub(super) frequency: Vec<f64>,
}

/// What one part of the sessions took out of their live calls (see [`Residual::cover`]): per
/// session the calls left (a range of `left`), and the change of each pair's count; with its
/// buffers.
pub(super) struct Covered {
    pub(super) sessions: Vec<(usize, std::ops::Range<usize>)>,
    pub(super) left: Vec<u32>,
    pub(super) pairs: PairTally,
    pub(super) follows: PairTally,
    pub(super) keep: Vec<bool>,
    pub(super) calls: Vec<u32>,
    pub(super) old: Vec<u64>,
    pub(super) new: Vec<u64>,
}

impl Covered {
    pub(super) fn new(tools: usize) -> Covered {
        Covered {
            sessions: Vec::new(),
            left: Vec::new(),
            pairs: PairTally::new(tools),
            follows: PairTally::new(tools),
            keep: Vec::new(),
            calls: Vec::new(),
            old: Vec::new(),
            new: Vec::new(),
        }
    }

    /// Takes the spans of session `s`'s runs that `take` takes out of its live calls (whose
    /// tools are `tools`), and counts the change of its pairs.
    pub(super) fn add(
        &mut self,
        residual: &Residual,
        s: usize,
        tools: &[u32],
        session_runs: &[Run],
        take: impl Fn(&Run) -> bool,
    ) {
        residual.pairs_of(tools, &mut self.old);
        self.keep.clear();
        self.keep.resize(residual.live_len[s] as usize, true);
        for j in session_runs.iter().filter(|r| take(r)).flat_map(Run::span) {
            self.keep[j] = false;
        }
        let start = self.left.len();
        let kept = residual.live(s).iter().zip(&self.keep).filter(|(_, k)| **k);
        self.left.extend(kept.map(|(p, _)| *p));
        self.sessions.push((s, start..self.left.len()));
        self.calls.clear();
        let kept = tools.iter().zip(&self.keep).filter(|(_, k)| **k);
        self.calls.extend(kept.map(|(t, _)| *t));
        residual.pairs_of(&self.calls, &mut self.new);
        self.pairs.changes(&self.old, &self.new);
        for &k in &self.old {
            self.follows.add(k, -1);
        }
        for &k in &self.new {
            self.follows.add(k, 1);
        }
    }
}

/// Most tools whose pairs are tallied in a table (a slot per ordered pair: 64k slots, half a
/// MiB per thread's part) rather than a hash map. Agents' logs have tens of tools; a hash
/// entry per pair of every call was most of the time of counting the pairs and of covering.
pub(super) const TABLE_TOOLS: usize = 256;

/// Changes to counts per ordered pair of tools (keyed by [`pair`]), added on one thread: a
/// table when the tools are few, else a hash map. Each keeps what it needs to count a list's
/// pairs once each (see [`PairTally::once`]).
pub(super) enum PairTally {
    Table {
        tools: usize,
        counts: Vec<isize>,
        /// Per pair, the last call of `once` that counted it (`stamp`); empty until the first.
        seen: Vec<u32>,
        stamp: u32,
    },
    Map {
        counts: FxHashMap<u64, isize>,
        /// Sorted copies of the lists `once` and `changes` count.
        old: Vec<u64>,
        new: Vec<u64>,
    },
}

impl PairTally {
    pub(super) fn new(tools: usize) -> PairTally {
        match tools <= TABLE_TOOLS {
            true => PairTally::Table {
                tools,
                counts: vec![0; tools * tools],
                seen: Vec::new(),
                stamp: 0,
            },
            false => PairTally::Map {
                counts: FxHashMap::default(),
                old: Vec::new(),
                new: Vec::new(),
            },
        }
    }

    pub(super) fn add(&mut self, key: u64, change: isize) {
        match self {
            PairTally::Table { tools, counts, .. } => counts[slot(*tools, key)] += change,
            PairTally::Map { counts, .. } => *counts.entry(key).or_default() += change,
        }
    }

    /// Adds `change` once for each pair in `keys` (which may repeat). The table marks the pairs
    /// it counted instead of sorting the list: most of the time of covering was sorting each
    /// session's pairs.
    pub(super) fn once(&mut self, keys: &[u64], change: isize) {
        match self {
            PairTally::Table {
                tools,
                counts,
                seen,
                stamp,
            } => {
                *stamp = stamp.wrapping_add(1);
                if seen.is_empty() || *stamp == 0 {
                    seen.clear();
                    seen.resize(counts.len(), 0);
                    *stamp = 1;
                }
                for &key in keys {
                    let i = slot(*tools, key);
                    if seen[i] != *stamp {
                        seen[i] = *stamp;
                        counts[i] += change;
                    }
                }
            }
            PairTally::Map { counts, old, .. } => {
                sorted(old, keys);
                for &key in old.iter() {
                    *counts.entry(key).or_default() += change;
                }
            }
        }
    }

    /// Counts the change from the pairs in `old` to those in `new` (each may repeat): one less
    /// for each pair lost, one more for each gained. The map walks both sorted lists once and
    /// touches only the pairs that changed.
    pub(super) fn changes(&mut self, old: &[u64], new: &[u64]) {
        let PairTally::Map {
            counts,
            old: was,
            new: is,
        } = self
        else {
            self.once(old, -1);
            self.once(new, 1);
            return;
        };
        sorted(was, old);
        sorted(is, new);
        let (mut i, mut j) = (0, 0);
        loop {
            match (was.get(i), is.get(j)) {
                (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
                (Some(&a), b) if b.is_none_or(|&b| a < b) => {
                    *counts.entry(a).or_default() -= 1;
                    i += 1;
                }
                (_, Some(&b)) => {
                    *counts.entry(b).or_default() += 1;
                    j += 1;
                }
                (_, None) => return,
            }
        }
    }

    /// The pairs whose count changed, with the change.
    pub(super) fn into_counts(self) -> Counts<u64, isize> {
        match self {
            PairTally::Table { tools, counts, .. } => Counts(
                (counts.into_iter().enumerate())
                    .filter(|&(_, n)| n != 0)
                    .map(|(i, n)| (pair((i / tools) as u32, (i % tools) as u32), n))
                    .collect(),
            ),
            PairTally::Map { counts, .. } => {
                Counts(counts.into_iter().filter(|&(_, n)| n != 0).collect())
            }
        }
    }
}

/// The slot of a [`pair`] key in a table of `tools` × `tools` counts.
fn slot(tools: usize, key: u64) -> usize {
    let (a, b) = unpair(key);
    a as usize * tools + b as usize
}

/// `keys` into `out`, sorted and without repeats.
fn sorted(out: &mut Vec<u64>, keys: &[u64]) {
    out.clear();
    out.extend_from_slice(keys);
    out.sort_unstable();
    out.dedup();
}

/// The key of the ordered pair `a → b` in the pair counts.
pub(super) fn pair(a: u32, b: u32) -> u64 {
    u64::from(a) << 32 | u64::from(b)
}

/// The tools of a [`pair`] key.
fn unpair(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

impl<'a> Residual<'a> {
    pub(super) fn new(seqs: &'a Sequences, reach: usize, ex: &'a dyn Exchange) -> Residual<'a> {
        let mut live = Vec::with_capacity(seqs.calls.len());
        for s in 0..seqs.len() {
            live.extend(0..seqs.offsets[s + 1] - seqs.offsets[s]);
        }
        let mut r = Residual {
            seqs,
            ex,
            total_calls: 0,
            reach,
            look: reach.min(DEFAULT_REACH),
            live,
            live_len: (0..seqs.len())
                .map(|s| seqs.offsets[s + 1] - seqs.offsets[s])
                .collect(),
            pairs: FxHashMap::default(),
            follows: FxHashMap::default(),
            with_tool: vec![Vec::new(); seqs.tool_count],
            frequency: vec![0.0; seqs.tool_count],
        };
        let tools = seqs.tool_count;
        type PairCounts = (Counts<u64, isize>, Counts<u64, isize>);
        let (pairs, follows) = (0..seqs.len())
            .into_par_iter()
            .fold(
                || {
                    (
                        PairTally::new(tools),
                        PairTally::new(tools),
                        Vec::new(),
                        Vec::new(),
                    )
                },
                |(mut sessions, mut calls_of, mut calls, mut pairs), s| {
                    r.live_tools(s, &mut calls);
                    r.pairs_of(&calls, &mut pairs);
                    sessions.once(&pairs, 1);
                    for &k in &pairs {
                        calls_of.add(k, 1);
                    }
                    (sessions, calls_of, calls, pairs)
                },
            )
            .map(|(sessions, calls_of, _, _)| (sessions.into_counts(), calls_of.into_counts()))
            .reduce(PairCounts::default, |mut a, b| {
                a.add(b);
                a
            });
        // This part's counts, then the whole log's.
        let counts =
            |c: Counts<u64, isize>| c.0.into_iter().map(|(k, n)| (k, n as usize)).collect();
        (r.pairs, r.follows) = (
            exchange::sum_map(ex, counts(pairs)),
            exchange::sum_map(ex, counts(follows)),
        );
        // Per tool, its calls and the sessions it is in (each once, in order): runs of
        // sessions on every thread, then joined in order.
        let run = (seqs.len() / (rayon::current_num_threads() * 4)).max(1);
        let runs: Vec<(Vec<usize>, Vec<Vec<u32>>)> = (0..seqs.len().div_ceil(run))
            .into_par_iter()
            .map(|k| {
                let mut calls = vec![0usize; tools];
                let mut with_tool = vec![Vec::new(); tools];
                // The last session each tool was seen in.
                let mut seen_in = vec![u32::MAX; tools];
                for s in k * run..((k + 1) * run).min(seqs.len()) {
                    let range = seqs.offsets[s] as usize..seqs.offsets[s + 1] as usize;
                    for &c in &seqs.calls[range] {
                        let t = (c & TOOL) as usize;
                        calls[t] += 1;
                        if seen_in[t] != s as u32 {
                            seen_in[t] = s as u32;
                            with_tool[t].push(s as u32);
                        }
                    }
                }
                (calls, with_tool)
            })
            .collect();
        let mut calls = vec![0usize; tools];
        for (t, sessions) in r.with_tool.iter_mut().enumerate() {
            sessions.reserve_exact(runs.iter().map(|(_, w)| w[t].len()).sum());
            for (c, w) in &runs {
                calls[t] += c[t];
                sessions.extend_from_slice(&w[t]);
            }
        }
        let calls = exchange::sum(ex, calls);
        r.total_calls = calls.iter().sum();
        for (f, n) in r.frequency.iter_mut().zip(calls) {
            *f = n as f64 / r.total_calls.max(1) as f64;
        }
        r
    }

    pub(super) fn call(&self, s: usize, p: u32) -> u32 {
        self.seqs.calls[self.seqs.offsets[s] as usize + p as usize]
    }

    pub(super) fn tool(&self, s: usize, p: u32) -> u32 {
        self.call(s, p) & TOOL
    }

    /// The positions of session `s`'s live calls.
    pub(super) fn live(&self, s: usize) -> &[u32] {
        let start = self.seqs.offsets[s] as usize;
        &self.live[start..start + self.live_len[s] as usize]
    }

    /// The tools of session `s`'s live calls, into `out`.
    pub(super) fn live_tools(&self, s: usize, out: &mut Vec<u32>) {
        out.clear();
        let offsets = &self.seqs.offsets;
        let calls = &self.seqs.calls[offsets[s] as usize..offsets[s + 1] as usize];
        // Until a run is taken out of it, a session's calls are all live, in order: its live
        // positions need not be read.
        match self.live_len[s] as usize == calls.len() {
            true => out.extend(calls.iter().map(|&c| c & TOOL)),
            false => out.extend(self.live(s).iter().map(|&p| calls[p as usize] & TOOL)),
        }
    }

    /// The pairs of different tools within reach in `calls`, each call's once (a pair may
    /// repeat across calls).
    pub(super) fn pairs_of(&self, calls: &[u32], pairs: &mut Vec<u64>) {
        pairs.clear();
        for (i, &a) in calls.iter().enumerate() {
            let from = pairs.len();
            for &b in calls[i + 1..].iter().take(self.look) {
                let key = pair(a, b);
                if a != b && !pairs[from..].contains(&key) {
                    pairs.push(key);
                }
            }
        }
    }

    /// The chance that `tool` is among `window` calls picked at random from the log.
    pub(super) fn chance(&self, tool: u32, window: usize) -> f64 {
        1.0 - (1.0 - self.frequency[tool as usize]).powi(window.min(i32::MAX as usize) as i32)
    }

    /// The strongest pair left: the most sessions, among pairs where one tool mostly leads to
    /// the other (in `continuation` of the sessions of the log that have it); and whether both
    /// of its orders are common (a stage of two).
    pub(super) fn seed(
        &self,
        min_support: usize,
        continuation: f64,
        order_share: f64,
        tried: &FxHashSet<(u32, u32)>,
    ) -> Option<(u32, u32, bool)> {
        let mut best: Option<(usize, u32, u32)> = None;
        for (&key, &n) in &self.pairs {
            let (a, b) = unpair(key);
            if n < min_support || tried.contains(&(a, b)) {
                continue;
            }
            if !self.leads(a, b, continuation) {
                continue;
            }
            let better = match best {
                None => true,
                Some((m, x, y)) => n > m || (n == m && (a, b) < (x, y)),
            };
            if better {
                best = Some((n, a, b));
            }
        }
        let (n, a, b) = best?;
        let back = self.pairs.get(&pair(b, a)).copied().unwrap_or(0);
        // Both orders in most of the same sessions is a loop (a → b → a …), not a stage.
        let stage = back as f64 >= order_share * n as f64
            && self.sessions_with_both_orders(a, b) as f64 <= LOOP_SHARE * back.min(n) as f64;
        Some((a, b, stage))
    }

    /// Whether `a` mostly leads to `b`: the calls of `a` followed by `b` within reach, or the
    /// calls of `b` with `a` before them, are at least `continuation` of the calls of that tool
    /// beyond chance (the share that a tool as common as the other would get anyway). Shares
    /// are of the tool's calls in the whole log: once most calls of a tool are explained, a few
    /// stray ones must not pass for a workflow of their own.
    pub(super) fn leads(&self, a: u32, b: u32, continuation: f64) -> bool {
        let n = self.follows.get(&pair(a, b)).copied().unwrap_or(0);
        let total = self.total_calls as f64;
        let window = self.look;
        [(a, b), (b, a)].iter().any(|&(mine, other)| {
            let calls = self.frequency[mine as usize] * total;
            beyond_chance(n as f64 / calls, self.chance(other, window)) >= continuation
        })
    }

    /// Whether `stages` may still run whole in `min_support` sessions of the calls left: the
    /// pairs of a tool of its first stage and one of its second within reach, which every whole
    /// run has, are in that many sessions. A look at the pair counts instead of a scan of the
    /// sessions; always true when they cannot tell (a reach beyond the pairs' look, or a tool
    /// in both stages: pairs are of different tools).
    pub(super) fn may_run(&self, stages: &[Vec<u32>], min_support: usize) -> bool {
        let [first, second, ..] = stages else {
            return true;
        };
        if self.reach > self.look || first.iter().any(|t| second.contains(t)) {
            return true;
        }
        let sessions: usize = (first.iter())
            .flat_map(|&a| second.iter().map(move |&b| pair(a, b)))
            .filter_map(|key| self.pairs.get(&key))
            .sum();
        sessions >= min_support
    }

    /// Whether runs of `trunk` may go on another way that a branch could take: some tool
    /// outside it follows its last stage (or precedes its first) in at least `min_support` of
    /// the calls left and in a fifth of that tool's calls, as a branch must (see [`grow`]). A
    /// look at the pair counts instead of a scan of the sessions.
    pub(super) fn may_branch(&self, trunk: &[Vec<u32>], min_support: usize) -> bool {
        let (first, last) = (&trunk[0], &trunk[trunk.len() - 1]);
        let inside = |x: u32| trunk.iter().flatten().any(|&t| t == x);
        let total = self.total_calls as f64;
        let common = |x: u32, n: usize| {
            !inside(x) && n >= min_support && n as f64 >= self.frequency[x as usize] * total / 5.0
        };
        self.follows.iter().any(|(&key, &n)| {
            let (a, b) = unpair(key);
            (last.contains(&a) && common(b, n)) || (first.contains(&b) && common(a, n))
        })
    }

    /// Sessions in which `a → b` and `b → a` both occur within reach.
    pub(super) fn sessions_with_both_orders(&self, a: u32, b: u32) -> usize {
        let (ab, ba) = (pair(a, b), pair(b, a));
        let here = self.with_tool[a as usize]
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(calls, pairs), &s| {
                    self.live_tools(s as usize, calls);
                    self.pairs_of(calls, pairs);
                    pairs.contains(&ab) && pairs.contains(&ba)
                },
            )
            .filter(|&both| both)
            .count();
        exchange::sum(self.ex, here)
    }

    /// Takes out of the live calls what each part (in any order) took out of its sessions,
    /// and updates the counts; returns the number of calls taken out (in the whole log).
    pub(super) fn cover(&mut self, covered: Vec<Covered>) -> usize {
        let mut taken = 0;
        let (mut pairs, mut follows) = (Counts::default(), Counts::default());
        for c in covered {
            for (s, range) in c.sessions {
                let start = self.seqs.offsets[s] as usize;
                taken += self.live_len[s] as usize - range.len();
                self.live[start..start + range.len()].copy_from_slice(&c.left[range.clone()]);
                self.live_len[s] = range.len() as u32;
            }
            pairs.add(c.pairs.into_counts());
            follows.add(c.follows.into_counts());
        }
        let (taken, pairs, follows) = exchange::sum(self.ex, (taken, pairs, follows));
        for (counts, deltas) in [(&mut self.pairs, pairs), (&mut self.follows, follows)] {
            for (k, d) in deltas.0 {
                let n = counts.entry(k).or_insert(0);
                *n = n.checked_add_signed(d).expect("a count stays positive");
                if *n == 0 {
                    counts.remove(&k);
                }
            }
        }
        taken
    }

    /// Sessions that may hold a run of `stages`: those with a tool of the first two stages, in
    /// order. The lists of sessions per tool are marked in a bit per session and read back: at
    /// 10M calls they hold a million sessions each, too many to merge one by one.
    pub(super) fn candidates(&self, stages: &[Vec<u32>]) -> Vec<usize> {
        let lists: Vec<&[u32]> = (stages.iter().take(2).flatten())
            .map(|&t| self.with_tool[t as usize].as_slice())
            .collect();
        if let [one] = lists[..] {
            return one.iter().map(|&s| s as usize).collect();
        }
        let mut marked = vec![0u64; self.seqs.len().div_ceil(64)];
        for &s in lists.iter().copied().flatten() {
            marked[s as usize / 64] |= 1 << (s % 64);
        }
        let most = lists.iter().map(|l| l.len()).sum::<usize>();
        let mut out = Vec::with_capacity(most.min(self.seqs.len()));
        for (w, &word) in marked.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                out.push(64 * w + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
        out
    }
}
