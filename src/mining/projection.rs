//! The projected database of one prefix: for every session that contains it, every position at
//! which an embedding of the prefix ends, each flagged when some embedding ending there had all
//! of its steps succeed.

use std::cell::RefCell;

use super::Sequences;

/// Positions are stored with the success flag in the top bit.
const OK: u32 = 1 << 31;
/// Calls per run must stay below this so that positions and counts fit the packing.
pub(super) const MAX_POSITION: usize = OK as usize;

pub(super) struct Projection {
    sessions: Vec<u32>,
    /// `bounds[i]..bounds[i + 1]` are the ends of `sessions[i]`; one more entry than sessions.
    bounds: Vec<u32>,
    /// Positions relative to the session's start, ascending per session, `OK` flag on top.
    ends: Vec<u32>,
}

impl Projection {
    fn new() -> Projection {
        Projection {
            sessions: Vec::new(),
            bounds: Vec::new(),
            ends: Vec::new(),
        }
    }

    fn push(&mut self, session: u32, position: usize, ok: bool) {
        if self.sessions.last() != Some(&session) {
            self.sessions.push(session);
            self.bounds.push(self.ends.len() as u32);
        }
        self.ends.push(position as u32 | if ok { OK } else { 0 });
    }

    fn finish(mut self) -> Projection {
        self.bounds.push(self.ends.len() as u32);
        self
    }

    fn session_ends(&self, i: usize) -> &[u32] {
        &self.ends[self.bounds[i] as usize..self.bounds[i + 1] as usize]
    }

    pub(super) fn support(&self) -> usize {
        self.sessions.len()
    }

    pub(super) fn occurrences(&self) -> u64 {
        self.ends.len() as u64
    }

    pub(super) fn successes(&self) -> usize {
        (0..self.sessions.len())
            .filter(|&i| self.session_ends(i).iter().any(|e| e & OK != 0))
            .count()
    }

    /// The projections of every single tool that occurs in at least `min_support` sessions,
    /// in tool-id order.
    pub(super) fn roots(seqs: &Sequences, min_support: usize) -> Vec<(u32, Projection)> {
        let mut support = vec![0usize; seqs.tool_count];
        let mut last_seen = vec![u32::MAX; seqs.tool_count];
        for s in 0..seqs.len() {
            for &t in seqs.session(s).0 {
                if last_seen[t as usize] != s as u32 {
                    last_seen[t as usize] = s as u32;
                    support[t as usize] += 1;
                }
            }
        }
        let frequent: Vec<u32> = (0..seqs.tool_count as u32)
            .filter(|&t| support[t as usize] >= min_support)
            .collect();
        let slots = Slots::new(seqs.tool_count, &frequent);
        let mut roots: Vec<Projection> = frequent.iter().map(|_| Projection::new()).collect();
        for s in 0..seqs.len() {
            let (tools, ok) = seqs.session(s);
            for (q, (&t, &ok)) in tools.iter().zip(ok).enumerate() {
                if let Some(slot) = slots.get(t) {
                    roots[slot].push(s as u32, q, ok);
                }
            }
        }
        frequent
            .into_iter()
            .zip(roots.into_iter().map(Projection::finish))
            .collect()
    }

    /// The counts of every one-tool extension of this prefix that occurs in at least
    /// `min_support` sessions, in tool-id order. `reach` is the largest allowed distance between
    /// two consecutive steps (`max_gap + 1`, or `usize::MAX`).
    pub(super) fn extensions(
        &self,
        seqs: &Sequences,
        reach: usize,
        min_support: usize,
        scratch: &mut Scratch,
    ) -> Vec<Extension> {
        for (i, &s) in self.sessions.iter().enumerate() {
            let (tools, ok) = seqs.session(s as usize);
            for_each_extension(self.session_ends(i), tools, ok, reach, |_, t, ok| {
                scratch.count(t, i as u32, ok)
            });
        }
        scratch.take(min_support)
    }

