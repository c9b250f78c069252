//! The run log: one CSV row per tool call in the input log schema, so that `patterns mine`
//! learns from executions. Rows are appended and flushed one by one: a crash loses nothing
//! already written. After the input schema come the workflow the call was part of and, for a
//! call served to an agent, what it replaced: summed over a log, the figures `serve` says.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The columns, in order: the input schema first, then where in the workflow the call was, then
/// what a served call replaced.
pub const COLUMNS: [&str; 13] = [
    "session_id",
    "timestamp",
    "tool",
    "success",
    "duration_ms",
    "arguments",
    "result",
    "error",
    "step_id",
    "attempt",
    "workflow",
    "round_trips_saved",
    "tokens_saved",
];

/// The columns of the run logs written before the workflow and its savings were: such a log
/// is still appended to, in its own columns.
const EARLIER: usize = 10;

/// One tool call.
#[derive(Debug, Clone)]
pub struct CallRow<'a> {
    pub run_id: &'a str,
    /// RFC 3339 start time.
    pub timestamp: String,
    pub tool: &'a str,
    pub success: bool,
    pub duration_ms: u64,
    pub arguments: String,
    pub result: String,
    pub error: String,
    pub step_id: &'a str,
    pub attempt: u32,
    /// The template's name; empty for a call the proxy forwarded.
    pub workflow: &'a str,
    /// A served call only: the model round-trips this call replaced (one for each step's first
    /// attempt after the run's first call).
    pub round_trips_saved: Option<u64>,
    /// A served call only, on its run's first row: the tokens a run of the workflow saved in
    /// the logs it was mined from (their median), when they were measured.
    pub tokens_saved: Option<u64>,
}

/// Why a run log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunLogError {
    #[error("cannot open run log {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Appending to a file with other columns would corrupt it for `mine`.
    #[error(
        "run log {path} has other columns ({found}); give a new file or one written by `patterns run`"
    )]
    OtherColumns { path: PathBuf, found: String },
}

/// An open run log.
pub struct RunLog {
    path: PathBuf,
    /// How many of [`COLUMNS`] the file has: all, or those of an earlier version.
    width: usize,
    writer: Mutex<csv::Writer<File>>,
}

impl RunLog {
    /// Opens `path` for appending, writing the header to a new or empty file. A new file is its
    /// owner's alone (0600): it holds the `--var` values the steps were given.
    pub fn open(path: &Path) -> Result<RunLog, RunLogError> {
        use std::os::unix::fs::OpenOptionsExt;
        let open_error = |source| RunLogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(open_error)?;
        let empty = file.metadata().map_err(open_error)?.len() == 0;
        let mut width = COLUMNS.len();
        if !empty {
            let mut header = String::new();
            BufReader::new(&file)
                .read_line(&mut header)
                .map_err(open_error)?;
            let header = header.trim_end();
            width = match [COLUMNS.len(), EARLIER]
                .into_iter()
                .find(|&n| header == COLUMNS[..n].join(","))
            {
                Some(n) => n,
                None => {
                    return Err(RunLogError::OtherColumns {
                        path: path.to_path_buf(),
                        found: header.chars().take(200).collect(),
                    });
                }
            };
            if width == EARLIER {
                say!(
                    "note: run log {} has the columns of an earlier version: the workflow and what \
                     served calls saved are not written to it (give a new file to have them)",
                    path.display()
                );
            }
        }
        let mut writer = csv::WriterBuilder::new().from_writer(file);
        if empty {
            writer
                .write_record(COLUMNS)
                .map_err(|e| open_error(e.into()))?;
            writer.flush().map_err(open_error)?;
        }
        Ok(RunLog {
            path: path.to_path_buf(),
            width,
            writer: Mutex::new(writer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and flushes one row.
    pub fn append(&self, row: &CallRow) -> std::io::Result<()> {
        let figure = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let record: [&str; COLUMNS.len()] = [
            row.run_id,
            &row.timestamp,
            row.tool,
            if row.success { "true" } else { "false" },
            &row.duration_ms.to_string(),
            &row.arguments,
            &row.result,
            &row.error,
            row.step_id,
            &row.attempt.to_string(),
            row.workflow,
            &figure(row.round_trips_saved),
            &figure(row.tokens_saved),
        ];
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_record(&record[..self.width])?;
        w.flush()
    }
}
