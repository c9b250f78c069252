//! JSON logs, read without polars: one JSON object per line (JSONL), a JSON array of objects, or
//! JSON documents one after another (pretty-printed or not). A line that is not a JSON object —
//! bad syntax, invalid UTF-8, nested deeper than serde_json's limit of 128 — is one bad row with
//! its line number, not a failed file. Values may be nested: arguments and results that are
//! objects are kept as JSON text, and a field inside an object is named with a dotted path
//! (`--tool-col tool.name`).

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

use indexmap::IndexSet;
use rayon::prelude::*;
use serde::de;
use serde_json::{Map, Value};

use super::agents::{self, Assembler};
use super::blocks;
use super::calls::{BAD_OUTCOME, BAD_SUCCESS, BAD_TIME, Calls, NO_OUTCOME, Row, tokens};
use super::columns::{ColumnNames, Field, Mapping, SuccessColumn};
use super::error::{BadRow, LoadError, Location};
use super::flat;
use super::input::{FileSummary, Input, Kind, LoadOptions};
use super::json::{Json, lookup};
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

/// A batch of an input's documents as its source hands them over.
pub(super) enum Batch {
    /// One document per line, not parsed yet, each with its 1-based line number: a table whose
    /// columns are known reads only the fields it uses ([`Wanted`]).
    Lines(Vec<(usize, Vec<u8>)>),
    /// Documents parsed whole.
    Records(Vec<Record>),
}

impl Batch {
    /// Its documents, parsed whole.
    pub(super) fn into_records(self) -> Vec<Record> {
        match self {
            Batch::Lines(lines) => lines
                .par_iter()
                .with_min_len(256)
                .map(|(at, line)| parse_line(*at, trim_line(line, *at == 1)))
                .collect(),
            Batch::Records(records) => records,
        }
    }
}

/// What takes the documents of an input, a batch at a time.
pub(super) type Each<'a> = dyn FnMut(Batch) -> Result<(), LoadError> + 'a;

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

/// Why `line` is not a JSON object, said as a bad row says it.
fn not_object(line: &[u8], e: &serde_json::Error) -> NotObject {
    NotObject {
        reason: reason(e),
        text: quote(line),
    }
}

fn parse_line(at: usize, line: &[u8]) -> Record {
    let value =
        serde_json::from_slice::<Map<String, Value>>(line).map_err(|e| not_object(line, &e));
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

/// The lines of `text`, each with its line end (the last one may have none) and where it
/// starts.
fn lines_of(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut from = 0;
    let ends = memchr::memchr_iter(b'\n', text).map(|i| i + 1);
    ends.chain((!text.ends_with(b"\n") && !text.is_empty()).then_some(text.len()))
        .map(move |end| {
            let start = std::mem::replace(&mut from, end);
            (start, &text[start..end])
        })
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
                    // A line of only a byte order mark is blank too.
                    if !trim_line(&line, number == 1)
                        .iter()
                        .all(u8::is_ascii_whitespace)
                    {
                        batch.push((number, line));
                    }
                }
                if batch.is_empty() {
                    return Ok(false);
                }
                each(Batch::Lines(batch))?;
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
            each(Batch::Records(out))?;
            Ok(elements)
        }
    }
}

/// A task outcome: a flag, a word or a number ([`parse_outcome`]); `BAD_OUTCOME` for anything
/// else.
fn outcome(v: Option<Json>) -> f64 {
    match v.filter(|v| !v.is_null()) {
        None => NO_OUTCOME,
        Some(v) => match v.as_bool() {
            Some(b) => f64::from(u8::from(b)),
            None => (v.text())
                .and_then(|s| parse_outcome(&s))
                .unwrap_or(BAD_OUTCOME),
        },
    }
}

