//! `patterns tools list`: the tools that tools.toml binds, with what each runs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::table::Table;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Every bound tool: its binding, server, description and required parameters (MCP servers
    /// are started to ask them)
    #[command(
        after_help = "Examples:\n  patterns tools list\n  patterns tools list --tools ci/tools.toml --json"
    )]
    List {
        /// The tool bindings (default: ./tools.toml)
        #[arg(
            long,
            env = "PATTERNS_TOOLS",
            value_name = "FILE",
            default_value = "tools.toml"
        )]
        tools: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Command::List { tools, json } = args.command;
    let mut toolbox = super::run::load_tools(Some(&tools))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let (problems, infos) = runtime.block_on(async {
        let problems = toolbox.expose().await;
        let infos = toolbox.describe_all().await;
        toolbox.shutdown().await;
        (problems, infos)
    });
    for p in &problems {
        eprintln!("warning: {p}");
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &infos)?;
        writeln!(out)?;
    } else {
        let mut table = Table::new(&[
            ("tool", false),
            ("bound to", false),
            ("required", false),
            ("description", false),
        ]);
        for i in &infos {
            let description = i
                .description
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            table.push(vec![
                i.name.clone(),
                i.binding.clone(),
                i.required.join(", "),
                description.chars().take(80).collect(),
            ]);
        }
        out.write_all(table.render().as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
