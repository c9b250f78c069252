//! `patterns spark`: the binary's side of the Spark job (`src/spark/patterns_spark.py`), which
//! starts it; not a command to type. It takes every flag of `patterns mine` and one of:
//!
//! - `--plan COLUMNS`: says what the job must read (the logs, the session column among the
//!   columns Spark found) as JSON, so that the job never parses a flag of `mine` itself.
//! - `--part I --parts P --exchange HOST:PORT [--part-file FILE]`: mines part I of a log split by
//!   session, in lockstep with the other parts (see [`crate::exchange`]). Every count goes as one
//!   JSON line to the job's exchange on the driver, which answers, once every part has sent
//!   its own, with the list of all of them. (A barrier task's `allGather` would do the same, but
//!   it polls once a second: a second per exchange.) Part 0 then prints the result on stdout:
//!   what `mine` prints, and the templates to write.
//! - `--save FILE`: writes those templates into the library, as `mine` does.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use super::mine;
use crate::UsageError;
use crate::events::EventLog;
use crate::exchange::{self, Exchange};
use crate::load::{self, BadRow, FormatSummary, Input, LoadError, LoadReport, Location, Mapping};
use crate::pipeline;
use crate::template::ChainStats;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    mine: mine::Args,
    /// Print what the job must read: the logs, and given the column names Spark found (a JSON
    /// array; `[]` before it read them) the columns it needs by name
    #[arg(long, value_name = "JSON", conflicts_with_all = ["part", "save"])]
    plan: Option<String>,
    /// Mine this part (0-based) of a log split by session
    #[arg(long, value_name = "I", requires_all = ["parts", "exchange"], conflicts_with = "save")]
    part: Option<usize>,
    /// How many parts the log is split into
    #[arg(long, value_name = "P", requires = "part")]
    parts: Option<usize>,
    /// Where the job's exchange listens; the token it expects is in PATTERNS_EXCHANGE_TOKEN
    #[arg(long, value_name = "HOST:PORT", requires = "part")]
    exchange: Option<String>,
    /// This part's calls as the job wrote them (Parquet); none when the part got no call
    #[arg(long, value_name = "FILE", requires = "part")]
    part_file: Option<PathBuf>,
    /// Write the templates that part 0 returned (a JSON file) into the library
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(columns) = &args.plan {
        return plan(&args.mine, columns);
    }
    if let (Some(part), Some(parts), Some(at)) = (args.part, args.parts, &args.exchange) {
        if part >= parts {
            return Err(UsageError(format!("--part {part} is not below --parts {parts}")).into());
        }
        die_with_parent();
        let token = std::env::var("PATTERNS_EXCHANGE_TOKEN").unwrap_or_default();
        let link = Link::connect(at, &token, part, parts)
            .with_context(|| format!("could not reach the Spark job's exchange at {at}"))?;
        return task(&args, part, Arc::new(link));
    }
    if let Some(file) = &args.save {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("could not read {}", file.display()))?;
        let chains: Vec<(Vec<String>, ChainStats)> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not the templates of a Spark job", file.display()))?;
        return mine::save(&args.mine, &chains);
    }
    Err(UsageError("give --plan, --part with --parts and --exchange, or --save (this command is run by src/spark/patterns_spark.py)".into()).into())
}

/// The logs, the columns the job needs by name, and the options it acts on.
fn plan(args: &mine::Args, columns: &str) -> anyhow::Result<()> {
    let columns: Vec<String> = serde_json::from_str(columns)
        .map_err(|e| UsageError(format!("--plan takes a JSON array of column names: {e}")))?;
    let options = args.input.load_options();
    if options.session_per_file {
        return Err(UsageError(
            "--session-per-file is not supported on Spark: give each file's sessions ids of their own"
                .into(),
        )
        .into());
    }
    args.mining.options(args.top)?;
    let mut plan = json!({"logs": args.logs, "no_write": args.no_write});
    // Before Spark has read the logs, it needs only their names.
    if !columns.is_empty() {
        let m = Mapping::detect("the logs Spark read", &columns, &options.columns)?;
        plan["session"] = json!(m.session);
        plan["arguments"] = json!(m.arguments);
        plan["result"] = json!(m.result);
    }
    println!("{plan}");
    Ok(())
}

