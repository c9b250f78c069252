//! The projected database of one prefix: for every session that contains it, every position at
//! which an embedding of the prefix ends, each flagged when some embedding ending there had all
//! of its steps succeed.
//!
//! Positions are absolute indices into [`Sequences::calls`] and sessions are known by where they
//! end, so that the inner loop touches the projection (sequentially) and the calls (one cache
//! line or two per session) and nothing else.

use std::cell::RefCell;

use super::{OK, Sequences, TOOL};

pub(super) struct Projection {
    /// Per session: the end (exclusive) of its calls.
    limits: Vec<u32>,
    /// `bounds[i]..bounds[i + 1]` are the ends of session `i`; one more entry than sessions.
    bounds: Vec<u32>,
    /// Positions, ascending per session, with the `OK` flag on top.
    ends: Vec<u32>,
}

impl Projection {
    fn new() -> Projection {
        Projection {
            limits: Vec::new(),
            bounds: Vec::new(),
            ends: Vec::new(),
        }
    }

    fn push(&mut self, limit: u32, position: u32, ok: bool) {
        if self.limits.last() != Some(&limit) {
            self.limits.push(limit);
            self.bounds.push(self.ends.len() as u32);
        }
        self.ends.push(position | if ok { OK } else { 0 });
    }

    fn finish(mut self) -> Projection {
        self.bounds.push(self.ends.len() as u32);
        self
    }

    fn session_ends(&self, i: usize) -> &[u32] {
        &self.ends[self.bounds[i] as usize..self.bounds[i + 1] as usize]
    }

    /// The counts of this prefix itself.
    pub(super) fn counts(&self, tool: u32) -> Extension {
        Extension {
            tool,
            support: self.limits.len(),
            occurrences: self.ends.len() as u64,
            successes: (0..self.limits.len())
                .filter(|&i| self.session_ends(i).iter().any(|e| e & OK != 0))
                .count(),
        }
    }

    /// The projections of every single tool that occurs in at least `min_support` sessions,
    /// in tool-id order.
    pub(super) fn roots(seqs: &Sequences, min_support: usize) -> Vec<(u32, Projection)> {
        let mut support = vec![0usize; seqs.tool_count];
        let mut last_seen = vec![u32::MAX; seqs.tool_count];
        for s in 0..seqs.len() {
            for (t, _) in seqs.session(s) {
                if last_seen[t as usize] != s as u32 {
                    last_seen[t as usize] = s as u32;
                    support[t as usize] += 1;
                }
            }
        }
        let frequent: Vec<u32> = (0..seqs.tool_count as u32)
            .filter(|&t| support[t as usize] >= min_support)
            .collect();
        let mut slot = vec![usize::MAX; seqs.tool_count];
        for (i, &t) in frequent.iter().enumerate() {
            slot[t as usize] = i;
        }
        let mut roots: Vec<Projection> = frequent.iter().map(|_| Projection::new()).collect();
        for s in 0..seqs.len() {
            let (start, limit) = (seqs.offsets[s], seqs.offsets[s + 1]);
            for q in start..limit {
                let call = seqs.calls[q as usize];
                if let Some(root) = roots.get_mut(slot[(call & TOOL) as usize]) {
                    root.push(limit, q, call & OK != 0);
                }
            }
        }
        frequent
            .into_iter()
            .zip(roots.into_iter().map(Projection::finish))
            .collect()
    }

    /// The counts of every one-tool extension of this prefix that occurs in at least
    /// `min_support` sessions, in tool-id order, and with `build` their projections too.
    /// `reach` is the largest allowed distance between two consecutive steps (`max_gap + 1`, or
    /// `usize::MAX`).
    pub(super) fn extend(
        &self,
        seqs: &Sequences,
        reach: usize,
        min_support: usize,
        build: bool,
        wanted: impl Fn(u32) -> bool,
        scratch: &mut Scratch,
    ) -> Vec<(Extension, Option<Projection>)> {
        let mut children: Vec<Projection> = Vec::new();
        for (i, &limit) in self.limits.iter().enumerate() {
            // The calls of a deep prefix's sessions are scattered over the log: ask for those of
            // a later session now, so that the wait for memory overlaps with this one's work.
            if let Some(&ahead) = self.bounds.get(i + PREFETCH_DISTANCE)
                && let Some(&e) = self.ends.get(ahead as usize)
            {
                prefetch(&seqs.calls, (e & !OK) as usize);
            }
            for_each_extension(
                self.session_ends(i),
                &seqs.calls,
                limit,
                reach,
                |q, t, ok| {
                    let slot = scratch.count(t, i as u32, ok);
                    if build {
                        if slot == children.len() {
                            children.push(Projection::new());
                        }
                        // Only the chains grown further need their projection.
                        if wanted(t) {
                            children[slot].push(limit, q, ok);
                        }
                    }
                },
            );
        }
        let mut children = children.into_iter().map(|c| Some(c.finish()));
        let mut out: Vec<(Extension, Option<Projection>)> = scratch
            .take()
            .map(|e| (e, children.next().flatten()))
            .filter(|(e, _)| e.support >= min_support)
            .collect();
        out.sort_unstable_by_key(|(e, _)| e.tool);
        out
    }
}

