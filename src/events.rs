//! The event log after loading: tool calls grouped by session and ordered in time, with tools
//! and sessions interned as integers. Nothing here knows where the rows came from.

use crate::exchange::{self, Exchange};

/// JSON text of each call's arguments and result, as the log had it. The texts stay in the
/// order they were read (sorting them by session would copy them all once more); each call
/// knows its row.
#[derive(Debug, Clone, Default)]
pub struct Payloads {
    /// Per call, in the log's order, the row its texts are at; `None` when call `i` is row `i`
    /// (a log written session by session, in time order).
    rows: Option<Vec<u32>>,
    arguments: Texts,
    results: Texts,
}

impl Payloads {
    pub fn new(rows: Option<Vec<u32>>, arguments: Texts, results: Texts) -> Payloads {
        Payloads {
            rows,
            arguments,
            results,
        }
    }

    /// The arguments of call `i` (an index of the per-call columns), if the log had them.
    pub fn arguments(&self, i: usize) -> Option<&str> {
        let row = self.row(i);
        (row < self.arguments.len()).then(|| self.arguments.get(row))?
    }

    /// The result of call `i`, if the log had it.
    pub fn result(&self, i: usize) -> Option<&str> {
        let row = self.row(i);
        (row < self.results.len()).then(|| self.results.get(row))?
    }

    fn row(&self, i: usize) -> usize {
        self.rows.as_ref().map_or(i, |rows| rows[i] as usize)
    }
}

/// `items` cut into consecutive pieces of `lengths` (which sum to at most its length): the
/// slices of sessions by their offsets, for writing them on every thread.
pub fn split_at_lengths<T>(
    mut items: &mut [T],
    lengths: impl IntoIterator<Item = usize>,
) -> Vec<&mut [T]> {
    let mut pieces = Vec::new();
    for n in lengths {
        let (piece, rest) = std::mem::take(&mut items).split_at_mut(n);
        pieces.push(piece);
        items = rest;
    }
    pieces
}

/// One optional text per call, in a few large buffers. A `Box<str>` per value would cost a
/// pointer, a length and an allocation each: 32 bytes for a 12-byte `{"id":61868}`, which on a
/// log of 10M calls with arguments and results was most of the memory it took.
///
/// The values are kept in chunks (of under 4 GiB, so that a value's end fits in 4 bytes), as
/// they were read, a piece of the log at a time: appending the texts of a piece read apart moves
/// its chunk in, without copying its bytes.
#[derive(Debug, Clone, Default)]
pub struct Texts {
    chunks: Vec<Chunk>,
    /// The index of the first value of each chunk.
    starts: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
struct Chunk {
    bytes: String,
    /// Where each value ends in `bytes` (it starts where the one before ends).
    ends: Vec<u32>,
}

impl Chunk {
    fn get(&self, i: usize) -> Option<&str> {
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]) as usize;
        let end = self.ends[i] as usize;
        (end > start).then(|| &self.bytes[start..end])
    }

    fn end(&self) -> u32 {
        self.ends.last().copied().unwrap_or(0)
    }
}

