//! What the runs of a workflow did: its figures, funnel, variants, orderings and loops.

use super::*;

/// What the runs of a workflow did, counted in one part and summed over the parts (alone: the
/// log's): per stage the sessions that reached it or a later one and that skipped it, the calls
/// between steps by the stage they follow, the tool after a whole run, the orderings and the
/// loop rounds of the whole runs, and the sessions with a whole run, a successful one, the whole
/// runs, and the sessions with any run.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RunFigures {
    funnel: Vec<usize>,
    skipped: Vec<usize>,
    extras: Counts<(usize, u32), usize>,
    then: Counts<u32, usize>,
    orderings: Counts<Vec<u32>, usize>,
    rounds: Counts<(usize, usize, u32), usize>,
    support: usize,
    successes: usize,
    occurrences: u64,
    sessions: usize,
}

impl Sum for RunFigures {
    fn add(&mut self, o: RunFigures) {
        self.funnel.add(o.funnel);
        self.skipped.add(o.skipped);
        self.extras.add(o.extras);
        self.then.add(o.then);
        self.orderings.add(o.orderings);
        self.rounds.add(o.rounds);
        self.support += o.support;
        self.successes += o.successes;
        self.occurrences += o.occurrences;
        self.sessions += o.sessions;
    }
}

/// What the runs of a workflow did in some sessions, added one session at a time (on one
/// thread), joined in session order and finished by [`describe`].
pub(super) struct Figures {
    f: RunFigures,
    /// The first whole run of each session with one, and where the others' runs stopped.
    whole: Vec<Embedding>,
    stopped: Vec<(usize, usize)>,
}

impl Figures {
    /// No session yet, of a workflow of `n` stages.
    pub(super) fn new(n: usize) -> Figures {
        let f = RunFigures {
            funnel: vec![0; n],
            skipped: vec![0; n],
            ..RunFigures::default()
        };
        Figures {
            f,
            whole: Vec::new(),
            stopped: Vec::new(),
        }
    }

    /// Adds session `s`'s runs (at least one) of `stages`.
    pub(super) fn add(
        &mut self,
        residual: &Residual,
        stages: &[Vec<u32>],
        s: usize,
        session_runs: &[Run],
    ) {
        self.f.sessions += 1;
        session_figures(residual, stages, s, session_runs, self);
    }

    /// `self` and then `other`, of the sessions after `self`'s.
    pub(super) fn join(&mut self, other: Figures) {
        self.f.add(other.f);
        // The first part's runs are taken, not copied (a million at 10M calls).
        match self.whole.is_empty() {
            true => self.whole = other.whole,
            false => self.whole.extend(other.whole),
        }
        self.stopped.extend(other.stopped);
    }
}

/// The figures of the workflow `stages` from what its runs did in this part of the log.
pub(super) fn describe(
    residual: &Residual,
    stages: Vec<Vec<u32>>,
    figures: Figures,
    min_support: usize,
) -> Found {
    let n = stages.len();
    let flat: Vec<u32> = stages.iter().flatten().copied().collect();
    let Figures { f, whole, stopped } = figures;
    // The figures of the whole log; the runs (`whole`) stay this part's.
    let RunFigures {
        funnel,
        skipped,
        extras: Counts(extras),
        then: Counts(then),
        orderings: Counts(orderings),
        rounds: Counts(rounds),
        support,
        successes,
        occurrences,
        sessions,
    } = exchange::sum(residual.ex, f);
    let loops = loops_of(rounds, support, min_support);
    let mut variants: Vec<Variant> = skipped
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n >= min_support)
        .map(|(k, &n)| Variant {
            change: Change::Skipped(k),
            sessions: n,
        })
        .collect();
    // An extra call is a variant when it is no chance visitor: it comes in at least
    // min_support sessions and more than twice as often as its share of all calls between
    // steps predicts.
    let between: usize = extras.values().sum();
    let mut by_tool: FxHashMap<u32, usize> = FxHashMap::default();
    for (&(_, t), &c) in &extras {
        *by_tool.entry(t).or_default() += c;
    }
    let gaps = n.saturating_sub(1).max(1);
    for (&(after, tool), &c) in &extras {
        let expected = by_tool[&tool] as f64 / gaps as f64;
        if c >= min_support && (c as f64) > 2.0 * expected.min(between as f64) {
            variants.push(Variant {
                change: Change::Extra { after, tool },
                sessions: c,
            });
        }
    }
    // What comes right after a whole run, when it is no chance visitor either: in at least
    // min_support sessions and surely twice as often as the tool's share of the calls of other
    // tools than the workflow's (which cannot come next).
    let others = 1.0
        - flat
            .iter()
            .collect::<FxHashSet<_>>()
            .iter()
            .map(|&&t| residual.frequency[t as usize])
            .sum::<f64>();
    for (&tool, &c) in &then {
        let expected = residual.frequency[tool as usize] / others.max(f64::MIN_POSITIVE);
        if c >= min_support && surely(c as f64, support as f64) > 2.0 * expected {
            variants.push(Variant {
                change: Change::Then(tool),
                sessions: c,
            });
        }
    }
    variants.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.change.cmp(&b.change))
    });
    let mut orderings: Vec<(Vec<u32>, usize)> = orderings.into_iter().collect();
    orderings.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if orderings.is_empty() {
        orderings.push((flat, 0));
    }
    let ends = support - then.values().sum::<usize>();
    Found {
        stages,
        support,
        successes,
        occurrences,
        sessions,
        funnel,
        variants,
        orderings,
        whole,
        stopped,
        ends,
        loops,
        trunk: Vec::new(),
        branch: None,
    }
}

