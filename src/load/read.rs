//! Where a table is read (CSV by `csv_rows`, which finds its rows and the fields of plain ones;
//! polars parses the rest and reads Parquet): one file in,
//! typed columns out.

use std::io::Read;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::mpsc;

use itertools::Either;
use polars::prelude::*;
use rayon::prelude::*;

use super::calls::{
    BAD_OUTCOME, BAD_SUCCESS, BAD_TIME, Calls, Interner, NO_DURATION, NO_OUTCOME, NONE_ID,
    duration_ms, tokens,
};
use super::columns::{ColumnNames, Field, Mapping, SuccessColumn};
use super::csv_rows;
use super::error::LoadError;
use super::input::{FileSummary, Format, Input};
use super::values::{
    Stamp, float_stamp, int_stamp, parse_outcome, parse_success, parse_timestamp, trim,
};
use crate::events::{NO_USAGE, Texts};

/// Rows per batch handed over by polars' streaming engine: the loader holds a few batches of
/// text at a time, never the whole file.
const BATCH_ROWS: usize = 1 << 17;

/// Standard input read whole (decompressed when it is gzip or zstd), kept for line numbers.
pub(super) fn read_stdin() -> Result<Vec<u8>, LoadError> {
    let path = Path::new("<stdin>");
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::io(path, e))?;
    Ok(unpack(path, &bytes[..], &bytes, bytes.len() as u64)?.unwrap_or(bytes))
}

/// What a compressed input may decompress to: this many times its own size, and at least
/// [`MIN_UNPACKED_LIMIT`]. Logs compress 5–50×; a decompression bomb (1 MB of gzip holding 1 GB
/// of newlines) about 1000×.
pub const MAX_UNPACK_RATIO: u64 = 200;
pub const MIN_UNPACKED_LIMIT: u64 = 256 << 20;

/// The magic bytes of gzip and zstd.
const GZIP: [u8; 2] = [0x1f, 0x8b];
const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What `source` (`packed` bytes) holds, decompressed, when its first bytes (`head`) say gzip
/// or zstd; else `None`. Decompressing stops at the limit of [`MAX_UNPACK_RATIO`].
fn unpack(
    path: &Path,
    source: impl Read,
    head: &[u8],
    packed: u64,
) -> Result<Option<Vec<u8>>, LoadError> {
    let failed = |format: &'static str| {
        move |e: std::io::Error| LoadError::Unreadable {
            path: path.display().to_string(),
            format,
            message: e.to_string(),
        }
    };
    let limit = (packed.saturating_mul(MAX_UNPACK_RATIO)).max(MIN_UNPACKED_LIMIT);
    let mut bytes = Vec::new();
    let format = if head.starts_with(&GZIP) {
        flate2::read::MultiGzDecoder::new(source)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(failed("gzip"))?;
        "gzip"
    } else if head.starts_with(&ZSTD) {
        zstd::stream::read::Decoder::new(source)
            .and_then(|d| d.take(limit + 1).read_to_end(&mut bytes))
            .map_err(failed("zstd"))?;
        "zstd"
    } else {
        return Ok(None);
    };
    if bytes.len() as u64 > limit {
        return Err(LoadError::Unreadable {
            path: path.display().to_string(),
            format,
            message: format!(
                "it decompresses to more than {} MB, over {MAX_UNPACK_RATIO}× its {} bytes: \
                 refused as a decompression bomb would be (decompress it yourself if it is a log)",
                limit >> 20,
                crate::numbers::count(packed)
            ),
        });
    }
    Ok(Some(bytes))
}

