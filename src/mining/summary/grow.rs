//! Growing a workflow: the step most runs go on with, a tool that joins a stage, or where the
//! runs split into branches.

use smallvec::SmallVec;

use super::*;

/// Per (slot, tool), over the whole runs: runs with the tool there, and for joins the runs with
/// it before the stage, after it, and on both sides.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(super) struct Tally {
    pub(super) runs: usize,
    pub(super) before: usize,
    pub(super) after: usize,
    pub(super) both: usize,
}

impl Sum for Tally {
    fn add(&mut self, o: Tally) {
        self.runs += o.runs;
        self.before += o.before;
        self.after += o.after;
        self.both += o.both;
    }
}

/// Sessions whose runs are read to decide how a workflow grows: a share estimated from 20,000
/// runs has a standard error under 0.4 %.
pub(super) const GROW_SAMPLE: usize = 20_000;

/// What the whole runs of a workflow in some sessions did around its stages.
#[derive(Default)]
struct Tallied {
    /// The sessions with a whole run, in order.
    sessions: Vec<usize>,
    /// Whole runs.
    runs: usize,
    /// Per [`key`] of slot and tool, and per slot and window length (see [`tally`]).
    counts: FxHashMap<u64, Tally>,
    windows: FxHashMap<u64, usize>,
}

impl Tallied {
    /// `self` and then `other`, of the sessions after `self`'s.
    fn merge(mut self, other: Tallied) -> Tallied {
        self.sessions.extend(other.sessions);
        self.runs += other.runs;
        for (k, t) in other.counts {
            self.counts.entry(k).or_default().add(t);
        }
        for (k, n) in other.windows {
            *self.windows.entry(k).or_default() += n;
        }
        self
    }
}

/// Where a candidate step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(super) enum Slot {
    /// A new stage before stage `k` (k = stages: after the last).
    Before(usize),
    /// Into stage `k`.
    Join(usize),
}

