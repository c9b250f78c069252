//! The only place polars is used: one file in, typed columns out.

use std::io::Read;
use std::path::Path;

use polars::prelude::*;
use rayon::prelude::*;

use super::columns::{ColumnNames, Mapping, SuccessColumn};
use super::error::LoadError;
use super::values::{Stamp, float_stamp, int_stamp, parse_success, parse_timestamp};
use super::{Input, Interner};

/// The log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Csv { separator: u8 },
    Jsonl,
    Parquet,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Csv { .. } => "CSV",
            Format::Jsonl => "JSONL",
            Format::Parquet => "Parquet",
        }
    }
}

/// Sentinel of a missing session or tool id, and of an unparseable timestamp.
pub(super) const NONE_ID: u32 = u32::MAX;
const BAD_TIME: i64 = i64::MIN;

/// Success values per row: 0 failed, 1 succeeded, 2 did not parse.
const BAD_SUCCESS: u8 = 2;

/// One file's rows as interned ids and parsed values, with the polars frame kept for quoting the
/// raw values of bad rows.
pub(super) struct FileRows {
    pub mapping: Mapping,
    pub sessions: Vec<u32>,
    pub tools: Vec<u32>,
    pub timestamps: Vec<i64>,
    pub any_order_key: bool,
    /// `None` when the file has no success column.
    pub success: Option<Vec<u8>>,
    frame: DataFrame,
}

impl FileRows {
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// What is wrong with `row`, if anything: the field (as in [`FileRows::raw`]), the user's
    /// column name, and the reason.
    pub fn problem(&self, row: usize) -> Option<(&'static str, &str, &'static str)> {
        if self.sessions[row] == NONE_ID {
            Some(("session", &self.mapping.session, "no session id"))
        } else if self.tools[row] == NONE_ID {
            Some(("tool", &self.mapping.tool, "no tool name"))
        } else if self.timestamps[row] == BAD_TIME {
            Some((
                "timestamp",
                &self.mapping.timestamp,
                "timestamp does not parse",
            ))
        } else if self.success.as_ref().is_some_and(|s| s[row] == BAD_SUCCESS) {
            let (SuccessColumn::Flag(c) | SuccessColumn::Error(c)) =
                self.mapping.success.as_ref()?;
            Some(("success", c, "success value does not parse"))
        } else {
            None
        }
    }

    /// Whether the call in `row` succeeded (every call does in a file without a success column).
    pub fn succeeded(&self, row: usize) -> bool {
        self.success.as_ref().is_none_or(|s| s[row] == 1)
    }

    /// The raw text of a field (`session`, `tool`, `timestamp` or `success`) in `row`, `""` for
    /// null.
    pub fn raw(&self, field: &str, row: usize) -> String {
        let Ok(col) = self.frame.column(field) else {
            return String::new();
        };
        match col.get(row) {
            Ok(AnyValue::Null) | Err(_) => String::new(),
            Ok(AnyValue::String(s)) => s.to_string(),
            Ok(v) => v.to_string(),
        }
    }
}

/// Standard input read whole, kept for line numbers.
pub(super) fn read_stdin() -> Result<Vec<u8>, LoadError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::io(Path::new("<stdin>"), e))?;
    Ok(bytes)
}