/// A success flag (`true`, `1`, `"ok"`, …) or, for an error column, whether there is no error.
fn success(v: Option<Json>, error_column: bool) -> u8 {
    let v = v.filter(|v| !v.is_null());
    match (v, v.and_then(Json::as_bool), error_column) {
        (None, _, true) => 1,
        (_, Some(b), true) => u8::from(!b),
        (Some(v), None, true) => u8::from(v.as_str().is_some_and(|s| s.trim().is_empty())),
        (_, Some(b), false) => u8::from(b),
        (Some(v), None, false) => (v.text())
            .and_then(|s| parse_success(&s))
            .map_or(BAD_SUCCESS, u8::from),
        (None, _, false) => BAD_SUCCESS,
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
#[derive(Debug)]
struct Converted<'v> {
    session: Option<Cow<'v, str>>,
    tool: Option<Cow<'v, str>>,
    time: i64,
    success: u8,
    duration: Option<f64>,
    arguments: Option<Cow<'v, str>>,
    result: Option<Cow<'v, str>>,
    outcome: Option<f64>,
    usage: Option<u32>,
    /// The raw text of the values that did not parse.
    bad: Vec<(Field, String)>,
}

/// A table's columns, and the keys of a record that they read: each column's name and, for a
/// dotted path, each of its prefixes (all that [`lookup`] may look at).
struct Wanted {
    mapping: Mapping,
    keys: Vec<String>,
    /// The key of each field's column, by [`Field`]; `None` for a column not given.
    columns: [Option<usize>; Field::ALL.len()],
}

/// The values of a record's wanted keys, in the order of [`Wanted::keys`]: text borrowed from
/// the line where it has no escapes, so that most rows are read without a copy of their text.
type Fields<'l> = Vec<Option<Slot<'l>>>;

/// The value of a wanted key of a line.
#[derive(Debug)]
pub(super) enum Slot<'l> {
    Text(Cow<'l, str>),
    Other(Value),
}

impl Slot<'_> {
    fn json(&self) -> Json<'_> {
        match self {
            Slot::Text(s) => Json::str(s),
            Slot::Other(v) => Json::from(v),
        }
    }
}

impl Wanted {
    fn new(mapping: Mapping) -> Wanted {
        let mut keys: IndexSet<&str> = IndexSet::new();
        for field in Field::ALL {
            let column = mapping.column(field);
            if !column.is_empty() {
                keys.extend(column.match_indices('.').map(|(i, _)| &column[..i]));
                keys.insert(column);
            }
        }
        let keys: Vec<String> = keys.into_iter().map(String::from).collect();
        let columns = Field::ALL.map(|field| {
            let column = mapping.column(field);
            (!column.is_empty()).then(|| keys.iter().position(|k| k == column))?
        });
        Wanted {
            mapping,
            keys,
            columns,
        }
    }

    /// Which wanted key `key` is. Called for every key of every line and every column of every
    /// row: the keys are few and short, compared inline (a call of `memcmp` for each was a
    /// twentieth of reading the lines), the length and last byte first.
    fn index(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        self.keys.iter().position(|w| {
            let w = w.as_bytes();
            w.len() == key.len() && w.last() == key.last() && w.iter().zip(key).all(|(a, b)| a == b)
        })
    }

