//! `patterns report`: load and mine logs as `mine` does, and write what was found as one HTML
//! page.

mod html;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::logargs::LogArgs;
use super::mine::load_and_mine;
use super::mining_args::MiningArgs;
use crate::report;
use crate::template::write_atomic;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The page is one self-contained HTML file (no script, no network): open it from disk in any
browser. It shows an overview (calls over time, failure rate), each workflow drawn by stage with
its data flow, funnel, orderings (runs, success, median and p90 time), variants and the `patterns
run` command; the tools and which tool follows which; loops (cycles of tools repeated within a
session); what running the workflows as templates would save; and, with --library, what changed
since the last `patterns mine` into that library (the library is only read).

Input and mining options are those of `patterns mine`.

Examples:
  patterns report data/helpdesk.csv
  patterns report 'logs/*.jsonl' -o nightly.html --library workflows
  xdg-open report.html")]
pub struct Args {
    /// Log files (as for `patterns mine`), folders, globs, or '-' for standard input
    #[arg(required = true, value_name = "LOGS")]
    logs: Vec<String>,

    #[command(flatten)]
    input: LogArgs,

    #[command(flatten)]
    mining: MiningArgs,

    /// Where to write the page ('-' for standard output)
    #[arg(
        short,
        long,
        default_value = "report.html",
        value_name = "FILE",
        help_heading = "Output"
    )]
    output: PathBuf,
    /// Compare with the mined templates of this library (as the last `patterns mine` left it)
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    library: Option<PathBuf>,
    /// How many workflows get a card (0 = all)
    #[arg(long, default_value_t = 20, value_name = "N", help_heading = "Output")]
    top: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = args.mining.options(args.top)?;
    let (log, loaded, mined) = load_and_mine(&args.logs, &args.input, &options)?;
    let shown = match args.top {
        0 => mined.workflows.len(),
        n => n,
    };
    let report = report::build(
        &log,
        &loaded,
        &mined,
        &options,
        shown,
        args.library.as_deref(),
    )
    .context("could not read the library to compare with")?;
    let page = html::write(&report, &format!("patterns {}", env!("CARGO_PKG_VERSION")));
    if args.output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(page.as_bytes())?;
        out.flush()?;
        return Ok(());
    }
    write_atomic(&args.output, page.as_bytes())
        .with_context(|| format!("could not write {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({} KB): {} of {} workflows, {} tools, {} loops",
        args.output.display(),
        page.len().div_ceil(1024),
        report.workflows.len(),
        report.overview.found,
        report.tools.len(),
        report.loops.len(),
    );
    Ok(())
}
