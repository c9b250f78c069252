//! CSV tables parsed on every thread: where rows end is found here, their fields are parsed by
//! polars' own chunk parser.
//!
//! Polars' readers find where rows end one byte at a time, on one thread (its vectorised scan
//! needs a nightly compiler): a fifth of `mine`'s time at 1M calls, and a floor under it at 10M.
//! Here row ends are found sixteen bytes at a time (below), and the text is read in blocks cut at
//! row ends into a piece per thread ([`super::blocks`]), parsed (and finished, see [`read`]) at
//! the same time. Rows end where polars' would: at a line end outside quotes, every quote
//! opening or closing one.

use std::io::Read;

use polars::prelude::_csv_read_internal::read_chunk;
use polars::prelude::builder::validate_utf8;
use polars::prelude::*;

use super::blocks;

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
    bytes.chunks(64).enumerate().map(move |(k, chunk)| {
        let (quotes, eols) = match <&[u8; 64]>::try_from(chunk) {
            Ok(block) => masks(block),
            Err(_) => {
                // The last block, filled with bytes that are neither.
                let mut block = [0u8; 64];
                block[..chunk.len()].copy_from_slice(chunk);
                masks(&block)
            }
        };
        let quoted = prefix_xor(quotes) ^ inside;
        inside = ((quoted as i64) >> 63) as u64;
        (64 * k, eols & !quoted)
    })
}

/// A bit per byte of `block`: where it is a quote, where a line end. Sixteen bytes at a time
/// with SSE2, which every x86-64 processor has: five times as fast as eight bytes at a time in
/// a `u64` ([`masks_in_words`], for other processors).
#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let (mut quotes, mut eols) = (0u64, 0u64);
    for k in 0..4 {
        // SAFETY: SSE2 is part of x86-64; the load reads bytes `16 * k..16 * (k + 1)` of
        // `block`, unaligned loads allowed.
        let (q, e) = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast());
            (
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(QUOTE as i8))),
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(EOL as i8))),
            )
        };
        // The low 16 bits hold a bit per byte.
        quotes |= u64::from(q as u16) << (16 * k);
        eols |= u64::from(e as u16) << (16 * k);
    }
    (quotes, eols)
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(block: &[u8; 64]) -> (u64, u64) {
    masks_in_words(block)
}

/// [`masks`] eight bytes at a time, in a `u64`.
#[cfg(any(not(target_arch = "x86_64"), test))]
fn masks_in_words(block: &[u8; 64]) -> (u64, u64) {
    let (mut quotes, mut eols) = (0, 0);
    for (k, word) in block.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        quotes |= equal_bytes(word, QUOTE) << (8 * k);
        eols |= equal_bytes(word, EOL) << (8 * k);
    }
    (quotes, eols)
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
    for end in row_ends(bytes) {
        rows += 1;
        last = end;
        if end >= next {
            out.push((end, rows));
            rows = 0;
            next = end + step;
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
}

impl Parser<'_> {
    /// One piece of whole rows as a frame of the projected columns; an error when the piece is
    /// not UTF-8 or does not hold `rows` rows (a ragged row, a quote left open).
    fn parse(&self, piece: &[u8], rows: usize) -> PolarsResult<DataFrame> {
        polars_ensure!(validate_utf8(piece), ComputeError: "invalid utf-8 sequence");
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
        Ok(df)
    }
}

/// Reads the rows of the CSV text `source` after its header, `piece` bytes parsed per thread,
/// and hands what `finish` makes of each frame (on the same threads) to `each` in order, with
/// the bytes of text it came from. Stops at the first error, of reading, parsing, `finish` or
/// `each`.
pub(super) fn read<T: Send>(
    source: impl Read + Send,
    parser: &Parser<'_>,
    piece: usize,
    finish: impl Fn(DataFrame) -> PolarsResult<T> + Sync,
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
        };
        let mut out = header.clone();
        read(Cursor::new(text), &parser, piece, Ok, |df, _| {
            out.vstack_mut(&df).map(drop)
        })?;
        Ok(out)
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
            bytes in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'\n'), any::<u8>()], 64)
        ) {
            let block: &[u8; 64] = bytes.as_slice().try_into().expect("64 bytes");
            let plainly = (0..64).fold((0u64, 0u64), |(q, e), i| {
                (q | u64::from(block[i] == QUOTE) << i, e | u64::from(block[i] == EOL) << i)
            });
            prop_assert_eq!(masks(block), plainly);
            prop_assert_eq!(masks_in_words(block), plainly);
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

    #[test]
    fn a_ragged_row_is_an_error() {
        let err = reads(b"a,b\n1,2\n3,4,5\n6,7\n", 4).unwrap_err();
        assert!(
            err.to_string().contains("malformed") || err.to_string().contains("field"),
            "{err}"
        );
    }
}
