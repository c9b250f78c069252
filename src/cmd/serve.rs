//! `patterns serve`: the library's workflows as the tools of an MCP server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rmcp::ServiceExt;

use crate::UsageError;
use crate::executor::runlog::RunLog;
use crate::serve::{Settings, Workflows};

const EXAMPLES: &str = "\
Examples:
  patterns serve --tools tools.toml
  patterns serve --library workflows --tools tools.toml --run-log .patterns/calls.csv
  patterns serve --proxy --tools tools.toml      # record what the agent does with its servers

Every workflow of the library whose tools are all bound in tools.toml is a tool; the others are
named on stderr with the reason. Nothing but the protocol is written to stdout.

Claude Code:  claude mcp add patterns -- patterns serve --tools /path/to/tools.toml
Codex (~/.codex/config.toml):
  [mcp_servers.patterns]
  command = \"patterns\"
  args = [\"serve\", \"--tools\", \"/path/to/tools.toml\", \"--library\", \"/path/to/workflows\"]";

#[derive(Debug, Parser)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The library folder whose workflows are served (followed while serving)
    #[arg(long, env = "PATTERNS_LIBRARY", default_value = "workflows")]
    pub library: PathBuf,

    /// The tool bindings (default: ./tools.toml when it exists)
    #[arg(long, env = "PATTERNS_TOOLS", value_name = "FILE")]
    pub tools: Option<PathBuf>,

    /// Where the checkpoints of the runs are kept
    #[arg(long, env = "PATTERNS_STATE_DIR", default_value = ".patterns/runs")]
    pub state_dir: PathBuf,

    /// Append one row per tool call of every served run to FILE (what `patterns mine` reads)
    #[arg(long, value_name = "FILE", default_value = ".patterns/calls.csv")]
    pub run_log: PathBuf,

    /// Do not log the calls
    #[arg(long)]
    pub no_run_log: bool,

    /// How often the library folder is looked at for changes, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll: f64,

    /// Also serve the tools of the MCP servers in tools.toml as they are, and log every call made
    /// to them (the run log; session = this server's session), so that `mine` learns the agent's
    /// workflows
    #[arg(long, conflicts_with = "no_run_log")]
    pub proxy: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let poll = Duration::try_from_secs_f64(args.poll)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            UsageError(format!(
                "--poll {}: give a number of seconds above 0",
                args.poll
            ))
        })?;
    let mut tools = super::run::load_tools(args.tools.as_deref())?;
    let run_log = match args.no_run_log {
        true => None,
        false => {
            if let Some(dir) = args.run_log.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
            }
            Some(Arc::new(
                RunLog::open(&args.run_log).map_err(|e| UsageError(e.to_string()))?,
            ))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    tools
        .log_servers_to(&args.state_dir.join("serve.servers"))
        .with_context(|| format!("could not create {}", args.state_dir.display()))?;
    let outcome = runtime.block_on(async {
        for problem in tools.expose().await {
            eprintln!("serve: {problem}");
        }
        let settings = Settings {
            library: args.library.clone(),
            state_dir: args.state_dir.clone(),
            run_log,
            proxy: args.proxy,
        };
        let (server, left_out) = Workflows::new(settings, tools.clone())
            .await
            .map_err(|e| UsageError(format!("{}: {e}", args.library.display())))?;
        for l in &left_out {
            eprintln!("serve: not offered: {}: {}", l.name, l.reason);
        }
        if args.proxy {
            eprintln!("serve: proxying {}", server.proxied().join(", "));
        }
        let offered = server.offered();
        eprintln!(
            "serve: offering {} workflow{} of {}: {}",
            offered.len(),
            if offered.len() == 1 { "" } else { "s" },
            args.library.display(),
            offered.join(", ")
        );
        let watch = tokio::spawn(server.clone().watch(poll));
        let service = server
            .clone()
            .serve(rmcp::transport::stdio())
            .await
            .context("the MCP session did not start")?;
        let quit = service.waiting().await;
        watch.abort();
        let f = server.figures();
        eprintln!(
            "serve: {} calls ({} succeeded): {} tool calls ran, {} model round-trips saved",
            f.calls, f.succeeded, f.tool_calls, f.round_trips_saved
        );
        quit.map(|_| ())
            .context("the MCP session ended with an error")
    });
    runtime.block_on(tools.shutdown());
    runtime.shutdown_background();
    outcome
}
