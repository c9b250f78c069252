//! `patterns serve`: the library's workflows as the tools of an MCP server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rmcp::ServiceExt;

use crate::UsageError;
use crate::executor::runlog::RunLog;
use crate::serve::http::{self, Access};
use crate::serve::{Settings, Workflows};

const EXAMPLES: &str = "\
Examples:
  patterns serve --tools tools.toml
  patterns serve --library workflows --tools tools.toml --run-log .patterns/calls.csv
  patterns serve --proxy --tools tools.toml      # record what the agent does with its servers
  patterns serve --http 127.0.0.1:8808
  PATTERNS_SERVE_TOKEN=… patterns serve --http 0.0.0.0:8808 --allow-host mcp.example.com

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

    /// Serve over streamable HTTP at ADDR (e.g. 127.0.0.1:8808, path /) instead of stdio; an
    /// address beyond loopback needs --token
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,

    /// The bearer token every HTTP request must carry (Authorization: Bearer TOKEN)
    #[arg(
        long,
        env = "PATTERNS_SERVE_TOKEN",
        value_name = "TOKEN",
        requires = "http",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// A browser origin allowed to call the HTTP server besides loopback ones
    /// (https://app.example.com:443); repeatable
    #[arg(long, value_name = "ORIGIN", requires = "http")]
    pub allow_origin: Vec<String>,

    /// A Host name the HTTP server answers to besides loopback and the address it listens on
    /// (its DNS name behind a proxy); repeatable
    #[arg(long, value_name = "HOST", requires = "http")]
    pub allow_host: Vec<String>,
}

/// Ctrl-C or SIGTERM: the end of an HTTP server.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        Err(_) => {
            tokio::signal::ctrl_c().await.ok();
        }
    }
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
    let access = Access {
        token: args.token.clone(),
        origins: args.allow_origin.clone(),
        hosts: args.allow_host.clone(),
    };
    if let Some(addr) = &args.http
        && !http::is_loopback(addr)
        && access.token.is_none()
    {
        return Err(UsageError(format!(
            "--http {addr} is reachable from other machines: give --token TOKEN (or \
             $PATTERNS_SERVE_TOKEN), which every client must send as Authorization: Bearer TOKEN"
        ))
        .into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    tools
        .log_servers_to(&args.state_dir.join("serve.servers"))
        .with_context(|| format!("could not create {}", args.state_dir.display()))?;
    let outcome = runtime.block_on(async {
        let listener = match args.http {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| UsageError(format!("--http {addr}: {e}")))?,
            ),
            None => None,
        };
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
        let quit = match listener {
            Some(listener) => {
                eprintln!(
                    "serve: listening on http://{}/ (streamable HTTP{})",
                    listener.local_addr()?,
                    if access.token.is_some() {
                        ", bearer token required"
                    } else {
                        ""
                    }
                );
                http::serve(server.clone(), listener, access, stopped())
                    .await
                    .context("the HTTP server failed")
            }
            None => {
                let service = server
                    .clone()
                    .serve(rmcp::transport::stdio())
                    .await
                    .context("the MCP session did not start")?;
                (service.waiting().await)
                    .map(|_| ())
                    .context("the MCP session ended with an error")
            }
        };
        watch.abort();
        let f = server.figures();
        eprintln!(
            "serve: {} calls ({} succeeded): {} tool calls ran, {} model round-trips saved, {}",
            f.calls,
            f.succeeded,
            f.tool_calls,
            f.round_trips_saved,
            match f.calls_with_tokens {
                0 => "tokens saved unknown (the logs had no usage)".to_string(),
                n => format!(
                    "~{} tokens saved by the mined medians of {n} of them",
                    crate::numbers::count(f.tokens_saved)
                ),
            }
        );
        quit
    });
    runtime.block_on(tools.shutdown());
    runtime.shutdown_background();
    outcome
}
