//! CSV tables parsed on every thread: where rows end is found here; so are the fields of plain
//! rows ([`Fields`]), and polars' own chunk parser parses the rest.
//!
//! Polars' readers find where rows end one byte at a time, on one thread (its vectorised scan
//! needs a nightly compiler): a fifth of `mine`'s time at 1M calls, and a floor under it at 10M.
//! Here row ends are found sixteen bytes at a time (below), and the text is read in blocks cut at
//! row ends into a piece per thread ([`super::blocks`]), parsed (and finished, see [`read`]) at
//! the same time. Rows end where polars' would: at a line end outside quotes, every quote
//! opening or closing one.
//!
//! Building polars' arrays of a piece's values was most of reading it, only for the loader to
//! copy the values out again. A piece whose rows are plain (every field unquoted or quoted
//! whole, no carriage return, as many fields as the header) has its fields found here, sixteen
//! bytes at a time, and read where they are; the values are the ones polars reads (a proptest
//! holds the two to each other). Any other piece goes to polars as before.

use std::io::Read;

use polars::prelude::_csv_read_internal::read_chunk;
use polars::prelude::*;

use super::blocks;
use super::values::trim;
use crate::events::Texts;

const EOL: u8 = b'\n';
const QUOTE: u8 = b'"';
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Bytes of text parsed as one piece, on one thread.
pub(super) const PIECE: usize = 4 << 20;

/// Where the rows after the header start in `bytes`, the start of a CSV text: after a byte
/// order mark, the empty lines before the header and the header (as polars skips them).
/// `None` while the header row has not ended.
pub(super) fn data_start(bytes: &[u8]) -> Option<usize> {
    let mut at = match bytes.starts_with(BOM) {
        true => BOM.len(),
        false => 0,
    };
    loop {
        let line_end = at + bytes[at..].iter().position(|&b| b == EOL)?;
        match &bytes[at..line_end] {
            b"" | b"\r" => at = line_end + 1,
            _ => break,
        }
    }
    row_ends(&bytes[at..]).next().map(|end| at + end)
}

/// The offsets just after each row end in `bytes`, which start a row.
fn row_ends(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    end_masks(bytes).flat_map(|(start, mut ends)| {
        std::iter::from_fn(move || {
            (ends != 0).then(|| {
                let at = ends.trailing_zeros() as usize;
                ends &= ends - 1;
                start + at + 1
            })
        })
    })
}

/// Per block of 64 bytes of `bytes`: where it starts, and a bit per byte (the lowest first) set
/// where a row ends: at a line end outside quotes. The way simdjson finds what is quoted: a bit
/// per quote, their running parity is what is inside.
fn end_masks(bytes: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
    // All ones while inside quotes at the end of the block before.
    let mut inside = 0u64;
    blocks(bytes, [QUOTE, EOL]).map(move |(start, [quotes, eols])| {
        let quoted = prefix_xor(quotes) ^ inside;
        inside = ((quoted as i64) >> 63) as u64;
        (start, eols & !quoted)
    })
}

/// Per block of 64 bytes of `bytes`: where it starts, and per byte of `of` a bit per byte of the
/// block (the lowest first) set where it is that byte. The last block is filled out with zeros.
fn blocks<const N: usize>(bytes: &[u8], of: [u8; N]) -> impl Iterator<Item = (usize, [u64; N])> {
    bytes.chunks(64).enumerate().map(move |(k, chunk)| {
        let masks = match <&[u8; 64]>::try_from(chunk) {
            Ok(block) => masks(block, of),
            Err(_) => {
                let mut block = [0u8; 64];
                block[..chunk.len()].copy_from_slice(chunk);
                masks(&block, of)
            }
        };
        (64 * k, masks)
    })
}

/// Per byte of `of`, a bit per byte of `block` set where it is that byte. Sixteen bytes at a
/// time with SSE2, which every x86-64 processor has: five times as fast as eight bytes at a time
/// in a `u64` ([`masks_in_words`], for other processors).
#[cfg(target_arch = "x86_64")]
fn masks<const N: usize>(block: &[u8; 64], of: [u8; N]) -> [u64; N] {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let mut out = [0u64; N];
    for k in 0..4 {
        // SAFETY: SSE2 is part of x86-64; the load reads bytes `16 * k..16 * (k + 1)` of
        // `block`, unaligned loads allowed.
        let v = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * k).cast()) };
        for (mask, &byte) in out.iter_mut().zip(&of) {
            // SAFETY: as above, SSE2 only.
            let m = unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8))) };
            // The low 16 bits hold a bit per byte.
            *mask |= u64::from(m as u16) << (16 * k);
        }
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
fn masks<const N: usize>(block: &[u8; 64], of: [u8; N]) -> [u64; N] {
    masks_in_words(block, of)
}

