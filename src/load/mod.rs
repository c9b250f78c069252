//! Loading tool-usage logs: CSV, JSONL and Parquet files (and CSV on stdin) in, an [`EventLog`]
//! out. Polars types never leave this module.
//!
//! Rows that cannot be used (no session, no tool, a timestamp or success value that does not
//! parse) are never dropped silently: they are counted, the first few are kept with their file,
//! line and value, and with `strict` the first one is an error.

mod agents;
mod blocks;
mod calls;
mod columns;
mod csv_rows;
mod error;
mod flat;
mod input;
mod json;
mod lines;
mod outcomes;
mod read;
mod records;
mod refine;
mod values;
mod xes;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use rayon::prelude::*;

pub use columns::{ColumnNames, Mapping};
pub use error::{BadRow, LoadError, Location};
pub use input::{Input, Kind, LOG_EXTENSIONS, LoadOptions, McpNames};
pub use outcomes::OutcomeSummary;
pub use refine::Refine;

use crate::events::EventLog;
use calls::Calls;
use input::{FileSummary, Format};

/// How many bad rows are kept with their details; the rest are only counted.
pub const REPORTED_BAD_ROWS: usize = 5;

/// The log files under `dir` (recursively, hidden entries skipped), in path order, and what was
/// passed over with why. Only regular files are read (a FIFO would block, a device never end),
/// each folder and each file once however many links lead to it (a link back up is a loop),
/// and an entry that cannot be read (a dangling or looping link) is passed over, not fatal.
fn log_files_under(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>), LoadError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut files = Vec::new();
    let mut passed = Vec::new();
    let meta = std::fs::metadata(dir).map_err(|e| LoadError::io(dir, e))?;
    let mut seen: HashSet<(u64, u64)> = HashSet::from([(meta.dev(), meta.ino())]);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| LoadError::io(&d, e))?;
        for entry in entries {
            let path = entry.map_err(|e| LoadError::io(&d, e))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            let is_log = path.extension().is_some_and(|e| {
                LOG_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
            });
            // Through links: what the entry is in the end.
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    passed.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let kind = meta.file_type();
            let first_time = seen.insert((meta.dev(), meta.ino()));
            if kind.is_dir() {
                match first_time {
                    true => pending.push(path),
                    false => passed.push(format!(
                        "{}: a link to a folder read already (a loop, or a second way in)",
                        path.display()
                    )),
                }
            } else if !is_log || !first_time {
                // Not a log by its name, or a file read already under another name.
            } else if kind.is_file() {
                files.push(path);
            } else {
                let what = match kind {
                    k if k.is_fifo() => "a FIFO",
                    k if k.is_socket() => "a socket",
                    k if k.is_char_device() || k.is_block_device() => "a device",
                    _ => "not a regular file",
                };
                passed.push(format!(
                    "{}: {what}; only regular files are read in folders",
                    path.display()
                ));
            }
        }
    }
    files.sort();
    passed.sort();
    Ok((files, passed))
}

/// Turns command-line arguments into inputs: `-` is standard input, an argument with `*`, `?`
/// or `[` is a glob (its matches in name order), a folder its log files (recursively, see
/// [`LOG_EXTENSIONS`] and [`log_files_under`]), anything else a path. Also returns what the
/// folders held that was passed over, each with why.
pub fn expand_inputs(args: &[String]) -> Result<(Vec<Input>, Vec<String>), LoadError> {
    let mut inputs = Vec::new();
    let mut passed_over = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(Input::Stdin);
        } else if Path::new(arg).is_dir() {
            let (files, passed) = log_files_under(Path::new(arg))?;
            if files.is_empty() {
                return Err(LoadError::NoLogFiles { dir: arg.clone() });
            }
            inputs.extend(files.into_iter().map(Input::Found));
            passed_over.extend(passed);
        } else if arg.contains(['*', '?', '[']) && !Path::new(arg).exists() {
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
    Ok((inputs, passed_over))
}

