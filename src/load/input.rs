//! What every reader shares: the inputs, their formats and kinds, what to load and what one file
//! contributed. Imports nothing of its sibling readers.

use std::path::PathBuf;

use super::columns::{ColumnNames, Field, Mapping};
use super::error::BadRow;
use super::refine::Refine;

/// A path or `-` for standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
    /// A file found in a folder given as input: one that is not a log is skipped, not an error.
    Found(PathBuf),
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Stdin => f.write_str("<stdin>"),
            Input::File(p) | Input::Found(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The extensions of the log files that a folder given as input is searched for.
pub const LOG_EXTENSIONS: [&str; 11] = [
    "csv", "tsv", "tab", "jsonl", "ndjson", "json", "parquet", "pq", "xes", "gz", "zst",
];

/// The log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv { separator: u8 },
    Json,
    Parquet,
    Xes,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv { .. } => "CSV",
            Format::Json => "JSON",
            Format::Xes => "XES",
            Format::Parquet => "Parquet",
        }
    }
}

/// What a JSON input holds.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// One call per row, in columns (CSV, TSV, JSONL, Parquet).
    #[default]
    Table,
    /// Claude Code transcripts (`~/.claude/projects/<project>/<session>.jsonl`).
    ClaudeCode,
    /// OpenAI Codex CLI rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`).
    Codex,
    /// OpenTelemetry traces in OTLP/JSON with the GenAI conventions (`execute_tool` spans).
    Otlp,
    /// Langfuse observation exports (`type: TOOL`).
    Langfuse,
    /// XES event logs (`.xes`, the process-mining standard).
    Xes,
}

impl Kind {
    pub fn title(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::ClaudeCode => "Claude Code",
            Kind::Codex => "Codex",
            Kind::Otlp => "OTLP",
            Kind::Langfuse => "Langfuse",
            Kind::Xes => "XES",
        }
    }
}

/// What one file contributed besides its rows.
#[derive(Default)]
pub struct FileSummary {
    /// What the file holds.
    pub kind: Kind,
    pub mapping: Mapping,
    pub has_success: bool,
    /// The raw text of the first few values per field that did not parse, by row in the file.
    pub raw: Vec<(usize, Field, String)>,
    /// The line (or element) of each row, when the reader knew it; else lines are found again
    /// for the rows that need one.
    pub lines: Option<Vec<u32>>,
    /// Rows are numbered as rows (Parquet, a JSON array), not lines.
    pub is_row: bool,
    /// Records that are not rows at all (a JSONL line that does not parse): how many, and the
    /// first few.
    pub broken: usize,
    pub first_broken: Vec<BadRow>,
    /// Transcripts and traces: calls without a result, subagent sessions, calls whose success
    /// the log does not say.
    pub unpaired: usize,
    pub subagent_sessions: usize,
    pub assumed_success: usize,
    /// Calls found again (by id) after another file had them: a resumed session's history.
    pub repeated: usize,
}

impl FileSummary {
    /// The raw text of `field` in `row` if it was kept, else `""` (a missing value).
    pub fn raw(&self, row: usize, field: Field) -> &str {
        self.raw
            .iter()
            .find(|(r, f, _)| *r == row && *f == field)
            .map_or("", |(_, _, v)| v)
    }
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub columns: ColumnNames,
    /// Stop at the first bad row instead of skipping it.
    pub strict: bool,
    /// Rewrite MCP tool names (`mcp__server__tool`) as agent platforms log them.
    pub mcp_names: Option<McpNames>,
    /// What the inputs hold; `None` detects it per file.
    pub format: Option<Kind>,
    /// Generic tools refined by an argument (`Bash:cargo test`).
    pub refine: Refine,
    /// A results file of the sessions' task outcomes, joined by session id (`--outcomes`).
    pub outcomes: Option<PathBuf>,
    /// A session id names a session of its file only (ids restart per file).
    pub session_per_file: bool,
    /// No usable row is an empty log, not an error: for one part of a log split by session,
    /// which is checked as a whole afterwards.
    pub allow_empty: bool,
}

/// How `--normalize-mcp` writes a tool that agent platforms log as `mcp__server__tool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum McpNames {
    /// `tool`: the name a tools.toml binds.
    Tool,
    /// `server.tool`: keeps tools of different servers apart.
    #[value(name = "server.tool")]
    #[serde(rename = "server.tool")]
    ServerTool,
}

impl McpNames {
    /// `mcp__git__git_status` → `git_status` (or `git.git_status`); other names unchanged. The
    /// server name may not contain `__`; the tool name may.
    pub fn apply(self, name: &str) -> std::borrow::Cow<'_, str> {
        let parts = name
            .strip_prefix("mcp__")
            .and_then(|rest| rest.split_once("__"))
            .filter(|(server, tool)| !server.is_empty() && !tool.is_empty());
        match (parts, self) {
            (Some((_, tool)), McpNames::Tool) => tool.into(),
            (Some((server, tool)), McpNames::ServerTool) => format!("{server}.{tool}").into(),
            (None, _) => name.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::McpNames;

    #[test]
    fn mcp_names() {
        assert_eq!(McpNames::Tool.apply("mcp__git__git_status"), "git_status");
        assert_eq!(
            McpNames::ServerTool.apply("mcp__git__git_status"),
            "git.git_status"
        );
        assert_eq!(
            McpNames::Tool.apply("mcp__srv__a__b"),
            "a__b",
            "only the server part is split off"
        );
        for unchanged in ["git_status", "mcp__", "mcp__git", "mcp____x", "mcp__git__"] {
            assert_eq!(McpNames::Tool.apply(unchanged), unchanged);
        }
    }
}