/// [`masks`] eight bytes at a time, in a `u64`.
#[cfg(any(not(target_arch = "x86_64"), test))]
fn masks_in_words<const N: usize>(block: &[u8; 64], of: [u8; N]) -> [u64; N] {
    let mut out = [0u64; N];
    for (k, word) in block.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        for (mask, &byte) in out.iter_mut().zip(&of) {
            *mask |= equal_bytes(word, byte) << (8 * k);
        }
    }
    out
}

/// A bit per byte of `word` (little-endian: the first byte is the lowest bit) set where it is
/// `byte`.
#[cfg(any(not(target_arch = "x86_64"), test))]
fn equal_bytes(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (ONES * u64::from(byte));
    // The high bit of each byte that is zero in `x`, exactly (no borrow between bytes).
    let zero = !(((x & LOW7) + LOW7) | x | LOW7);
    // Gathers the eight high bits into the top byte, in order.
    (zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Bit `i` of the answer: the parity of bits `0..=i` of `x`.
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}

/// `bytes` (starting a row) cut at row ends into up to `n` pieces of about equal size: the end
/// of each and its rows. Bytes after the last row end are in no piece unless `eof`: then they
/// are the last piece, a row when they do not end with a line end (as polars counts them).
fn pieces(bytes: &[u8], n: usize, eof: bool) -> Vec<(usize, usize)> {
    let step = bytes.len().div_ceil(n.max(1)).max(1);
    let mut out = Vec::with_capacity(n + 1);
    let (mut rows, mut last, mut next) = (0, 0, step);
    for (start, mut ends) in end_masks(bytes) {
        if ends == 0 {
            continue;
        }
        // Rows are counted a block at a time, and gone through one by one only in the block
        // where a piece ends (this runs on one thread while the others wait).
        let top = start + 64 - ends.leading_zeros() as usize;
        if top < next {
            rows += ends.count_ones() as usize;
            last = top;
            continue;
        }
        while ends != 0 {
            let end = start + ends.trailing_zeros() as usize + 1;
            ends &= ends - 1;
            rows += 1;
            last = end;
            if end >= next {
                out.push((end, rows));
                rows = 0;
                next = end + step;
            }
        }
    }
    if rows > 0 {
        out.push((last, rows));
    }
    if eof && last < bytes.len() {
        out.push((bytes.len(), usize::from(bytes.last() != Some(&EOL))));
    }
    out
}

/// How the pieces' fields are parsed.
pub(super) struct Parser<'a> {
    pub options: &'a CsvParseOptions,
    /// The file's columns (all text), from its header.
    pub schema: &'a Schema,
    /// The indices of the columns to parse, in order.
    pub projection: &'a [usize],
    /// Of the columns parsed, those kept as the calls keep payloads ([`Fields::take_texts`]).
    pub texts: &'a [usize],
}

/// A piece of rows parsed: the fields found here, or polars' frame of the projected columns.
pub(super) enum Piece<'a> {
    Fields(Fields<'a>),
    Frame(DataFrame),
}

impl Parser<'_> {
    /// One piece of whole rows parsed: here when its rows are plain ([`Fields::find`]), else by
    /// polars' chunk parser. An error when the piece is not UTF-8 or does not hold `rows` rows
    /// (a ragged row, a quote left open).
    fn parse<'a>(&self, piece: &'a [u8], rows: usize) -> PolarsResult<Piece<'a>> {
        let Ok(text) = std::str::from_utf8(piece) else {
            polars_bail!(ComputeError: "invalid utf-8 sequence");
        };
        let (width, separator) = (self.schema.len(), self.options.separator);
        let (columns, texts) = (self.projection, self.texts);
        if let Some(fields) = Fields::find(text, separator, width, columns, texts, rows) {
            return Ok(Piece::Fields(fields));
        }
        let df = read_chunk(
            piece,
            self.options,
            self.schema,
            false,
            self.projection,
            0,
            rows,
            None,
            usize::MAX,
            piece.len(),
            Some(0),
        )?;
        polars_ensure!(
            df.height() == rows,
            ComputeError: "CSV malformed: expected {} rows, actual {} rows", rows, df.height()
        );
        Ok(Piece::Frame(df))
    }
}