    /// The projections of the extensions by `tools` (ascending), in that order.
    pub(super) fn extend(&self, seqs: &Sequences, reach: usize, tools: &[u32]) -> Vec<Projection> {
        let slots = Slots::new(seqs.tool_count, tools);
        let mut children: Vec<Projection> = tools.iter().map(|_| Projection::new()).collect();
        for (i, &s) in self.sessions.iter().enumerate() {
            let (session_tools, ok) = seqs.session(s as usize);
            for_each_extension(
                self.session_ends(i),
                session_tools,
                ok,
                reach,
                |q, t, ok| {
                    if let Some(slot) = slots.get(t) {
                        children[slot].push(s, q, ok);
                    }
                },
            );
        }
        children.into_iter().map(Projection::finish).collect()
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

/// Calls `f(q, tool, ok)` for every position `q` that can extend an embedding ending at one of
/// `ends`: `q` is at most `reach` after the last end before it. `ok` says whether an embedding
/// whose steps all succeeded can be extended by a successful call at `q`.
fn for_each_extension(
    ends: &[u32],
    tools: &[u32],
    ok: &[bool],
    reach: usize,
    mut f: impl FnMut(usize, u32, bool),
) {
    let position = |e: u32| (e & !OK) as usize;
    let stop = position(ends[ends.len() - 1])
        .saturating_add(reach)
        .min(tools.len() - 1);
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
        let ok_here = ok[q] && last_ok.is_some_and(|p| q - p <= reach);
        f(q, tools[q], ok_here);
        q += 1;
    }
}

/// Where each of a set of tools goes in an output vector.
struct Slots {
    slot_of: Vec<u32>,
}

impl Slots {
    fn new(tool_count: usize, tools: &[u32]) -> Slots {
        let mut slot_of = vec![u32::MAX; tool_count];
        for (slot, &t) in tools.iter().enumerate() {
            slot_of[t as usize] = slot as u32;
        }
        Slots { slot_of }
    }

    fn get(&self, tool: u32) -> Option<usize> {
        let slot = self.slot_of[tool as usize];
        (slot != u32::MAX).then_some(slot as usize)
    }
}

/// Per-thread counters of [`Projection::extensions`], reused across nodes so that a log with
/// many distinct tools does not pay an allocation of that size at every node.
#[derive(Default)]
pub(super) struct Scratch {
    counts: Vec<Counts>,
    touched: Vec<u32>,
}

#[derive(Clone, Copy)]
struct Counts {
    support: usize,
    occurrences: u64,
    successes: usize,
    last_session: u32,
    last_ok_session: u32,
}

const UNSEEN: Counts = Counts {
    support: 0,
    occurrences: 0,
    successes: 0,
    last_session: u32::MAX,
    last_ok_session: u32::MAX,
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

    /// Counts a position `q` (each is seen once per session) holding `tool` in the `session`-th
    /// session of the projection.
    fn count(&mut self, tool: u32, session: u32, ok: bool) {
        let c = &mut self.counts[tool as usize];
        if c.last_session != session {
            if c.support == 0 {
                self.touched.push(tool);
            }
            c.last_session = session;
            c.support += 1;
        }
        c.occurrences += 1;
        if ok && c.last_ok_session != session {
            c.last_ok_session = session;
            c.successes += 1;
        }
    }

    /// The counts of the tools with at least `min_support`, in tool order; resets the counters.
    fn take(&mut self, min_support: usize) -> Vec<Extension> {
        self.touched.sort_unstable();
        let mut out = Vec::new();
        for &t in &self.touched {
            let c = std::mem::replace(&mut self.counts[t as usize], UNSEEN);
            if c.support >= min_support {
                out.push(Extension {
                    tool: t,
                    support: c.support,
                    occurrences: c.occurrences,
                    successes: c.successes,
                });
            }
        }
        self.touched.clear();
        out
    }
}