/// The content of a file that is read from memory rather than from the file: a compressed file
/// (gzip, zstd), decompressed; a FIFO, a device or a process substitution (`<(zcat log.gz)`),
/// whose bytes can be read only once. `None` for a regular, uncompressed file.
pub(super) fn in_memory(path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
    let regular = meta.is_file();
    let open = || std::fs::File::open(path).map_err(|e| LoadError::io(path, e));
    if !regular {
        let mut bytes = Vec::new();
        open()?
            .read_to_end(&mut bytes)
            .map_err(|e| LoadError::io(path, e))?;
        let packed = bytes.len() as u64;
        return Ok(Some(
            unpack(path, &bytes[..], &bytes, packed)?.unwrap_or(bytes),
        ));
    }
    let mut magic = Vec::with_capacity(4);
    open()?
        .take(4)
        .read_to_end(&mut magic)
        .map_err(|e| LoadError::io(path, e))?;
    unpack(path, std::io::BufReader::new(open()?), &magic, meta.len())
}

/// Decides the format from the extension and the first bytes, and rejects empty and binary files.
/// `memory` holds the input's bytes when they are read from memory (standard input, a
/// decompressed file) rather than from the file.
pub(super) fn sniff(input: &Input, memory: Option<&[u8]>) -> Result<Format, LoadError> {
    let ext = match input {
        Input::Stdin => String::new(),
        Input::File(path) | Input::Found(path) => {
            // `log.csv.gz` and `log.csv.zst` are CSV files.
            let inner = match memory {
                Some(_)
                    if path.extension().is_some_and(|e| {
                        e.eq_ignore_ascii_case("gz") || e.eq_ignore_ascii_case("zst")
                    }) =>
                {
                    path.with_extension("")
                }
                _ => path.clone(),
            };
            inner
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase()
        }
    };
    let head = match (memory, input) {
        (Some(bytes), _) => bytes[..bytes.len().min(8192)].to_vec(),
        (None, Input::File(path) | Input::Found(path)) => {
            let mut head = Vec::with_capacity(8192);
            std::fs::File::open(path)
                .and_then(|f| f.take(8192).read_to_end(&mut head))
                .map_err(|e| LoadError::io(path, e))?;
            head
        }
        (None, Input::Stdin) => unreachable!("standard input is read into memory"),
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
    // Text with a stray bad byte is still text (its line is a bad row); mostly-invalid UTF-8 or a
    // NUL is not.
    let invalid = String::from_utf8_lossy(&head)
        .chars()
        .filter(|&c| c == char::REPLACEMENT_CHARACTER)
        .count();
    if head.contains(&0) || invalid * 100 > head.len() {
        return Err(LoadError::Binary { path });
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let after_bom = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    let xml = after_bom
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<');
    Ok(match ext.as_str() {
        "xes" | "xml" => Format::Xes,
        _ if xml => Format::Xes,
        "jsonl" | "ndjson" | "json" => Format::Json,
        "tsv" | "tab" => Format::Csv { separator: b'\t' },
        _ if ext != "csv" && matches!(first, Some(b'{' | b'[')) => Format::Json,
        _ => Format::Csv {
            separator: separator_of(&head),
        },
    })
}

/// The separator of a CSV file from its header line: of `,` `;` tab and `|`, the one that occurs
/// most often outside quotes (spreadsheets in many locales export `;`); `,` when none does.
fn separator_of(head: &[u8]) -> u8 {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b',' => counts[0] += 1,
            b';' => counts[1] += 1,
            b'\t' => counts[2] += 1,
            b'|' => counts[3] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t', b'|'];
    // The first of the most frequent: a tie goes to the comma.
    let best = (0..4).rev().max_by_key(|&i| counts[i]).expect("four");
    match counts[best] {
        0 => b',',
        _ => candidates[best],
    }
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

fn scan(input: &Input, format: Format, memory: Option<&[u8]>) -> PolarsResult<LazyFrame> {
    // Polars reads local files as object storage (see main.rs), whose paths may not hold `..`:
    // it gets the file's canonical path (messages still name the file as the user gave it).
    let path = |p: &Path| {
        PlRefPath::try_from_path(&std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
    };
    // Standard input and decompressed files are in memory already: the eager readers take them
    // as they are.
    if let Some(bytes) = memory {
        let bytes = std::io::Cursor::new(bytes);
        let frame = match format {
            Format::Csv { separator } => CsvReadOptions::default()
                .with_infer_schema_length(Some(0))
                .map_parse_options(|o| o.with_separator(separator))
                .into_reader_with_file_handle(bytes)
                .finish(),
            Format::Json | Format::Xes => unreachable!("read without polars"),
            Format::Parquet => ParquetReader::new(bytes).finish(),
        };
        return frame.map(IntoLazy::lazy);
    }
    let (Input::File(file) | Input::Found(file)) = input else {
        unreachable!("standard input is read into memory")
    };
    match format {
        // Every CSV column is read as text so that one odd value fails one row, not the file,
        // and so that the row can be quoted back to the user.
        Format::Csv { separator } => LazyCsvReader::new(path(file)?)
            .with_infer_schema_length(Some(0))
            .with_separator(separator)
            .with_glob(false)
            .finish(),
        Format::Json | Format::Xes => unreachable!("read without polars"),
        Format::Parquet => LazyFrame::scan_parquet(
            path(file)?,
            ScanArgsParquet {
                glob: false,
                ..Default::default()
            },
        ),
    }
}

/// The rows of a small Parquet table (a results file) as records of text values.
pub(super) fn parquet_records(
    input: &Input,
    memory: Option<&[u8]>,
) -> Result<Vec<super::records::Record>, LoadError> {
    let format = Format::Parquet;
    let frame = scan(input, format, memory)
        .and_then(LazyFrame::collect)
        .map_err(|e| unreadable(input, format, e))?;
    let mut rows = vec![serde_json::Map::new(); frame.height()];
    for column in frame.columns() {
        let Ok(text) = column.cast(&DataType::String) else {
            continue;
        };
        let text = text.str().expect("cast to text");
        for (row, v) in rows.iter_mut().zip(text.iter()) {
            if let Some(v) = v {
                row.insert(column.name().to_string(), v.into());
            }
        }
    }
    Ok((rows.into_iter().enumerate())
        .map(|(i, value)| super::records::Record {
            at: i + 1,
            value: Ok(value),
        })
        .collect())
}

/// Reads one file into `calls`: detects its columns, checks their types, and converts its rows
/// batch by batch. Keeps the raw text of the first `keep_raw` bad values of each field.
pub(super) fn read(
    input: &Input,
    format: Format,
    memory: Option<&[u8]>,
    names: &ColumnNames,
    calls: &mut Calls,
    keep_raw: usize,
) -> Result<FileSummary, LoadError> {
    let path = input.to_string();
    // A CSV's columns come from its header; the rows are read apart (`csv_rows`).
    let head = match (format, memory) {
        (Format::Csv { .. }, Some(m)) => Some(&m[..csv_rows::data_start(m).unwrap_or(m.len())]),
        _ => memory,
    };
    let mut lf = scan(input, format, head).map_err(|e| unreadable(input, format, e))?;
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
        // Dictionary-encoded text (Parquet writers' categoricals) is text.
        let textual = dtype.is_string() || dtype.is_categorical() || dtype.is_enum();
        match dtype.is_primitive_numeric() || dtype.is_bool() || textual {
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
    // The column each one is read from, under its name.
    let mut named = vec![
        (mapping.session.as_str(), "session"),
        (mapping.tool.as_str(), "tool"),
        (mapping.timestamp.as_str(), "timestamp"),
    ];
    let error_column = matches!(mapping.success, Some(SuccessColumn::Error(_)));
    if let Some(SuccessColumn::Flag(c) | SuccessColumn::Error(c)) = &mapping.success {
        select.push(text(c, "a success flag")?.alias("success"));
        named.push((c, "success"));
    }
    if let Some(c) = &mapping.duration {
        // A duration that is not a number is unknown, not a bad row: it only feeds statistics.
        select.push(col(c).cast(DataType::Float64).alias("duration"));
        named.push((c, "duration"));
    }
    // Payloads are JSON text; a column of another type (nested JSONL values) is not read.
    for (c, alias) in [
        (&mapping.arguments, "arguments"),
        (&mapping.result, "result"),
    ] {
        if let Some(c) = c
            && schema
                .get(c)
                .is_some_and(|d| d.is_string() || d.is_categorical() || d.is_enum())
        {
            select.push(col(c).cast(DataType::String).alias(alias));
            named.push((c, alias));
        }
    }
    if let Some(c) = &mapping.outcome {
        select.push(text(c, "a task outcome")?.alias("outcome"));
        named.push((c, "outcome"));
    }
    if let Some(c) = &mapping.tokens {
        // Like a duration: a count that is not a number is unknown, not a bad row.
        select.push(col(c).cast(DataType::Float64).alias("tokens"));
        named.push((c, "tokens"));
    }
    let mut batches = Batches::new(calls, &ts_dtype, error_column, keep_raw);
    let has_success = mapping.success.is_some();
    let read = match format {
        Format::Csv { separator } => {
            let used: Vec<&str> = (Field::ALL.iter()).map(|&f| mapping.column(f)).collect();
            let projection: Vec<usize> = (schema.iter_names().enumerate())
                .filter(|(_, name)| used.contains(&name.as_str()))
                .map(|(i, _)| i)
                .collect();
            // Each name with its place among the columns parsed.
            let names: Vec<(&str, usize)> = (named.iter())
                .map(|&(c, name)| {
                    let at = projection
                        .iter()
                        .position(|&i| schema.get_at_index(i).is_some_and(|(n, _)| n == c));
                    (name, at.expect("mapped columns are parsed"))
                })
                .collect();
            // The payloads' columns (each read for nothing else) are parsed into texts as the
            // calls keep them: their bytes copied once.
            let payload = |name: &str| {
                let (_, k) = *names.iter().find(|(n, _)| *n == name)?;
                (names.iter().filter(|(_, at)| *at == k).count() == 1).then_some(k)
            };
            let payloads = [payload("arguments"), payload("result")];
            let texts: Vec<usize> = payloads.iter().flatten().copied().collect();
            let options = CsvParseOptions::default().with_separator(separator);
            let parser = csv_rows::Parser {
                options: &options,
                schema: &schema,
                projection: &projection,
                texts: &texts,
            };
            // The rows of each piece are converted on the thread that parsed them, into calls of
            // their own; they join the file's in order on this one.
            let convert = |piece: csv_rows::Piece<'_>| -> PolarsResult<_> {
                let mut local = Calls::default();
                let mut converted = Batches::new(&mut local, &ts_dtype, error_column, keep_raw);
                match piece {
                    csv_rows::Piece::Fields(mut fields) => {
                        let texts = payloads.map(|k| k.and_then(|k| fields.take_texts(k)));
                        converted.append(&Table::Fields(&fields, &names), texts)
                    }
                    csv_rows::Piece::Frame(df) => {
                        let df = df.lazy().select(select.clone()).collect()?;
                        converted.append(&Table::Frame(&df), [None, None])
                    }
                }
                let raw = converted.raw;
                Ok((local, raw))
            };
            let (source, size): (Box<dyn Read + Send>, usize) = match (memory, input) {
                (Some(m), _) => (Box::new(m), m.len()),
                (None, Input::File(path) | Input::Found(path)) => {
                    let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
                    let size = file.metadata().map_or(0, |m| m.len() as usize);
                    (Box::new(file), size)
                }
                (None, Input::Stdin) => unreachable!("standard input is read into memory"),
            };
            let (mut first, start) = (true, batches.calls.len());
            csv_rows::read(
                source,
                &parser,
                csv_rows::PIECE,
                convert,
                |(local, raw), bytes| {
                    batches.merge(local, raw);
                    if std::mem::take(&mut first) {
                        batches.calls.reserve_rest(start, bytes, size);
                    }
                    Ok(())
                },
            )
        }
        _ => stream(lf.select(select), |df| {
            batches.append(&Table::Frame(&df), [None, None])
        }),
    };
    read.map_err(|e| match format {
        Format::Csv { separator } => super::lines::find_ragged(input, memory, separator)
            .unwrap_or_else(|| unreadable(input, format, e)),
        _ => unreadable(input, format, e),
    })?;
    Ok(FileSummary {
        mapping,
        has_success,
        raw: batches.raw,
        lines: None,
        is_row: matches!(format, Format::Parquet),
        ..FileSummary::default()
    })
}

/// Runs `plan` on polars' streaming engine in a thread of its own and hands each batch to
/// `each` on this thread, so that reading the next batch overlaps with converting this one.
fn stream(plan: LazyFrame, mut each: impl FnMut(DataFrame)) -> PolarsResult<()> {
    enum Message {
        Batch(DataFrame),
        Done(PolarsResult<()>),
    }
    let (tx, rx) = mpsc::sync_channel(2);
    let batches = tx.clone();
    // The callback returns whether to stop: when this side has gone away.
    let callback = PlanCallback::new(move |df| Ok(batches.send(Message::Batch(df)).is_err()));
    let plan = plan.sink_batches(callback, true, NonZeroUsize::new(BATCH_ROWS))?;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let result = plan.collect_with_engine(Engine::Streaming).map(drop);
            tx.send(Message::Done(result)).ok();
        });
        for message in rx {
            match message {
                Message::Batch(df) => each(df),
                Message::Done(result) => return result,
            }
        }
        unreachable!("the engine thread always says when it is done")
    })
}

