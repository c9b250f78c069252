//! `patterns tools list`: the tools that tools.toml binds, with what each runs; `patterns tools
//! init`: a tools.toml stub for the tools of some templates.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use itertools::Itertools;

use super::table::{Table, printable};

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
    /// Bind every tool the templates use that tools.toml does not bind yet, to the builtin echo
    /// with a note to bind it for real: a plan can be shown (`run --dry-run`) before everything
    /// is wired. Bindings already in the file are kept as they are.
    #[command(
        after_help = "Examples:\n  patterns tools init github_pr_workflow\n  patterns tools init list_issues-create_pr-slack_send_message flow.json --tools ci/tools.toml"
    )]
    Init {
        /// Templates: names in the library (or built-ins), or JSON files
        #[arg(required = true, value_name = "TEMPLATE")]
        templates: Vec<String>,
        /// The tool bindings to write or extend
        #[arg(
            long,
            env = "PATTERNS_TOOLS",
            value_name = "FILE",
            default_value = "tools.toml"
        )]
        tools: PathBuf,
        /// Library folder the templates are looked up in
        #[arg(
            long,
            env = "PATTERNS_LIBRARY",
            default_value = "workflows",
            value_name = "DIR"
        )]
        library: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (tools, json) = match args.command {
        Command::List { tools, json } => (tools, json),
        Command::Init {
            templates,
            tools,
            library,
        } => return init(&templates, &tools, &library),
    };
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

/// Appends a stub binding for every tool of `templates` that `path` does not bind yet.
fn init(
    templates: &[String],
    path: &std::path::Path,
    library: &std::path::Path,
) -> anyhow::Result<()> {
    let mut used: Vec<String> = Vec::new();
    for name in templates {
        let t = super::run::load_template(name, library)?;
        for tool in t.tools() {
            if !used.iter().any(|u| u == tool) {
                used.push(tool.to_string());
            }
        }
    }
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let bound: toml::Table = toml::from_str(&old)
        .map_err(|e| crate::UsageError(format!("{}: not TOML: {e}", path.display())))?;
    let bound = bound.get("tools").and_then(toml::Value::as_table);
    let missing: Vec<&String> = used
        .iter()
        .filter(|t| !bound.is_some_and(|b| b.contains_key(t.as_str())))
        .collect();
    let mut text = old.clone();
    if text.is_empty() {
        text.push_str(
            "# Tool bindings for `patterns run`. Each tool runs a command (argv; the step's\n\
             # parameters as JSON on stdin, a JSON result on stdout), a builtin, or a tool of an MCP\n\
             # server: see README, \"Running workflows\".\n",
        );
    }
    for tool in &missing {
        text.push_str(&format!(
            "\n[tools.{}]\n# TODO: bind to what really runs it (command = [...], or server = ...)\nbuiltin = \"echo\"\n",
            toml_key(tool)
        ));
    }
    if text != old {
        // What is written must read back, with every binding the file had and each stub.
        let parsed: Result<toml::Table, _> = toml::from_str(&text);
        let readable = parsed
            .as_ref()
            .ok()
            .and_then(|t| t.get("tools")?.as_table().cloned());
        if !readable.is_some_and(|t| used.iter().all(|u| t.contains_key(u))) {
            anyhow::bail!(
                "{} not changed: the stubs would not read back as TOML ({})",
                path.display(),
                parsed
                    .err()
                    .map_or("a tool name is lost".into(), |e| e.to_string())
            );
        }
        crate::template::write_atomic(path, text.as_bytes())
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    eprintln!(
        "{}: {} tool{} added as stubs ({}), {} already bound",
        path.display(),
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        printable(&missing.iter().map(|t| t.as_str()).join(", ")),
        used.len() - missing.len()
    );
    Ok(())
}

/// `tool` as a TOML key: bare when TOML allows, else a basic string with quotes, backslashes
/// and control characters escaped (a multi-line string cannot be a key).
fn toml_key(tool: &str) -> String {
    if !tool.is_empty() && (tool.chars()).all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return tool.to_string();
    }
    let mut out = String::from("\"");
    for c in tool.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