/// Grows `stages` while most of its runs go on with one more step. When they stop growing,
/// also the branch that most of their runs take at either end among those that at least
/// `params.branch` of them take (see [`SummaryParams::branch`]).
pub(super) fn grow(
    residual: &Residual,
    mut stages: Vec<Vec<u32>>,
    params: &SummaryParams,
    min_support: usize,
    base: usize,
) -> (Vec<Vec<u32>>, Option<(Slot, u32)>) {
    let look = residual.look;
    let ex = residual.ex;
    // Growth decides on shares of runs: on a big log, a sample of the sessions estimates them
    // as well as all of them would, at a fraction of the cost. Counts are scaled back for the
    // support threshold. (The figures of the workflow are exact: they are counted on every
    // session afterwards.) The sample is the sessions whose keys are the smallest, so that it
    // is the same however the log is split.
    let mut sessions = residual.candidates(&stages);
    let all = exchange::sum(ex, sessions.len());
    let mut scale = 1.0;
    if all > GROW_SAMPLE {
        let cut = (GROW_SAMPLE as f64 / all as f64 * u64::MAX as f64) as u64;
        let keys = &residual.seqs.keys;
        sessions.retain(|&s| keys[s] < cut);
        scale = all as f64 / exchange::sum(ex, sessions.len()).max(1) as f64;
    }
    let mut branch = None;
    while stages.iter().map(Vec::len).sum::<usize>() < params.max_steps {
        // One pass per session: its whole runs, tallied as they are found.
        let tallied = sessions
            .par_iter()
            .fold(
                || (Tallied::default(), Vec::new(), Vec::new()),
                |(mut tallied, mut tools, mut seen), &s| {
                    residual.live_tools(s, &mut tools);
                    let runs = runs_in(&tools, &stages, residual.reach, false);
                    if !runs.is_empty() {
                        tallied.sessions.push(s);
                        tallied.runs += runs.len();
                    }
                    for run in &runs {
                        let (counts, windows) = (&mut tallied.counts, &mut tallied.windows);
                        tally(&tools, &stages, run, look, &mut seen, counts, windows);
                    }
                    (tallied, tools, seen)
                },
            )
            .map(|(tallied, _, _)| tallied)
            .reduce(Tallied::default, Tallied::merge);
        let Tallied {
            sessions: with_runs,
            runs: total,
            counts,
            windows,
        } = tallied;
        sessions = with_runs;
        let counts: FxHashMap<(Slot, u32), Tally> =
            counts.into_iter().map(|(k, t)| (unkey(k), t)).collect();
        let windows: FxHashMap<(Slot, usize), usize> = (windows.into_iter())
            .map(|(k, n)| {
                let (slot, len) = unkey(k);
                ((slot, len as usize), n)
            })
            .collect();
        let (total, Counts(counts), Counts(windows)) =
            exchange::sum(ex, (total, Counts(counts), Counts(windows)));
        if (total as f64) * scale < min_support as f64 {
            break;
        }
        // The share of runs in which a tool as common as `tool` would be in `slot` by chance.
        let chance = |slot: Slot, tool: u32| {
            let expected: f64 = (windows.iter())
                .filter(|((s, _), _)| *s == slot)
                .map(|(&(_, len), &runs)| runs as f64 * residual.chance(tool, len))
                .sum();
            expected / total as f64
        };
        // In key order, so that ties go the same way whatever the threads did.
        let mut counts: Vec<((Slot, u32), Tally)> = counts.into_iter().collect();
        counts.sort_unstable_by_key(|(k, _)| *k);
        let mut best: Option<(usize, Slot, u32)> = None;
        // Every way common enough for a branch that runs go on before, between or after the
        // stages.
        let mut ways: Vec<(usize, Slot, u32)> = Vec::new();
        let ends = [Slot::Before(0), Slot::Before(stages.len())];
        for &((slot, tool), t) in &counts {
            let n = t.runs;
            if (n as f64) * scale < min_support as f64 || !allowed(&stages, slot, tool) {
                continue;
            }
            let share = beyond_chance(surely(n as f64, total as f64), chance(slot, tool));
            // A branch is a share of all the runs of the stages, those that earlier branches
            // explained included: of what is left, chance visitors can look common.
            let of_all = total as f64 + base as f64 / scale;
            // …and, at an end, the tool is one that often runs there: at least a fifth of its
            // calls in the log come right before or after these stages (a tool called
            // everywhere is near every workflow in some runs, more often than chance in some by
            // chance). Between stages, two ways that most runs take between them are the test.
            let calls = residual.frequency[tool as usize] * residual.total_calls as f64;
            let often_here = n as f64 * scale >= calls / 5.0;
            let branch_share = beyond_chance(surely(n as f64, of_all), chance(slot, tool));
            if branch_share >= params.branch
                && let Slot::Before(k) = slot
                && (often_here || (k > 0 && k < stages.len()))
            {
                ways.push((n, slot, tool));
            }
            if share < params.continuation {
                continue;
            }
            if let Slot::Join(_) = slot {
                // Before the stage in some runs, after it in others, each order common: one
                // stage. On both sides of it in the same runs: a loop.
                let (lo, hi) = (t.before.min(t.after), t.before.max(t.after));
                let mixed = (lo as f64) >= params.order_share * hi as f64 && n > hi;
                let looping = t.both as f64 > LOOP_SHARE * lo as f64;
                if params.order_share >= 1.0 || !mixed || looping {
                    continue;
                }
            }
            if best.is_none_or(|(m, _, _)| n > m) {
                best = Some((n, slot, tool));
            }
        }
        // Where runs split: at an end, a common way that most runs do not take; between two
        // stages, two or more common ways that most runs take one of (one alone is a variant:
        // an extra call in some runs).
        let rivals = |slot: Slot, tool: u32| {
            let here = ways.iter().filter(|w| w.1 == slot);
            let taken: usize = here.clone().map(|w| w.0).sum();
            let others = here.filter(|w| w.2 != tool).count();
            match ends.contains(&slot) {
                true => others > 0,
                false => others > 0 && taken as f64 >= params.continuation * total as f64,
            }
        };
        let Some((_, slot, tool)) = best else {
            branch = (ways.iter())
                .filter(|w| ends.contains(&w.1) || rivals(w.1, w.2))
                .max_by_key(|w| (w.0, std::cmp::Reverse((w.1, w.2))))
                .map(|&(_, slot, tool)| (slot, tool));
            break;
        };
        // The way most runs go on between two stages is a branch too when another way is
        // common there: each is a workflow, not the other's variant. (At an end, another way
        // may be an extra call before this one: it is a variant, or its own branch later.)
        if !ends.contains(&slot) && rivals(slot, tool) {
            branch = Some((slot, tool));
            break;
        }
        // A whole run of the grown workflow holds one of the workflow so far: the sessions
        // to look in only shrink.
        match slot {
            Slot::Before(k) => stages.insert(k, vec![tool]),
            Slot::Join(k) => stages[k].push(tool),
        }
    }
    // Each stage in its most common order.
    (order_stages(residual, stages, &sessions), branch)
}

