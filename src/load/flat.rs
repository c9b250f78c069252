//! A JSON object of scalars on one line, the common shape of a JSON lines table, read without
//! serde: serde_json's map and visitor calls were most of the time of reading such a line.
//!
//! Only what is sure to read as serde_json reads it is read here: an object whose values are
//! strings, numbers, `true`, `false` or `null`. Anything else (a nested value, a surrogate
//! escape, bad syntax) gives up with `None`, and the line is read by serde_json, which also
//! says why a bad line is bad.

use std::borrow::Cow;

use serde_json::Value;

use super::records::Slot;

/// The keys of the lines read before, in the order of the last one, each with its index: the
/// lines of a table mostly have the same keys in the same order, which a comparison finds
/// without reading the key.
pub(super) type Order<'l> = Vec<(&'l str, Option<usize>)>;

/// Reads `line`'s values into `fields`, each key's at the index `index` gives it (a key without
/// one is checked and dropped; a key given twice keeps its last value). Strings with escapes are
/// unescaped into buffers taken from `spare`. `None` when the line is not a flat object read
/// exactly as serde_json would read it; `fields` may then hold some of its values.
pub(super) fn read<'l>(
    line: &'l str,
    index: impl Fn(&str) -> Option<usize>,
    order: &mut Order<'l>,
    fields: &mut [Option<Slot<'l>>],
    spare: &mut Vec<String>,
) -> Option<()> {
    let mut s = Scan { line, at: 0 };
    s.space();
    s.expect(b'{')?;
    s.space();
    if s.peek() == Some(b'}') {
        s.at += 1;
    } else {
        for k in 0.. {
            s.expect(b'"')?;
            let slot = match order.get(k) {
                // The key of the line before, closing quote included.
                Some(&(key, slot)) if s.follows(key) => {
                    s.at += key.len() + 1;
                    slot
                }
                _ => {
                    let key = match s.string(None)? {
                        Cow::Borrowed(key) => key,
                        // An escaped key is rare: serde_json reads it.
                        Cow::Owned(_) => return None,
                    };
                    order.truncate(k);
                    order.push((key, index(key)));
                    order[k].1
                }
            };
            s.space();
            s.expect(b':')?;
            s.space();
            match slot {
                // Most values are strings: read here, not through `value`'s return.
                Some(i) if s.peek() == Some(b'"') => {
                    s.at += 1;
                    fields[i] = Some(Slot::Text(s.string(Some(spare))?));
                }
                Some(i) => fields[i] = Some(s.value(Some(spare))?),
                None => drop(s.value(None)?),
            }
            s.space();
            match s.next()? {
                b',' => s.space(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.space();
    (s.at == line.len()).then_some(())
}

/// Where the first run of a string's plain text in `bytes` ends: at its closing quote, an
/// escape, or a control character (which JSON does not allow in a string). Eight bytes at a
/// time: the table of bytes alone was half of reading a line.
fn stop(bytes: &[u8]) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    for (k, word) in words.by_ref().enumerate() {
        let found = stops(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        if found != 0 {
            return Some(8 * k + found.trailing_zeros() as usize / 8);
        }
    }
    let tail = words.remainder();
    let at = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(bytes.len() - tail.len() + at)
}

/// The high bit of each byte of `word` that is a quote, a backslash or below 0x20; exact up to
/// the lowest one found (a borrow may set bits above it), which is all [`stop`] reads.
fn stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    below(word, 0x20)
        | below(word ^ (ONES * u64::from(b'"')), 1)
        | below(word ^ (ONES * u64::from(b'\\')), 1)
}

/// A place in a line.
struct Scan<'l> {
    line: &'l str,
    at: usize,
}

impl<'l> Scan<'l> {
    fn bytes(&self) -> &'l [u8] {
        self.line.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    /// Whether `key` and a closing quote come next.
    fn follows(&self, key: &str) -> bool {
        let rest = &self.bytes()[self.at..];
        rest.len() > key.len() && rest.starts_with(key.as_bytes()) && rest[key.len()] == b'"'
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Skips JSON's whitespace.
    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A value; a string with escapes is unescaped into a buffer from `spare`, or only checked
    /// when there is none to take.
    fn value(&mut self, spare: Option<&mut Vec<String>>) -> Option<Slot<'l>> {
        let literal = |s: &mut Scan, word: &str, v: Value| {
            let end = s.at + word.len();
            (s.line.get(s.at..end) == Some(word)).then(|| {
                s.at = end;
                Slot::Other(v)
            })
        };
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.string(spare).map(Slot::Text)
            }
            b'-' | b'0'..=b'9' => self.number().map(Slot::Other),
            b't' => literal(self, "true", Value::Bool(true)),
            b'f' => literal(self, "false", Value::Bool(false)),
            b'n' => literal(self, "null", Value::Null),
            _ => None,
        }
    }

    /// A number: digits alone read here, any other as serde_json reads it (its own float
    /// parser, its rules for `-0` and for integers out of range).
    fn number(&mut self) -> Option<Value> {
        let rest = &self.bytes()[self.at..];
        let len = (rest.iter())
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let token = &self.line[self.at..self.at + len];
        self.at += len;
        let digits = token.bytes().all(|b| b.is_ascii_digit());
        // At most 19 digits always fit a u64; a leading zero is not JSON.
        if digits && len <= 19 && (len == 1 || !token.starts_with('0')) {
            return token.parse::<u64>().ok().map(Value::from);
        }
        serde_json::from_str::<Value>(token)
            .ok()
            .filter(Value::is_number)
    }

    /// The rest of a string whose opening quote is read: borrowed when it has no escapes.
    fn string(&mut self, mut spare: Option<&mut Vec<String>>) -> Option<Cow<'l, str>> {
        let mut owned: Option<String> = None;
        loop {
            let rest = &self.bytes()[self.at..];
            let end = stop(rest)?;
            // A control character is not allowed in a JSON string.
            if rest[end] < 0x20 {
                return None;
            }
            let run = &self.line[self.at..self.at + end];
            self.at += end + 1;
            if rest[end] == b'"' {
                return Some(match owned {
                    Some(mut text) => {
                        text.push_str(run);
                        Cow::Owned(text)
                    }
                    None => Cow::Borrowed(run),
                });
            }
            let unescaped = self.escape()?;
            if let Some(spare) = spare.as_deref_mut() {
                let text = owned.get_or_insert_with(|| {
                    let mut text = spare.pop().unwrap_or_default();
                    text.clear();
                    text
                });
                text.push_str(run);
                text.push(unescaped);
            } else {
                // Only checked: a placeholder that is never read.
                owned.get_or_insert_with(String::new);
            }
        }
    }

    /// The character an escape after its backslash stands for. A surrogate (`\ud83d`) is left
    /// to serde_json, with its rules for pairs and lone halves.
    fn escape(&mut self) -> Option<char> {
        Some(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.line.get(self.at..self.at + 4)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                self.at += 4;
                char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEYS: [&str; 4] = ["s", "t", "a", "n"];

    /// The line's values by key as serde_json reads the object (the last of a key given twice),
    /// or `None` when it is not an object.
    fn by_serde(line: &str) -> Option<Vec<Option<Value>>> {
        let map = serde_json::from_str::<serde_json::Map<String, Value>>(line).ok()?;
        Some(KEYS.iter().map(|k| map.get(*k).cloned()).collect())
    }

    /// Keys in an order the lines below partly share, some the start of another (`s`, `sx`).
    const BEFORE: &str = r#"{"s":1,"sx":2,"t":3,"n":4,"a":5}"#;

    /// The line's values by key as [`read`] reads them after `before`, with the keys and
    /// buffers it left.
    fn by_flat_after(before: &str, line: &str) -> Option<Vec<Option<Value>>> {
        let index = |k: &str| KEYS.iter().position(|w| *w == k);
        let mut spare = vec!["left over".to_string()];
        let mut order = Order::new();
        let mut fields: Vec<Option<Slot>> = KEYS.iter().map(|_| None).collect();
        let _ = read(before, index, &mut order, &mut fields, &mut spare);
        fields.fill_with(|| None);
        read(line, index, &mut order, &mut fields, &mut spare)?;
        let value = |slot: &Option<Slot>| match slot {
            Some(Slot::Text(s)) => Some(Value::from(s.as_ref())),
            Some(Slot::Other(v)) => Some(v.clone()),
            None => None,
        };
        Some(fields.iter().map(value).collect())
    }

    fn by_flat(line: &str) -> Option<Vec<Option<Value>>> {
        by_flat_after(BEFORE, line)
    }

    #[test]
    fn flat_lines_are_read_here() {
        for line in [
            r#"{"s":"sess-1","t":"2026-01-05T09:00:22.448Z","a":"{\"id\":21637}","n":1004}"#,
            r#" { "s" : "x\u00e9\n\"\\\/" , "z":[], "t":-1.5e3 , "a":null,"n":true} "#,
            r#"{"z":"\u0000","s":"","n":18446744073709551615,"s":"again"}"#,
            r#"{"s":"a","sx":"b","t":"c","n":"d","a":"e","z":0}"#,
            r#"{"sx":"b","s":"a","t":"c"}"#,
            "{}",
        ] {
            // `z` (not wanted) is nested on the second line: it is left to serde_json.
            let nested = line.contains("[]");
            assert_eq!(by_flat(line).is_some(), !nested, "{line}");
            if !nested {
                assert_eq!(by_flat(line), by_serde(line), "{line}");
            }
        }
    }

    #[test]
    fn lines_read_here_or_not_are_never_read_otherwise_than_by_serde_json() {
        for line in [
            r#"{"s":"\ud83d\ude00"}"#,
            r#"{"s":"\ud83d"}"#,
            r#"{"s":"\x"}"#,
            "{\"s\":\"a\tb\"}",
            r#"{"n":01}"#,
            r#"{"n":-0}"#,
            r#"{"n":1.}"#,
            r#"{"n":18446744073709551616}"#,
            r#"{"n":1e400}"#,
            r#"{"s":"a",}"#,
            r#"{"s":"a"} x"#,
            r#"{"s" "a"}"#,
            r#"{"s":tru}"#,
            r#"{"s\u0041":1}"#,
            r#"{"s":{"x":1}}"#,
        ] {
            let flat = by_flat(line);
            assert!(flat.is_none() || flat == by_serde(line), "{line}");
        }
        // Only the lines that do not read as serde_json reads them are given up.
        assert_eq!(by_flat(r#"{"n":-0}"#), by_serde(r#"{"n":-0}"#));
        assert_eq!(by_flat(r#"{"n":1e400}"#), None);
        assert_eq!(by_flat(r#"{"s":"\ud83d\ude00"}"#), None);
    }

    fn token() -> impl Strategy<Value = String> {
        let literal = prop::sample::select(vec![
            "0",
            "-0",
            "01",
            "1.5",
            "1e5",
            "-12",
            "1E+2",
            ".5",
            "-",
            "1e400",
            "2.",
            "0.1e-2",
            "18446744073709551615",
            "18446744073709551616",
            "9999999999999999999",
            "-9223372036854775809",
            "true",
            "false",
            "null",
            "nul",
            "truex",
            "{}",
            "[1]",
            r#""\u00e9""#,
            r#""\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\x""#,
            "\"a\tb\"",
            r#""\/\b\f\r""#,
            r#""\u12""#,
            r#""\u004G""#,
            r#""é""#,
            "\"",
            "\"\\",
        ]);
        prop_oneof![
            literal.prop_map(String::from),
            any::<String>().prop_map(|s| Value::from(s).to_string()),
            any::<f64>().prop_map(|f| Value::from(f).to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
        ]
    }

    fn space() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "", " ", "\t", "\r\n ", "\u{a0}", "\u{c}"])
    }

    /// A line of entries with keys of a small set (one escaped, `sx` starting as `s`), values
    /// and spaces good and bad, and maybe junk in the middle.
    fn line() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["s", "sx", "t", "a", "n", "z", "s\\u0041"]);
        let entries = prop::collection::vec((key, token(), space(), space()), 0..6);
        let junk = prop::option::of(prop::sample::select(vec![",", "}", "x", ":", "\""]));
        (entries, junk, space(), space()).prop_map(|(entries, junk, start, end)| {
            let body: Vec<String> = (entries.iter())
                .map(|(k, v, a, b)| format!("{a}\"{k}\"{b}:{a}{v}{b}"))
                .collect();
            let mut line = format!("{start}{{{}}}{end}", body.join(","));
            if let Some(junk) = junk {
                let at = (0..=line.len() / 2)
                    .rev()
                    .find(|&i| line.is_char_boundary(i));
                line.insert_str(at.unwrap_or(0), junk);
            }
            line
        })
    }

    proptest! {
        /// A line read here is read as serde_json reads it, and a line serde_json does not read
        /// is not read here.
        #[test]
        fn a_line_read_here_is_read_as_serde_json_reads_it(
            before in line(),
            line in line(),
        ) {
            let flat = by_flat_after(&before, &line);
            if flat.is_some() {
                prop_assert_eq!(flat, by_serde(&line), "{}", line);
            }
        }
    }
}
