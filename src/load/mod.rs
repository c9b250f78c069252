//! Loading tool-usage logs: CSV, JSONL and Parquet files (and CSV on stdin) in, an [`EventLog`]
//! out. Polars types never leave this module.
//!
//! Rows that cannot be used (no session, no tool, a timestamp or success value that does not
//! parse) are never dropped silently: they are counted, the first few are kept with their file,
//! line and value, and with `strict` the first one is an error.

mod columns;
mod error;
mod lines;
mod read;
mod values;

use std::path::PathBuf;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

pub use columns::ColumnNames;
pub use error::{BadRow, LoadError, Location};

use crate::events::{EventLog, TimeKind};
use read::{Format, NONE_ID};

/// How many bad rows are kept with their details; the rest are only counted.
pub const REPORTED_BAD_ROWS: usize = 5;

/// A path or `-` for standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Stdin => f.write_str("<stdin>"),
            Input::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Turns command-line arguments into inputs: `-` is standard input, an argument with `*`, `?`
/// or `[` is a glob (its matches in name order), anything else a path.
pub fn expand_inputs(args: &[String]) -> Result<Vec<Input>, LoadError> {
    let mut inputs = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(Input::Stdin);
        } else if arg.contains(['*', '?', '[']) && !std::path::Path::new(arg).exists() {
            let no_match = || LoadError::NoMatch {
                pattern: arg.clone(),
            };
            let mut paths: Vec<PathBuf> = glob::glob(arg)
                .map_err(|_| no_match())?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if paths.is_empty() {
                return Err(no_match());
            }
            paths.sort();
            inputs.extend(paths.into_iter().map(Input::File));
        } else {
            inputs.push(Input::File(PathBuf::from(arg)));
        }
    }
    Ok(inputs)
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub columns: ColumnNames,
    /// Stop at the first bad row instead of skipping it.
    pub strict: bool,
}

/// What loading saw, for the summary line and warnings.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    pub files: Vec<String>,
    /// Data rows read, bad ones included.
    pub rows: usize,
    /// Bad rows skipped.
    pub skipped: usize,
    /// The first [`REPORTED_BAD_ROWS`] bad rows.
    #[serde(skip)]
    pub bad_rows: Vec<BadRow>,
    /// Files without a success column (every call in them counts as succeeded).
    pub files_without_success: Vec<String>,
}

/// Interns strings as dense ids in order of first appearance.
#[derive(Default)]
pub(crate) struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        assert!(id < NONE_ID, "more than 2^32 - 1 distinct values");
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }
}

/// The good rows of every file, in input order.
#[derive(Default)]
struct Rows {
    sessions: Vec<u32>,
    tools: Vec<u32>,
    timestamps: Vec<i64>,
    success: Vec<bool>,
}

/// Loads `inputs` in order; `on_file` is called before each file is read.
pub fn load(
    inputs: &[Input],
    options: &LoadOptions,
    on_file: &dyn Fn(&Input),
) -> Result<(EventLog, LoadReport), LoadError> {
    let stdin = match inputs.contains(&Input::Stdin) {
        true => read::read_stdin()?,
        false => Vec::new(),
    };
    let mut report = LoadReport::default();
    let (mut session_ids, mut tool_ids) = (Interner::default(), Interner::default());
    let mut rows = Rows::default();
    let mut any_order_key = false;
    for input in inputs {
        on_file(input);
        let format = read::sniff(input, &stdin)?;
        let file = read::read(
            input,
            format,
            &stdin,
            &options.columns,
            &mut session_ids,
            &mut tool_ids,
        )?;
        report.files.push(input.to_string());
        report.rows += file.len();
        any_order_key |= file.any_order_key;
        if file.success.is_none() {
            report.files_without_success.push(input.to_string());
        }
        let mut bad = Vec::new();
        let skipped_before = report.skipped;
        for r in 0..file.len() {
            let Some((field, column, reason)) = file.problem(r) else {
                rows.sessions.push(file.sessions[r]);
                rows.tools.push(file.tools[r]);
                rows.timestamps.push(file.timestamps[r]);
                rows.success.push(file.succeeded(r));
                continue;
            };
            report.skipped += 1;
            if report.bad_rows.len() + bad.len() < REPORTED_BAD_ROWS || options.strict {
                let at = Location {
                    file: input.to_string(),
                    line: 0,
                    is_row: matches!(format, Format::Parquet),
                };
                bad.push((
                    r,
                    BadRow {
                        at,
                        column: column.to_string(),
                        value: file.raw(field, r),
                        reason,
                    },
                ));
            }
            if options.strict {
                break;
            }
        }
        // Polars fills the missing fields of a short CSV row with nulls: such a row is not
        // merely bad, the file is malformed.
        if let (Format::Csv { separator }, true) = (format, report.skipped > skipped_before) {
            if let Some(ragged) = lines::find_ragged(input, &stdin, separator) {
                return Err(ragged);
            }
        }
        let rows_at: Vec<usize> = bad.iter().map(|(r, _)| *r).collect();
        for (line, (_, mut row)) in lines::locate(input, format, &stdin, &rows_at)
            .into_iter()
            .zip(bad)
        {
            row.at.line = line;
            if options.strict {
                return Err(LoadError::Strict { row });
            }
            report.bad_rows.push(row);
        }
    }
    let time_kind = if any_order_key {
        TimeKind::OrderKey
    } else {
        TimeKind::EpochMicros
    };
    Ok((assemble(rows, session_ids, tool_ids, time_kind), report))
}