/// How many sessions ahead [`Projection::extend`] prefetches.
const PREFETCH_DISTANCE: usize = 16;

/// A hint to load `data[index]` into the cache; does nothing where there is no such hint.
#[inline(always)]
fn prefetch(data: &[u32], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = data.get(index) {
        // SAFETY: a prefetch has no effect on memory or program state, and the pointer is valid.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (x as *const u32).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, index);
}

/// Calls `f(q, tool, ok)` for every position `q` before `limit` that can extend an embedding
/// ending at one of `ends`: `q` is at most `reach` after the last end before it. `ok` says
/// whether an embedding whose steps all succeeded ends with a successful call at `q`.
fn for_each_extension(
    ends: &[u32],
    calls: &[u32],
    limit: u32,
    reach: usize,
    mut f: impl FnMut(u32, u32, bool),
) {
    let position = |e: u32| (e & !OK) as usize;
    if reach == usize::MAX {
        // No gap limit (classic mining): every later call extends the first end, and a call
        // extends a successful embedding when it comes after the first successful end.
        let first_ok = (ends.iter().find(|&&e| e & OK != 0)).map_or(usize::MAX, |&e| position(e));
        let from = position(ends[0]) + 1;
        for (q, &call) in calls[..limit as usize].iter().enumerate().skip(from) {
            f(q as u32, call & TOOL, call & OK != 0 && q > first_ok);
        }
        return;
    }
    let stop = position(ends[ends.len() - 1])
        .saturating_add(reach)
        .min(limit as usize - 1);
    // The latest end before q, and the latest successful one.
    let mut next = 0;
    let mut last_end = 0;
    let mut last_ok: Option<usize> = None;
    let mut q = position(ends[0]) + 1;
    while q <= stop {
        while next < ends.len() && position(ends[next]) < q {
            last_end = position(ends[next]);
            if ends[next] & OK != 0 {
                last_ok = Some(last_end);
            }
            next += 1;
        }
        if q - last_end > reach {
            // Too far from every end so far: jump to just after the next one, if any.
            match ends.get(next) {
                Some(&e) => q = position(e) + 1,
                None => break,
            }
            continue;
        }
        let call = calls[q];
        let ok_here = call & OK != 0 && last_ok.is_some_and(|p| q - p <= reach);
        f(q as u32, call & TOOL, ok_here);
        q += 1;
    }
}

/// The counts of a one-tool extension of a prefix.
#[derive(Debug, Clone, Copy)]
pub(super) struct Extension {
    pub tool: u32,
    pub support: usize,
    pub occurrences: u64,
    pub successes: usize,
}

/// Per-thread counters of [`Projection::extend`], reused across nodes so that a log with many
/// distinct tools does not pay an allocation of that size at every node.
#[derive(Default)]
pub(super) struct Scratch {
    counts: Vec<Counts>,
    /// Tools counted at this node, in order of first sight: a tool's slot is its index here.
    touched: Vec<u32>,
}

#[derive(Clone, Copy)]
struct Counts {
    support: usize,
    occurrences: u64,
    successes: usize,
    last_session: u32,
    last_ok_session: u32,
    slot: u32,
}

const UNSEEN: Counts = Counts {
    support: 0,
    occurrences: 0,
    successes: 0,
    last_session: u32::MAX,
    last_ok_session: u32::MAX,
    slot: u32::MAX,
};

impl Scratch {
    pub(super) fn with<R>(tool_count: usize, f: impl FnOnce(&mut Scratch) -> R) -> R {
        thread_local! {
            static SCRATCH: RefCell<Scratch> = RefCell::default();
        }
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            if scratch.counts.len() < tool_count {
                scratch.counts.resize(tool_count, UNSEEN);
            }
            f(&mut scratch)
        })
    }

    /// Counts a position (each is seen once per session) holding `tool` in the `session`-th
    /// session of the projection; returns the tool's slot.
    fn count(&mut self, tool: u32, session: u32, ok: bool) -> usize {
        let c = &mut self.counts[tool as usize];
        if c.slot == u32::MAX {
            c.slot = self.touched.len() as u32;
            self.touched.push(tool);
        }
        if c.last_session != session {
            c.last_session = session;
            c.support += 1;
        }
        c.occurrences += 1;
        if ok && c.last_ok_session != session {
            c.last_ok_session = session;
            c.successes += 1;
        }
        c.slot as usize
    }

    /// The counts of every tool seen, by slot; resets the counters.
    fn take(&mut self) -> impl Iterator<Item = Extension> + '_ {
        let counts = &mut self.counts;
        self.touched.drain(..).map(move |t| {
            let c = std::mem::replace(&mut counts[t as usize], UNSEEN);
            Extension {
                tool: t,
                support: c.support,
                occurrences: c.occurrences,
                successes: c.successes,
            }
        })
    }
}