/// What loading saw, for the summary line and warnings.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub files: Vec<String>,
    /// Data rows read, bad ones included.
    pub rows: usize,
    /// Bad rows skipped.
    pub skipped: usize,
    /// The first [`REPORTED_BAD_ROWS`] bad rows.
    pub bad_rows: Vec<BadRow>,
    /// Files without a success column (every call in them counts as succeeded).
    pub files_without_success: Vec<String>,
    /// What was read of each kind of input, in order of first appearance.
    pub formats: Vec<FormatSummary>,
    /// Sessions whose calls in two files are more than [`SPLIT_GAP_US`] apart (ids that may
    /// restart per file), and one of them: its id and the two files.
    pub split_sessions: usize,
    pub split_example: Option<(String, String, String)>,
    /// Entries of folders that were passed over, each with why: files that are not logs, and
    /// (added by the caller from [`expand_inputs`]) what is not a regular file or a loop.
    pub not_logs: Vec<String>,
    /// The sessions' task outcomes, when the log or a results file had them.
    pub outcomes: Option<OutcomeSummary>,
}

/// How far apart in time the calls of one session id in two files may be before `mine` warns
/// that the id may name two sessions: a day.
pub const SPLIT_GAP_US: i64 = 24 * 3600 * 1_000_000;

/// What was read of one kind of input (tables, Claude Code transcripts, traces, …).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FormatSummary {
    pub format: Kind,
    pub files: usize,
    pub sessions: usize,
    /// Sessions that are a subagent's, among `sessions`.
    pub subagent_sessions: usize,
    /// Calls read, skipped ones not included.
    pub calls: usize,
    /// Calls that got no result (kept, counted as failed).
    pub unpaired: usize,
    /// Rows or records that could not be read.
    pub skipped: usize,
    /// Calls whose success the log does not say (counted as succeeded).
    pub assumed_success: usize,
    /// Calls left out because another file had them already (a resumed session's history).
    pub repeated: usize,
}

/// Per session id, where its calls were in the files read so far: for noting a session split
/// across files (see [`Spans::note`]). Vectors indexed by session id, not maps: a 10M-call log
/// has a million sessions, and hashing each row's id was a tenth of the time after the read.
#[derive(Default)]
struct Spans {
    /// The last file the session was in (`usize::MAX`: none yet) and its time range so far.
    seen: Vec<(usize, i64, i64)>,
    /// The time range of each session in the file being noted (empty, `lo > hi`, elsewhere).
    here: Vec<(i64, i64)>,
    /// The sessions of the file being noted, in order of first appearance.
    touched: Vec<u32>,
}

impl Spans {
    const EMPTY: (i64, i64) = (i64::MAX, i64::MIN);

    /// Notes the sessions of rows `start..` (file number `file`) whose calls in an earlier file
    /// are more than [`SPLIT_GAP_US`] away from these.
    fn note(&mut self, calls: &Calls, start: usize, file: usize, report: &mut LoadReport) {
        let sessions = calls.session_ids.names.len();
        self.seen.resize(sessions, (usize::MAX, 0, 0));
        self.here.resize(sessions, Spans::EMPTY);
        self.touched.clear();
        for r in (start..calls.len()).filter(|&r| calls.problem(r).is_none()) {
            let (t, session) = (calls.timestamps[r], calls.sessions[r]);
            let range = &mut self.here[session as usize];
            if range.0 > range.1 {
                self.touched.push(session);
            }
            *range = (range.0.min(t), range.1.max(t));
        }
        for &session in &self.touched {
            let (lo, hi) = std::mem::replace(&mut self.here[session as usize], Spans::EMPTY);
            let entry = &mut self.seen[session as usize];
            if entry.0 == usize::MAX {
                *entry = (file, lo, hi);
            } else if entry.0 != file {
                let gap = (lo - entry.2).max(entry.1 - hi);
                if gap > SPLIT_GAP_US && !calls.any_order_key {
                    report.split_sessions += 1;
                    report.split_example.get_or_insert_with(|| {
                        (
                            calls.session_ids.names[session as usize].to_string(),
                            report.files[entry.0].clone(),
                            report.files[file].clone(),
                        )
                    });
                }
            }
            *entry = (file, entry.1.min(lo), entry.2.max(hi));
        }
    }
}

/// Runs `f`, turning a panic into an error with its message: polars panics on some inputs it
/// cannot read (a Parquet decimal or float16 column, even one not used) instead of failing.
/// Nothing is printed for the panic; loading is all the process does meanwhile.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