/// Decides the format from the extension and the first bytes, and rejects empty and binary files.
pub(super) fn sniff(input: &Input, stdin: &[u8]) -> Result<Format, LoadError> {
    let (head, ext) = match input {
        Input::Stdin => (stdin[..stdin.len().min(8192)].to_vec(), String::new()),
        Input::File(path) => {
            let mut head = Vec::with_capacity(8192);
            std::fs::File::open(path)
                .and_then(|f| f.take(8192).read_to_end(&mut head))
                .map_err(|e| LoadError::io(path, e))?;
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            (head, ext)
        }
    };
    let path = input.to_string();
    if head.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(LoadError::Empty { path });
    }
    if head.starts_with(b"PAR1") {
        return Ok(Format::Parquet);
    }
    if matches!(ext.as_str(), "parquet" | "pq") {
        return Err(LoadError::Unreadable {
            path,
            format: "Parquet",
            message: "the file does not start with the Parquet magic bytes".into(),
        });
    }
    let text = match std::str::from_utf8(&head) {
        Ok(_) => true,
        // A multi-byte character cut by the 8 KiB window is fine.
        Err(e) => e.error_len().is_none(),
    };
    if !text || head.contains(&0) {
        return Err(LoadError::Binary { path });
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    Ok(match ext.as_str() {
        "jsonl" | "ndjson" | "json" => Format::Jsonl,
        "tsv" | "tab" => Format::Csv { separator: b'\t' },
        "csv" => Format::Csv { separator: b',' },
        _ if first == Some(b'{') => Format::Jsonl,
        _ => Format::Csv { separator: b',' },
    })
}

fn unreadable(input: &Input, format: Format, err: PolarsError) -> LoadError {
    // Polars messages can run over many lines with hints for Python users: keep the first.
    let message = err.to_string();
    let message = message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    LoadError::Unreadable {
        path: input.to_string(),
        format: format.name(),
        message,
    }
}

fn scan(input: &Input, format: Format, stdin: &[u8]) -> PolarsResult<LazyFrame> {
    let path = || match input {
        Input::File(p) => PlRefPath::try_from_path(p),
        Input::Stdin => unreachable!("stdin is read as CSV"),
    };
    match format {
        // Every CSV column is read as text so that one odd value fails one row, not the file,
        // and so that the row can be quoted back to the user.
        Format::Csv { separator } => match input {
            Input::Stdin => CsvReadOptions::default()
                .with_infer_schema_length(Some(0))
                .map_parse_options(|o| o.with_separator(separator))
                .into_reader_with_file_handle(std::io::Cursor::new(stdin))
                .finish()
                .map(IntoLazy::lazy),
            Input::File(_) => LazyCsvReader::new(path()?)
                .with_infer_schema_length(Some(0))
                .with_separator(separator)
                .with_glob(false)
                .finish(),
        },
        Format::Jsonl => LazyJsonLineReader::new(path()?).finish(),
        Format::Parquet => LazyFrame::scan_parquet(
            path()?,
            ScanArgsParquet {
                glob: false,
                ..Default::default()
            },
        ),
    }
}

