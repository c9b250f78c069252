//! `patterns run`: execute a workflow template against the tools bound in tools.toml.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use serde_json::{Map, Value};

use super::table::{Table, printable};
use crate::UsageError;
use crate::executor::runlog::RunLog;
use crate::executor::state;
use crate::executor::{Options, Plan, RunState, RunStatus, Status, Toolbox, prepare};
use crate::template::{WorkflowTemplate, is_safe_name};

const EXAMPLES: &str = "\
Examples:
  patterns run github_pr_workflow --tools tools.toml --var repo=acme/app --var branch=fix-7
  patterns run workflows/my_flow.json --vars vars.json --dry-run
  patterns run data_pipeline --run-log runs.csv --json
  patterns run --resume github_pr_workflow-20261122T101500-3f2a
  patterns run --list

Tools are bound in tools.toml (by default ./tools.toml):
  [tools.github_list_issues]
  command = [\"python3\", \"scripts/github.py\", \"list_issues\"]
  env = { GITHUB_TOKEN = \"${GITHUB_TOKEN}\" }
  [tools.slack_send_message]
  builtin = \"echo\"

Exit codes: 0 succeeded (also when only steps with on_error = continue failed), 1 failed,
2 bad input (nothing ran), 130 interrupted (resume with --resume RUN_ID).";

#[derive(Debug, Parser)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// A template of the library (or a built-in) by name, or a template JSON file
    #[arg(required_unless_present_any = ["resume", "list"], conflicts_with_all = ["resume", "list"])]
    pub workflow: Option<String>,

    /// List the runs whose checkpoints are in the state folder (what --resume can take), most
    /// recent first
    #[arg(long, conflicts_with = "resume")]
    pub list: bool,

    /// Set a variable to a string; repeatable
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,

    /// Variables from a JSON object (values keep their JSON types); --var wins
    #[arg(long, value_name = "FILE")]
    pub vars: Option<PathBuf>,

    /// The tool bindings (default: ./tools.toml when it exists)
    #[arg(long, env = "PATTERNS_TOOLS", value_name = "FILE")]
    pub tools: Option<PathBuf>,

    /// Check and print the plan: levels, tools, parameters with known variables filled in
    #[arg(long)]
    pub dry_run: bool,

    /// At most N steps at once (default: all the steps of a level)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,

    /// Append one row per tool call to FILE (CSV in the input log schema; `patterns mine` reads it)
    #[arg(long, value_name = "FILE")]
    pub run_log: Option<PathBuf>,

    /// Print the run's whole state as JSON
    #[arg(long)]
    pub json: bool,

    /// The library folder where NAME is looked up
    #[arg(long, env = "PATTERNS_LIBRARY", default_value = "workflows")]
    pub library: PathBuf,

    /// Where checkpoints are kept (one file per run)
    #[arg(long, env = "PATTERNS_STATE_DIR", default_value = ".patterns/runs")]
    pub state_dir: PathBuf,

    /// Finish an interrupted or failed run: its finished steps are not run again
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,

    /// The id of a new run (default: NAME-TIME-RANDOM); the run log's session_id
    #[arg(long, value_name = "ID", conflicts_with = "resume")]
    pub run_id: Option<String>,
}

/// `run --list`: the checkpoints in the state folder.
fn list(args: &Args) -> anyhow::Result<()> {
    let runs = state::list(&args.state_dir).map_err(|e| UsageError(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &runs)?;
        writeln!(out)?;
        return Ok(());
    }
    if runs.is_empty() {
        eprintln!("no runs in {}", args.state_dir.display());
        return Ok(());
    }
    writeln!(
        out,
        "{:<44} {:<10} {:>16}  {:<20}  workflow",
        "run", "status", "steps", "saved"
    )?;
    for r in &runs {
        let status = serde_json::to_value(r.status)?;
        writeln!(
            out,
            "{:<44} {:<10} {:>16}  {:<20}  {}",
            r.run_id,
            status.as_str().unwrap_or(""),
            match r.failed {
                0 => format!("{}/{}", r.finished, r.steps),
                n => format!("{}/{} ({n} failed)", r.finished, r.steps),
            },
            r.saved.as_deref().unwrap_or(""),
            r.workflow
        )?;
    }
    Ok(())
}

/// The exit code of an interrupted run.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; finish the run with: patterns run --resume {0}")]
pub struct Interrupted(pub String);

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        return list(&args);
    }
    let mut vars = read_vars(&args)?;
    // A run holds its lock until it ends: a second process (a resume, or a run given the same
    // --run-id) is refused rather than run its steps again. A resume reads its checkpoint again
    // once it holds the lock: the one it read first may be older than the run that held it.
    let mut lock = None;
    let mut generation = 0;
    let (template, state) = match &args.resume {
        Some(run_id) => {
            let load =
                || state::load(&args.state_dir, run_id).map_err(|e| UsageError(e.to_string()));
            load()?;
            lock = Some(state::RunLock::take(&args.state_dir, run_id).map_err(UsageError)?);
            let checkpoint = load()?;
            generation = checkpoint.generation;
            let mut saved = checkpoint.vars;
            saved.append(&mut vars);
            vars = saved;
            (checkpoint.template, Some(checkpoint.state.resume()))
        }
        None => (
            load_template(
                args.workflow.as_deref().expect("clap requires it"),
                &args.library,
            )?,
            None,
        ),
    };
    state::sweep(&args.state_dir);
    let mut tools = load_tools(args.tools.as_deref())?;
    let run_id = match (&args.run_id, &state) {
        (_, Some(s)) => s.run_id.clone(),
        (Some(id), None) if is_safe_name(id) => id.clone(),
        (Some(id), None) => {
            return Err(UsageError(format!(
                "run id {id:?} is not a safe file name (letters, digits, '_', '-', '.')"
            ))
            .into());
        }
        (None, None) => state::new_run_id(&template.name),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    // MCP servers start on first use, here at the latest: tools a server lists are checked
    // before anything runs. Their stderr goes to a log file of this run.
    tools
        .log_servers_to(&args.state_dir.join(format!("{run_id}.servers")))
        .with_context(|| format!("could not create {}", args.state_dir.display()))?;
    let plan = runtime.block_on(async {
        tools.expose().await;
        prepare(template, vars, &tools).await
    });
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            runtime.block_on(tools.shutdown());
            return Err(e.into());
        }
    };
    if args.dry_run {
        runtime.block_on(tools.shutdown());
        print_plan(&plan, &tools)?;
        return Ok(());
    }
    let _lock = match lock {
        Some(held) => held,
        None => state::RunLock::take(&args.state_dir, &run_id).map_err(UsageError)?,
    };
    let state = state.unwrap_or_else(|| RunState::new(run_id.clone(), &plan));
    let run_log = match &args.run_log {
        Some(path) => Some(Arc::new(
            RunLog::open(path).map_err(|e| UsageError(e.to_string()))?,
        )),
        None => None,
    };
    let final_state = runtime.block_on(async {
        let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            // Ctrl-C, and the signals a service manager or a closed terminal sends: each stops
            // the running tools (their process groups) and leaves a checkpoint to resume from.
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            eprintln!("interrupted: stopping running tools");
            cancel_tx.send(true).ok();
        });
        let options = Options {
            max_parallel: args.max_parallel.map(|n| n as usize),
            run_log,
            cancel,
            served: None,
        };
        // On a terminal, each step is reported as it finishes (the table comes at the end).
        let progress = std::io::stderr().is_terminal();
        let mut on_step = |state: &RunState, changed: &[String]| {
            if progress {
                for (id, r) in changed
                    .iter()
                    .filter_map(|id| Some((id, state.steps.get(id)?)))
                {
                    if r.status != Status::Pending {
                        eprintln!("  {id}: {} ({} ms)", r.status.as_str(), r.duration_ms);
                    }
                }
            }
        };
        state::execute_checkpointed(
            &plan,
            &tools,
            &options,
            state,
            &args.state_dir,
            generation,
            &mut on_step,
        )
        .await
    });
    runtime.block_on(tools.shutdown());
    // Tools that ignore being stopped must not keep the command waiting.
    runtime.shutdown_background();

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &final_state)?;
        writeln!(out)?;
    } else {
        print_summary(&mut out, &plan, &final_state, args.run_log.as_deref())?;
    }
    out.flush()?;
    match final_state.status {
        RunStatus::Succeeded | RunStatus::Partial => Ok(()),
        RunStatus::Cancelled => Err(Interrupted(final_state.run_id).into()),
        RunStatus::Failed | RunStatus::Running => Err(anyhow::anyhow!(
            "workflow '{}' failed; after fixing the cause, finish it with: patterns run --resume {}",
            plan.template.name,
            final_state.run_id
        )),
    }
}

