//! The rows of every file read so far, as interned ids and parsed values in input order, and
//! their grouping into an [`EventLog`].

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::columns::Field;
use super::values::trim;
use crate::events::{EventLog, NO_USAGE, Payloads, Texts, TimeKind, split_at_lengths};

/// A missing session or tool.
pub(super) const NONE_ID: u32 = u32::MAX;
/// A timestamp that does not parse.
pub(super) const BAD_TIME: i64 = i64::MIN;
pub(super) use crate::events::UNKNOWN_DURATION as NO_DURATION;
/// Success values: 0 failed, 1 succeeded, `BAD_SUCCESS` did not parse.
pub(super) const BAD_SUCCESS: u8 = 2;
/// An outcome value the row does not have.
pub(super) const NO_OUTCOME: f64 = f64::NAN;
/// An outcome value that does not parse.
pub(super) const BAD_OUTCOME: f64 = f64::INFINITY;

/// Interns strings as dense ids in order of first appearance. The names are kept in one buffer
/// and the table holds only ids: a log of a million sessions no longer costs two allocations per
/// session id (a key and a name).
#[derive(Default)]
pub(super) struct Interner {
    /// Ids, hashed by their names.
    ids: hashbrown::HashTable<u32>,
    pub(super) names: Names,
    /// The id interned last: logs list a session's calls together, so the next value is often
    /// the same, and is then not hashed.
    last: Option<u32>,
}

fn hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(name)
}

impl Interner {
    pub(super) fn intern(&mut self, s: &str) -> u32 {
        if let Some(last) = self.last
            && self.names[last as usize] == *s
        {
            return last;
        }
        self.intern_other(s)
    }

    /// [`Interner::intern`] without first comparing `s` with the value interned last, for a
    /// caller that has (a tool column changes value at nearly every row: two lookups were one).
    pub(super) fn intern_other(&mut self, s: &str) -> u32 {
        let hash = hash(s);
        let id = match self.ids.find(hash, |&id| self.names[id as usize] == *s) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as u32;
                assert!(id < NONE_ID, "more than 2^32 - 1 distinct values");
                self.names.push(s);
                let names = &self.names;
                (self.ids).insert_unique(hash, id, |&id| self::hash(&names[id as usize]));
                id
            }
        };
        self.last = Some(id);
        id
    }

    /// The id of `s`, if interned.
    pub(super) fn get(&self, s: &str) -> Option<u32> {
        (self.ids)
            .find(hash(s), |&id| self.names[id as usize] == *s)
            .copied()
    }
}

/// Names at their ids, kept as [`Texts`] (a few large buffers). No name is empty: interning
/// leaves blank values missing.
#[derive(Default)]
pub(super) struct Names(Texts);

impl Names {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        (0..self.len()).map(|i| &self[i])
    }

    fn push(&mut self, name: &str) {
        self.0.push(Some(name));
    }
}

impl std::ops::Index<usize> for Names {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        self.0.get(i).unwrap_or_default()
    }
}

/// Every row read, good and bad, row-aligned.
#[derive(Default)]
pub(super) struct Calls {
    pub session_ids: Interner,
    pub tool_ids: Interner,
    pub sessions: Vec<u32>,
    pub tools: Vec<u32>,
    pub timestamps: Vec<i64>,
    pub success: Vec<u8>,
    /// Milliseconds per call (`NO_DURATION` when unknown); empty while no file had durations.
    pub durations: Vec<u32>,
    /// JSON text of arguments and results (`None` when absent); empty while no file had them.
    pub arguments: Texts,
    pub results: Texts,
    /// The model usage of each row (see [`EventLog::usage`]); empty while no file had any.
    pub usage: Vec<u32>,
    /// The task outcome of each row's session (`NO_OUTCOME`, `BAD_OUTCOME`); empty while no
    /// file had an outcome column.
    pub outcomes: Vec<f64>,
    /// The first few outcome values that did not parse, with their session.
    pub bad_outcomes: Vec<(String, String)>,
    /// Some timestamp was a plain order key rather than a time.
    pub any_order_key: bool,
    /// Tool names are rewritten so when the log is grouped.
    pub mcp_names: Option<super::input::McpNames>,
    /// The ids of transcript calls read so far, across files.
    pub call_ids: rustc_hash::FxHashSet<Box<str>>,
}