    /// The wanted fields of one line, which must be a JSON object as [`parse_line`] asks:
    /// the same lines fail, with the same errors, but the values of other keys are checked
    /// without being kept.
    /// `fields` is cleared first.
    /// `text` is the line when it is known to be UTF-8: its strings are then not checked again,
    /// and a flat line is read by [`flat::read`] (with `order`, the keys of the lines before).
    /// Strings with escapes are unescaped into buffers taken from `spare`, where those of the
    /// line before go back: two allocations a row saved, on logs whose payloads are JSON text.
    fn read<'l>(
        &self,
        line: &'l [u8],
        text: Option<&'l str>,
        order: &mut flat::Order<'l>,
        fields: &mut Fields<'l>,
        spare: &mut Vec<String>,
    ) -> Result<(), serde_json::Error> {
        recycle(fields, spare, self.keys.len());
        if let Some(text) = text {
            if flat::read(text, |k| self.index(k), order, fields, spare).is_some() {
                return Ok(());
            }
            // Not a flat object: serde_json reads it, and says why when it is bad.
            recycle(fields, spare, self.keys.len());
        }
        fn fill<'l, R: serde_json::de::Read<'l>>(
            wanted: &Wanted,
            mut de: serde_json::Deserializer<R>,
            fields: &mut Fields<'l>,
            spare: &mut Vec<String>,
        ) -> Result<(), serde_json::Error> {
            de::DeserializeSeed::deserialize(Fill(wanted, fields, spare), &mut de)?;
            de.end()
        }
        match text {
            Some(text) => fill(
                self,
                serde_json::Deserializer::from_str(text),
                fields,
                spare,
            ),
            None => fill(
                self,
                serde_json::Deserializer::from_slice(line),
                fields,
                spare,
            ),
        }
    }

    /// The rows of `piece`, whole lines of a table, and how many lines it spans: as the lines
    /// are read one at a time ([`records`]), numbered from the piece's start.
    fn part(&self, piece: &[u8], keep: usize) -> (Part, usize) {
        let mut part = Part::default();
        let mut lines = 0;
        let (mut fields, mut spare, mut order) = (Fields::new(), Vec::new(), flat::Order::new());
        let mut guessed = false;
        // Checked as UTF-8 once, rather than each string of each line as it is read.
        let text = std::str::from_utf8(piece).ok();
        for (at, line) in lines_of(piece) {
            lines += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // Only the line end is trimmed: the line still starts at `at`.
            let line = trim_line(line, false);
            let text = text.map(|t| &t[at..at + line.len()]);
            if part.lines.len() == GUESS_FROM && !guessed {
                part.calls.reserve_piece(at, piece.len());
                guessed = true;
            }
            match self.read(line, text, &mut order, &mut fields, &mut spare) {
                Ok(()) => part.push(
                    lines,
                    Ok(convert(|f| self.get(&fields, f), &self.mapping)),
                    keep,
                ),
                Err(e) => part.push(lines, Err(not_object(line, &e)), keep),
            }
        }
        (part, lines)
    }

    /// The value of `field`'s column in `fields`, as [`lookup`] finds it in the whole record:
    /// the key itself by its place (not by its name, as it is for every field of every row),
    /// else a dotted path into an object under one of its prefixes.
    fn get<'f>(&self, fields: &'f Fields, field: Field) -> Option<Json<'f>> {
        if let Some(slot) = &fields[self.columns[field as usize]?] {
            return Some(slot.json());
        }
        let path = self.mapping.column(field);
        path.match_indices('.')
            .find_map(|(i, _)| match &fields[self.index(&path[..i])?] {
                Some(Slot::Other(Value::Object(inner))) => lookup(inner, &path[i + 1..]),
                _ => None,
            })
            .map(Json::from)
    }
}

/// Empties `fields` into `len` empty slots, the buffers of its unescaped strings into `spare`.
fn recycle(fields: &mut Fields, spare: &mut Vec<String>, len: usize) {
    spare.extend(fields.drain(..).filter_map(|slot| match slot {
        Some(Slot::Text(Cow::Owned(s))) => Some(s),
        _ => None,
    }));
    fields.resize_with(len, || None);
}

/// How many rows of a piece of JSON lines the room for the rest is guessed from.
const GUESS_FROM: usize = 64;

/// Reads a line's wanted fields into the slots it holds.
struct Fill<'w, 'f, 'l>(&'w Wanted, &'f mut Fields<'l>, &'f mut Vec<String>);

impl<'l> de::DeserializeSeed<'l> for Fill<'_, '_, 'l> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'l>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'l> de::Visitor<'l> for Fill<'_, '_, 'l> {
    type Value = ();

    /// What serde_json's own map says, so that errors read the same.
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: de::MapAccess<'l>>(self, mut map: A) -> Result<(), A::Error> {
        let Fill(wanted, fields, spare) = self;
        while let Some(key) = map.next_key_seed(Key(wanted))? {
            match key {
                // A key given twice keeps its last value, as a map does.
                Some(i) => fields[i] = Some(map.next_value_seed(SlotSeed(&mut *spare))?),
                None => map.next_value::<Checked>().map(drop)?,
            }
        }
        Ok(())
    }
}

/// The value of a wanted key: a string borrowed when it can be, anything else as a [`Value`]
/// (read as serde_json reads one, so that errors and numbers are the same). A string that is
/// not borrowed goes into a buffer of the spare ones.
struct SlotSeed<'s>(&'s mut Vec<String>);

