//! The mining flags that every command mining a log shares (`mine`, `report`), parsed once into
//! [`MineOptions`].

use crate::mining::MinSupport;
use crate::mining::summary::SummaryParams;
use crate::pipeline::MineOptions;
use crate::score::{self, Keep};
use crate::structure::{FlowParams, ParallelParams};

#[derive(Debug, Clone, clap::Args)]
pub struct MiningArgs {
    /// Least number of sessions a chain must occur in: a count (5), a fraction of the sessions
    /// (0.01, rounded up), or 'auto' = max(5, 0.1 % of the sessions)
    #[arg(
        long,
        default_value = "auto",
        value_name = "N|FRACTION",
        help_heading = "Mining"
    )]
    min_support: MinSupport,
    /// Shortest chain to report (--keep closed|all)
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Mining")]
    min_len: usize,
    /// Longest chain to report (--keep closed|all; workflows have no length cap)
    #[arg(long, default_value_t = 6, value_name = "N", help_heading = "Mining")]
    max_len: usize,
    /// Most other calls allowed between two steps of a chain (0 = contiguous), or 'none'
    #[arg(
        long,
        default_value = "2",
        value_name = "N|none",
        help_heading = "Mining"
    )]
    max_gap: MaxGap,
    /// Keep immediate repeats of a tool as separate calls (by default a run of retries is one
    /// call whose outcome is the last attempt's)
    #[arg(long, help_heading = "Mining")]
    keep_repeats: bool,
    /// 'workflows': the distinct workflows, each whole, with their funnels and variants;
    /// 'closed': frequent chains, dropping a chain when a longer chain containing it occurs in
    /// nearly as many sessions (see --closed-tolerance); 'all': every frequent chain
    #[arg(
        long,
        default_value = "workflows",
        value_name = "workflows|closed|all",
        help_heading = "Mining"
    )]
    keep: Keep,
    /// With --keep workflows: a step is part of a workflow when at least this share of its runs
    /// go on with it (0.5: most runs); steps that fewer runs take are variants
    #[arg(long, default_value_t = SummaryParams::default().continuation, value_name = "SHARE", help_heading = "Mining")]
    continuation: f64,
    /// With --keep closed: drop a chain when a longer one has at least (1 - this) × its support
    #[arg(long, default_value_t = score::DEFAULT_TOLERANCE, value_name = "SHARE", value_parser = parse_share, help_heading = "Mining")]
    closed_tolerance: f64,

    /// Tools run in any order (one stage) when the rarer order occurs in at least this share of the runs of the other
    #[arg(long, default_value_t = ParallelParams::default().min_share, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    parallel_min_share: f64,
    /// With --keep closed|all: … or when the two calls overlapped in time in at least this share of occurrences (logs with durations)
    #[arg(long, default_value_t = ParallelParams::default().min_overlap, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    parallel_min_overlap: f64,
    /// Keep every ordering a chain of its own
    #[arg(long, help_heading = "Structure")]
    no_parallel: bool,
    /// A binding or shared variable must hold in at least this share of a workflow's occurrences
    #[arg(long, default_value_t = FlowParams::default().min_share, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    flow_min_share: f64,
    /// An argument with one value in at least this share of the occurrences is a constant
    #[arg(long, default_value_t = FlowParams::default().constant_share, value_name = "SHARE", value_parser = parse_share, help_heading = "Structure")]
    flow_constant_share: f64,
}

/// `--max-gap`: a number of calls, or `none` for no limit.
#[derive(Debug, Clone, Copy)]
struct MaxGap(Option<usize>);

impl std::str::FromStr for MaxGap {
    type Err = String;

    fn from_str(s: &str) -> Result<MaxGap, String> {
        match s {
            "none" => Ok(MaxGap(None)),
            _ => s
                .parse()
                .map(|n| MaxGap(Some(n)))
                .map_err(|_| format!("'{s}' is neither a number of calls nor 'none'")),
        }
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        _ => Err(format!("'{s}' is not a share in [0, 1)")),
    }
}

impl MiningArgs {
    /// The engine's options, checked; `top` is how many workflows will be shown.
    pub fn options(&self, top: usize) -> Result<MineOptions, crate::UsageError> {
        let options = MineOptions {
            keep_repeats: self.keep_repeats,
            min_support: self.min_support,
            min_len: self.min_len,
            max_len: self.max_len,
            max_gap: self.max_gap.0,
            keep: self.keep,
            closed_tolerance: self.closed_tolerance,
            continuation: self.continuation,
            parallel: (!self.no_parallel).then(|| ParallelParams {
                min_share: self.parallel_min_share,
                min_overlap: self.parallel_min_overlap,
                limit: ParallelParams::default().limit.max(top.saturating_mul(4)),
                ..ParallelParams::default()
            }),
            flow: FlowParams {
                min_share: self.flow_min_share,
                constant_share: self.flow_constant_share,
                ..FlowParams::default()
            },
        };
        options.check()?;
        Ok(options)
    }
}
