//! JSON logs, read without polars: one JSON object per line (JSONL), a JSON array of objects, or
//! JSON documents one after another (pretty-printed or not). A line that is not a JSON object —
//! bad syntax, invalid UTF-8, nested deeper than serde_json's limit of 128 — is one bad row with
//! its line number, not a failed file. Values may be nested: arguments and results that are
//! objects are kept as JSON text, and a field inside an object is named with a dotted path
//! (`--tool-col tool.name`).

use std::borrow::Cow;
use std::io::{BufRead, BufReader};

use indexmap::IndexSet;
use rayon::prelude::*;
use serde_json::{Map, Value};

use super::agents::{self, Assembler};
use super::calls::{BAD_OUTCOME, BAD_SUCCESS, BAD_TIME, Calls, NO_OUTCOME, Row, tokens};
use super::columns::{ColumnNames, Field, Mapping, SuccessColumn};
use super::error::{BadRow, LoadError, Location};
use super::input::{FileSummary, Input, Kind, LoadOptions};
use super::json::{lookup, number, payload, text, time};
use super::values::{parse_outcome, parse_success};

/// One JSON document of an input: where it is, and the object or why it is not one.
pub(super) struct Record {
    /// 1-based line, or 1-based element of a top-level array.
    pub at: usize,
    pub value: Result<Map<String, Value>, NotObject>,
}

/// A document that is not a JSON object: why, and the start of its text.
pub(super) struct NotObject {
    pub reason: String,
    pub text: String,
}

impl NotObject {
    /// The bad row this is, at `at` of `file`.
    pub(super) fn into_bad_row(self, file: &str, at: usize, is_row: bool) -> BadRow {
        BadRow {
            at: Location {
                file: file.to_string(),
                line: at,
                is_row,
            },
            column: String::new(),
            value: self.text,
            reason: self.reason.into(),
        }
    }
}

/// What takes the records of an input, a batch at a time.
pub(super) type Each<'a> = dyn FnMut(Vec<Record>) -> Result<(), LoadError> + 'a;

/// Lines parsed per parallel batch.
const CHUNK_LINES: usize = 1 << 14;
/// How much of a bad line a message quotes.
const QUOTED: usize = 80;

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// serde_json's message without its position, which is the line's own ("at line 1 column 9"):
/// the column is kept.
fn reason(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => format!("{} at column {}", &message[..i], e.column()),
        None => message,
    };
    match e.classify() {
        serde_json::error::Category::Eof => format!("the line is cut short ({message})"),
        _ => format!("not a JSON object ({message})"),
    }
}

fn parse_line(at: usize, line: &[u8]) -> Record {
    let value = serde_json::from_slice::<Map<String, Value>>(line).map_err(|e| NotObject {
        reason: reason(&e),
        text: quote(line),
    });
    Record { at, value }
}

/// How the documents of a JSON input are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One document per line.
    Lines,
    /// Documents spanning lines (pretty-printed), or one array of them.
    Documents,
}

fn open<'a>(input: &Input, memory: Option<&'a [u8]>) -> Result<Box<dyn BufRead + 'a>, LoadError> {
    Ok(match (memory, input) {
        (Some(bytes), _) => Box::new(bytes),
        (None, Input::File(path) | Input::Found(path)) => Box::new(BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?,
        )),
        (None, Input::Stdin) => unreachable!("standard input is read into memory"),
    })
}

/// Strips a line's end and, on the first line, a byte order mark.
fn trim_line(line: &[u8], first: bool) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match first {
        true => line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line),
        false => line,
    }
}

/// Lines when the first non-blank line is a whole document, else documents.
fn layout(input: &Input, memory: Option<&[u8]>) -> Result<Layout, LoadError> {
    let mut reader = open(input, memory)?;
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io_error(input, e))?;
        let text = trim_line(&line, first);
        first = false;
        if n == 0 {
            return Ok(Layout::Lines);
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let start = text.iter().position(|b| !b.is_ascii_whitespace());
        if start.is_some_and(|i| text[i] == b'[') {
            return Ok(Layout::Documents);
        }
        return Ok(match serde_json::from_slice::<Value>(text) {
            Err(e) if e.is_eof() => Layout::Documents,
            _ => Layout::Lines,
        });
    }
}

fn io_error(input: &Input, e: std::io::Error) -> LoadError {
    LoadError::io(std::path::Path::new(&input.to_string()), e)
}

