//! Synthetic tool-usage logs with planted workflows amid noise, and the ground truth to check a
//! miner against. Deterministic for a seed.

use std::io::Write;

use chrono::{DateTime, SecondsFormat};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A workflow planted in the generated sessions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planted {
    pub name: &'static str,
    /// The chain as the miner should see it (repeats collapsed).
    pub tools: &'static [&'static str],
    /// Share of sessions that run it.
    pub weight: f64,
    /// Sessions it was planted in.
    pub sessions: usize,
}

/// The seed's four common workflows. The searches of `search_report` run one to three times in
/// a row, which the miner collapses into one step.
const WORKFLOWS: [(&str, &[&str], f64); 4] = [
    (
        "github_pr",
        &[
            "github_list_issues",
            "github_create_pr",
            "slack_send_message",
        ],
        0.30,
    ),
    (
        "data_pipeline",
        &[
            "fetch_data",
            "transform_data",
            "store_data",
            "send_notification",
        ],
        0.25,
    ),
    (
        "approval",
        &[
            "create_item",
            "notify_approver",
            "wait_for_approval",
            "update_item",
        ],
        0.20,
    ),
    (
        "search_report",
        &[
            "web_search",
            "aggregate_results",
            "format_report",
            "send_email",
        ],
        0.15,
    ),
];

/// Tools that agents call between and around the workflows.
const NOISE: [&str; 12] = [
    "read_file",
    "write_file",
    "list_files",
    "run_tests",
    "git_status",
    "git_diff",
    "calculator",
    "get_weather",
    "http_get",
    "get_user_details",
    "search_docs",
    "think",
];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GenerateParams {
    pub sessions: usize,
    pub seed: u64,
}

/// The ground truth of a generated log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Truth {
    pub seed: u64,
    pub sessions: usize,
    pub events: usize,
    pub workflows: Vec<Planted>,
}

/// Writes a CSV log (`session_id,timestamp,tool,success,duration_ms`) to `out` and returns the
/// ground truth.
pub fn generate(params: GenerateParams, out: impl Write) -> csv::Result<Truth> {
    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["session_id", "timestamp", "tool", "success", "duration_ms"])?;
    let mut planted: Vec<Planted> = WORKFLOWS
        .iter()
        .map(|&(name, tools, weight)| Planted {
            name,
            tools,
            weight,
            sessions: 0,
        })
        .collect();
    // 2026-01-05T09:00:00Z
    let mut clock_us: i64 = 1_767_603_600_000_000;
    let mut events = 0;
    let width = params.sessions.to_string().len().max(6);
    let mut calls: Vec<&str> = Vec::new();
    for s in 0..params.sessions {
        calls.clear();
        let mut chosen = Vec::new();
        for _ in 0..if rng.random_bool(0.2) { 2 } else { 1 } {
            let mut pick = rng.random::<f64>();
            let workflow = WORKFLOWS.iter().position(|w| {
                pick -= w.2;
                pick < 0.0
            });
            if let Some(w) = workflow.filter(|w| !chosen.contains(w)) {
                chosen.push(w);
            }
        }
        noise(&mut rng, &mut calls, 1..4);
        for &w in &chosen {
            planted[w].sessions += 1;
            for (i, &tool) in WORKFLOWS[w].1.iter().enumerate() {
                if i > 0 {
                    // Mostly adjacent, sometimes one or two other calls in between.
                    let gap = match rng.random::<f64>() {
                        x if x < 0.70 => 0,
                        x if x < 0.93 => 1,
                        _ => 2,
                    };
                    noise(&mut rng, &mut calls, gap..gap + 1);
                }
                let repeats = if tool == "web_search" {
                    rng.random_range(1..=3)
                } else {
                    1
                };
                calls.extend(std::iter::repeat_n(tool, repeats));
            }
            noise(&mut rng, &mut calls, 0..3);
        }
        noise(&mut rng, &mut calls, 0..3);

        let session = format!("sess-{s:0width$}");
        clock_us += rng.random_range(1_000_000..60_000_000);
        let mut t = clock_us;
        let mut i = 0;
        while i < calls.len() {
            let tool = calls[i];
            // A failed call is usually retried at once; the retry is a repeat the miner collapses.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let ok = !rng.random_bool(failure_rate(tool));
                let duration_ms = rng.random_range(20..2_000);
                let stamp = DateTime::from_timestamp_micros(t)
                    .expect("in range")
                    .to_rfc3339_opts(SecondsFormat::Millis, true);
                csv.write_record([
                    session.as_str(),
                    &stamp,
                    tool,
                    if ok { "1" } else { "0" },
                    &duration_ms.to_string(),
                ])?;
                events += 1;
                t += duration_ms * 1_000 + rng.random_range(10_000..3_000_000);
                if ok || attempts == 3 || !rng.random_bool(0.6) {
                    break;
                }
            }
            i += 1;
        }
    }
    csv.flush()?;
    Ok(Truth {
        seed: params.seed,
        sessions: params.sessions,
        events,
        workflows: planted,
    })
}

fn failure_rate(tool: &str) -> f64 {
    match tool {
        "wait_for_approval" => 0.12,
        "github_create_pr" => 0.08,
        "http_get" | "fetch_data" => 0.06,
        _ => 0.02,
    }
}

fn noise(rng: &mut StdRng, calls: &mut Vec<&'static str>, count: std::ops::Range<usize>) {
    let n = if count.len() > 1 {
        rng.random_range(count)
    } else {
        count.start
    };
    for _ in 0..n {
        calls.push(NOISE[rng.random_range(0..NOISE.len())]);
    }
}
