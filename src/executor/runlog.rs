//! The run log: one CSV row per tool call in the input log schema, so that `patterns mine`
//! learns from executions. Rows are appended and flushed one by one: a crash loses nothing
//! already written.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The columns, in order: the input schema first, then where in the workflow the call was.
pub const COLUMNS: [&str; 10] = [
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
];

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
        if !empty {
            let mut header = String::new();
            BufReader::new(&file)
                .read_line(&mut header)
                .map_err(open_error)?;
            if header.trim_end() != COLUMNS.join(",") {
                return Err(RunLogError::OtherColumns {
                    path: path.to_path_buf(),
                    found: header.trim_end().chars().take(200).collect(),
                });
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
            writer: Mutex::new(writer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and flushes one row.
    pub fn append(&self, row: &CallRow) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_record([
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
        ])?;
        w.flush()
    }
}