/// Hands the records of `input` to `each` in order, a batch at a time. Returns whether records
/// are numbered by element (a top-level array) rather than by line.
pub(super) fn records(
    input: &Input,
    memory: Option<&[u8]>,
    each: &mut Each,
) -> Result<bool, LoadError> {
    match layout(input, memory)? {
        Layout::Lines => {
            let mut reader = open(input, memory)?;
            let mut number = 0;
            loop {
                let mut batch: Vec<(usize, Vec<u8>)> = Vec::with_capacity(CHUNK_LINES);
                let mut bytes = 0;
                while batch.len() < CHUNK_LINES && bytes < (64 << 20) {
                    let mut line = Vec::new();
                    let n = reader
                        .read_until(b'\n', &mut line)
                        .map_err(|e| io_error(input, e))?;
                    if n == 0 {
                        break;
                    }
                    number += 1;
                    bytes += n;
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        batch.push((number, line));
                    }
                }
                if batch.is_empty() {
                    return Ok(false);
                }
                let parsed = batch
                    .par_iter()
                    .with_min_len(256)
                    .map(|(at, line)| parse_line(*at, trim_line(line, *at == 1)))
                    .collect();
                each(parsed)?;
            }
        }
        Layout::Documents => {
            let owned;
            let bytes = match (memory, input) {
                (Some(bytes), _) => bytes,
                (None, Input::File(path) | Input::Found(path)) => {
                    owned = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
                    &owned[..]
                }
                (None, Input::Stdin) => unreachable!("standard input is read into memory"),
            };
            let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
            let (mut line, mut counted) = (1, 0);
            let mut out = Vec::new();
            let mut elements = false;
            loop {
                let start = stream.byte_offset();
                let next = stream.next();
                // The line a document starts on: newlines up to its first byte.
                let begin = start
                    + bytes[start..]
                        .iter()
                        .position(|b| !b.is_ascii_whitespace())
                        .unwrap_or(0);
                line += bytes[counted..begin]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                counted = begin;
                match next {
                    None => break,
                    Some(Ok(Value::Object(map))) => out.push(Record {
                        at: line,
                        value: Ok(map),
                    }),
                    Some(Ok(Value::Array(items))) => {
                        elements = true;
                        out.extend(items.into_iter().enumerate().map(|(i, item)| Record {
                            at: i + 1,
                            value: match item {
                                Value::Object(map) => Ok(map),
                                other => Err(NotObject {
                                    reason: "not a JSON object".into(),
                                    text: quote(other.to_string().as_bytes()),
                                }),
                            },
                        }));
                    }
                    Some(Ok(other)) => out.push(Record {
                        at: line,
                        value: Err(NotObject {
                            reason: "not a JSON object".into(),
                            text: quote(other.to_string().as_bytes()),
                        }),
                    }),
                    // After a syntax error the stream cannot go on: the rest is one bad row.
                    Some(Err(e)) => {
                        out.push(Record {
                            at: e.line().max(1),
                            value: Err(NotObject {
                                reason: format!(
                                    "{} (the rest of the file is not read)",
                                    reason(&e)
                                ),
                                text: quote(&bytes[begin..]),
                            }),
                        });
                        break;
                    }
                }
            }
            each(out)?;
            Ok(elements)
        }
    }
}

/// A task outcome: a flag, a word or a number ([`parse_outcome`]); `BAD_OUTCOME` for anything
/// else.
fn outcome(v: Option<&Value>) -> f64 {
    match v {
        None | Some(Value::Null) => NO_OUTCOME,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(v) => text(v)
            .and_then(|s| parse_outcome(&s))
            .unwrap_or(BAD_OUTCOME),
    }
}

/// A success flag (`true`, `1`, `"ok"`, …) or, for an error column, whether there is no error.
fn success(v: Option<&Value>, error_column: bool) -> u8 {
    match (v, error_column) {
        (None | Some(Value::Null), true) => 1,
        (Some(Value::Bool(b)), true) => u8::from(!b),
        (Some(Value::String(s)), true) => u8::from(s.trim().is_empty()),
        (Some(_), true) => 0,
        (Some(Value::Bool(b)), false) => u8::from(*b),
        (Some(v), false) => text(v)
            .and_then(|s| parse_success(&s))
            .map_or(BAD_SUCCESS, u8::from),
        (None, false) => BAD_SUCCESS,
    }
}

