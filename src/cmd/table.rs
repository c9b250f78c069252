//! Aligned plain-text tables and number formatting for human output.

pub use crate::numbers::count;

/// A table whose columns are padded to their widest cell.
pub struct Table {
    header: Vec<&'static str>,
    /// Per column: right-aligned (numbers) or left-aligned (text).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            header: columns.iter().map(|c| c.0).collect(),
            right: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; control characters in it (a tool named with an escape code) are shown escaped.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row.iter().map(|c| printable(c)).collect());
    }

    /// The table with a trailing newline; the last column is not padded.
    pub fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let all = std::iter::once(&header).chain(&self.rows);
        let mut widths = vec![0; self.header.len()];
        for row in all.clone() {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in all {
            let last = row.len() - 1;
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                if i > 0 {
                    out.push_str("  ");
                }
                if self.right[i] {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i < last {
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            // An empty last cell leaves no trailing spaces.
            out.truncate(out.trim_end_matches(' ').len());
            out.push('\n');
        }
        out
    }
}

/// `s` for a terminal: control characters (escape codes from log data, say) as `\u{1b}`, so
/// that they are seen, not obeyed.
pub fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            match c.is_control() {
                true => Box::new(c.escape_unicode()),
                false => Box::new(std::iter::once(c)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("plain → text"), "plain → text");
        let mut t = Table::new(&[("tool", false)]);
        t.push(vec!["x\u{7}".into()]);
        assert_eq!(t.render(), "tool\nx\\u{7}\n");
    }

    #[test]
    fn columns_align() {
        let mut t = Table::new(&[("n", true), ("chain", false)]);
        t.push(vec!["1".into(), "a → b".into()]);
        t.push(vec!["100".into(), "c".into()]);
        assert_eq!(t.render(), "  n  chain\n  1  a → b\n100  c\n");
    }
}