/// The figures of session `s`'s runs of `stages`, added to `part`; its first whole run (or where
/// its runs stopped) appended.
fn session_figures(
    residual: &Residual,
    stages: &[Vec<u32>],
    s: usize,
    session_runs: &[Run],
    Figures { f, whole, stopped }: &mut Figures,
) {
    let n = stages.len();
    let live = residual.live(s);
    let tool = |j: usize| residual.tool(s, live[j]);
    // The furthest stage its runs got to: the session reached every stage up to it, a
    // skipped one too (it went past it), so that a funnel never rises.
    let furthest = (session_runs.iter())
        .filter_map(|r| r.at.iter().rposition(|a| !a.is_empty()))
        .max();
    for reached in &mut f.funnel[..furthest.map_or(0, |k| k + 1)] {
        *reached += 1;
    }
    let mut session_skips = FxHashSet::default();
    let mut session_extras = FxHashSet::default();
    for run in session_runs {
        if let Some(k) = run.skipped
            && run.at[k + 1..].iter().any(|a| !a.is_empty())
        {
            session_skips.insert(k);
        }
        // Calls between the steps of a run, by the stage they follow.
        let mut stage_of_last = None;
        for j in run.span() {
            match run.at.iter().position(|a| a.contains(&j)) {
                Some(k) => stage_of_last = Some(k),
                None => {
                    if let Some(k) = stage_of_last {
                        session_extras.insert((k, tool(j)));
                    }
                }
            }
        }
    }
    for k in session_skips {
        f.skipped[k] += 1;
    }
    for e in session_extras {
        *f.extras.0.entry(e).or_default() += 1;
    }
    let Some(run) = session_runs.iter().find(|r| r.is_whole()) else {
        // A run that reached the last stage without being whole skipped a step: it did not
        // leave the workflow.
        stopped.extend(furthest.filter(|&k| k + 1 < n).map(|k| (s, k)));
        return;
    };
    f.support += 1;
    if let Some(&next) = live.get(run.last + 1) {
        *f.then.0.entry(residual.tool(s, next)).or_default() += 1;
    }
    f.occurrences += session_runs.iter().filter(|r| r.is_whole()).count() as u64;
    let ok = session_runs.iter().filter(|r| r.is_whole()).any(|r| {
        r.at.iter()
            .flatten()
            .all(|&j| residual.call(s, live[j]) & OK != 0)
    });
    if ok {
        f.successes += 1;
    }
    let order: Vec<u32> = run.at.iter().flatten().map(|&j| tool(j)).collect();
    *f.orderings.0.entry(order).or_default() += 1;
    // Positions in canonical order: each stage's tools as the stage lists them.
    let positions: Vec<usize> = stages
        .iter()
        .zip(&run.at)
        .flat_map(|(stage, at)| {
            stage.iter().map(move |&t| {
                at.iter()
                    .copied()
                    .find(|&j| tool(j) == t)
                    .expect("a whole run matched every tool")
            })
        })
        .map(|j| live[j] as usize)
        .collect();
    let retries = positions
        .iter()
        .map(|&p| retries_of(residual.call(s, p as u32)))
        .collect();
    // A step that starts a folded loop whose body is the next steps of the run.
    for (i, &p) in positions.iter().enumerate() {
        if let Some((body, r)) = residual.seqs.loop_at(s, p)
            && positions
                .get(i..i + body)
                .is_some_and(|b| b.iter().copied().eq(p..p + body))
        {
            *f.rounds.0.entry((i, i + body, r)).or_default() += 1;
        }
    }
    whole.push(Embedding {
        session: s,
        positions: (positions.iter())
            .map(|&p| residual.seqs.origin(s, p))
            .collect(),
        retries,
    });
}

/// The loops of a workflow from the sessions of its `support` whose whole run repeated a body
/// (keyed by the body's steps and the rounds): a body repeated in at least `min_support`
/// sessions is a loop, the other sessions went through it once. Loops that overlap a more
/// common one are left out.
pub(super) fn loops_of(
    rounds: FxHashMap<(usize, usize, u32), usize>,
    support: usize,
    min_support: usize,
) -> Vec<Loop> {
    /// Per body (its steps), the sessions by rounds.
    type Bodies = Vec<((usize, usize), Vec<(u32, usize)>)>;
    let mut bodies: FxHashMap<(usize, usize), Vec<(u32, usize)>> = FxHashMap::default();
    for ((start, end, r), n) in rounds {
        bodies.entry((start, end)).or_default().push((r, n));
    }
    let mut bodies: Bodies = (bodies.into_iter())
        .filter(|(_, r)| r.iter().map(|x| x.1).sum::<usize>() >= min_support)
        .collect();
    let repeated = |r: &[(u32, usize)]| r.iter().map(|x| x.1).sum::<usize>();
    bodies.sort_by(|a, b| repeated(&b.1).cmp(&repeated(&a.1)).then(a.0.cmp(&b.0)));
    let mut loops: Vec<Loop> = Vec::new();
    for ((start, end), mut r) in bodies {
        if loops.iter().any(|l| start < l.end && l.start < end) {
            continue;
        }
        let once = support.saturating_sub(repeated(&r));
        if once > 0 {
            r.push((1, once));
        }
        r.sort_unstable();
        loops.push(Loop {
            start,
            end,
            rounds: r,
        });
    }
    loops.sort_by_key(|l| l.start);
    loops
}