/// Converts the batches of one file into rows of `calls`.
struct Batches<'a> {
    calls: &'a mut Calls,
    ts_dtype: DataType,
    error_column: bool,
    keep_raw: usize,
    /// Rows of this file so far.
    rows: usize,
    raw: Vec<(usize, Field, String)>,
}

impl<'a> Batches<'a> {
    fn new(calls: &'a mut Calls, ts_dtype: &DataType, error_column: bool, keep_raw: usize) -> Self {
        Batches {
            calls,
            ts_dtype: ts_dtype.clone(),
            error_column,
            keep_raw,
            rows: 0,
            raw: Vec::new(),
        }
    }

    /// Converts the rows of `table` into rows of the calls; its arguments and results, when
    /// `payloads` has them, are those.
    fn append(&mut self, table: &Table<'_>, payloads: [Option<Texts>; 2]) {
        let (parsed, any_order_key) = timestamps(table, &self.ts_dtype);
        let strings = |name: &str| table.text(name).expect("selected");
        intern(
            strings("session"),
            &mut self.calls.session_ids,
            &mut self.calls.sessions,
        );
        intern(
            strings("tool"),
            &mut self.calls.tool_ids,
            &mut self.calls.tools,
        );

        let height = table.height();
        self.calls.any_order_key |= any_order_key;
        let bad = parsed
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == BAD_TIME)
            .map(|(i, _)| i);
        for i in bad.take(self.keep_raw.saturating_sub(self.kept(Field::Timestamp))) {
            let text = table.raw("timestamp", i);
            self.raw.push((self.rows + i, Field::Timestamp, text));
        }
        self.calls.timestamps.extend(parsed);