/// Where a field's value is: `start..end` of the piece, of [`Fields`]' unescaped values (when
/// `start` has [`UNESCAPED`] set), or nowhere (`start` is [`NULL`]: an empty field without
/// quotes, which polars reads as null).
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

const NULL: u32 = u32::MAX;
const UNESCAPED: u32 = 1 << 31;

/// The field [`Fields::find`] reads next: where it starts, its column, the quotes before it.
#[derive(Default)]
struct Next {
    start: usize,
    column: usize,
    quotes_before: u32,
}

/// The fields of some columns of a piece of plain CSV rows, found sixteen bytes at a time: the
/// values polars' parser would read, without building its arrays (most of reading a CSV file).
pub(super) struct Fields<'a> {
    text: &'a str,
    /// The values of quoted fields with doubled quotes inside, undoubled.
    unescaped: String,
    /// Per column asked for, its field in each row (none for a column of `texts`).
    columns: Vec<Vec<Span>>,
    /// Per column asked for as texts, its values: trimmed, empty ones missing.
    texts: Vec<Option<Texts>>,
    rows: usize,
}

/// Where the fields of a column go.
#[derive(Clone, Copy)]
enum Slot {
    /// Not asked for: only checked to be plain.
    Skip,
    /// The `k`th column asked for, as spans.
    Span(usize),
    /// The `k`th column asked for, as texts.
    Text(usize),
}

/// A plain field: missing (empty, without quotes), its value where it is, or quoted with
/// doubled quotes inside (the range within its quotes).
enum Value {
    Null,
    Plain(std::ops::Range<usize>),
    Escaped(std::ops::Range<usize>),
}