impl<'l> de::DeserializeSeed<'l> for SlotSeed<'_> {
    type Value = Slot<'l>;

    fn deserialize<D: de::Deserializer<'l>>(self, d: D) -> Result<Slot<'l>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'l> de::Visitor<'l> for SlotSeed<'_> {
    type Value = Slot<'l>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'l str) -> Result<Slot<'l>, E> {
        Ok(Slot::Text(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Slot<'l>, E> {
        let mut text = self.0.pop().unwrap_or_default();
        text.clear();
        text.push_str(s);
        Ok(Slot::Text(Cow::Owned(text)))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Slot<'l>, E> {
        Ok(Slot::Other(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Slot<'l>, E> {
        Ok(Slot::Other(Value::from(n)))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Slot<'l>, E> {
        Ok(Slot::Other(Value::from(n)))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Slot<'l>, E> {
        Ok(Slot::Other(Value::from(n)))
    }

    fn visit_unit<E>(self) -> Result<Slot<'l>, E> {
        Ok(Slot::Other(Value::Null))
    }

    fn visit_seq<A: de::SeqAccess<'l>>(self, seq: A) -> Result<Slot<'l>, A::Error> {
        de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Slot::Other)
    }

    fn visit_map<A: de::MapAccess<'l>>(self, map: A) -> Result<Slot<'l>, A::Error> {
        de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map)).map(Slot::Other)
    }
}

/// A key of a record: which wanted key it is, if any.
struct Key<'w>(&'w Wanted);

impl<'de> de::DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for Key<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.index(key))
    }
}

/// A value read and dropped, checked as a [`Value`] would be (text is UTF-8, nesting within
/// serde_json's limit), which serde's `IgnoredAny` does not do.
struct Checked;

impl<'de> de::Deserialize<'de> for Checked {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> de::Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// The value of `field`'s column in a whole record; `None` for a column not given.
fn column<'v>(map: &'v Map<String, Value>, m: &Mapping, field: Field) -> Option<Json<'v>> {
    let column = m.column(field);
    (!column.is_empty()).then(|| lookup(map, column).map(Json::from))?
}

/// Converts one record, whose values `get` finds by field.
fn convert<'v>(get: impl Fn(Field) -> Option<Json<'v>>, m: &Mapping) -> Converted<'v> {
    let error_column = matches!(m.success, Some(SuccessColumn::Error(_)));
    let success_value = m.success.as_ref().map(|_| get(Field::Success));
    let (session, tool) = (get(Field::Session), get(Field::Tool));
    let mut c = Converted {
        session: session.and_then(Json::text),
        tool: tool.and_then(Json::text),
        time: get(Field::Timestamp).map_or(BAD_TIME, Json::time),
        success: success_value.map_or(1, |v| success(v, error_column)),
        duration: get(Field::Duration).and_then(Json::number),
        arguments: get(Field::Arguments).and_then(Json::payload),
        result: get(Field::Result).and_then(Json::payload),
        outcome: m.outcome.as_ref().map(|_| outcome(get(Field::Outcome))),
        usage: m
            .tokens
            .as_ref()
            .map(|_| tokens(get(Field::Tokens).and_then(Json::number))),
        bad: Vec::new(),
    };
    // A session or tool that is there but not text (an object, an array) is shown as it is.
    let unreadable = |v: Option<Json>| v.is_some_and(|v| !v.is_null() && v.text().is_none());
    for (is_bad, f) in [
        (unreadable(session), Field::Session),
        (unreadable(tool), Field::Tool),
        (c.time == BAD_TIME, Field::Timestamp),
        (c.success == BAD_SUCCESS, Field::Success),
        (c.outcome == Some(BAD_OUTCOME), Field::Outcome),
    ] {
        if is_bad {
            let value = get(f).map_or(String::new(), Json::raw);
            c.bad.push((f, value));
        }
    }
    c
}

/// Rows of a table converted apart (on a parsing thread, for JSON lines), to be appended in
/// order by [`Rows::append`].
#[derive(Default)]
struct Part {
    calls: Calls,
    /// The line of each row, counted from the part's own start.
    lines: Vec<u32>,
    /// The raw text of the first `keep` values per field that did not parse, by row of the part.
    raw: Vec<(usize, Field, String)>,
    /// The first `keep` records that are not objects, by line; and how many there were.
    broken: Vec<(usize, NotObject)>,
    broken_count: usize,
}

impl Part {
    /// Adds the record at line `at`, converted, keeping `keep` of each kind of bad value.
    fn push(&mut self, at: usize, converted: Result<Converted, NotObject>, keep: usize) {
        let c = match converted {
            Ok(c) => c,
            Err(bad) => {
                self.broken_count += 1;
                if self.broken.len() < keep {
                    self.broken.push((at, bad));
                }
                return;
            }
        };
        let r = self.lines.len();
        for (f, value) in c.bad {
            if f == Field::Outcome {
                self.calls
                    .note_bad_outcome(c.session.as_deref(), value, keep);
            } else if kept(&self.raw, f) < keep {
                self.raw.push((r, f, value));
            }
        }
        self.calls.push(Row {
            session: c.session.as_deref(),
            tool: c.tool.as_deref(),
            time: c.time,
            success: c.success,
            duration: c.duration,
            arguments: c.arguments.as_deref(),
            result: c.result.as_deref(),
            outcome: c.outcome,
            usage: c.usage,
        });
        self.lines.push(at as u32);
    }
}