/// One row as a reader that does not go through polars hands it over.
#[derive(Debug, Default)]
pub(super) struct Row<'a> {
    pub session: Option<&'a str>,
    pub tool: Option<&'a str>,
    /// Microseconds (or an order key), `BAD_TIME` when it does not parse.
    pub time: i64,
    /// 0, 1 or `BAD_SUCCESS`.
    pub success: u8,
    /// Milliseconds.
    pub duration: Option<f64>,
    pub arguments: Option<&'a str>,
    pub result: Option<&'a str>,
    /// The session's task outcome, when the row has an outcome column.
    pub outcome: Option<f64>,
    /// The model usage of the call, when the log has usage (see [`EventLog::usage`]).
    pub usage: Option<u32>,
}

/// A duration in milliseconds as stored: rounded, `NO_DURATION` when not a finite, non-negative
/// number.
pub(super) fn duration_ms(ms: Option<f64>) -> u32 {
    match ms {
        Some(ms) if ms.is_finite() && ms >= 0.0 => (ms.round() as u32).min(NO_DURATION - 1),
        _ => NO_DURATION,
    }
}

/// Appends `value` to an optional column that holds `before` rows' values once some row had
/// one (and none before): the rows before the first value get `missing`, as does a row without
/// one after it.
fn push_optional<T: Copy>(column: &mut Vec<T>, before: usize, value: Option<T>, missing: T) {
    match value {
        Some(v) => {
            column.resize(before, missing);
            column.push(v);
        }
        None if !column.is_empty() => column.push(missing),
        None => {}
    }
}

/// A count of tokens as stored: rounded, [`NO_USAGE`] when not a finite, non-negative number.
pub(super) fn tokens(n: Option<f64>) -> u32 {
    match n {
        Some(n) if n.is_finite() && n >= 0.0 => {
            (n.round() as u32).min(crate::events::SAME_TURN - 1)
        }
        _ => NO_USAGE,
    }
}

impl Calls {
    pub(super) fn len(&self) -> usize {
        self.tools.len()
    }

    /// Drops the rows from `len` on (of a file that turned out not to be a log).
    pub(super) fn truncate(&mut self, len: usize) {
        self.sessions.truncate(len);
        self.tools.truncate(len);
        self.timestamps.truncate(len);
        self.success.truncate(len);
        self.durations.truncate(len);
        self.arguments.truncate(len);
        self.results.truncate(len);
        self.outcomes.truncate(len);
        self.usage.truncate(len);
    }

    /// Makes room for `rows` more rows like those from row `start` on, in the columns they
    /// filled (texts come in chunks, see [`Texts::append`]). A big file's columns are then not regrown
    /// (each time copied, and their fresh pages touched) while it is read; room never used costs
    /// no memory, as its pages are never touched.
    pub(super) fn reserve_like(&mut self, start: usize, rows: usize) {
        fn reserve<T>(column: &mut Vec<T>, start: usize, rows: usize) {
            if column.len() > start {
                column.reserve(rows);
            }
        }
        reserve(&mut self.sessions, start, rows);
        reserve(&mut self.tools, start, rows);
        reserve(&mut self.timestamps, start, rows);
        reserve(&mut self.success, start, rows);
        reserve(&mut self.durations, start, rows);
        reserve(&mut self.outcomes, start, rows);
        reserve(&mut self.usage, start, rows);
    }

    /// Makes room for the rest of a file of `size` bytes (and a little more), from the rows its
    /// first `read` bytes made, from row `start` on: a bad guess only regrows the columns.
    pub(super) fn reserve_rest(&mut self, start: usize, read: usize, size: usize) {
        if read < size {
            let rows = (size - read) as f64 / read as f64 * (self.len() - start) as f64;
            self.reserve_like(start, (rows * 1.02) as usize);
        }
    }

    /// Makes room for the rest of a piece of `size` bytes read apart, from the rows its first
    /// `read` bytes made: its texts too, which are moved whole into the calls of the file.
    pub(super) fn reserve_piece(&mut self, read: usize, size: usize) {
        let share = size.saturating_sub(read) as f64 / read as f64;
        let rows = (self.len() as f64 * share * 1.02) as usize;
        self.reserve_like(0, rows);
        for texts in [&mut self.arguments, &mut self.results] {
            if !texts.is_empty() {
                texts.reserve(rows, (texts.bytes() as f64 * share * 1.02) as usize);
            }
        }
    }