/// The columns of a JSON file, detected from its first records: top-level keys, and the dotted
/// paths that flags name.
fn detect(
    path: &str,
    sample: &[&Map<String, Value>],
    names: &ColumnNames,
) -> Result<Mapping, LoadError> {
    let mut found: IndexSet<String> = sample.iter().flat_map(|m| m.keys().cloned()).collect();
    let given = [
        &names.session,
        &names.timestamp,
        &names.tool,
        &names.success,
        &names.duration,
        &names.arguments,
        &names.result,
        &names.outcome,
        &names.tokens,
    ];
    for name in given.into_iter().flatten() {
        if sample.iter().any(|m| lookup(m, name).is_some()) {
            found.insert(name.clone());
        }
    }
    let found: Vec<String> = found.into_iter().collect();
    let mapping = Mapping::detect(path, &found, names)?;
    // A field that holds objects needs a path into them.
    for (column, field) in [
        (&mapping.session, Field::Session),
        (&mapping.tool, Field::Tool),
        (&mapping.timestamp, Field::Timestamp),
    ] {
        let mut values = sample.iter().filter_map(|m| lookup(m, column));
        let nested = values
            .clone()
            .any(|v| matches!(v, Value::Object(_) | Value::Array(_)));
        if nested && values.all(|v| matches!(v, Value::Object(_) | Value::Array(_) | Value::Null)) {
            return Err(LoadError::Nested {
                path: path.to_string(),
                column: column.clone(),
                field: field.name(),
                flag: field.flag(),
            });
        }
    }
    Ok(mapping)
}

/// One record of a table, converted.
struct Converted {
    session: Option<String>,
    tool: Option<String>,
    time: i64,
    success: u8,
    duration: Option<f64>,
    arguments: Option<Box<str>>,
    result: Option<Box<str>>,
    outcome: Option<f64>,
    usage: Option<u32>,
    /// The raw text of the values that did not parse.
    bad: Vec<(Field, String)>,
}

fn convert(map: &Map<String, Value>, m: &Mapping) -> Converted {
    let get = |c: &str| lookup(map, c);
    let field = |c: &Option<String>| c.as_deref().and_then(get);
    let error_column = matches!(m.success, Some(SuccessColumn::Error(_)));
    let success_value = match &m.success {
        Some(SuccessColumn::Flag(c) | SuccessColumn::Error(c)) => Some(get(c)),
        None => None,
    };
    let mut c = Converted {
        session: get(&m.session).and_then(text).map(Cow::into_owned),
        tool: get(&m.tool).and_then(text).map(Cow::into_owned),
        time: time(get(&m.timestamp)),
        success: success_value.map_or(1, |v| success(v, error_column)),
        duration: number(field(&m.duration)),
        arguments: field(&m.arguments).and_then(payload),
        result: field(&m.result).and_then(payload),
        outcome: m.outcome.as_deref().map(|c| outcome(get(c))),
        usage: m.tokens.as_deref().map(|c| tokens(number(get(c)))),
        bad: Vec::new(),
    };
    // A session or tool that is there but not text (an object, an array) is shown as it is.
    let unreadable = |v: Option<&Value>| v.is_some_and(|v| !v.is_null() && text(v).is_none());
    for (is_bad, f) in [
        (unreadable(get(&m.session)), Field::Session),
        (unreadable(get(&m.tool)), Field::Tool),
        (c.time == BAD_TIME, Field::Timestamp),
        (c.success == BAD_SUCCESS, Field::Success),
        (c.outcome == Some(BAD_OUTCOME), Field::Outcome),
    ] {
        if is_bad {
            let value = get(m.column(f)).map_or(String::new(), |v| match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            });
            c.bad.push((f, value));
        }
    }
    c
}

/// How many records the columns are detected from.
const SAMPLE: usize = 1000;

/// Reads a JSON file (any layout) into `calls`: a table of one call per record, or a transcript
/// or trace whose calls are assembled from several records (`kind`, else detected).
pub(super) fn read_json(
    input: &Input,
    memory: Option<&[u8]>,
    options: &LoadOptions,
    calls: &mut Calls,
    keep_raw: usize,
) -> Result<FileSummary, LoadError> {
    read_records(
        input,
        &mut |each| records(input, memory, each),
        options,
        calls,
        keep_raw,
    )
}