/// Groups rows by session and orders each session by timestamp, ties by input order.
fn assemble(rows: Rows, sessions: Interner, tools: Interner, time_kind: TimeKind) -> EventLog {
    // Tool ids by name, so that comparing ids compares names; tools seen only in bad rows go.
    let mut used = vec![false; tools.names.len()];
    for &t in &rows.tools {
        used[t as usize] = true;
    }
    let mut by_name: Vec<u32> = (0..tools.names.len() as u32)
        .filter(|&t| used[t as usize])
        .collect();
    by_name.sort_unstable_by(|&a, &b| tools.names[a as usize].cmp(&tools.names[b as usize]));
    let mut rank = vec![0u32; tools.names.len()];
    for (new, &old) in by_name.iter().enumerate() {
        rank[old as usize] = new as u32;
    }
    // Sessions that kept no good row are dropped; the others keep their order of appearance.
    let mut counts = vec![0usize; sessions.names.len()];
    for &s in &rows.sessions {
        counts[s as usize] += 1;
    }
    let kept: Vec<usize> = (0..counts.len()).filter(|&s| counts[s] > 0).collect();
    let mut offsets = Vec::with_capacity(kept.len() + 1);
    let mut start_of = vec![0usize; counts.len()];
    offsets.push(0);
    for &s in &kept {
        start_of[s] = *offsets.last().expect("starts with 0");
        offsets.push(start_of[s] + counts[s]);
    }
    let mut order = vec![0u32; rows.sessions.len()];
    for (r, &s) in rows.sessions.iter().enumerate() {
        order[start_of[s as usize]] = r as u32;
        start_of[s as usize] += 1;
    }
    // Stable sorts per session: equal timestamps keep input order.
    let mut slices = Vec::with_capacity(kept.len());
    let mut rest = order.as_mut_slice();
    for w in offsets.windows(2) {
        let (head, tail) = rest.split_at_mut(w[1] - w[0]);
        slices.push(head);
        rest = tail;
    }
    let ts = &rows.timestamps;
    slices.par_iter_mut().for_each(|s| {
        if !s.is_sorted_by_key(|&r| ts[r as usize]) {
            s.sort_by_key(|&r| ts[r as usize]);
        }
    });
    EventLog {
        tool_names: by_name
            .iter()
            .map(|&t| tools.names[t as usize].to_string())
            .collect(),
        session_names: kept
            .iter()
            .map(|&s| sessions.names[s].to_string())
            .collect(),
        tools: order
            .par_iter()
            .map(|r| rank[rows.tools[*r as usize] as usize])
            .collect(),
        success: order
            .par_iter()
            .map(|r| rows.success[*r as usize])
            .collect(),
        timestamps: order.par_iter().map(|r| ts[*r as usize]).collect(),
        offsets,
        time_kind,
    }
}
