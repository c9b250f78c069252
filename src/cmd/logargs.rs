//! The input flags that every command reading logs shares (`mine`, `suggest --logs`): the
//! columns, MCP names and strictness, parsed once into [`LoadOptions`].

use crate::load::{ColumnNames, Kind, LoadOptions, McpNames, Refine};

#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// What the inputs hold [default: detected per file from its content]
    #[arg(long, value_name = "FORMAT")]
    format: Option<Kind>,
    /// Column holding the session id
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    session_col: Option<String>,
    /// Column holding the timestamp
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    timestamp_col: Option<String>,
    /// Column holding the tool name
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    tool_col: Option<String>,
    /// Column holding the success flag (a column named 'error' means: empty = success)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    success_col: Option<String>,
    /// Column holding each call's duration in milliseconds (optional; feeds avg_duration_ms)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    duration_col: Option<String>,
    /// Rewrite MCP tool names logged as mcp__server__tool as `tool` (default) or `server.tool`
    #[arg(long, value_name = "STYLE", num_args = 0..=1, default_missing_value = "tool", help_heading = "Columns")]
    normalize_mcp: Option<McpNames>,
    /// Column holding each call's arguments as JSON text (optional; feeds data flow)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    arguments_col: Option<String>,
    /// Column holding each call's result as JSON text (optional; feeds data flow)
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    result_col: Option<String>,
    /// Column holding the tokens of the model turn that issued each call (optional; feeds the
    /// tokens workflows save) [default: tokens/total_tokens]
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    tokens_col: Option<String>,
    /// Column holding each session's task outcome: true/false, 1/0, resolved, or a numeric
    /// reward [default: outcome/reward/resolved/task_success/solved]; with --outcomes, the
    /// column of that file
    #[arg(long, value_name = "NAME", help_heading = "Outcomes")]
    outcome_col: Option<String>,
    /// A results file (CSV, JSONL, Parquet) with each session's task outcome, joined by
    /// session id (its column: --session-col if the file has it, else session_id/session/…/
    /// instance_id); sessions it does not list have an unknown outcome
    #[arg(long, value_name = "FILE", help_heading = "Outcomes")]
    outcomes: Option<std::path::PathBuf>,
    /// Refine a generic tool by an argument: with Bash=command a call is `Bash:cargo test`,
    /// `Bash:git commit`. Repeatable; Claude Code's Bash and Codex's shell tools are refined
    /// unless `--refine none` is given
    #[arg(long, value_name = "TOOL=ARG", value_parser = check_refine)]
    refine: Vec<String>,
    /// A session id names a session of its own file only: the same id in two files is two
    /// sessions (for logs whose ids restart every file). Without it, they are one session
    #[arg(long)]
    session_per_file: bool,
    /// Stop with exit code 2 at the first bad row instead of skipping and counting bad rows
    #[arg(long)]
    strict: bool,
}

impl LogArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            refine: Refine::from_flags(&self.refine).expect("checked by clap"),
            columns: ColumnNames {
                session: self.session_col.clone(),
                timestamp: self.timestamp_col.clone(),
                tool: self.tool_col.clone(),
                success: self.success_col.clone(),
                duration: self.duration_col.clone(),
                arguments: self.arguments_col.clone(),
                result: self.result_col.clone(),
                outcome: self.outcome_col.clone(),
                tokens: self.tokens_col.clone(),
                outcome_elsewhere: self.outcomes.is_some(),
            },
            outcomes: self.outcomes.clone(),
            strict: self.strict,
            mcp_names: self.normalize_mcp,
            format: self.format,
            session_per_file: self.session_per_file,
            allow_empty: false,
        }
    }
}

/// One `--refine` value alone (the combination is checked again as a whole).
fn check_refine(s: &str) -> Result<String, String> {
    Refine::from_flags(&[s.to_string()]).map(|_| s.to_string())
}