/// The rows of a CSV file as records of text values, keyed by the header's names (for kinds
/// that are assembled from records, as Langfuse exports are).
pub(super) fn csv_records(
    input: &Input,
    memory: Option<&[u8]>,
    separator: u8,
    each: &mut Each,
) -> Result<bool, LoadError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(separator)
        .flexible(true)
        .from_reader(open(input, memory)?);
    let unreadable = |e: csv::Error| LoadError::Unreadable {
        path: input.to_string(),
        format: "CSV",
        message: e.to_string(),
    };
    let headers: Vec<String> = rdr
        .headers()
        .map_err(unreadable)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut batch = Vec::new();
    for record in rdr.byte_records() {
        let record = record.map_err(unreadable)?;
        let at = record.position().map_or(0, |p| p.line() as usize);
        let value = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| match std::str::from_utf8(v) {
                Ok(v) => Ok((h.clone(), Value::String(v.to_string()))),
                Err(e) => Err(NotObject {
                    reason: format!("invalid UTF-8 in column '{h}' ({e})"),
                    text: quote(v),
                }),
            })
            .collect::<Result<Map<String, Value>, NotObject>>();
        batch.push(Record { at, value });
        if batch.len() == CHUNK_LINES {
            each(std::mem::take(&mut batch))?;
        }
    }
    each(batch)?;
    Ok(false)
}

/// Reads the records `source` hands over into `calls`, as [`read_json`] says.
pub(super) fn read_records(
    input: &Input,
    source: &mut dyn FnMut(&mut Each) -> Result<bool, LoadError>,
    options: &LoadOptions,
    calls: &mut Calls,
    keep_raw: usize,
) -> Result<FileSummary, LoadError> {
    let path = input.to_string();
    let names = &options.columns;
    let mut kind = options.format.filter(|&k| k != Kind::Xes);
    let mut mapping: Option<Mapping> = None;
    let mut assembler: Option<Box<dyn Assembler>> = None;
    let mut lines = Vec::new();
    let mut raw: Vec<(usize, Field, String)> = Vec::new();
    let mut broken = Vec::new();
    let mut broken_count = 0;
    let is_row = source(&mut |batch| {
        // Until the kind and its columns are known, from the first good records.
        if mapping.is_none() && assembler.is_none() {
            let sample: Vec<&Map<String, Value>> = batch
                .iter()
                .filter_map(|r| r.value.as_ref().ok())
                .take(SAMPLE)
                .collect();
            if !sample.is_empty() {
                match *kind.get_or_insert_with(|| agents::kind_of(&sample)) {
                    Kind::Table => mapping = Some(detect(&path, &sample, names)?),
                    k => assembler = Some(agents::assembler(k, &path, options.mcp_names)),
                }
            }
        }
        // A table's records are converted in parallel; a transcript's go through its
        // assembler in order.
        let converted: Vec<(usize, Result<Converted, NotObject>)> = match (&mapping, &assembler) {
            (Some(m), None) => batch
                .into_par_iter()
                .with_min_len(256)
                .map(|r| (r.at, r.value.map(|map| convert(&map, m))))
                .collect(),
            // Without a mapping or an assembler, a batch has no good record: only broken ones.
            _ => batch
                .into_iter()
                .filter_map(|r| match (r.value, assembler.as_mut()) {
                    (Ok(map), Some(assembler)) => {
                        assembler.record(r.at, map);
                        None
                    }
                    (value, _) => value.err().map(|bad| (r.at, Err(bad))),
                })
                .collect(),
        };
        for (at, c) in converted {
            let c = match c {
                Ok(c) => c,
                Err(bad) => {
                    broken_count += 1;
                    if broken.len() < keep_raw {
                        broken.push((at, bad));
                    }
                    continue;
                }
            };
            let r = lines.len();
            for (f, value) in c.bad {
                if f == Field::Outcome {
                    calls.note_bad_outcome(c.session.as_deref(), value, keep_raw);
                } else if raw.iter().filter(|(_, g, _)| *g == f).count() < keep_raw {
                    raw.push((r, f, value));
                }
            }
            calls.push(Row {
                session: c.session.as_deref(),
                tool: c.tool.as_deref(),
                time: c.time,
                success: c.success,
                duration: c.duration,
                arguments: c.arguments,
                result: c.result,
                outcome: c.outcome,
                usage: c.usage,
            });
            lines.push(at as u32);
        }
        Ok(())
    })?;
    let first_broken = broken
        .into_iter()
        .map(|(at, bad)| bad.into_bad_row(&path, at, is_row))
        .collect();
    let mut summary = FileSummary {
        kind: kind.unwrap_or(Kind::Table),
        has_success: mapping.as_ref().is_none_or(|m| m.success.is_some()),
        mapping: mapping.unwrap_or_default(),
        raw,
        lines: Some(lines),
        is_row,
        broken: broken_count,
        first_broken,
        ..FileSummary::default()
    };
    if let Some(assembler) = assembler {
        agents::push(assembler.finish(), calls, &mut summary);
    }
    Ok(summary)
}