/// `--vars FILE` then every `--var NAME=VALUE`.
fn read_vars(args: &Args) -> anyhow::Result<Map<String, Value>> {
    let mut vars = match &args.vars {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(UsageError(format!(
                        "{}: expected a JSON object of variables",
                        path.display()
                    ))
                    .into());
                }
                Err(e) => return Err(UsageError(format!("{}: {e}", path.display())).into()),
            }
        }
        None => Map::new(),
    };
    for var in &args.var {
        let Some((name, value)) = var.split_once('=') else {
            return Err(UsageError(format!("--var {var:?}: expected NAME=VALUE")).into());
        };
        vars.insert(name.trim().to_string(), Value::String(value.to_string()));
    }
    Ok(vars)
}

/// A template file, or a template of the library or the built-ins by name.
pub(super) fn load_template(workflow: &str, library: &Path) -> anyhow::Result<WorkflowTemplate> {
    let path = Path::new(workflow);
    if workflow.ends_with(".json") || path.is_file() {
        let text = crate::template::read_text(path, false)
            .map_err(|e| UsageError(format!("cannot read {workflow}: {e}")))?;
        return serde_json::from_str(&text)
            .map_err(|e| UsageError(format!("{workflow}: not a workflow template: {e}")).into());
    }
    super::find_template(super::read_catalog(library)?, workflow)
}