/// How many values of `field` `raw` holds.
fn kept(raw: &[(usize, Field, String)], field: Field) -> usize {
    raw.iter().filter(|(_, f, _)| *f == field).count()
}

/// What a file's rows leave besides the calls: each row's line, the bad values and broken
/// records kept for messages.
#[derive(Default)]
struct Rows {
    lines: Vec<u32>,
    raw: Vec<(usize, Field, String)>,
    broken: Vec<(usize, NotObject)>,
    broken_count: usize,
}

impl Rows {
    /// Appends `part`, whose lines are counted from line `line` on, its calls to `calls`.
    fn append(&mut self, calls: &mut Calls, part: Part, line: usize, keep: usize) {
        let row = self.lines.len();
        for (r, f, value) in part.raw {
            if kept(&self.raw, f) < keep {
                self.raw.push((row + r, f, value));
            }
        }
        calls.append(part.calls, keep);
        (self.lines).extend(part.lines.iter().map(|&at| at + line as u32));
        self.broken_count += part.broken_count;
        let room = keep.saturating_sub(self.broken.len());
        let broken = part.broken.into_iter().take(room);
        (self.broken).extend(broken.map(|(at, bad)| (at + line, bad)));
    }

    /// What a file's summary says of them.
    fn into_summary(self, path: &str, is_row: bool) -> FileSummary {
        FileSummary {
            raw: self.raw,
            lines: Some(self.lines),
            is_row,
            broken: self.broken_count,
            first_broken: (self.broken.into_iter())
                .map(|(at, bad)| bad.into_bad_row(path, at, is_row))
                .collect(),
            ..FileSummary::default()
        }
    }
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
    match lines_table(input, memory, options)? {
        Some(table) => read_lines_table(input, memory, table, calls, keep_raw),
        None => read_records(
            input,
            &mut |each| records(input, memory, each),
            options,
            calls,
            keep_raw,
        ),
    }
}

/// The columns of a JSON lines table, known from its first good records; `None` for other
/// layouts and kinds (and a table without a good record in its first lines).
fn lines_table(
    input: &Input,
    memory: Option<&[u8]>,
    options: &LoadOptions,
) -> Result<Option<Wanted>, LoadError> {
    if layout(input, memory)? != Layout::Lines {
        return Ok(None);
    }
    let mut reader = open(input, memory)?;
    let (mut sample, mut line) = (Vec::new(), Vec::new());
    for number in 1..=CHUNK_LINES {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io_error(input, e))?;
        if n == 0 || sample.len() == SAMPLE {
            break;
        }
        if let Ok(map) = serde_json::from_slice(trim_line(&line, number == 1)) {
            sample.push(map);
        }
    }
    let sample: Vec<&Map<String, Value>> = sample.iter().collect();
    let kind = options.format.filter(|&k| k != Kind::Xes);
    if sample.is_empty() || kind.unwrap_or_else(|| agents::kind_of(&sample)) != Kind::Table {
        return Ok(None);
    }
    let mapping = detect(&input.to_string(), &sample, &options.columns)?;
    Ok(Some(Wanted::new(mapping)))
}

/// Reads a JSON lines table into `calls` on every thread: the text is cut into pieces at line
/// ends ([`blocks`]), each piece's lines converted into a [`Part`], the parts appended in order.
fn read_lines_table(
    input: &Input,
    memory: Option<&[u8]>,
    table: Wanted,
    calls: &mut Calls,
    keep: usize,
) -> Result<FileSummary, LoadError> {
    let (source, size): (Box<dyn Read + Send>, usize) = match (memory, input) {
        (Some(m), _) => (Box::new(m), m.len()),
        (None, Input::File(path) | Input::Found(path)) => {
            let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
            let size = file.metadata().map_or(0, |m| m.len() as usize);
            (Box::new(file), size)
        }
        (None, Input::Stdin) => unreachable!("standard input is read into memory"),
    };
    let rows =
        table_rows(source, size, &table, PIECE, calls, keep).map_err(|e| io_error(input, e))?;
    Ok(FileSummary {
        kind: Kind::Table,
        has_success: table.mapping.success.is_some(),
        mapping: table.mapping,
        ..rows.into_summary(&input.to_string(), false)
    })
}