        match table.text("success") {
            None => self.calls.success.extend(std::iter::repeat_n(1, height)),
            Some(values) => {
                let start = self.calls.success.len();
                self.calls.success.extend(values.iter().map(|v| {
                    match (v.map(trim), self.error_column) {
                        (None | Some(""), true) => 1,
                        (Some(_), true) => 0,
                        (None, false) => BAD_SUCCESS,
                        (Some(s), false) => parse_success(s).map_or(BAD_SUCCESS, u8::from),
                    }
                }));
                let bad = (0..height).filter(|&i| self.calls.success[start + i] == BAD_SUCCESS);
                for i in bad
                    .take(self.keep_raw.saturating_sub(self.kept(Field::Success)))
                    .collect::<Vec<_>>()
                {
                    self.raw.push((
                        self.rows + i,
                        Field::Success,
                        values.get(i).unwrap_or("").to_string(),
                    ));
                }
            }
        }
        let before = self.calls.success.len() - height;
        match table.numbers("duration") {
            Some(values) => {
                // After files without durations, their rows get none.
                self.calls.durations.resize(before, NO_DURATION);
                self.calls.durations.extend(values.map(duration_ms));
            }
            None if !self.calls.durations.is_empty() => self
                .calls
                .durations
                .extend(std::iter::repeat_n(NO_DURATION, height)),
            None => {}
        }
        match table.numbers("tokens") {
            Some(values) => {
                self.calls.usage.resize(before, NO_USAGE);
                self.calls.usage.extend(values.map(tokens));
            }
            None if !self.calls.usage.is_empty() => {
                (self.calls.usage).extend(std::iter::repeat_n(NO_USAGE, height))
            }
            None => {}
        }
        if let Some(values) = table.text("outcome") {
            self.calls.outcomes.resize(before, NO_OUTCOME);
            let sessions = strings("session");
            for (i, v) in values.iter().enumerate() {
                let parsed = match v.map(trim) {
                    None | Some("") => NO_OUTCOME,
                    Some(s) => parse_outcome(s).unwrap_or_else(|| {
                        let value = s.to_string();
                        (self.calls).note_bad_outcome(sessions.get(i), value, self.keep_raw);
                        BAD_OUTCOME
                    }),
                };
                self.calls.outcomes.push(parsed);
            }
        } else if !self.calls.outcomes.is_empty() {
            (self.calls.outcomes).extend(std::iter::repeat_n(NO_OUTCOME, height));
        }
        let columns = [
            ("arguments", &mut self.calls.arguments),
            ("result", &mut self.calls.results),
        ];
        for ((name, column), texts) in columns.into_iter().zip(payloads) {
            if let Some(texts) = texts {
                column.pad(before);
                column.append(texts);
                continue;
            }
            match table.text(name) {
                Some(values) => {
                    // After files without this column, their rows get none.
                    column.pad(before);
                    let bytes = values.iter().map(|v| v.map_or(0, |v| trim(v).len())).sum();
                    column.reserve(height, bytes);
                    for v in values.iter() {
                        column.push(v.map(trim));
                    }
                }
                None if !column.is_empty() => column.pad(before + height),
                None => {}
            }
        }
        self.rows += height;
    }

    /// Appends the rows of `calls`, converted apart, with the raw values `raw` kept of them (at
    /// their rows).
    fn merge(&mut self, calls: Calls, raw: Vec<(usize, Field, String)>) {
        for (i, field, text) in raw {
            if self.kept(field) < self.keep_raw {
                self.raw.push((self.rows + i, field, text));
            }
        }
        self.rows += calls.len();
        self.calls.append(calls, self.keep_raw);
    }

    fn kept(&self, field: Field) -> usize {
        self.raw.iter().filter(|(_, f, _)| *f == field).count()
    }
}

