//! Line numbers for messages. Polars counts rows; a CSV field may span lines, so the text is read
//! again with the csv crate, only when there is something to report.

use std::io::{BufReader, Read};

use super::error::LoadError;
use super::input::{Format, Input};

/// The input's text: its bytes in memory (standard input, a decompressed file), or the file.
fn open<'a>(input: &Input, memory: Option<&'a [u8]>) -> Option<Box<dyn Read + 'a>> {
    Some(match (memory, input) {
        (Some(bytes), _) => Box::new(bytes),
        (None, Input::File(p) | Input::Found(p)) => {
            Box::new(BufReader::new(std::fs::File::open(p).ok()?))
        }
        (None, Input::Stdin) => return None,
    })
}

fn csv_reader<R: Read>(r: R, separator: u8) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(true)
        .flexible(true)
        // Records end at '\n' only: with the default, a CRLF file's records start at the '\n'
        // of the line before, one line too early. A field's trailing '\r' does not matter here:
        // only where records start and how many fields they have.
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(r)
}

/// Whether a CSV file's header is a Langfuse observation export's (`traceId`, `startTime`,
/// `type`, `level`, in either spelling).
pub(super) fn looks_like_langfuse(input: &Input, memory: Option<&[u8]>, separator: u8) -> bool {
    let Some(r) = open(input, memory) else {
        return false;
    };
    let Ok(headers) = csv_reader(r, separator).headers().cloned() else {
        return false;
    };
    let has = |names: &[&str]| {
        headers
            .iter()
            .any(|h| names.contains(&h.trim_start_matches('\u{feff}')))
    };
    has(&["traceId", "trace_id"])
        && has(&["startTime", "start_time"])
        && has(&["type"])
        && has(&["level"])
}

/// The first CSV row whose field count differs from the header's, as an error.
pub(super) fn find_ragged(
    input: &Input,
    memory: Option<&[u8]>,
    separator: u8,
) -> Option<LoadError> {
    let mut rdr = csv_reader(open(input, memory)?, separator);
    let expected = rdr.byte_headers().ok()?.len();
    let mut record = csv::ByteRecord::new();
    while rdr.read_byte_record(&mut record).ok()? {
        if record.len() != expected {
            return Some(LoadError::Ragged {
                path: input.to_string(),
                line: record.position().map_or(0, |p| p.line()),
                expected,
                found: record.len(),
            });
        }
    }
    None
}

/// How much of a CSV's start and end [`cut_short`] reads to decide.
const EDGE: usize = 64 << 10;

/// A CSV whose last line has no line end and does not parse (an open quote, fewer fields than
/// the header): a log still being written, its last row cut short. The text without that line,
/// the line's number and its text. Only the header and the last line are read to decide; the
/// whole text only when the row is cut.
pub(super) fn cut_short(
    input: &Input,
    memory: Option<&[u8]>,
    separator: u8,
) -> Option<(Vec<u8>, usize, String)> {
    use std::io::{Seek, SeekFrom};
    let path = match (memory, input) {
        (Some(_), _) => None,
        (None, Input::File(p) | Input::Found(p)) => Some(p),
        (None, Input::Stdin) => return None,
    };
    // The first and last EDGE bytes, and the size.
    let (head, tail, size) = match (memory, path) {
        (Some(bytes), _) => (
            bytes[..bytes.len().min(EDGE)].to_vec(),
            bytes[bytes.len().saturating_sub(EDGE)..].to_vec(),
            bytes.len(),
        ),
        (None, Some(p)) => {
            let mut file = std::fs::File::open(p).ok()?;
            let size = file.metadata().ok()?.len() as usize;
            let mut head = Vec::new();
            (&file).take(EDGE as u64).read_to_end(&mut head).ok()?;
            file.seek(SeekFrom::Start(size.saturating_sub(EDGE) as u64))
                .ok()?;
            let mut tail = Vec::new();
            file.read_to_end(&mut tail).ok()?;
            (head, tail, size)
        }
        (None, None) => return None,
    };
    if tail.last().is_none_or(|&b| b == b'\n') {
        return None;
    }
    // A last line longer than EDGE is left to the reader, as before.
    let start = tail.iter().rposition(|&b| b == b'\n')? + 1;
    let line = &tail[start..];
    let expected = csv_reader(&head[..], separator).byte_headers().ok()?.len();
    let mut fields = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let found = fields.byte_records().next()?.map_or(0, |r| r.len());
    let open_quote = line.iter().filter(|&&b| b == b'"').count() % 2 == 1;
    if !open_quote && found >= expected {
        return None;
    }
    let text = String::from_utf8_lossy(line).chars().take(80).collect();
    let keep = size - (tail.len() - start);
    let mut kept = match (memory, path) {
        (Some(bytes), _) => bytes[..keep].to_vec(),
        (None, Some(p)) => std::fs::read(p).ok()?,
        (None, None) => return None,
    };
    kept.truncate(keep);
    let number = kept.iter().filter(|&&b| b == b'\n').count() + 1;
    Some((kept, number, text))
}

/// The 1-based line (CSV) or row (Parquet) of each 0-based data row in `rows` (ascending).
pub(super) fn locate(
    input: &Input,
    format: Format,
    memory: Option<&[u8]>,
    rows: &[usize],
) -> Vec<usize> {
    let fallback = |r: &usize| match format {
        Format::Csv { .. } => r + 2,
        Format::Json | Format::Parquet | Format::Xes => r + 1,
    };
    let found = match (format, open(input, memory)) {
        (Format::Csv { separator }, Some(r)) => csv_lines(csv_reader(r, separator), rows),
        _ => Vec::new(),
    };
    rows.iter()
        .enumerate()
        .map(|(i, r)| found.get(i).copied().unwrap_or_else(|| fallback(r)))
        .collect()
}

fn csv_lines<R: Read>(mut rdr: csv::Reader<R>, rows: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(rows.len());
    let mut record = csv::ByteRecord::new();
    let mut index = 0;
    for &want in rows {
        while index <= want {
            match rdr.read_byte_record(&mut record) {
                Ok(true) => index += 1,
                _ => return out,
            }
        }
        out.push(record.position().map_or(0, |p| p.line() as usize));
    }
    out
}