impl<'a> Fields<'a> {
    /// The fields of `columns` (indices, ascending) of the `rows` rows of `text`, rows of
    /// `width` fields split by `separator`; of those columns, the `texts`th (indices among them)
    /// as texts. `None` unless every row is plain, so that the values are the ones polars reads:
    /// it has `width` fields, each one either without quotes or quoted whole (a quote first and
    /// last, quotes inside doubled), and no carriage return is anywhere.
    pub(super) fn find(
        text: &'a str,
        separator: u8,
        width: usize,
        columns: &[usize],
        texts: &[usize],
        rows: usize,
    ) -> Option<Fields<'a>> {
        let bytes = text.as_bytes();
        // With one column, an empty line is a row polars may skip.
        if width < 2 || bytes.len() >= UNESCAPED as usize {
            return None;
        }
        // The values of a column are at most the text: room for them all, so that none is
        // copied again to grow (room not written to takes no memory).
        let texts: Vec<Option<Texts>> = (0..columns.len())
            .map(|k| {
                texts.contains(&k).then(|| {
                    let mut values = Texts::default();
                    values.reserve(rows, bytes.len());
                    values
                })
            })
            .collect();
        let mut slot = vec![Slot::Skip; width];
        for (k, &c) in columns.iter().enumerate() {
            *slot.get_mut(c)? = match texts[k].is_some() {
                true => Slot::Text(k),
                false => Slot::Span(k),
            };
        }
        let (mut unescaped, mut spans) = SPARE.take();
        unescaped.clear();
        spans.resize_with(columns.len(), Vec::new);
        for (values, text) in spans.iter_mut().zip(&texts) {
            values.clear();
            if text.is_none() {
                values.reserve(rows);
            }
        }
        let mut fields = Fields {
            text,
            unescaped,
            columns: spans,
            texts,
            rows,
        };
        let (mut at, mut quotes_seen, mut found, mut inside) = (Next::default(), 0, 0, 0u64);
        for (block, [quotes, eols, separators, returns]) in
            blocks(bytes, [QUOTE, EOL, separator, b'\r'])
        {
            if returns != 0 {
                return None;
            }
            let quoted = prefix_xor(quotes) ^ inside;
            inside = ((quoted as i64) >> 63) as u64;
            let mut ends = (eols | separators) & !quoted;
            while ends != 0 {
                let bit = ends.trailing_zeros();
                ends &= ends - 1;
                let quotes_to = quotes_seen + (quotes & ((1 << bit) - 1)).count_ones();
                fields.end_field(&mut at, &slot, block + bit as usize, quotes_to)?;
                if eols >> bit & 1 == 1 {
                    if at.column != width {
                        return None;
                    }
                    at.column = 0;
                    found += 1;
                }
            }
            quotes_seen += quotes.count_ones();
        }
        // The last row, when the text does not end with a line end.
        if at.start < bytes.len() || at.column > 0 {
            fields.end_field(&mut at, &slot, bytes.len(), quotes_seen)?;
            if at.column != width {
                return None;
            }
            found += 1;
        }
        (found == rows).then_some(fields)
    }

    /// Ends the field at `at` at `end`, with `quotes_to` quotes before `end` in the text; `None`
    /// when the row has more than `slot.len()` fields or the field is not plain.
    fn end_field(
        &mut self,
        at: &mut Next,
        slot: &[Slot],
        end: usize,
        quotes_to: u32,
    ) -> Option<()> {
        let value = self.value(at.start, end, quotes_to - at.quotes_before)?;
        let text = self.text;
        match (*slot.get(at.column)?, value) {
            (Slot::Skip, Value::Escaped(inside)) => undouble(&text[inside], |_| {})?,
            (Slot::Skip, _) => {}
            (Slot::Span(k), value) => {
                let span = self.span(value)?;
                self.columns[k].push(span);
            }
            (Slot::Text(k), value) => {
                let values = self.texts[k].as_mut().expect("a column of texts");
                match value {
                    Value::Null => values.push(None),
                    Value::Plain(at) => values.push(Some(trim(&text[at]))),
                    Value::Escaped(inside) => values.push_with(inside.len(), |bytes| {
                        let from = bytes.len();
                        undouble(&text[inside], |part| bytes.push_str(part))?;
                        trim_from(bytes, from);
                        Some(())
                    })?,
                }
            }
        }
        *at = Next {
            start: end + 1,
            column: at.column + 1,
            quotes_before: quotes_to,
        };
        Some(())
    }

    /// What the field `start..end` of the text, holding `quotes` quotes, is; `None` when it
    /// holds quotes but is not quoted whole.
    fn value(&self, start: usize, end: usize, quotes: u32) -> Option<Value> {
        let field = &self.text.as_bytes()[start..end];
        Some(match quotes {
            0 if start == end => Value::Null,
            0 => Value::Plain(start..end),
            _ if field.len() < 2 || field[0] != QUOTE || field[field.len() - 1] != QUOTE => {
                return None;
            }
            2 => Value::Plain(start + 1..end - 1),
            _ => Value::Escaped(start + 1..end - 1),
        })
    }

    /// Where `value` is; `None` when a quote inside it is not doubled.
    fn span(&mut self, value: Value) -> Option<Span> {
        let (start, end) = match value {
            Value::Null => (NULL, NULL),
            Value::Plain(at) => (at.start as u32, at.end as u32),
            Value::Escaped(inside) => {
                let from = self.unescaped.len();
                let unescaped = &mut self.unescaped;
                undouble(&self.text[inside], |part| unescaped.push_str(part))?;
                (from as u32 | UNESCAPED, self.unescaped.len() as u32)
            }
        };
        Some(Span { start, end })
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The values of the `k`th column asked for, if asked for as texts and not taken yet.
    pub(super) fn take_texts(&mut self, k: usize) -> Option<Texts> {
        self.texts.get_mut(k)?.take()
    }

    /// The value of the `k`th column asked for (not as texts) in `row`: `None` where polars
    /// reads a null.
    pub(super) fn get(&self, k: usize, row: usize) -> Option<&str> {
        let Span { start, end } = self.columns[k][row];
        match start {
            NULL => None,
            s if s & UNESCAPED != 0 => {
                Some(&self.unescaped[(s & !UNESCAPED) as usize..end as usize])
            }
            s => Some(&self.text[s as usize..end as usize]),
        }
    }
}