/// Reads the lines of a table of `size` bytes from `source` into `calls`, `piece` bytes
/// converted per thread.
fn table_rows(
    source: impl Read + Send,
    size: usize,
    table: &Wanted,
    piece: usize,
    calls: &mut Calls,
    keep: usize,
) -> std::io::Result<Rows> {
    let reader = blocks::Reader {
        start: |text: &[u8], eof: bool| match text.starts_with(BOM) {
            true => Some(BOM.len()),
            false if text.len() < BOM.len() && !eof => None,
            false => Some(0),
        },
        cut: line_pieces,
        parse: |piece: &[u8], _| Ok::<_, std::io::Error>(table.part(piece, keep)),
    };
    let (mut rows, mut line, start) = (Rows::default(), 0, calls.len());
    blocks::read(source, reader, piece, |(part, lines), bytes| {
        rows.append(calls, part, line, keep);
        if line == 0 {
            calls.reserve_rest(start, bytes, size);
        }
        line += lines;
        Ok(())
    })?;
    Ok(rows)
}

const BOM: &[u8] = b"\xef\xbb\xbf";
/// Bytes of JSON lines converted as one piece, on one thread.
const PIECE: usize = 4 << 20;

/// `bytes` (starting a line) cut at line ends into up to `n` pieces of about equal size: the end
/// of each (and 0, as [`blocks::Reader::cut`] asks). Bytes after the last line end are in no
/// piece unless `eof`: then they are the last.
fn line_pieces(bytes: &[u8], n: usize, eof: bool) -> Vec<(usize, usize)> {
    let step = bytes.len().div_ceil(n.max(1)).max(1);
    let mut out = Vec::with_capacity(n + 1);
    let mut from = 0;
    while from < bytes.len() {
        let to = (from + step).min(bytes.len());
        // The first line end from `to` on, else the last before it.
        let end = match memchr::memchr(b'\n', &bytes[to - 1..]) {
            Some(i) => to + i,
            None => match memchr::memrchr(b'\n', &bytes[from..to]) {
                Some(i) => from + i + 1,
                None => break,
            },
        };
        out.push((end, 0));
        from = end;
    }
    if eof && from < bytes.len() {
        out.push((bytes.len(), 0));
    }
    out
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
            each(Batch::Records(std::mem::take(&mut batch)))?;
        }
    }
    each(Batch::Records(batch))?;
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
    // A table's columns, once known.
    let mut table: Option<Wanted> = None;
    let mut assembler: Option<Box<dyn Assembler>> = None;
    let mut rows = Rows::default();
    let is_row = source(&mut |batch| {
        let batch = batch.into_records();
        // Until the kind and its columns are known, from the first good records.
        if table.is_none() && assembler.is_none() {
            let sample: Vec<&Map<String, Value>> = batch
                .iter()
                .filter_map(|r| r.value.as_ref().ok())
                .take(SAMPLE)
                .collect();
            if !sample.is_empty() {
                match *kind.get_or_insert_with(|| agents::kind_of(&sample)) {
                    Kind::Table => table = Some(Wanted::new(detect(&path, &sample, names)?)),
                    k => assembler = Some(agents::assembler(k, &path, options.mcp_names)),
                }
            }
        }
        // A table's records are converted in parallel; a transcript's go through its
        // assembler in order.
        let parts: Vec<Part> = match (&table, &assembler) {
            (Some(w), None) => batch
                .into_par_iter()
                .with_min_len(256)
                .fold(Part::default, |mut part, r| {
                    match r.value {
                        Ok(map) => {
                            let converted = convert(|f| column(&map, &w.mapping, f), &w.mapping);
                            part.push(r.at, Ok(converted), keep_raw);
                        }
                        Err(bad) => part.push(r.at, Err(bad), keep_raw),
                    }
                    part
                })
                .collect(),
            // Without a mapping or an assembler, a batch has no good record: only broken ones.
            _ => {
                let mut part = Part::default();
                for r in batch {
                    match (r.value, assembler.as_mut()) {
                        (Ok(map), Some(assembler)) => assembler.record(r.at, map),
                        (Ok(_), None) => {}
                        (Err(bad), _) => part.push(r.at, Err(bad), keep_raw),
                    }
                }
                vec![part]
            }
        };
        for part in parts {
            rows.append(calls, part, 0, keep_raw);
        }
        Ok(())
    })?;
    let mut summary = FileSummary {
        kind: kind.unwrap_or(Kind::Table),
        has_success: table.as_ref().is_none_or(|w| w.mapping.success.is_some()),
        mapping: table.map(|w| w.mapping).unwrap_or_default(),
        ..rows.into_summary(&path, is_row)
    };
    if let Some(assembler) = assembler {
        agents::push(assembler.finish(), calls, &mut summary);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::calls::{Interner, NONE_ID};
    use super::*;

    /// Columns at the top and inside objects, as flags name them.
    fn mapping() -> Mapping {
        Mapping {
            session: "s".into(),
            timestamp: "t".into(),
            tool: "tool.name".into(),
            success: Some(SuccessColumn::Flag("ok".into())),
            duration: Some("d".into()),
            arguments: Some("a".into()),
            result: Some("r.x.y".into()),
            outcome: Some("o".into()),
            tokens: Some("u.n".into()),
        }
    }

    /// A line converted as the first batch is (whole map) and as the others are (wanted
    /// fields), each as its `Debug` text or the bad row's reason.
    fn both_ways(line: &[u8]) -> (String, String) {
        let w = Wanted::new(mapping());
        let m = &w.mapping;
        let whole = serde_json::from_slice::<Map<String, Value>>(line)
            .map(|map| format!("{:?}", convert(|f| column(&map, m, f), m)));
        let said = |r: Result<String, serde_json::Error>| r.unwrap_or_else(|e| reason(&e));
        // Read as bytes, and as text when the line is UTF-8: the same either way. A line with
        // escapes goes first, so that the buffers and the order of keys it leaves are reused.
        let before = br#"{"s":"s\"1","t":"t\u0041","a":"{\"a\":[1,2,3,4,5,6]}"}"#;
        let wanted = |text: Option<&str>| {
            let (mut fields, mut spare) = (Fields::new(), Vec::new());
            let mut order = flat::Order::new();
            let text_before = std::str::from_utf8(before).ok();
            (w.read(before, text_before, &mut order, &mut fields, &mut spare)).expect("an object");
            let owned = |f: &Option<Slot>| matches!(f, Some(Slot::Text(Cow::Owned(_))));
            assert_eq!(fields.iter().filter(|f| owned(f)).count(), 3, "unescaped");
            let read = (w.read(line, text, &mut order, &mut fields, &mut spare))
                .map(|()| format!("{:?}", convert(|f| w.get(&fields, f), m)));
            said(read)
        };
        let (bytes, text) = (wanted(None), wanted(std::str::from_utf8(line).ok()));
        assert_eq!(bytes, text, "{line:?}");
        (said(whole), bytes)
    }

    fn key() -> impl Strategy<Value = &'static str> + Clone {
        prop::sample::select(vec![
            "s",
            "t",
            "tool",
            "tool.name",
            "name",
            "ok",
            "d",
            "a",
            "r",
            "r.x",
            "x",
            "x.y",
            "y",
            "o",
            "u",
            "u.n",
            "n",
            "z",
        ])
    }

    fn object(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        prop::collection::vec((key(), value), 0..8).prop_map(|entries| {
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        })
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            prop::sample::select(vec![
                "",
                " ",
                "x",
                "2026-01-05T09:00:22Z",
                "1700000000",
                "true",
                "ok",
                "0",
                "1.5",
                "{\"k\":1}",
                "é\n\"",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                object(inner),
            ]
        })
    }

    proptest! {
        /// The same lines are good, converted to the same calls, and the same are bad, for
        /// the same reason; lines cut short and bytes changed included.
        #[test]
        fn reading_the_wanted_fields_converts_as_reading_the_whole_record(
            record in object(value()),
            cut in any::<prop::sample::Index>(),
            byte in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
            twice in prop::option::of(key()),
        ) {
            let mut line = record.to_string().into_bytes();
            if let Some(key) = twice.filter(|_| line.len() > 2) {
                // A key given twice: the last value counts.
                let entry = format!("\"{key}\":\"2026-01-05T09:00:22Z\",");
                line.splice(1..1, entry.into_bytes());
            }
            if let Some((at, b)) = byte {
                let at = at.index(line.len());
                line[at] = b;
            }
            if cut.index(8) == 0 {
                line.truncate(cut.index(line.len()));
            }
            let (whole, wanted) = both_ways(&line);
            prop_assert_eq!(whole, wanted, "{}", String::from_utf8_lossy(&line));
        }
    }

    /// The calls and rows read, as text to compare.
    fn render(calls: &Calls, rows: &Rows) -> String {
        let names = |ids: &Interner, column: &[u32]| -> Vec<Option<String>> {
            let name = |&id: &u32| (id != NONE_ID).then(|| ids.names[id as usize].to_string());
            column.iter().map(name).collect()
        };
        let texts = |t: &crate::events::Texts| -> Vec<Option<String>> {
            (0..t.len()).map(|i| t.get(i).map(String::from)).collect()
        };
        let broken: Vec<_> = (rows.broken.iter())
            .map(|(at, bad)| (at, &bad.reason, &bad.text))
            .collect();
        format!(
            "{:?}",
            (
                names(&calls.session_ids, &calls.sessions),
                names(&calls.tool_ids, &calls.tools),
                (&calls.timestamps, &calls.success, &calls.durations),
                (&calls.usage, &calls.outcomes, &calls.bad_outcomes),
                (texts(&calls.arguments), texts(&calls.results)),
                (&rows.lines, &rows.raw, broken, rows.broken_count),
            )
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]
        /// Whatever the size of the pieces, JSON lines read on every thread are the rows read
        /// one line at a time, in order, with the same lines and bad values.
        #[test]
        fn lines_read_in_pieces_are_the_lines_read_one_at_a_time(
            lines in prop::collection::vec(prop_oneof![
                4 => object(value()).prop_map(|v| v.to_string()),
                1 => Just(String::new()),
                1 => Just(" \r".to_string()),
                1 => Just("{\"s\":".to_string()),
                1 => Just("[1]".to_string()),
            ], 0..40),
            piece in 1usize..300,
            bom in any::<bool>(),
            crlf in any::<bool>(),
            last_eol in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = if bom { "\u{feff}".to_string() } else { String::new() };
            text.push_str(&lines.join(eol));
            if last_eol {
                text.push_str(eol);
            }
            let table = Wanted::new(mapping());
            let keep = 3;
            let (mut calls, mut part) = (Calls::default(), Part::default());
            for (i, line) in text.as_bytes().split_inclusive(|&b| b == b'\n').enumerate() {
                if !trim_line(line, i == 0).iter().all(u8::is_ascii_whitespace) {
                    let record = parse_line(i + 1, trim_line(line, i == 0));
                    match record.value {
                        Ok(map) => {
                            let converted = convert(|f| column(&map, &table.mapping, f), &table.mapping);
                            part.push(record.at, Ok(converted), keep);
                        }
                        Err(bad) => part.push(record.at, Err(bad), keep),
                    }
                }
            }
            let mut rows = Rows::default();
            rows.append(&mut calls, part, 0, keep);
            let expected = render(&calls, &rows);
            let mut calls = Calls::default();
            let rows = table_rows(text.as_bytes(), text.len(), &table, piece, &mut calls, keep)
                .expect("reads from memory");
            prop_assert_eq!(render(&calls, &rows), expected);
        }
    }

    #[test]
    fn a_bad_value_of_an_unused_key_is_a_bad_line_as_before() {
        let deep = format!("{{\"z\":{}{}}}", "[".repeat(200), "]".repeat(200));
        for line in [
            &b"{\"s\":\"a\",\"z\":\"b\xffd\"}"[..],
            deep.as_bytes(),
            b"{\"s\":\"a\",\"z\":[1,]}",
            b"[{\"s\":\"a\"}]",
            b"{\"s\":\"a\"} x",
        ] {
            let (whole, wanted) = both_ways(line);
            assert!(!whole.starts_with("Converted"), "{whole}");
            assert_eq!(whole, wanted);
        }
        let (whole, wanted) = both_ways(b"{\"s\":\"a\",\"z\":{\"q\":[1,{}]}}");
        assert!(whole.starts_with("Converted"), "{whole}");
        assert_eq!(whole, wanted);
    }
}
