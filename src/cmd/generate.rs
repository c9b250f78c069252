//! `patterns generate`: a synthetic log with planted workflows and its ground truth.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::generate::{GenerateParams, PlantOutcomes, Shape, generate};
use crate::load::Kind;
use crate::transcribe::transcribe;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  patterns generate --sessions 3000 --output data/sample.csv --truth data/sample.truth.json
  patterns generate --sessions 1000000 --seed 7 --output big.csv --no-payloads
  patterns generate --noise 2 --output messy.csv --truth messy.truth.json
  patterns generate --shape agent --output agents.csv --truth agents.truth.json
  patterns generate --sessions 50 --as claude-code --output transcripts.jsonl
  patterns generate --shape agent --with-outcomes --output runs.csv --truth runs.truth.json
  patterns generate --shape agent --output runs.csv --outcomes results.csv")]
pub struct Args {
    /// Number of sessions to generate
    #[arg(long, default_value_t = 3000)]
    sessions: usize,
    /// Seed of the random generator; the same seed gives the same file
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write the CSV log ('-' for stdout)
    #[arg(long, short, default_value = "-")]
    output: PathBuf,
    /// Where to write the ground truth (planted workflows and their session counts) as JSON
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Leave out the arguments and result columns (smaller files, for benchmarks of mining)
    #[arg(long)]
    no_payloads: bool,
    /// How messy: 1 = like monitoring logs (calls between steps, some beyond a gap of 2, runs
    /// abandoned after 5–20 % of steps, retries); 0 = no abandoned runs and no long gaps; 2 = twice as messy
    #[arg(long, default_value_t = 1.0, value_name = "LEVEL", value_parser = parse_noise)]
    noise: f64,
    /// Write the calls as this kind of log instead of a CSV table: the transcripts and traces
    /// `mine` reads (for tests and benchmarks of the readers)
    #[arg(long = "as", value_name = "FORMAT", default_value = "table")]
    as_kind: Kind,
    /// Which workflows to plant: 'tools' (each with tools of its own, one after another) or
    /// 'agent' (branches after a shared start, workflows sharing steps, an edit → test loop,
    /// stage tools that are noise too, two tasks interleaved)
    #[arg(long, value_name = "SHAPE", default_value = "tools", value_parser = parse_shape)]
    shape: Shape,
    /// Plant task outcomes that need not agree with call success (each workflow has its own
    /// chance of solving the task) in an `outcome` column of the log
    #[arg(long, conflicts_with = "outcomes")]
    with_outcomes: bool,
    /// Plant task outcomes as --with-outcomes does, but write them to this results file
    /// (`session_id,outcome`) instead of the log
    #[arg(long, value_name = "FILE")]
    outcomes: Option<PathBuf>,
}

fn parse_shape(s: &str) -> Result<Shape, String> {
    match s {
        "tools" => Ok(Shape::Tools),
        "agent" => Ok(Shape::Agent),
        _ => Err(format!("'{s}' is not a shape: 'tools' or 'agent'")),
    }
}

fn parse_noise(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=3.0).contains(&f) => Ok(f),
        _ => Err(format!("'{s}' is not a noise level between 0 and 3")),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let params = GenerateParams {
        sessions: args.sessions,
        seed: args.seed,
        payloads: !args.no_payloads,
        noise: args.noise,
        shape: args.shape,
        outcomes: match (args.with_outcomes, &args.outcomes) {
            (true, _) => PlantOutcomes::Column,
            (false, Some(_)) => PlantOutcomes::Listed,
            (false, None) => PlantOutcomes::None,
        },
    };
    let write = |out: &mut dyn Write| -> anyhow::Result<_> {
        Ok(match args.as_kind {
            Kind::Table => generate(params, out)?,
            kind => {
                let mut table = Vec::new();
                let truth = generate(params, &mut table)?;
                transcribe(&table, kind, out)?;
                truth
            }
        })
    };
    let truth = if args.output.as_os_str() == "-" {
        write(&mut std::io::stdout().lock())?
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("could not create '{}'", args.output.display()))?;
        let mut out = std::io::BufWriter::new(file);
        write(&mut out)
            .and_then(|t| Ok(out.flush().map(|_| t)?))
            .with_context(|| format!("could not write '{}'", args.output.display()))?
    };
    if let Some(path) = &args.outcomes {
        let write = || -> anyhow::Result<()> {
            let mut csv = csv::Writer::from_path(path)?;
            csv.write_record(["session_id", "outcome"])?;
            for (session, solved) in &truth.outcomes {
                csv.write_record([session.as_str(), if *solved { "1" } else { "0" }])?;
            }
            Ok(csv.flush()?)
        };
        write().with_context(|| format!("could not write '{}'", path.display()))?;
    }
    if let Some(path) = args.truth {
        let mut json = serde_json::to_string_pretty(&truth)?;
        json.push('\n');
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(json.as_bytes()))
            .with_context(|| format!("could not write '{}'", path.display()))?;
    }
    Ok(())
}