    /// Appends the rows of `other`, read apart (on another thread), its names interned here;
    /// of its outcome values that did not parse, as many as keep `keep` in all.
    pub(super) fn append(&mut self, other: Calls, keep: usize) {
        fn ids(ids: &mut Interner, local: &Interner, column: &mut Vec<u32>, values: &[u32]) {
            let map: Vec<u32> = local.names.iter().map(|name| ids.intern(name)).collect();
            column.extend(values.iter().map(|&id| match id {
                NONE_ID => NONE_ID,
                id => map[id as usize],
            }));
        }
        // Optional columns: `values` is empty when no row of `other` had one.
        fn optional<T: Copy>(
            column: &mut Vec<T>,
            before: usize,
            values: &[T],
            rows: usize,
            missing: T,
        ) {
            match values.is_empty() {
                false => {
                    column.resize(before, missing);
                    column.extend_from_slice(values);
                }
                true if !column.is_empty() => column.resize(before + rows, missing),
                true => {}
            }
        }
        let (before, rows) = (self.len(), other.len());
        ids(
            &mut self.session_ids,
            &other.session_ids,
            &mut self.sessions,
            &other.sessions,
        );
        ids(
            &mut self.tool_ids,
            &other.tool_ids,
            &mut self.tools,
            &other.tools,
        );
        self.timestamps.extend_from_slice(&other.timestamps);
        self.success.extend_from_slice(&other.success);
        optional(
            &mut self.durations,
            before,
            &other.durations,
            rows,
            NO_DURATION,
        );
        optional(&mut self.usage, before, &other.usage, rows, NO_USAGE);
        optional(
            &mut self.outcomes,
            before,
            &other.outcomes,
            rows,
            NO_OUTCOME,
        );
        for (column, values) in [
            (&mut self.arguments, other.arguments),
            (&mut self.results, other.results),
        ] {
            match values.is_empty() {
                false => {
                    column.pad(before);
                    column.append(values);
                }
                true if !column.is_empty() => column.pad(before + rows),
                true => {}
            }
        }
        let room = keep.saturating_sub(self.bad_outcomes.len());
        (self.bad_outcomes).extend(other.bad_outcomes.into_iter().take(room));
        self.any_order_key |= other.any_order_key;
        self.call_ids.extend(other.call_ids);
    }

    /// Appends one row; blank session and tool names are missing ones.
    pub(super) fn push(&mut self, row: Row) {
        let before = self.len();
        let id = |ids: &mut Interner, v: Option<&str>| match v.map(trim) {
            None | Some("") => NONE_ID,
            Some(s) => ids.intern(s),
        };
        self.sessions.push(id(&mut self.session_ids, row.session));
        self.tools.push(id(&mut self.tool_ids, row.tool));
        self.timestamps.push(row.time);
        self.success.push(row.success);
        // Optional columns exist from the first row that has them; earlier rows get none.
        let duration = row.duration.map(|_| duration_ms(row.duration));
        push_optional(&mut self.durations, before, duration, NO_DURATION);
        push_optional(&mut self.usage, before, row.usage, NO_USAGE);
        push_optional(&mut self.outcomes, before, row.outcome, NO_OUTCOME);
        for (value, column) in [
            (row.arguments, &mut self.arguments),
            (row.result, &mut self.results),
        ] {
            match value {
                Some(v) => {
                    column.pad(before);
                    column.push(Some(v));
                }
                None if !column.is_empty() => column.push(None),
                None => {}
            }
        }
    }

    /// Keeps an outcome value of `session` that does not parse, when fewer than `keep` are.
    pub(super) fn note_bad_outcome(&mut self, session: Option<&str>, value: String, keep: usize) {
        if self.bad_outcomes.len() < keep {
            let session = session.unwrap_or_default().to_string();
            self.bad_outcomes.push((session, value));
        }
    }

    /// Renames the calls of refined tools to `TOOL:action` (see [`super::refine`]); returns each
    /// new name with the tool it refines.
    pub(super) fn refine(&mut self, refine: &super::refine::Refine) -> Vec<(String, String)> {
        let mut renamed = Vec::new();
        if self.arguments.is_empty() {
            return renamed;
        }
        let rules: Vec<(u32, String, String)> = refine
            .rules
            .iter()
            .filter_map(|(tool, arg)| {
                let id = self.tool_ids.get(tool)?;
                Some((id, tool.clone(), arg.clone()))
            })
            .collect();
        for (id, tool, arg) in rules {
            for r in 0..self.len() {
                if self.tools[r] != id {
                    continue;
                }
                let Some(text) = (r < self.arguments.len())
                    .then(|| self.arguments.get(r))
                    .flatten()
                else {
                    continue;
                };
                let Ok(serde_json::Value::Object(args)) = serde_json::from_str(text) else {
                    continue;
                };
                let Some(action) = super::json::lookup(&args, &arg).and_then(super::refine::action)
                else {
                    continue;
                };
                let name = format!("{tool}:{action}");
                let before = self.tool_ids.names.len();
                self.tools[r] = self.tool_ids.intern(&name);
                if self.tool_ids.names.len() > before {
                    renamed.push((name, tool.clone()));
                }
            }
        }
        renamed
    }