/// Calls `part` with the parts of `inside` (a quoted field's inside) that make its value, each
/// doubled quote undoubled; `None` when a quote is not doubled.
fn undouble<'t>(inside: &'t str, mut part: impl FnMut(&'t str)) -> Option<()> {
    let mut rest = inside;
    while let Some(q) = memchr::memchr(QUOTE, rest.as_bytes()) {
        if rest.as_bytes().get(q + 1) != Some(&QUOTE) {
            return None;
        }
        part(&rest[..=q]);
        rest = &rest[q + 2..];
    }
    part(rest);
    Some(())
}

/// Trims the value that starts at `from` at the end of `bytes`, in place (see [`trim`]).
fn trim_from(bytes: &mut String, from: usize) {
    let value = &bytes[from..];
    let kept = trim(value);
    if kept.len() < value.len() {
        let (lead, len) = (kept.as_ptr() as usize - value.as_ptr() as usize, kept.len());
        bytes.replace_range(from..from + lead, "");
        bytes.truncate(from + len);
    }
}

thread_local! {
    /// The buffers of the last [`Fields`] of this thread, for the next: each piece would
    /// otherwise allocate megabytes afresh, whose pages the system zeroes again.
    static SPARE: std::cell::Cell<(String, Vec<Vec<Span>>)> = Default::default();
}

impl Drop for Fields<'_> {
    fn drop(&mut self) {
        let buffers = (
            std::mem::take(&mut self.unescaped),
            std::mem::take(&mut self.columns),
        );
        SPARE.set(buffers);
    }
}