impl Texts {
    pub fn len(&self) -> usize {
        (self.starts.last()).map_or(0, |&start| {
            start + self.chunks.last().expect("a chunk per start").ends.len()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`; `None` when it is missing (or was empty).
    pub fn get(&self, i: usize) -> Option<&str> {
        let c = self.starts.partition_point(|&start| start <= i) - 1;
        self.chunks[c].get(i - self.starts[c])
    }

    /// The chunk values are added to, with room for `bytes` more bytes.
    fn last_with_room(&mut self, bytes: usize) -> &mut Chunk {
        let full = self
            .chunks
            .last()
            .is_none_or(|c| c.bytes.len() + bytes > u32::MAX as usize);
        if full {
            self.starts.push(self.len());
            self.chunks.push(Chunk::default());
        }
        self.chunks.last_mut().expect("a chunk")
    }

    /// The bytes of all values.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes.len()).sum()
    }

    /// Makes room for `values` more values of `bytes` bytes in all.
    pub fn reserve(&mut self, values: usize, bytes: usize) {
        let last = self.last_with_room(bytes);
        last.ends.reserve(values);
        last.bytes.reserve(bytes);
    }

    pub fn push(&mut self, value: Option<&str>) {
        let value = value.unwrap_or("");
        let last = self.last_with_room(value.len());
        last.bytes.push_str(value);
        last.ends.push(last.bytes.len() as u32);
    }

    /// Appends the value that `write` appends to the bytes it is given, of at most `most`
    /// bytes; nothing when it fails.
    pub fn push_with(
        &mut self,
        most: usize,
        write: impl FnOnce(&mut String) -> Option<()>,
    ) -> Option<()> {
        let last = self.last_with_room(most);
        let end = last.end();
        if write(&mut last.bytes).is_none() {
            last.bytes.truncate(end as usize);
            return None;
        }
        last.ends.push(last.bytes.len() as u32);
        Some(())
    }

    /// Appends the values of `other`, moving its chunks in.
    pub fn append(&mut self, other: Texts) {
        for chunk in other.chunks.into_iter().filter(|c| !c.ends.is_empty()) {
            self.starts.push(self.len());
            self.chunks.push(chunk);
        }
    }

    /// Appends missing values up to `len` values.
    pub fn pad(&mut self, len: usize) {
        let missing = len.saturating_sub(self.len());
        if missing > 0 {
            let last = self.last_with_room(0);
            last.ends.resize(last.ends.len() + missing, last.end());
        }
    }

    pub fn truncate(&mut self, len: usize) {
        let kept = self.starts.partition_point(|&start| start < len);
        self.chunks.truncate(kept);
        self.starts.truncate(kept);
        if let (Some(last), Some(&start)) = (self.chunks.last_mut(), self.starts.last()) {
            last.ends.truncate(len - start);
            last.bytes.truncate(last.end() as usize);
        }
    }
}

/// The duration of a call that the log does not give.
pub const UNKNOWN_DURATION: u32 = u32::MAX;

/// The model usage of a call the log does not give (see [`EventLog::usage`]).
pub const NO_USAGE: u32 = u32::MAX;
/// A call issued by the same model turn as an earlier call of its session: it cost no tokens
/// and no turn of its own (see [`EventLog::usage`]).
pub const SAME_TURN: u32 = u32::MAX - 1;

/// How the timestamps of a log should be read when they are shown to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// Every timestamp was a date-time or an epoch value: they are microseconds since 1970.
    EpochMicros,
    /// At least one timestamp was a plain order key (a step number): only the order means something.
    OrderKey,
}

/// Tool calls in compressed sparse rows: session `s` owns `offsets[s]..offsets[s + 1]` of the
/// per-call columns, already sorted by timestamp (ties by input order).
#[derive(Debug, Clone)]
pub struct EventLog {
    /// Tool names by id, sorted, so that comparing ids compares names.
    pub tool_names: Vec<String>,
    pub offsets: Vec<usize>,
    /// Per session, a hash of its id ([`crate::exchange::session_key`]): samples of sessions
    /// take the smallest, so that they do not depend on the order sessions were read in.
    pub session_keys: Vec<u64>,
    pub tools: Vec<u32>,
    pub success: Vec<bool>,
    pub timestamps: Vec<i64>,
    /// Milliseconds per call ([`UNKNOWN_DURATION`] when unknown), when some input had durations.
    pub durations: Option<Vec<u32>>,
    /// Arguments and results per call, when the log had them.
    pub payloads: Option<Payloads>,
    /// Per call, the tokens of the model turn that issued it (input, cache reads and writes,
    /// and output), on the first call of that turn; [`SAME_TURN`] on the turn's other calls,
    /// [`NO_USAGE`] when unknown. When some input had usage.
    pub usage: Option<Vec<u32>>,
    pub time_kind: TimeKind,
    /// Tools refined by an argument (`Bash:cargo test`), each with the tool it refines (`Bash`).
    pub refined: std::collections::HashMap<String, String>,
    /// Per session, its task outcome (1 solved, 0 not, or a reward; `NaN` unknown), when the log
    /// or a results file had outcomes.
    pub outcomes: Option<Vec<f64>>,
}

impl EventLog {
    /// Builds a log from sessions given as `(tool, success)` calls already in order; timestamps
    /// become order keys. Used by the generator, tests and benches.
    pub fn from_sessions<S: AsRef<str>>(sessions: &[Vec<(S, bool)>]) -> EventLog {
        let mut names: Vec<&str> = sessions.iter().flatten().map(|(t, _)| t.as_ref()).collect();
        names.sort_unstable();
        names.dedup();
        let mut log = EventLog {
            tool_names: names.iter().map(|s| s.to_string()).collect(),
            offsets: vec![0],
            session_keys: Vec::new(),
            tools: Vec::new(),
            success: Vec::new(),
            timestamps: Vec::new(),
            durations: None,
            payloads: None,
            usage: None,
            time_kind: TimeKind::OrderKey,
            refined: Default::default(),
            outcomes: None,
        };
        for (s, session) in sessions.iter().enumerate() {
            log.session_keys
                .push(crate::exchange::session_key(&s.to_string()));
            for (i, (tool, ok)) in session.iter().enumerate() {
                let id = names
                    .binary_search(&tool.as_ref())
                    .expect("name was collected");
                log.tools.push(id as u32);
                log.success.push(*ok);
                log.timestamps.push(i as i64);
            }
            log.offsets.push(log.tools.len());
        }
        log
    }

    /// Makes this part of a log split by session agree with the other parts (see
    /// [`crate::exchange`]) on what is the whole log's: tool ids (every part's names, sorted),
    /// refined tools, the time kind, and which columns the log has.
    pub fn align(&mut self, ex: &dyn Exchange) {
        let old = std::mem::take(&mut self.tool_names);
        let mut names = exchange::gather(ex, old.clone());
        names.sort_unstable();
        names.dedup();
        let id: Vec<u32> = (old.iter())
            .map(|n| names.binary_search(n).expect("gathered") as u32)
            .collect();
        for t in &mut self.tools {
            *t = id[*t as usize];
        }
        self.tool_names = names;
        let refined: Vec<(String, String)> = self.refined.drain().collect();
        self.refined = exchange::gather(ex, refined).into_iter().collect();
        let local = (
            usize::from(self.time_kind == TimeKind::OrderKey),
            usize::from(self.durations.is_some()),
            usize::from(self.payloads.is_some()),
            usize::from(self.outcomes.is_some()),
        );
        let (order_keys, durations, payloads, outcomes) = exchange::sum(ex, local);
        if exchange::sum(ex, usize::from(self.usage.is_some())) > 0 && self.usage.is_none() {
            self.usage = Some(vec![NO_USAGE; self.event_count()]);
        }
        let calls = self.event_count();
        if order_keys > 0 {
            self.time_kind = TimeKind::OrderKey;
        }
        if durations > 0 && self.durations.is_none() {
            self.durations = Some(vec![UNKNOWN_DURATION; calls]);
        }
        if payloads > 0 && self.payloads.is_none() {
            self.payloads = Some(Payloads::default());
        }
        if outcomes > 0 && self.outcomes.is_none() {
            self.outcomes = Some(vec![f64::NAN; self.session_count()]);
        }
    }

    /// A log with no calls (a part of a split log that got none).
    pub fn empty() -> EventLog {
        EventLog {
            // No call has an order key.
            time_kind: TimeKind::EpochMicros,
            ..EventLog::from_sessions::<&str>(&[])
        }
    }

    /// The names of the tools of a chain of ids.
    pub fn names<'a>(&'a self, chain: &[u32]) -> impl Iterator<Item = &'a str> {
        chain.iter().map(|&t| self.tool_names[t as usize].as_str())
    }

    pub fn session_count(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn event_count(&self) -> usize {
        self.tools.len()
    }

    /// The calls of session `s` as index ranges of the per-call columns: one per call, or, unless
    /// `keep_repeats`, one per run of immediate repeats of a tool (a call and its retries).
    pub fn collapsed(
        &self,
        s: usize,
        keep_repeats: bool,
    ) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let end = self.offsets[s + 1];
        let mut i = self.offsets[s];
        std::iter::from_fn(move || {
            let start = i;
            if start >= end {
                return None;
            }
            i += 1;
            while !keep_repeats && i < end && self.tools[i] == self.tools[start] {
                i += 1;
            }
            Some(start..i)
        })
    }

    /// The index range of session `s` in the per-call columns.
    pub fn range(&self, s: usize) -> std::ops::Range<usize> {
        self.offsets[s]..self.offsets[s + 1]
    }
}

#[cfg(test)]
mod tests {
    use super::Texts;

    #[test]
    fn texts_keep_values_and_missing_ones_and_calls_find_their_rows() {
        let mut t = Texts::default();
        t.push(Some(r#"{"id":1}"#));
        t.push(None);
        t.pad(4);
        t.push(Some("x"));
        assert_eq!(t.len(), 5);
        assert_eq!(t.get(0), Some(r#"{"id":1}"#));
        assert_eq!((t.get(1), t.get(3)), (None, None));
        assert_eq!(t.get(4), Some("x"));
        t.truncate(1);
        t.push(Some("y"));
        assert_eq!(
            (t.len(), t.get(0), t.get(1)),
            (2, Some(r#"{"id":1}"#), Some("y"))
        );
        // Chunks appended: values keep their places across them.
        let mut more = Texts::default();
        more.push(Some("z"));
        more.pad(3);
        t.append(more);
        t.append(Texts::default());
        t.push(Some("w"));
        assert_eq!(t.len(), 6);
        let values: Vec<_> = (0..6).map(|i| t.get(i)).collect();
        assert_eq!(
            values,
            [
                Some(r#"{"id":1}"#),
                Some("y"),
                Some("z"),
                None,
                None,
                Some("w")
            ]
        );
        t.truncate(3);
        t.push(Some("v"));
        assert_eq!((t.len(), t.get(2), t.get(3)), (4, Some("z"), Some("v")));
        t.truncate(2);
        let p = super::Payloads::new(Some(vec![1, 0]), t, Texts::default());
        assert_eq!(
            (p.arguments(0), p.arguments(1)),
            (Some("y"), Some(r#"{"id":1}"#))
        );
        assert_eq!(p.result(0), None, "a column the log did not have");
    }
}