    /// Makes the sessions of rows `from..` this file's own: their ids are prefixed with `file`,
    /// so that the same id in another file is another session.
    pub(super) fn sessions_of_file(&mut self, from: usize, file: usize) {
        let mut renamed: FxHashMap<u32, u32> = FxHashMap::default();
        for r in from..self.len() {
            let old = self.sessions[r];
            if old == NONE_ID {
                continue;
            }
            self.sessions[r] = *renamed.entry(old).or_insert_with(|| {
                let name = format!("{file}\u{1f}{}", &self.session_ids.names[old as usize]);
                self.session_ids.intern(&name)
            });
        }
    }

    /// What is wrong with row `r`, if anything.
    pub(super) fn problem(&self, r: usize) -> Option<(Field, &'static str)> {
        if self.sessions[r] == NONE_ID {
            Some((Field::Session, "no session id"))
        } else if self.tools[r] == NONE_ID {
            Some((Field::Tool, "no tool name"))
        } else if self.timestamps[r] == BAD_TIME {
            Some((Field::Timestamp, "timestamp does not parse"))
        } else if self.success[r] == BAD_SUCCESS {
            Some((Field::Success, "success value does not parse"))
        } else {
            None
        }
    }

    /// The good rows grouped by session (`counts` of them each, starting at `offsets`), in
    /// order of first appearance, each session's ordered by timestamp, ties by input order.
    fn order(&self, good: &[bool], counts: &[usize], offsets: &[usize]) -> Vec<u32> {
        let mut next: Vec<usize> = (counts.iter())
            .scan(0, |at, &n| Some(std::mem::replace(at, *at + n)))
            .collect();
        let mut order = vec![0u32; *offsets.last().expect("starts with 0")];
        for r in (0..self.len()).filter(|&r| good[r]) {
            let s = self.sessions[r] as usize;
            order[next[s]] = r as u32;
            next[s] += 1;
        }
        // Stable sorts per session: equal timestamps keep input order.
        let ts = &self.timestamps;
        let mut slices = split_at_lengths(&mut order, offsets.windows(2).map(|w| w[1] - w[0]));
        slices.par_iter_mut().for_each(|s| {
            if !s.is_sorted_by_key(|&r| ts[r as usize]) {
                s.sort_by_key(|&r| ts[r as usize]);
            }
        });
        order
    }

