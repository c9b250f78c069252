//! What can go wrong while loading logs; every variant names the file and what to do.

/// Where a bad value was found: a file and a line (CSV, JSONL) or a row (Parquet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    /// 1-based line for text formats, 1-based row for Parquet.
    pub line: usize,
    pub is_row: bool,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.is_row { "row " } else { "" };
        write!(f, "{}:{what}{}", self.file, self.line)
    }
}

/// Why a row was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub at: Location,
    /// Empty when the whole record is bad (a line that is not JSON).
    pub column: String,
    pub value: String,
    pub reason: std::borrow::Cow<'static, str>,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.column.as_str() {
            "" => write!(f, "{}: {}: {:?}", self.at, self.reason, self.value),
            column => write!(
                f,
                "{}: {} in column '{column}': {:?}",
                self.at, self.reason, self.value
            ),
        }
    }
}

/// Errors of the loading layer. All of them are the input's fault (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path that does not exist.
    #[error("{path}: no such file")]
    NotFound { path: String },
    /// A glob that matched nothing.
    #[error("'{pattern}' matches no file")]
    NoMatch { pattern: String },
    /// A folder with no log file under it.
    #[error(
        "{dir}: a folder with no log file under it (looked for *.{{csv,tsv,jsonl,ndjson,json,parquet,xes}} and their .gz, .zst)"
    )]
    NoLogFiles { dir: String },
    /// An I/O error other than a missing file.
    #[error("{path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A file with no content at all.
    #[error("{path}: the file is empty; give a log with a header line and one row per tool call")]
    Empty { path: String },
    /// A file that is neither text nor Parquet.
    #[error(
        "{path}: this looks like a binary file, not a CSV, JSONL or Parquet log (name Parquet files *.parquet)"
    )]
    Binary { path: String },
    /// A column given by a flag that the file does not have.
    #[error("{path}: no column '{name}' (given by {flag}); the file has: {found}")]
    NoSuchColumn {
        path: String,
        flag: &'static str,
        name: String,
        found: String,
    },
    /// A required column that could not be found under any of its names.
    #[error(
        "{path}: no {field} column (looked for {aliases}); the file has: {found}; name it with {flag}"
    )]
    MissingColumn {
        path: String,
        field: &'static str,
        aliases: String,
        found: String,
        flag: &'static str,
    },
    /// Several of the column problems above in one file, every one of them.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Columns { problems: Vec<LoadError> },
    /// A CSV row with a different number of fields than the header.
    #[error(
        "{path}:{line}: this row has {found} fields but the header has {expected}; fix the row or quote its commas"
    )]
    Ragged {
        path: String,
        line: u64,
        expected: usize,
        found: usize,
    },
    /// A bad row with `--strict`.
    #[error(
        "{row} (--strict stops at the first bad row; without it such rows are skipped and counted)"
    )]
    Strict { row: BadRow },
    /// A file that polars could not parse, for a reason not covered above.
    #[error("{path}: cannot read as {format}: {message}")]
    Unreadable {
        path: String,
        format: &'static str,
        message: String,
    },
    /// The input has a header but no row: nothing to mine, which is not a success.
    #[error("{files}: no rows, only a header; nothing to mine")]
    NoRow { files: String },
    /// Every file found in the folders given is something other than a log.
    #[error("none of the files found is a log; the first: {first}")]
    NotLogs { first: String },
    /// Rows were read but every one of them was bad: nothing to mine, which is not a success.
    #[error("no usable row: all {rows} rows are bad; the first: {first}")]
    NoUsableRow { rows: usize, first: String },
    /// A JSON field that holds objects where a value is needed.
    #[error(
        "{path}: '{column}' holds JSON objects where the {field} should be; name a field inside them, e.g. {flag} {column}.name"
    )]
    Nested {
        path: String,
        column: String,
        field: &'static str,
        flag: &'static str,
    },
    /// A column whose type cannot hold the field (a list in the tool column, say).
    #[error("{path}: column '{column}' has type {dtype}, which cannot be read as {field}")]
    BadType {
        path: String,
        column: String,
        dtype: String,
        field: &'static str,
    },
}

impl LoadError {
    /// Whether this says the file is not a log at all (rather than a log with a problem or a
    /// file that cannot be read).
    pub fn is_not_a_log(&self) -> bool {
        matches!(
            self,
            LoadError::MissingColumn { .. }
                | LoadError::Columns { .. }
                | LoadError::Nested { .. }
                | LoadError::Empty { .. }
                | LoadError::Binary { .. }
                | LoadError::Unreadable { .. }
                | LoadError::BadType { .. }
                | LoadError::Ragged { .. }
        )
    }

    pub(super) fn io(path: &std::path::Path, source: std::io::Error) -> LoadError {
        let path = path.display().to_string();
        match source.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound { path },
            _ => LoadError::Io { path, source },
        }
    }
}