/// A slot as a number below 2^30, the two kinds apart.
fn slot_code(slot: Slot) -> u64 {
    match slot {
        Slot::Before(k) => k as u64,
        Slot::Join(k) => 1 << 29 | k as u64,
    }
}

/// A slot and a tool (or a count of calls) as one key: the slot's code, then the 32 bits.
fn key(slot: Slot, low: u32) -> u64 {
    slot_code(slot) << 32 | u64::from(low)
}

/// The slot and the tool (or count) of a [`key`].
fn unkey(k: u64) -> (Slot, u32) {
    let code = k >> 32;
    let slot = match code >> 29 {
        0 => Slot::Before(code as usize),
        _ => Slot::Join((code & ((1 << 29) - 1)) as usize),
    };
    (slot, k as u32)
}

/// Counts, for one whole run, the tools in each slot: before the first stage, between stages,
/// after the last (within `look`), and around each stage (for joins). `seen` is a buffer.
/// `counts` is keyed by [`key`] of slot and tool, `windows` by slot and the calls it looked at.
fn tally(
    tools: &[u32],
    stages: &[Vec<u32>],
    run: &Run,
    look: usize,
    seen: &mut Vec<u64>,
    counts: &mut FxHashMap<u64, Tally>,
    windows: &mut FxHashMap<u64, usize>,
) {
    // Sides: 0 before the stage, 1 inside, 2 after it, `ANY` anywhere in the slot. A seen entry
    // is the slot and tool's key shifted by two bits, and the side.
    const ANY: u64 = 3;
    let n = stages.len();
    let lo = |k: usize| *run.at[k].iter().min().expect("whole");
    let hi = |k: usize| *run.at[k].iter().max().expect("whole");
    seen.clear();
    // The number of calls each slot looked at, for the chance of finding a tool there.
    let mut lengths: SmallVec<[(Slot, u32); 16]> = SmallVec::with_capacity(3 * n + 1);
    // A run's steps are in stage order, so only the calls inside a stage (between its first and
    // last step) can be steps: `inside` is that stage's.
    let mut window = |slot: Slot, range: std::ops::Range<usize>, side: u64, inside: &[usize]| {
        match lengths.last_mut() {
            Some((s, _)) if *s == slot => {}
            _ => lengths.push((slot, 0)),
        }
        let code = slot_code(slot) << 32;
        for j in range.filter(|j| !inside.contains(j)) {
            lengths.last_mut().expect("pushed").1 += 1;
            let k = (code | u64::from(tools[j])) << 2;
            seen.push(k | ANY);
            if matches!(slot, Slot::Join(_)) {
                seen.push(k | side);
            }
        }
    };
    window(Slot::Before(0), lo(0).saturating_sub(look)..lo(0), 1, &[]);
    for k in 1..n {
        window(Slot::Before(k), hi(k - 1) + 1..lo(k), 1, &[]);
    }
    let after_end = hi(n - 1) + 1..(hi(n - 1) + 1 + look).min(tools.len());
    window(Slot::Before(n), after_end, 1, &[]);
    for k in 0..n {
        // Around stage k: from the previous stage (or look before) to the next (or look after).
        let start = match k {
            0 => lo(0).saturating_sub(look),
            _ => hi(k - 1) + 1,
        };
        let end = match k + 1 == n {
            true => (hi(k) + 1 + look).min(tools.len()),
            false => lo(k + 1),
        };
        window(Slot::Join(k), start..lo(k), 0, &[]);
        window(Slot::Join(k), lo(k) + 1..hi(k), 1, &run.at[k]);
        window(Slot::Join(k), hi(k) + 1..end, 2, &[]);
    }
    for (slot, len) in lengths {
        *windows.entry(key(slot, len)).or_default() += 1;
    }
    // Each (slot, tool) and each side counts once per run.
    seen.sort_unstable();
    seen.dedup();
    for (i, &entry) in seen.iter().enumerate() {
        let e = counts.entry(entry >> 2).or_default();
        match entry & 3 {
            0 => e.before += 1,
            2 => {
                e.after += 1;
                // Sides sort 0, 1, 2: side 0 of this key is at most two entries back.
                if seen[i.saturating_sub(2)..i].contains(&(entry & !3)) {
                    e.both += 1;
                }
            }
            ANY => e.runs += 1,
            _ => {}
        }
    }
}