    /// Groups the good rows by session (in order of first appearance) and orders each session
    /// by timestamp, ties by input order.
    /// Each session's task outcome comes from `outcomes` when given, else from the rows' outcome
    /// column (named `column`), if any; what was found of them is returned beside the log.
    pub(super) fn into_log(
        mut self,
        refined: Vec<(String, String)>,
        outcomes: Option<&super::outcomes::Outcomes>,
        column: Option<&str>,
    ) -> (EventLog, Option<super::outcomes::OutcomeSummary>) {
        if let Some(style) = self.mcp_names {
            // Names that become equal become one tool.
            let mut renamed = Interner::default();
            let ids: Vec<u32> = (self.tool_ids.names.iter())
                .map(|n| renamed.intern(&style.apply(n)))
                .collect();
            for t in self.tools.iter_mut().filter(|t| **t != NONE_ID) {
                *t = ids[*t as usize];
            }
            self.tool_ids = renamed;
        }
        let good: Vec<bool> = (0..self.len())
            .into_par_iter()
            .map(|r| self.problem(r).is_none())
            .collect();
        // Tool ids by name, so that comparing ids compares names; tools seen only in bad rows go.
        let mut used = vec![false; self.tool_ids.names.len()];
        let mut counts = vec![0usize; self.session_ids.names.len()];
        for r in (0..self.len()).filter(|&r| good[r]) {
            used[self.tools[r] as usize] = true;
            counts[self.sessions[r] as usize] += 1;
        }
        let names = std::mem::take(&mut self.tool_ids.names);
        let mut by_name: Vec<u32> = (0..names.len() as u32)
            .filter(|&t| used[t as usize])
            .collect();
        by_name.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut rank = vec![0u32; names.len()];
        for (new, &old) in by_name.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        let outcomes = super::outcomes::of_sessions(&self, &good, outcomes, column);
        // Session names are not needed from here on, only their keys; sessions that kept no good
        // row are dropped.
        let session_names = &self.session_ids.names;
        let session_keys = (0..session_names.len())
            .into_par_iter()
            .filter(|&s| counts[s] > 0)
            .map(|s| crate::exchange::session_key(&session_names[s]))
            .collect();
        drop(std::mem::take(&mut self.session_ids));
        let (outcomes, summary) = outcomes.map_or((None, None), |(values, summary)| {
            let kept = (values.into_iter().zip(&counts))
                .filter(|(_, n)| **n > 0)
                .map(|(v, _)| v);
            (Some(kept.collect()), Some(summary))
        });
        let mut offsets = Vec::with_capacity(counts.len() + 1);
        offsets.push(0);
        for &n in counts.iter().filter(|n| **n > 0) {
            offsets.push(offsets.last().expect("starts with 0") + n);
        }
        // A log written session by session, each in time order (as most are), keeps its rows
        // where they are: session ids are given in order of first appearance, so its rows'
        // ids never fall, and each session's rows are those between its offsets.
        let ts = &self.timestamps;
        let in_place = good.par_iter().all(|&g| g)
            && self.sessions.par_windows(2).all(|w| w[0] <= w[1])
            && offsets.par_windows(2).all(|w| ts[w[0]..w[1]].is_sorted());
        let order = (!in_place).then(|| self.order(&good, &counts, &offsets));
        drop((good, counts, std::mem::take(&mut self.sessions)));
        // Each column is gathered into its new order and the old one freed before the next, to
        // keep the peak low on large logs.
        fn gather<T: Copy + Send + Sync, U: Send>(
            order: Option<&[u32]>,
            column: Vec<T>,
            f: impl Fn(T) -> U + Sync,
        ) -> Vec<U> {
            match order {
                Some(order) => order.par_iter().map(|&r| f(column[r as usize])).collect(),
                // In place where `T` and `U` are of one size.
                None => column.into_iter().map(f).collect(),
            }
        }
        fn reorder<T: Copy + Send + Sync>(order: Option<&[u32]>, column: Vec<T>) -> Vec<T> {
            match order {
                Some(_) => gather(order, column, |v| v),
                None => column,
            }
        }
        let rows = order.as_deref();
        let tools = gather(rows, std::mem::take(&mut self.tools), |t| rank[t as usize]);
        let success = gather(rows, std::mem::take(&mut self.success), |s| s == 1);
        let timestamps = reorder(rows, std::mem::take(&mut self.timestamps));
        let durations = std::mem::take(&mut self.durations);
        let durations = (!durations.is_empty()).then(|| reorder(rows, durations));
        let usage = std::mem::take(&mut self.usage);
        let usage = (!usage.is_empty()).then(|| reorder(rows, usage));
        let payloads = (!self.arguments.is_empty() || !self.results.is_empty()).then(|| {
            Payloads::new(
                order,
                std::mem::take(&mut self.arguments),
                std::mem::take(&mut self.results),
            )
        });
        let log = EventLog {
            refined: refined.into_iter().collect(),
            tool_names: by_name
                .iter()
                .map(|&t| names[t as usize].to_string())
                .collect(),
            tools,
            success,
            timestamps,
            durations,
            payloads,
            usage,
            offsets,
            session_keys,
            time_kind: if self.any_order_key {
                TimeKind::OrderKey
            } else {
                TimeKind::EpochMicros
            },
            outcomes,
        };
        (log, summary)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Interner;

    proptest! {
        /// Ids are dense in order of first appearance, the same for the same name, and each
        /// names its value.
        #[test]
        fn an_id_per_distinct_name(values in prop::collection::vec("[ab]{0,3}|[a-z]{4,9}", 0..200)) {
            let mut interner = Interner::default();
            let mut first: Vec<&str> = Vec::new();
            for v in &values {
                let id = interner.intern(v) as usize;
                match first.iter().position(|f| f == v) {
                    Some(seen) => prop_assert_eq!(id, seen),
                    None => {
                        prop_assert_eq!(id, first.len());
                        first.push(v);
                    }
                }
            }
            prop_assert_eq!(interner.names.iter().collect::<Vec<_>>(), first.clone());
            for (id, name) in first.iter().enumerate() {
                prop_assert_eq!(interner.get(name), Some(id as u32));
            }
            prop_assert_eq!(interner.get("not interned"), None);
        }
    }
}
