//! Task outcomes: whether each session solved its task (or its reward), from a column of the log
//! or from a results file of their own joined by session id (`--outcomes`). A session's outcome
//! is one value; a session given two different ones, or a value that does not parse, has an
//! unknown outcome, counted and said, never a guessed one.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use super::calls::{BAD_OUTCOME, Calls};
use super::columns::{ColumnNames, Field, find};
use super::error::LoadError;
use super::input::{Format, Input};
use super::records::{self, Batch, Record};
use super::values::parse_outcome;

/// How many problems with outcomes are kept with their details.
const EXAMPLES: usize = 3;

/// What was read of the sessions' task outcomes, for the summary line and warnings.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutcomeSummary {
    /// Where they came from: `column 'reward'`, or `results.csv, column 'reward'`.
    pub source: String,
    /// Sessions of the log with a known outcome.
    pub known: usize,
    /// Sessions of the log whose outcome is unknown: missing, given twice with different values,
    /// or a value that does not parse.
    pub unknown: usize,
    /// Among `unknown`: given twice with different values.
    pub conflicting: usize,
    /// Values that do not parse: rows of the results file, or sessions of the log's column.
    pub bad: usize,
    /// The outcomes came from a results file (every part of a split log reads all of it).
    pub from_file: bool,
    /// Every known value is 0 or 1 (a rate); otherwise rewards, between `min` and `max`.
    pub binary: bool,
    pub min: f64,
    pub max: f64,
    /// Sessions the results file names, and how many of them the log has.
    pub listed: usize,
    pub matched: usize,
    /// The first few problems, each in words.
    pub examples: Vec<String>,
}

impl OutcomeSummary {
    /// Sessions the results file names that the log does not have.
    pub fn not_in_log(&self) -> usize {
        self.listed - self.matched
    }

    /// What two parts of a log split by session found: their sessions add up; a results file's
    /// own figures are the same in every part.
    pub fn merge(mut self, other: OutcomeSummary) -> OutcomeSummary {
        if other.known > 0 {
            (self.min, self.max) = match self.known {
                0 => (other.min, other.max),
                _ => (self.min.min(other.min), self.max.max(other.max)),
            };
        }
        self.known += other.known;
        self.unknown += other.unknown;
        self.conflicting += other.conflicting;
        self.matched += other.matched;
        self.binary &= other.binary;
        if !self.from_file {
            self.bad += other.bad;
            let room = EXAMPLES.saturating_sub(self.examples.len());
            self.examples.extend(other.examples.into_iter().take(room));
        }
        self
    }
}

/// A results file: per session id, its outcome (`None`: given twice with different values).
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    pub path: PathBuf,
    pub column: String,
    pub by_session: FxHashMap<String, Option<f64>>,
    /// Rows whose outcome does not parse, and the first few in words.
    pub bad: usize,
    pub examples: Vec<String>,
}

/// Reads a results file (CSV, JSON/JSONL or Parquet): its session column is `--session-col`
/// when the file has that column, else found by the usual names (and `instance_id`, as
/// SWE-bench names its tasks); its outcome column is `--outcome-col`, else found by the usual
/// names.
pub fn read(path: &Path, names: &ColumnNames) -> Result<Outcomes, LoadError> {
    let input = Input::File(path.to_path_buf());
    let shown = input.to_string();
    let memory = super::read::in_memory(path)?;
    let format = super::read::sniff(&input, memory.as_deref())?;
    let rows = match format {
        Format::Parquet => super::read::parquet_records(&input, memory.as_deref())?,
        Format::Json | Format::Csv { .. } => {
            let mut rows: Vec<Record> = Vec::new();
            let mut keep = |batch: Batch| {
                rows.extend(batch.into_records());
                Ok(())
            };
            match format {
                Format::Csv { separator } => {
                    records::csv_records(&input, memory.as_deref(), separator, &mut keep)?
                }
                _ => records::records(&input, memory.as_deref(), &mut keep)?,
            };
            rows
        }
        Format::Xes => {
            return Err(LoadError::Unreadable {
                path: shown,
                format: "XES",
                message: "a results file is a table (CSV, JSONL or Parquet)".into(),
            });
        }
    };
    let objects: Vec<(usize, &Map<String, Value>)> = (rows.iter())
        .filter_map(|r| r.value.as_ref().ok().map(|m| (r.at, m)))
        .collect();
    let mut found: Vec<String> = Vec::new();
    for (_, m) in objects.iter().take(1000) {
        for k in m.keys() {
            if !found.contains(k) {
                found.push(k.clone());
            }
        }
    }
    let session = match names.session.as_ref().filter(|s| found.contains(s)) {
        Some(given) => Some(given.clone()),
        None => find(&shown, &found, Field::Session, &None)?
            .or_else(|| found.iter().find(|c| *c == "instance_id").cloned()),
    };
    let outcome = find(&shown, &found, Field::Outcome, &names.outcome)?;
    let missing = |field: Field, extra: &str| LoadError::MissingColumn {
        path: shown.clone(),
        field: field.name(),
        aliases: format!("{}{extra}", field.aliases().join(", ")),
        found: match found.is_empty() {
            true => "no columns".into(),
            false => found.join(", "),
        },
        flag: field.flag(),
    };
    let (session, column) = match (session, outcome) {
        (Some(s), Some(o)) => (s, o),
        (None, Some(_)) => return Err(missing(Field::Session, ", instance_id")),
        (Some(_), None) => return Err(missing(Field::Outcome, "")),
        (None, None) => {
            return Err(LoadError::Columns {
                problems: vec![
                    missing(Field::Session, ", instance_id"),
                    missing(Field::Outcome, ""),
                ],
            });
        }
    };
    let mut out = Outcomes {
        path: path.to_path_buf(),
        column: column.clone(),
        ..Outcomes::default()
    };
    for (at, m) in objects {
        let Some(id) = m.get(&session).and_then(super::json::text) else {
            continue;
        };
        let value = match m.get(&column) {
            None | Some(Value::Null) => continue,
            Some(Value::Bool(b)) => Some(f64::from(u8::from(*b))),
            Some(v) => super::json::text(v).and_then(|s| parse_outcome(&s)),
        };
        let Some(value) = value else {
            out.bad += 1;
            if out.examples.len() < EXAMPLES {
                let raw = m.get(&column).map_or(String::new(), |v| match v {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                });
                out.examples.push(format!(
                    "{shown}:{at}: '{raw}' in column '{column}' is not an outcome (true/false, \
                     1/0, resolved, or a number)"
                ));
            }
            continue;
        };
        let entry = out
            .by_session
            .entry(id.trim().to_string())
            .or_insert(Some(value));
        if entry.is_some_and(|v| v != value) {
            *entry = None;
        }
    }
    Ok(out)
}