pub(super) fn load_tools(path: Option<&Path>) -> anyhow::Result<Toolbox> {
    let default = Path::new("tools.toml");
    let path = match path {
        Some(p) => p,
        None if default.is_file() => default,
        None => return Ok(Toolbox::default()),
    };
    Toolbox::load(path).map_err(|problems| {
        UsageError(format!(
            "bad tool bindings:\n  - {}",
            problems.join("\n  - ")
        ))
        .into()
    })
}

fn print_plan(plan: &Plan, tools: &Toolbox) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let t = &plan.template;
    let ctx = plan.context();
    writeln!(
        out,
        "workflow {}: {} steps in {} levels",
        t.name,
        t.steps.len(),
        plan.levels.len()
    )?;
    for (n, level) in plan.levels.iter().enumerate() {
        writeln!(out, "level {}", n + 1)?;
        for &i in level {
            let s = &t.steps[i];
            let tool = tools
                .get(&s.tool_name)
                .map(|t| t.describe())
                .unwrap_or_default();
            // Names and texts come from logs: control characters are shown, not obeyed.
            let tool = printable(&tool);
            writeln!(
                out,
                "  {} · {} ({tool})",
                s.step_id,
                printable(&s.tool_name)
            )?;
            if let Some(c) = &s.condition {
                writeln!(out, "    if {}", printable(c))?;
            }
            let params = (plan.steps[i].parameters.render_known(&ctx))
                .unwrap_or_else(|e| Value::String(format!("<{e}>")));
            for (k, v) in params.as_object().into_iter().flatten() {
                writeln!(out, "    {} = {v}", printable(k))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn print_summary(
    out: &mut impl Write,
    plan: &Plan,
    state: &RunState,
    run_log: Option<&Path>,
) -> anyhow::Result<()> {
    let mut table = Table::new(&[
        ("step", false),
        ("tool", false),
        ("status", false),
        ("attempts", true),
        ("ms", true),
        ("note", false),
    ]);
    for s in &plan.template.steps {
        let r = &state.steps[&s.step_id];
        if r.status == Status::Pending {
            continue;
        }
        let status = r.status.as_str().to_string();
        let mut note = r.error.clone().unwrap_or_default();
        if let Some(f) = &r.fallback {
            note = format!("fallback '{f}' used; {note}");
        }
        if r.resumed {
            note = format!("from the earlier attempt {note}");
        }
        table.push(vec![
            s.step_id.clone(),
            s.tool_name.clone(),
            status,
            r.attempts.to_string(),
            r.duration_ms.to_string(),
            note.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect(),
        ]);
    }
    write!(out, "{}", table.render())?;
    for c in &state.compensations {
        let how = if c.success {
            "ok".to_string()
        } else {
            format!("failed: {}", c.error.as_deref().unwrap_or(""))
        };
        let (tool, how) = (printable(&c.tool), printable(&how));
        writeln!(out, "compensated {} with {tool}: {how}", c.step_id)?;
    }
    for (l, rounds) in plan.template.loops.iter().zip(&state.rounds) {
        if *rounds > 0 {
            let s = if *rounds == 1 { "" } else { "s" };
            let body = l.steps.join(" → ");
            writeln!(
                out,
                "loop ({body}): {rounds} round{s} of at most {}",
                l.max_rounds
            )?;
        }
    }
    if let Some(e) = &state.error {
        writeln!(out, "{}", printable(e))?;
    }
    let status = state.status.as_str();
    write!(out, "run {}: {status}", state.run_id)?;
    if let Some(log) = run_log {
        write!(out, "; calls logged to {}", log.display())?;
    }
    writeln!(out)?;
    Ok(())
}
