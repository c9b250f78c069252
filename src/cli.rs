//! The command line: clap definitions and dispatch to the commands in [`crate::cmd`].

use clap::{Parser, Subcommand};

use crate::cmd;

/// Learn reusable workflows from the tool-usage logs of AI agents.
#[derive(Debug, Parser)]
#[command(name = "patterns", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  patterns mine data/sample.csv
  patterns mine 'logs/2026-11-*.jsonl' --min-support 0.01 --json
  patterns report data/helpdesk.csv -o report.html
  patterns suggest github_list_issues github_create_pr
  patterns run github_pr_workflow --tools tools.toml --var repo=acme/app --dry-run
  patterns serve --tools tools.toml
  patterns generate --sessions 100000 --output big.csv --truth big.truth.json";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mine frequent tool chains from tool-usage logs and score them
    Mine(cmd::mine::Args),
    /// Rank the workflows that continue a chain of tools and say which tools come next
    Suggest(cmd::suggest::Args),
    /// Write an HTML page of what the logs hold: workflows drawn, funnels, tools, loops, savings
    Report(cmd::report::Args),
    /// Run a workflow template against the tools bound in tools.toml
    Run(cmd::run::Args),
    /// Serve the library's workflows to agents as the tools of an MCP server (stdio)
    Serve(cmd::serve::Args),
    /// List the tools bound in tools.toml
    Tools(cmd::tools::Args),
    /// List, show, validate, export and initialise the workflow library
    Library(cmd::library::Args),
    /// Write a synthetic log with planted workflows (for tests, benchmarks and demos)
    Generate(cmd::generate::Args),
    /// The binary's side of the Spark job (src/spark/patterns_spark.py starts it)
    #[command(hide = true)]
    Spark(cmd::spark::Args),
    /// Print a completion script for a shell
    #[command(after_help = "\
Examples:
  patterns completions bash > ~/.local/share/bash-completion/completions/patterns
  patterns completions zsh > ~/.zfunc/_patterns
  patterns completions fish > ~/.config/fish/completions/patterns.fish")]
    Completions {
        /// The shell to complete in
        shell: clap_complete::Shell,
    },
}

/// Runs the command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Mine(args) => cmd::mine::run(args),
        Command::Suggest(args) => cmd::suggest::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Library(args) => cmd::library::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Tools(args) => cmd::tools::run(args),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Spark(args) => cmd::spark::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "patterns", &mut out);
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