/// Loads `inputs` in order; `on_file` is called before each file is read.
pub fn load(
    inputs: &[Input],
    options: &LoadOptions,
    on_file: &dyn Fn(&Input),
) -> Result<(EventLog, LoadReport), LoadError> {
    // A results file that cannot be read fails before the logs are.
    let outcomes = (options.outcomes.as_deref())
        .map(|path| outcomes::read(path, &options.columns))
        .transpose()?;
    let mut outcome_column: Option<String> = None;
    let stdin = match inputs.contains(&Input::Stdin) {
        true => read::read_stdin()?,
        false => Vec::new(),
    };
    let mut report = LoadReport::default();
    // Per format, whether each session id has a good row among its files.
    let mut sessions_by_format: Vec<Vec<AtomicBool>> = Vec::new();
    let mut spans = Spans::default();
    let mut calls = Calls {
        mcp_names: options.mcp_names,
        ..Calls::default()
    };
    for input in inputs {
        on_file(input);
        // Standard input, compressed files and pipes are read into memory; other files stream.
        let unpacked = match input {
            Input::File(path) | Input::Found(path) => read::in_memory(path)?,
            Input::Stdin => None,
        };
        let memory = match input {
            Input::Stdin => Some(&stdin[..]),
            Input::File(_) | Input::Found(_) => unpacked.as_deref(),
        };
        let start = calls.len();
        let read = |calls: &mut Calls| -> Result<(Format, FileSummary), LoadError> {
            let format = read::sniff(input, memory)?;
            let file = match format {
                Format::Xes => xes::read_xes(input, memory, calls)?,
                Format::Json => {
                    records::read_json(input, memory, options, calls, REPORTED_BAD_ROWS)?
                }
                // A Langfuse export in CSV: records to assemble, not a table of calls.
                Format::Csv { separator }
                    if options.format == Some(Kind::Langfuse)
                        || (options.format.is_none()
                            && lines::looks_like_langfuse(input, memory, separator)) =>
                {
                    let langfuse = LoadOptions {
                        format: Some(Kind::Langfuse),
                        ..options.clone()
                    };
                    records::read_records(
                        input,
                        &mut |each| records::csv_records(input, memory, separator, each),
                        &langfuse,
                        calls,
                        REPORTED_BAD_ROWS,
                    )?
                }
                _ => {
                    // A CSV still being written: its cut last row is a bad row, not a bad file.
                    let cut = match format {
                        Format::Csv { separator } => lines::cut_short(input, memory, separator),
                        _ => None,
                    };
                    let memory = cut.as_ref().map_or(memory, |(kept, ..)| Some(&kept[..]));
                    let mut file = quietly(|| {
                        read::read(
                            input,
                            format,
                            memory,
                            &options.columns,
                            calls,
                            REPORTED_BAD_ROWS,
                        )
                    })
                    .unwrap_or_else(|why| {
                        Err(LoadError::Unreadable {
                            path: input.to_string(),
                            format: format.name(),
                            message: format!("polars failed on it ({why})"),
                        })
                    })?;
                    if let Some((_, line, text)) = cut {
                        file.broken += 1;
                        file.first_broken.push(BadRow {
                            at: Location {
                                file: input.to_string(),
                                line,
                                is_row: false,
                            },
                            column: String::new(),
                            value: text,
                            reason: "the last row is cut short (no line end; a log still being \
                                     written?)"
                                .into(),
                        });
                    }
                    file
                }
            };
            Ok((format, file))
        };
        let (format, file) = match read(&mut calls) {
            Ok(read) => read,
            // A file in a folder that is not a log (a settings file, a note) is passed over.
            Err(e) if matches!(input, Input::Found(_)) && e.is_not_a_log() => {
                calls.truncate(start);
                report.not_logs.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        report.files.push(input.to_string());
        if outcome_column.is_none() {
            outcome_column = file.mapping.outcome.clone();
        }
        let file_number = report.files.len() - 1;
        if options.session_per_file {
            calls.sessions_of_file(start, file_number);
        } else if inputs.len() > 1 {
            // One input has no session split across files: its rows are not gone over again.
            spans.note(&calls, start, file_number, &mut report);
        }
        report.rows += calls.len() - start + file.broken;
        report.skipped += file.broken;
        if !file.has_success {
            report.files_without_success.push(input.to_string());
        }
        let i = match report.formats.iter().position(|f| f.format == file.kind) {
            Some(i) => i,
            None => {
                report.formats.push(FormatSummary {
                    format: file.kind,
                    ..FormatSummary::default()
                });
                sessions_by_format.push(Default::default());
                report.formats.len() - 1
            }
        };
        let seen = &mut sessions_by_format[i];
        seen.resize_with(calls.session_ids.names.len(), AtomicBool::default);
        // One pass on every thread: the rows with a problem counted (most files have none), and
        // the sessions new to the format, each where its good row is the first to mark it.
        let (problems, new_sessions) = (start..calls.len())
            .into_par_iter()
            .map(|r| match calls.problem(r) {
                Some(_) => (1, 0),
                None => {
                    let s = &seen[calls.sessions[r] as usize];
                    (0, usize::from(!s.load(Relaxed) && !s.swap(true, Relaxed)))
                }
            })
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        // The first rows with a problem, looked for only if there are some.
        let mut bad = Vec::new();
        let with_problems = (start..calls.len()).filter_map(|r| Some((r, calls.problem(r)?)));
        for (r, (field, reason)) in with_problems.take(REPORTED_BAD_ROWS.min(problems)) {
            let at = Location {
                file: input.to_string(),
                line: 0,
                is_row: file.is_row,
            };
            let row = r - start;
            let column = file.mapping.column(field).to_string();
            bad.push((
                row,
                BadRow {
                    at,
                    column,
                    value: file.raw(row, field).to_string(),
                    reason: reason.into(),
                },
            ));
        }
        report.skipped += problems;
        let summary = &mut report.formats[i];
        summary.files += 1;
        summary.calls += calls.len() - start - problems;
        summary.skipped += problems + file.broken;
        summary.unpaired += file.unpaired;
        summary.subagent_sessions += file.subagent_sessions;
        summary.assumed_success += file.assumed_success;
        summary.repeated += file.repeated;
        summary.sessions += new_sessions;
        // Polars fills the missing fields of a short CSV row with nulls: such a row is not
        // merely bad, the file is malformed.
        if let (Format::Csv { separator }, true) = (format, problems > 0)
            && let Some(ragged) = lines::find_ragged(input, memory, separator)
        {
            return Err(ragged);
        }
        let rows_at: Vec<usize> = bad.iter().map(|(r, _)| *r).collect();
        let located = match &file.lines {
            Some(lines) => rows_at.iter().map(|&r| lines[r] as usize).collect(),
            None => lines::locate(input, format, memory, &rows_at),
        };
        let mut bad: Vec<BadRow> = located
            .into_iter()
            .zip(bad)
            .map(|(line, (_, mut row))| {
                row.at.line = line;
                row
            })
            .chain(file.first_broken)
            .collect();
        bad.sort_by_key(|row| row.at.line);
        if options.strict && !bad.is_empty() {
            return Err(LoadError::Strict {
                row: bad.swap_remove(0),
            });
        }
        let room = REPORTED_BAD_ROWS - report.bad_rows.len();
        report.bad_rows.extend(bad.into_iter().take(room));
    }
    // Nothing to mine is a failure, not an empty answer: a nightly job must notice, and
    // `--prune` must not take it for every workflow gone.
    if report.skipped == report.rows && !options.allow_empty {
        let first: Vec<String> = report.bad_rows.iter().map(ToString::to_string).collect();
        return Err(match report.rows {
            0 if report.files.is_empty() => LoadError::NotLogs {
                first: report.not_logs.first().cloned().unwrap_or_default(),
            },
            0 => LoadError::NoRow {
                files: report.files.join(", "),
            },
            rows => LoadError::NoUsableRow {
                rows,
                first: first.join("; "),
            },
        });
    }
    let refined = calls.refine(&options.refine);
    let (log, summary) = calls.into_log(refined, outcomes.as_ref(), outcome_column.as_deref());
    report.outcomes = summary;
    Ok((log, report))
}