/// Ends this process when the Spark task that started it ends: when Spark kills a stage (another
/// part failed), a part must not stay behind waiting for an exchange that will never answer.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a signal for this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// A part's connection to the job's exchange.
struct Link {
    parts: usize,
    io: Mutex<(BufReader<TcpStream>, TcpStream)>,
}

impl Link {
    fn connect(at: &str, token: &str, part: usize, parts: usize) -> std::io::Result<Link> {
        let stream = TcpStream::connect(at)?;
        stream.set_nodelay(true)?;
        let mut writer = stream.try_clone()?;
        writeln!(
            writer,
            "{}",
            json!({"token": token, "part": part, "parts": parts})
        )?;
        Ok(Link {
            parts,
            io: Mutex::new((BufReader::new(stream), writer)),
        })
    }
}

impl Exchange for Link {
    fn parts(&self) -> usize {
        self.parts
    }

    fn all_gather(&self, message: String) -> Vec<String> {
        let mut io = self.io.lock().expect("not poisoned");
        let (reader, writer) = &mut *io;
        let mut line = String::new();
        let answer = writeln!(writer, "{message}")
            .and_then(|()| writer.flush())
            .and_then(|()| reader.read_line(&mut line));
        match answer.map(|_| serde_json::from_str::<Vec<String>>(&line)) {
            Ok(Ok(all)) if all.len() == self.parts => all,
            // The job or another part is gone: nothing sensible is left to do in this one.
            _ => {
                eprintln!("error: lost the Spark job's exchange (another part failed?)");
                std::process::exit(1);
            }
        }
    }
}

/// Mines one part; part 0 prints the result as one line of JSON.
fn task(args: &Args, part: usize, link: Arc<Link>) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = match mine_part(&args.mine, args.part_file.as_ref(), part, link) {
        Ok(result) => {
            let elapsed = started.elapsed();
            result.render(&args.mine, elapsed)?
        }
        Err(err) => json!({
            "error": format!("{err:#}"),
            "code": crate::exit_code(&err),
        }),
    };
    if part == 0 {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{result}")?;
        out.flush()?;
    }
    Ok(())
}

/// What a part mined, ready to be written the way `mine` writes it.
struct Part {
    log: EventLog,
    loaded: LoadReport,
    report: pipeline::MineReport,
    options: pipeline::MineOptions,
}

fn mine_part(
    args: &mine::Args,
    file: Option<&PathBuf>,
    part: usize,
    ex: Arc<dyn Exchange>,
) -> anyhow::Result<Part> {
    let options = args.mining.options(args.top)?;
    let load_options = load::LoadOptions {
        allow_empty: true,
        ..args.input.load_options()
    };
    let loaded = match file {
        Some(path) => load::load(&[Input::File(path.clone())], &load_options, &|_| {}),
        None => Ok((EventLog::empty(), LoadReport::default())),
    };
    // Every part must know whether every part could read its calls before anything else is
    // exchanged: a part that stopped here would leave the others waiting.
    // Named as the logs, not as the part's temporary file.
    let problem = (loaded.as_ref().err()).map(|e| match file {
        Some(path) => {
            (e.to_string()).replace(&path.display().to_string(), &part_name(&args.logs, part))
        }
        None => e.to_string(),
    });
    if let Some(first) = exchange::gather(&*ex, vec![problem])
        .into_iter()
        .flatten()
        .next()
    {
        return Err(UsageError(first).into());
    }
    let (mut log, here) = loaded.expect("no part failed");
    log.align(&*ex);
    let loaded = whole_report(&*ex, here, &args.logs, part)?;
    let report = pipeline::mine_parts(&log, &options, ex, &|_| {})?;
    Ok(Part {
        log,
        loaded,
        report,
        options,
    })
}