/// Reads one file: detects its columns, checks their types, and converts its rows.
pub(super) fn read(
    input: &Input,
    format: Format,
    stdin: &[u8],
    names: &ColumnNames,
    session_ids: &mut Interner,
    tool_ids: &mut Interner,
) -> Result<FileRows, LoadError> {
    let path = input.to_string();
    let mut lf = scan(input, format, stdin).map_err(|e| unreadable(input, format, e))?;
    let schema = lf
        .collect_schema()
        .map_err(|e| unreadable(input, format, e))?;
    let found: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let mapping = Mapping::detect(&path, &found, names)?;

    let bad_type = |column: &str, field: &'static str| LoadError::BadType {
        path: path.clone(),
        column: column.to_string(),
        dtype: schema
            .get(column)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        field,
    };
    let text = |column: &str, field: &'static str| -> Result<Expr, LoadError> {
        let dtype = schema.get(column).expect("mapped columns exist");
        match dtype.is_primitive_numeric() || dtype.is_bool() || dtype.is_string() {
            true => Ok(col(column).cast(DataType::String)),
            false => Err(bad_type(column, field)),
        }
    };
    let ts_dtype = schema
        .get(&mapping.timestamp)
        .expect("mapped columns exist")
        .clone();
    let ts_expr = match &ts_dtype {
        DataType::String => col(&mapping.timestamp),
        DataType::Datetime(..) => col(&mapping.timestamp).cast(DataType::Int64),
        d if d.is_integer() => col(&mapping.timestamp).cast(DataType::Int64),
        d if d.is_float() => col(&mapping.timestamp).cast(DataType::Float64),
        _ => return Err(bad_type(&mapping.timestamp, "a timestamp")),
    };
    let mut select = vec![
        text(&mapping.session, "a session id")?.alias("session"),
        text(&mapping.tool, "a tool name")?.alias("tool"),
        ts_expr.alias("timestamp"),
    ];
    let success_column = mapping.success.as_ref().map(|s| match s {
        SuccessColumn::Flag(c) | SuccessColumn::Error(c) => c.clone(),
    });
    if let Some(c) = &success_column {
        select.push(text(c, "a success flag")?.alias("success"));
    }
    let mut frame = lf.select(select).collect().map_err(|e| match format {
        Format::Csv { separator } => super::lines::find_ragged(input, stdin, separator)
            .unwrap_or_else(|| unreadable(input, format, e)),
        _ => unreadable(input, format, e),
    })?;
    frame.rechunk_mut_par();

    let strings = |name: &str| {
        frame
            .column(name)
            .and_then(|c| c.str())
            .expect("cast to text")
            .clone()
    };
    let sessions = intern(&strings("session"), session_ids);
    let tools = intern(&strings("tool"), tool_ids);
    let (timestamps, any_order_key) =
        timestamps(frame.column("timestamp").expect("selected"), &ts_dtype);
    let success = success_column.is_some().then(|| {
        let error_column = matches!(mapping.success, Some(SuccessColumn::Error(_)));
        strings("success")
            .iter()
            .map(|v| match (v.map(str::trim), error_column) {
                (None | Some(""), true) => 1,
                (Some(_), true) => 0,
                (None, false) => BAD_SUCCESS,
                (Some(s), false) => parse_success(s).map_or(BAD_SUCCESS, u8::from),
            })
            .collect()
    });
    Ok(FileRows {
        mapping,
        sessions,
        tools,
        timestamps,
        any_order_key,
        success,
        frame,
    })
}

/// Interns the non-empty values of a text column; null and blank become `NONE_ID`.
fn intern(values: &StringChunked, ids: &mut Interner) -> Vec<u32> {
    values
        .iter()
        .map(|v| match v.map(str::trim) {
            None | Some("") => NONE_ID,
            Some(s) => ids.intern(s),
        })
        .collect()
}

/// Parses a timestamp column in parallel; `BAD_TIME` marks a value that does not parse.
fn timestamps(column: &Column, dtype: &DataType) -> (Vec<i64>, bool) {
    let stamp = |s: Option<Stamp>| match s {
        Some(Stamp::Time(t)) => (t, false),
        Some(Stamp::Order(k)) => (k, true),
        None => (BAD_TIME, false),
    };
    let parsed: Vec<(i64, bool)> = match dtype {
        DataType::String => {
            let ca = column.str().expect("text column");
            (0..ca.len())
                .into_par_iter()
                .with_min_len(1 << 14)
                .map(|i| stamp(ca.get(i).and_then(parse_timestamp)))
                .collect()
        }
        DataType::Datetime(unit, _) => {
            let scale = |v: i64| match unit {
                TimeUnit::Nanoseconds => v / 1_000,
                TimeUnit::Microseconds => v,
                TimeUnit::Milliseconds => v.saturating_mul(1_000),
            };
            let ca = column.i64().expect("cast to i64");
            ca.iter()
                .map(|v| stamp(v.map(|v| Stamp::Time(scale(v)))))
                .collect()
        }
        DataType::Float64 | DataType::Float32 => {
            let ca = column.f64().expect("cast to f64");
            ca.iter().map(|v| stamp(v.and_then(float_stamp))).collect()
        }
        _ => {
            let ca = column.i64().expect("cast to i64");
            ca.iter().map(|v| stamp(v.map(int_stamp))).collect()
        }
    };
    let any_order = parsed.iter().any(|&(_, order)| order);
    (parsed.into_iter().map(|(t, _)| t).collect(), any_order)
}