/// Per session id of `calls`, its outcome (`NaN`: unknown), from the rows' outcome column or
/// from `file`; `good` says which rows are used. `None` when there are no outcomes at all.
pub(super) fn of_sessions(
    calls: &Calls,
    good: &[bool],
    file: Option<&Outcomes>,
    column: Option<&str>,
) -> Option<(Vec<f64>, OutcomeSummary)> {
    if file.is_none() && calls.outcomes.is_empty() {
        return None;
    }
    let sessions = calls.session_ids.names.len();
    let mut used = vec![false; sessions];
    for r in (0..calls.len()).filter(|&r| good[r]) {
        used[calls.sessions[r] as usize] = true;
    }
    let mut values = vec![f64::NAN; sessions];
    let mut summary = OutcomeSummary::default();
    let mut conflicting = vec![false; sessions];
    let mut bad = vec![false; sessions];
    match file {
        Some(file) => {
            summary.source = format!("{}, column '{}'", file.path.display(), file.column);
            summary.from_file = true;
            summary.listed = file.by_session.len();
            summary.examples.extend(file.examples.iter().cloned());
            for (s, name) in calls.session_ids.names.iter().enumerate() {
                match file.by_session.get(name) {
                    Some(&Some(v)) => values[s] = v,
                    Some(None) => conflicting[s] = true,
                    None => continue,
                }
                summary.matched += usize::from(used[s]);
            }
        }
        None => {
            summary.source = format!("column '{}'", column.unwrap_or("outcome"));
            for r in (0..calls.len()).filter(|&r| good[r]) {
                let (s, v) = (calls.sessions[r] as usize, calls.outcomes[r]);
                if v == BAD_OUTCOME {
                    bad[s] = true;
                } else if v.is_nan() {
                } else if values[s].is_nan() {
                    values[s] = v;
                } else if values[s] != v {
                    conflicting[s] = true;
                }
            }
            summary.examples.extend(
                (calls.bad_outcomes.iter())
                    .take(EXAMPLES)
                    .map(|(s, v)| format!("session {s}: '{v}' is not an outcome")),
            );
        }
    }
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    summary.binary = true;
    for s in (0..sessions).filter(|&s| used[s]) {
        if conflicting[s] {
            values[s] = f64::NAN;
            summary.conflicting += 1;
            if summary.examples.len() < EXAMPLES {
                let name = &calls.session_ids.names[s];
                summary
                    .examples
                    .push(format!("session {name}: given different outcomes"));
            }
        } else if values[s].is_nan() && bad[s] {
            summary.bad += 1;
        }
        match values[s] {
            v if v.is_nan() => summary.unknown += 1,
            v => {
                summary.known += 1;
                min = min.min(v);
                max = max.max(v);
                summary.binary &= v == 0.0 || v == 1.0;
            }
        }
    }
    if let Some(file) = file {
        summary.bad += file.bad;
    }
    (summary.min, summary.max) = match summary.known {
        0 => (0.0, 0.0),
        _ => (min, max),
    };
    Some((values, summary))
}
