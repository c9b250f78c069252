//! Text read block by block, each block cut at record ends into a piece per thread, the pieces
//! parsed at the same time and handed over in the text's order while the next block is parsed:
//! the reading loop of CSV tables ([`super::csv_rows`]) and of JSON lines ([`super::records`]).

use std::io::Read;
use std::sync::mpsc;

use rayon::prelude::*;

/// How a text is cut and its pieces parsed.
pub(super) struct Reader<S, C, P> {
    /// Where the records start in the start of the text (after a header), `None` while more
    /// text is needed to tell; the text is its bytes so far and whether they are all of it.
    pub start: S,
    /// A block's text (starting a record) cut into up to `n` pieces at record ends: the end of
    /// each and a count the parser is given (its records, for a cutter that counts them). Text
    /// after the last record end is in no piece unless the block is the text's last (`eof`).
    pub cut: C,
    /// One piece, with its count, parsed.
    pub parse: P,
}

/// Reads the records of `source`, `piece` bytes parsed per thread, and hands each piece's
/// parse to `each` in order, with the bytes of text it came from. Stops at the first error, of
/// reading, parsing or `each`.
pub(super) fn read<T, E, S, C, P>(
    source: impl Read + Send,
    reader: Reader<S, C, P>,
    piece: usize,
    mut each: impl FnMut(T, usize) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
    E: From<std::io::Error> + Send,
    S: FnMut(&[u8], bool) -> Option<usize> + Send,
    C: Fn(&[u8], usize, bool) -> Vec<(usize, usize)> + Send,
    P: Fn(&[u8], usize) -> Result<T, E> + Send + Sync,
{
    let threads = rayon::current_num_threads();
    // A few blocks of pieces waiting at most: the loader holds a few blocks, never the file.
    let (tx, rx) = mpsc::sync_channel(2 * threads);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || produce(source, reader, piece, threads, tx));
        for parsed in rx {
            match parsed {
                // Dropping the receiver stops the producer at its next piece.
                Ok((t, bytes)) => each(t, bytes)?,
                Err(e) => return Err(e),
            }
        }
        producer.join().expect("the producer does not panic")
    })
}

/// Reads `source` block by block, parses each block's pieces on `threads` threads and sends
/// them in order.
fn produce<T, E, S, C, P>(
    mut source: impl Read,
    mut reader: Reader<S, C, P>,
    piece: usize,
    threads: usize,
    tx: mpsc::SyncSender<Result<(T, usize), E>>,
) -> Result<(), E>
where
    T: Send,
    E: From<std::io::Error> + Send,
    S: FnMut(&[u8], bool) -> Option<usize>,
    C: Fn(&[u8], usize, bool) -> Vec<(usize, usize)>,
    P: Fn(&[u8], usize) -> Result<T, E> + Sync,
{
    let block = piece.saturating_mul(threads);
    let mut text: Vec<u8> = Vec::new();
    let mut started = false;
    loop {
        let want = block.saturating_sub(text.len()).max(piece);
        let got = (&mut source).take(want as u64).read_to_end(&mut text)?;
        let eof = got < want;
        if !started {
            match (reader.start)(&text, eof) {
                Some(start) => {
                    text.drain(..start);
                    started = true;
                }
                None if eof => return Ok(()),
                None => continue,
            }
        }
        let cut = (reader.cut)(&text, threads, eof);
        let mut start = 0;
        let ranges: Vec<_> = (cut.iter())
            .map(|&(end, count)| (std::mem::replace(&mut start, end), end, count))
            .collect();
        let parse = &reader.parse;
        let parsed: Vec<_> = (ranges.par_iter())
            .map(|&(from, to, count)| Ok((parse(&text[from..to], count)?, to - from)))
            .collect();
        for one in parsed {
            let failed = one.is_err();
            if tx.send(one).is_err() || failed {
                return Ok(());
            }
        }
        if eof {
            return Ok(());
        }
        text.drain(..start);
    }
}