/// A batch of rows as read: polars' frame of the selected columns (named as the fields they
/// hold), or a CSV piece's fields found here, with the name of each column asked for and its
/// place among them.
enum Table<'a> {
    Frame(&'a DataFrame),
    Fields(&'a csv_rows::Fields<'a>, &'a [(&'a str, usize)]),
}

/// A text column of a [`Table`].
#[derive(Clone, Copy)]
enum Text<'a> {
    Frame(&'a StringChunked),
    Fields(&'a csv_rows::Fields<'a>, usize),
}

impl<'a> Table<'a> {
    fn height(&self) -> usize {
        match self {
            Table::Frame(df) => df.height(),
            Table::Fields(fields, _) => fields.rows(),
        }
    }

    /// The text column `name`, if read.
    fn text(&self, name: &str) -> Option<Text<'a>> {
        match *self {
            Table::Frame(df) => df.column(name).and_then(|c| c.str()).ok().map(Text::Frame),
            Table::Fields(fields, names) => (names.iter())
                .find(|(n, _)| *n == name)
                .map(|&(_, k)| Text::Fields(fields, k)),
        }
    }

    /// The number column `name`, if read: its values as polars casts text to numbers (a value
    /// that is not one is null).
    fn numbers(&self, name: &str) -> Option<impl Iterator<Item = Option<f64>> + 'a> {
        Some(match *self {
            Table::Frame(df) => Either::Left(df.column(name).and_then(|c| c.f64()).ok()?.iter()),
            Table::Fields(..) => Either::Right(
                (self.text(name)?.iter())
                    .map(|v| v.and_then(|v| fast_float2::parse(v.as_bytes()).ok())),
            ),
        })
    }

    /// The text of the value of column `name` in row `i`, as the user wrote it (empty when null).
    fn raw(&self, name: &str, i: usize) -> String {
        match (self, self.text(name)) {
            (_, Some(text)) => text.get(i).unwrap_or("").to_string(),
            (Table::Frame(df), None) => (df.column(name).ok())
                .and_then(|c| c.get(i).ok())
                .filter(|v| !v.is_null())
                .map_or(String::new(), |v| v.to_string()),
            (Table::Fields(..), None) => String::new(),
        }
    }
}