/// Reads the rows of the CSV text `source` after its header, `piece` bytes parsed per thread,
/// and hands what `finish` makes of each piece parsed (on the same threads) to `each` in order, with
/// the bytes of text it came from. Stops at the first error, of reading, parsing, `finish` or
/// `each`.
pub(super) fn read<T: Send>(
    source: impl Read + Send,
    parser: &Parser<'_>,
    piece: usize,
    finish: impl Fn(Piece<'_>) -> PolarsResult<T> + Sync,
    each: impl FnMut(T, usize) -> PolarsResult<()>,
) -> PolarsResult<()> {
    let reader = blocks::Reader {
        start: |text: &[u8], _| data_start(text),
        cut: pieces,
        parse: |piece: &[u8], rows| finish(parser.parse(piece, rows)?),
    };
    blocks::read(source, reader, piece, each)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    /// What polars' own reader makes of `text`, every column as text.
    fn polars_reads(text: &[u8]) -> PolarsResult<DataFrame> {
        CsvReadOptions::default()
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(Cursor::new(text))
            .finish()
    }

    /// What [`read`] makes of `text` with pieces of `piece` bytes, every column parsed.
    fn reads(text: &[u8], piece: usize) -> PolarsResult<DataFrame> {
        let header = polars_reads(&text[..data_start(text).unwrap_or(text.len())])?;
        let schema = header.schema();
        let projection: Vec<usize> = (0..schema.len()).collect();
        let options = CsvParseOptions::default();
        let parser = Parser {
            options: &options,
            schema,
            projection: &projection,
            texts: &[],
        };
        let mut out = header.clone();
        let finish = |piece: Piece<'_>| frame(piece, schema, &projection);
        read(Cursor::new(text), &parser, piece, finish, |df, _| {
            out.vstack_mut(&df).map(drop)
        })?;
        Ok(out)
    }

    /// A piece parsed, as a frame of its `columns` of `schema`, all text.
    fn frame(piece: Piece<'_>, schema: &Schema, columns: &[usize]) -> PolarsResult<DataFrame> {
        let fields = match piece {
            Piece::Frame(df) => return Ok(df),
            Piece::Fields(fields) => fields,
        };
        let columns = (columns.iter().enumerate())
            .map(|(k, &c)| {
                let name = schema.get_at_index(c).expect("a column").0.clone();
                let values: Vec<Option<&str>> =
                    (0..fields.rows()).map(|i| fields.get(k, i)).collect();
                Column::new(name, values)
            })
            .collect();
        DataFrame::new(fields.rows(), columns)
    }

    /// The fields of `text` found here, as a frame of its `columns` of `width` named `0`, `1` …,
    /// if its rows are plain; and what polars' chunk parser makes of it.
    fn both_ways(
        text: &str,
        width: usize,
        columns: &[usize],
    ) -> (Option<DataFrame>, PolarsResult<DataFrame>) {
        let schema: Schema = (0..width)
            .map(|c| Field::new(c.to_string().into(), DataType::String))
            .collect();
        let rows = pieces(text.as_bytes(), 1, true).iter().map(|p| p.1).sum();
        let ours = Fields::find(text, b',', width, columns, &[], rows)
            .map(|f| frame(Piece::Fields(f), &schema, columns).expect("a frame"));
        let options = CsvParseOptions::default();
        let theirs = read_chunk(
            text.as_bytes(),
            &options,
            &schema,
            false,
            columns,
            0,
            rows,
            None,
            usize::MAX,
            text.len(),
            Some(0),
        );
        (ours, theirs)
    }

    #[test]
    fn plain_rows_are_read_here_and_others_by_polars() {
        let found = |text: &str| both_ways(text, 3, &[0, 2]).0.is_some();
        assert!(found("a,b,c\n\"x,\"\"y\",,\"\"\n,\" \",é"));
        // Not quoted whole, a carriage return, a ragged row, an empty line, an open quote.
        for text in [
            "a\"b,c,d\n",
            "\"a\"b,c,d\n",
            "a,b,c\r\n",
            "a,b\n",
            "a,b,c\n\na,b,c\n",
            "\"a,b,c\n",
        ] {
            assert!(!found(text), "{text:?}");
        }
        let (ours, theirs) = both_ways("a,b,c\n\"x,\"\"y\",,\"\"\n,\" \",é", 3, &[0, 2]);
        let ours = ours.expect("plain rows");
        assert!(
            ours.equals_missing(&theirs.expect("polars reads")),
            "{ours:?}"
        );
        assert_eq!(
            ours.column("0").unwrap().str().unwrap().get(1),
            Some("x,\"y")
        );
        assert_eq!(ours.column("2").unwrap().str().unwrap().get(1), Some(""));
        assert_eq!(ours.column("0").unwrap().str().unwrap().get(2), None);
    }

    #[test]
    fn rows_end_outside_quotes_only() {
        let text = b"a,\"x\ny\",\"\"\"\"\nb,c,d\n";
        assert_eq!(row_ends(text).collect::<Vec<_>>(), vec![13, 19]);
        assert_eq!(pieces(text, 2, false), vec![(13, 1), (19, 1)]);
        assert_eq!(pieces(b"a\nb", 1, true), vec![(2, 1), (3, 1)]);
        assert_eq!(pieces(b"a\nb", 1, false), vec![(2, 1)]);
    }

    #[test]
    fn the_header_may_follow_a_byte_order_mark_and_empty_lines() {
        assert_eq!(data_start(b"\xef\xbb\xbf\n\r\n\"a\nb\",c\nrow"), Some(14));
        assert_eq!(data_start(b"a,b"), None);
        assert_eq!(data_start(b""), None);
    }

    /// Row ends, byte by byte.
    fn row_ends_plainly(bytes: &[u8]) -> Vec<usize> {
        let mut quoted = false;
        let mut out = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            quoted ^= b == QUOTE;
            if b == EOL && !quoted {
                out.push(i + 1);
            }
        }
        out
    }

    proptest! {
        /// Both ways of finding quotes and line ends agree, with a bit per byte.
        #[test]
        fn masks_are_a_bit_per_byte(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\n'), Just(b','), Just(b'\r'), any::<u8>()],
                64,
            )
        ) {
            let block: &[u8; 64] = bytes.as_slice().try_into().expect("64 bytes");
            let of = [QUOTE, EOL, b',', b'\r'];
            let plainly = of.map(|byte| {
                (0..64).fold(0u64, |mask, i| mask | u64::from(block[i] == byte) << i)
            });
            prop_assert_eq!(masks(block, of), plainly);
            prop_assert_eq!(masks_in_words(block, of), plainly);
        }

        /// Pieces end at row ends, the first at or after each step from the last, with their
        /// rows counted.
        #[test]
        fn pieces_end_where_rows_end(
            bytes in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'\n'), any::<u8>()], 0..600),
            n in 1usize..6,
            eof in any::<bool>(),
        ) {
            let step = bytes.len().div_ceil(n).max(1);
            let mut want = Vec::new();
            let (mut rows, mut last, mut next) = (0, 0, step);
            for end in row_ends_plainly(&bytes) {
                rows += 1;
                last = end;
                if end >= next {
                    want.push((end, rows));
                    (rows, next) = (0, end + step);
                }
            }
            if rows > 0 {
                want.push((last, rows));
            }
            if eof && last < bytes.len() {
                want.push((bytes.len(), usize::from(bytes.last() != Some(&EOL))));
            }
            prop_assert_eq!(pieces(&bytes, n, eof), want);
        }

        #[test]
        fn row_ends_are_found_as_byte_by_byte(
            bytes in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'\n'), any::<u8>()], 0..300)
        ) {
            prop_assert_eq!(row_ends(&bytes).collect::<Vec<_>>(), row_ends_plainly(&bytes));
        }
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 ]{0,6}",
            // Quoted: separators, line ends and doubled quotes inside.
            "[a-z,\n\"]{0,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever the size of the pieces, the rows are polars' own, in order.
        #[test]
        fn the_same_frame_as_polars_reads(
            rows in prop::collection::vec(prop::collection::vec(field(), 3), 0..40),
            piece in 1usize..64,
            crlf in any::<bool>(),
            last_eol in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("h1,h2,h3{eol}");
            for (i, row) in rows.iter().enumerate() {
                text.push_str(&row.join(","));
                if i + 1 < rows.len() || last_eol {
                    text.push_str(eol);
                }
            }
            let ours = reads(text.as_bytes(), piece).expect("reads");
            let theirs = polars_reads(text.as_bytes()).expect("polars reads");
            prop_assert!(ours.equals_missing(&theirs), "{ours:?}\n{theirs:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Wherever the rows are plain enough to be read here, the values are polars' own.
        #[test]
        fn fields_found_here_are_what_polars_parses(
            rows in prop::collection::vec(
                // Three fields, now and then one less or one more.
                (prop::collection::vec(
                    prop_oneof![
                        4 => "[ab é]{0,3}",
                        3 => "[ab,\n\" ]{0,4}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
                        1 => "[ab\"\r ]{0,3}",
                    ],
                    4,
                ), prop_oneof![1 => Just(2usize), 8 => Just(3), 1 => Just(4)])
                    .prop_map(|(fields, n)| fields[..n].to_vec()),
                0..6,
            ),
            last_eol in any::<bool>(),
            columns in prop::sample::subsequence(vec![0usize, 1, 2], 1..=3),
        ) {
            let mut text = rows.iter().map(|row| row.join(",")).collect::<Vec<_>>().join("\n");
            if last_eol {
                text.push('\n');
            }
            if let (Some(ours), theirs) = both_ways(&text, 3, &columns) {
                let theirs = theirs.expect("polars parses what is plain");
                prop_assert!(ours.equals_missing(&theirs), "{ours:?}\n{theirs:?}");
            }
            // Columns taken as texts: the same values trimmed, an empty one missing; the rows
            // are plain or not alike.
            let rows = pieces(text.as_bytes(), 1, true).iter().map(|p| p.1).sum();
            let texts: Vec<usize> = (0..columns.len()).step_by(2).collect();
            let spans = Fields::find(&text, b',', 3, &columns, &[], rows);
            let found = Fields::find(&text, b',', 3, &columns, &texts, rows);
            prop_assert_eq!(spans.is_some(), found.is_some());
            if let (Some(spans), Some(mut found)) = (spans, found) {
                for k in 0..columns.len() {
                    let want: Vec<Option<&str>> = (0..rows)
                        .map(|i| spans.get(k, i).map(trim).filter(|v| !v.is_empty()))
                        .collect();
                    match found.take_texts(k) {
                        Some(values) => {
                            let got: Vec<Option<&str>> = (0..rows).map(|i| values.get(i)).collect();
                            prop_assert_eq!(got, want);
                        }
                        None => {
                            prop_assert!(!texts.contains(&k));
                            let got: Vec<Option<&str>> = (0..rows).map(|i| found.get(k, i)).collect();
                            let same: Vec<Option<&str>> = (0..rows).map(|i| spans.get(k, i)).collect();
                            prop_assert_eq!(got, same);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_ragged_row_is_an_error() {
        let err = reads(b"a,b\n1,2\n3,4,5\n6,7\n", 4).unwrap_err();
        assert!(
            err.to_string().contains("malformed") || err.to_string().contains("field"),
            "{err}"
        );
    }
}