/// How a part's rows are named in messages: Spark keeps no input lines.
fn part_name(logs: &[String], part: usize) -> String {
    format!("{} (Spark part {part})", logs.join(", "))
}

/// What every part read, as `mine` would say it of the whole log: rows and skipped rows summed,
/// the first bad rows (with the part they are in: Spark does not keep the input's lines), the
/// kinds read; the files are the logs as the job was given them.
fn whole_report(
    ex: &dyn Exchange,
    here: LoadReport,
    logs: &[String],
    part: usize,
) -> anyhow::Result<LoadReport> {
    let (rows, skipped) = exchange::sum(ex, (here.rows, here.skipped));
    let bad: Vec<(usize, usize, String, String, String)> = (here.bad_rows.into_iter())
        .map(|b| (part, b.at.line, b.column, b.value, b.reason.into_owned()))
        .collect();
    let files = logs.join(", ");
    let mut bad_rows: Vec<BadRow> = (exchange::gather(ex, bad).into_iter())
        .map(|(part, line, column, value, reason)| BadRow {
            at: Location {
                file: part_name(logs, part),
                line,
                is_row: true,
            },
            column,
            value,
            reason: reason.into(),
        })
        .collect();
    bad_rows.truncate(load::REPORTED_BAD_ROWS);
    if rows == skipped {
        let first: Vec<String> = bad_rows.iter().map(ToString::to_string).collect();
        return Err(match rows {
            0 => LoadError::NoRow { files },
            rows => LoadError::NoUsableRow {
                rows,
                first: first.join("; "),
            },
        }
        .into());
    }
    let no_success = exchange::sum(ex, here.files_without_success.len());
    let outcomes = (exchange::gather(ex, vec![here.outcomes]).into_iter())
        .flatten()
        .reduce(load::OutcomeSummary::merge);
    let mut formats: Vec<FormatSummary> = Vec::new();
    for f in exchange::gather(ex, here.formats) {
        match formats.iter_mut().find(|g| g.format == f.format) {
            Some(g) => {
                g.sessions += f.sessions;
                g.subagent_sessions += f.subagent_sessions;
                g.calls += f.calls;
                g.unpaired += f.unpaired;
                g.skipped += f.skipped;
                g.assumed_success += f.assumed_success;
                g.repeated += f.repeated;
            }
            None => formats.push(FormatSummary {
                files: logs.len(),
                ..f
            }),
        }
    }
    Ok(LoadReport {
        files: logs.to_vec(),
        rows,
        skipped,
        bad_rows,
        files_without_success: match no_success {
            0 => Vec::new(),
            _ => logs.to_vec(),
        },
        formats,
        outcomes,
        ..LoadReport::default()
    })
}

impl Part {
    /// What `mine` would print and write, as the result line's JSON. Every part renders (the
    /// writers ask for figures of the whole log); part 0's is the one sent.
    fn render(&self, args: &mine::Args, elapsed: std::time::Duration) -> anyhow::Result<Value> {
        let Part {
            log,
            loaded,
            report,
            options,
        } = self;
        let workflows = &report.workflows;
        let shown = match args.top {
            0 => &workflows[..],
            n => &workflows[..n.min(workflows.len())],
        };
        let chains: Vec<(Vec<String>, ChainStats)> = match args.no_write {
            true => Vec::new(),
            false => (workflows.iter())
                .map(|w| pipeline::template_stats(w, report, log, options))
                .collect(),
        };
        let mut stdout = Vec::new();
        match args.json {
            true => mine::json::write(&mut stdout, loaded, log, report, options, shown)?,
            false => mine::table::write(&mut stdout, loaded, log, report, options, shown, elapsed)?,
        }
        let mut stderr = Vec::new();
        mine::warn(&mut stderr, loaded)?;
        Ok(json!({
            "stdout": String::from_utf8(stdout)?,
            "stderr": String::from_utf8(stderr)?,
            "note": mine::nothing_found(report, options),
            "chains": chains,
        }))
    }
}