impl<'a> Text<'a> {
    fn get(self, i: usize) -> Option<&'a str> {
        match self {
            Text::Frame(values) => values.get(i),
            Text::Fields(fields, k) => fields.get(k, i),
        }
    }

    fn iter(self) -> impl Iterator<Item = Option<&'a str>> + 'a {
        match self {
            Text::Frame(values) => Either::Left(values.iter()),
            Text::Fields(fields, k) => {
                Either::Right((0..fields.rows()).map(move |i| fields.get(k, i)))
            }
        }
    }
}

/// Interns the non-empty values of a text column into `out`; null and blank become `NONE_ID`.
fn intern(values: Text<'_>, ids: &mut Interner, out: &mut Vec<u32>) {
    // Logs usually list a session's calls together: a run of one value is hashed once.
    let mut last: Option<(&str, u32)> = None;
    out.extend(values.iter().map(|v| match v.map(trim) {
        None | Some("") => NONE_ID,
        Some(s) => match last {
            Some((prev, id)) if prev == s => id,
            _ => {
                let id = ids.intern_other(s);
                last = Some((s, id));
                id
            }
        },
    }));
}

/// Parses the timestamps of `table` (of type `dtype`), text in parallel; `BAD_TIME` marks a value
/// that does not parse. Also says whether any value was a plain order key.
fn timestamps(table: &Table<'_>, dtype: &DataType) -> (Vec<i64>, bool) {
    let stamp = |s: Option<Stamp>| match s {
        Some(Stamp::Time(t)) => (t, false),
        Some(Stamp::Order(k)) => (k, true),
        None => (BAD_TIME, false),
    };
    let column = |table: &Table<'_>| match *table {
        Table::Frame(df) => df.column("timestamp").expect("selected").clone(),
        Table::Fields(..) => unreachable!("the timestamps of CSV fields are text"),
    };
    let parsed: Vec<(i64, bool)> = match dtype {
        DataType::String => {
            let text = table.text("timestamp").expect("text column");
            (0..table.height())
                .into_par_iter()
                .with_min_len(1 << 12)
                .map(|i| stamp(text.get(i).and_then(parse_timestamp)))
                .collect()
        }
        DataType::Datetime(unit, _) => {
            let scale = |v: i64| match unit {
                TimeUnit::Nanoseconds => v / 1_000,
                TimeUnit::Microseconds => v,
                TimeUnit::Milliseconds => v.saturating_mul(1_000),
            };
            let column = column(table);
            let ca = column.i64().expect("cast to i64");
            ca.iter()
                .map(|v| stamp(v.map(|v| Stamp::Time(scale(v)))))
                .collect()
        }
        d if d.is_float() => {
            let column = column(table);
            let ca = column.f64().expect("cast to f64");
            ca.iter().map(|v| stamp(v.and_then(float_stamp))).collect()
        }
        _ => {
            let column = column(table);
            let ca = column.i64().expect("cast to i64");
            ca.iter().map(|v| stamp(v.map(int_stamp))).collect()
        }
    };
    let any_order = parsed.iter().any(|&(_, order)| order);
    (parsed.into_iter().map(|(t, _)| t).collect(), any_order)
}