/// Whether `tool` may go into `slot`: a stage holds a tool once, and a workflow does not go
/// round a loop twice (no pair of consecutive tools twice).
pub(super) fn allowed(stages: &[Vec<u32>], slot: Slot, tool: u32) -> bool {
    let mut next = stages.to_vec();
    match slot {
        Slot::Before(k) => next.insert(k, vec![tool]),
        Slot::Join(k) => {
            if stages[k].contains(&tool) {
                return false;
            }
            next[k].push(tool)
        }
    }
    let flat: Vec<u32> = next.iter().flatten().copied().collect();
    let mut seen = FxHashSet::default();
    flat.windows(2).all(|w| seen.insert((w[0], w[1])))
}

/// Sorts the tools of each stage by how often they ran first, then by id.
pub(super) fn order_stages(
    residual: &Residual,
    mut stages: Vec<Vec<u32>>,
    sessions: &[usize],
) -> Vec<Vec<u32>> {
    if stages.iter().all(|s| s.len() == 1) {
        return stages;
    }
    let runs = whole_runs(residual, &stages, sessions);
    let mut orders: FxHashMap<(usize, Vec<u32>), usize> = FxHashMap::default();
    for (s, session_runs) in &runs {
        for run in session_runs {
            for (k, at) in run.at.iter().enumerate() {
                if at.len() > 1 {
                    let live = residual.live(*s);
                    let order = at.iter().map(|&j| residual.tool(*s, live[j])).collect();
                    *orders.entry((k, order)).or_default() += 1;
                }
            }
        }
    }
    let orders = exchange::sum_map(residual.ex, orders);
    for (k, stage) in stages.iter_mut().enumerate() {
        if stage.len() < 2 {
            continue;
        }
        if let Some(((_, order), _)) = orders
            .iter()
            .filter(|((i, _), _)| *i == k)
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.1.cmp(&a.0.1)))
        {
            *stage = order.clone();
        }
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gives_back_its_slot_and_tool() {
        for slot in [
            Slot::Before(0),
            Slot::Before(64),
            Slot::Join(0),
            Slot::Join(63),
        ] {
            for low in [0, 7, u32::MAX] {
                assert_eq!(unkey(key(slot, low)), (slot, low));
            }
        }
        assert_ne!(key(Slot::Before(3), 1), key(Slot::Join(3), 1));
    }
}
