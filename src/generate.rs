//! Synthetic tool-usage logs with planted workflows amid noise, and the ground truth to check a
//! miner against. Deterministic for a seed.

use std::io::Write;

use chrono::{DateTime, SecondsFormat};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// A workflow planted in the generated sessions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planted {
    pub name: &'static str,
    /// The chain as the miner should see it (repeats collapsed); a parallel block in one of its
    /// orders.
    pub tools: &'static [&'static str],
    /// Share of sessions that run it.
    pub weight: f64,
    /// Sessions it was planted in (started).
    pub sessions: usize,
    /// Per step of `tools`, the sessions whose run got that far, a skipped step included (runs
    /// are abandoned on the way).
    pub funnel: Vec<usize>,
    /// Share of the runs that stop after each step but the last (5–20 % at noise 1).
    pub abandon: f64,
    /// Variants planted in a minority of runs: an extra call after a step, a step skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<PlantedVariant>,
    /// Blocks of tools that run in either order, at overlapping times.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parallel: Vec<Vec<&'static str>>,
    /// A tool that comes back in the chain (a loop, not concurrency).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_loop: bool,
    /// Steps of `tools` repeated back to back, and the runs that went through them how often.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loops: Vec<PlantedLoop>,
    /// With payloads: `tool.argument` ← `tool.path of its result`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<(&'static str, &'static str)>,
    /// Arguments with the same value in every run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constants: Vec<&'static str>,
    /// Arguments that vary and are shared by several steps: one workflow variable each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<&'static str>,
    /// With outcomes: the chance that a session which ran it whole solves its task, the
    /// sessions that ran it whole, and how many of them solved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solves: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solved: Option<usize>,
}

/// A loop planted in a workflow: its body is `tools[start..=end]`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlantedLoop {
    pub start: usize,
    pub end: usize,
    /// Per number of rounds (1, 2, …), the runs that reached the loop and went round it so often.
    pub rounds: Vec<usize>,
}

/// A variant planted in a minority of a workflow's runs, and the sessions that ran it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlantedVariant {
    /// "extra" (`tool` called after `step`) or "skipped" (`step` left out).
    pub kind: &'static str,
    pub step: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<&'static str>,
    pub sessions: usize,
}

/// One planted workflow: its chain, the share of sessions, where it runs a block in any order,
/// and how often its runs stop after a step.
struct Workflow {
    name: &'static str,
    tools: &'static [&'static str],
    weight: f64,
    /// Steps `start..end` run in a random order, overlapping in time.
    parallel: Option<std::ops::Range<usize>>,
    /// Share of runs abandoned after each step but the last, at noise 1.
    abandon: f64,
    /// A minority of runs call this tool right after step `.0`, in this share of the runs.
    extra: Option<(usize, &'static str, f64)>,
    /// A minority of runs skip step `.0`, in this share of the runs.
    skip: Option<(usize, f64)>,
    /// Steps `start..end` repeat back to back, one to this many rounds (uniformly).
    rounds: Option<(std::ops::Range<usize>, usize)>,
    /// The chance that a session which ran it whole solves its task (with `--outcomes`).
    solves: f64,
}

/// The seed's four common workflows, a deployment whose tests, scan and lint run at the same
/// time in any order, a fix loop (tests → patch → tests), a two-step lookup and an eight-step
/// onboarding. Tools are shared: `send_email` ends the report and the lookup,
/// `send_notification` the pipeline and the onboarding, `create_item` starts the approval and is
/// a step of the onboarding. The searches of `search_report` run one to three times in a row with
/// different queries: repeats that are not retries, which the miner collapses into one step.
const WORKFLOWS: [Workflow; 8] = [
    Workflow {
        name: "github_pr",
        tools: &[
            "github_list_issues",
            "github_create_pr",
            "slack_send_message",
        ],
        weight: 0.20,
        parallel: None,
        abandon: 0.08,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.85,
    },
    Workflow {
        name: "data_pipeline",
        tools: &[
            "fetch_data",
            "transform_data",
            "store_data",
            "send_notification",
        ],
        weight: 0.16,
        parallel: None,
        abandon: 0.12,
        extra: Some((1, "validate_data", 0.25)),
        skip: None,
        rounds: None,
        solves: 0.7,
    },
    Workflow {
        name: "approval",
        tools: &[
            "create_item",
            "notify_approver",
            "wait_for_approval",
            "update_item",
        ],
        weight: 0.13,
        parallel: None,
        abandon: 0.15,
        extra: None,
        skip: Some((1, 0.15)),
        rounds: None,
        solves: 0.75,
    },
    Workflow {
        name: "search_report",
        tools: &[
            "web_search",
            "aggregate_results",
            "format_report",
            "send_email",
        ],
        weight: 0.11,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.15,
    },
    Workflow {
        name: "deploy",
        tools: &[
            "build_image",
            "run_unit_tests",
            "scan_image",
            "lint_image",
            "deploy_service",
        ],
        weight: 0.10,
        parallel: Some(1..4),
        abandon: 0.10,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.9,
    },
    Workflow {
        name: "fix_loop",
        tools: &["run_pytest", "apply_patch", "run_pytest"],
        weight: 0.06,
        parallel: None,
        abandon: 0.10,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.6,
    },
    Workflow {
        name: "lookup",
        tools: &["lookup_user", "send_email"],
        weight: 0.07,
        parallel: None,
        abandon: 0.20,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.7,
    },
    Workflow {
        name: "onboarding",
        tools: &[
            "create_account",
            "verify_email",
            "create_item",
            "assign_role",
            "provision_workspace",
            "grant_access",
            "schedule_intro",
            "send_notification",
        ],
        weight: 0.08,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.8,
    },
];

/// Agent-shaped workflows: a customer-service trunk (two lookups) with three branches of
/// different weights; a coding agent whose three behaviours share steps (a common start, middle
/// and tail) and one of which is a loop of one to four rounds (edit → test until green); and a
/// triage whose any-order stage holds tools that are also called at random elsewhere.
const AGENT_WORKFLOWS: [Workflow; 7] = [
    Workflow {
        name: "cancel",
        tools: &["get_customer", "get_booking", "cancel_booking"],
        weight: 0.15,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.05,
    },
    Workflow {
        name: "hand_over",
        tools: &["get_customer", "get_booking", "transfer_to_agent"],
        weight: 0.11,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.3,
    },
    Workflow {
        name: "rebook",
        tools: &[
            "get_customer",
            "get_booking",
            "search_flights",
            "update_booking",
        ],
        weight: 0.07,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.9,
    },
    Workflow {
        name: "feature",
        tools: &["search_code", "edit_file", "git_commit", "open_pr"],
        weight: 0.10,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.75,
    },
    Workflow {
        name: "explore",
        tools: &[
            "search_code",
            "read_file",
            "edit_file",
            "run_tests",
            "open_pr",
        ],
        weight: 0.10,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.65,
    },
    Workflow {
        name: "fix",
        tools: &[
            "run_tests",
            "edit_file",
            "run_tests",
            "git_commit",
            "open_pr",
        ],
        weight: 0.10,
        parallel: None,
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: Some((1..3, 4)),
        solves: 0.8,
    },
    Workflow {
        name: "triage",
        tools: &[
            "fetch_alert",
            "query_metrics",
            "read_logs",
            "list_deploys",
            "post_incident",
        ],
        weight: 0.09,
        parallel: Some(1..4),
        abandon: 0.05,
        extra: None,
        skip: None,
        rounds: None,
        solves: 0.6,
    },
];

/// Tools that agents call between and around the agent-shaped workflows: two of them
/// (`read_logs`, `list_deploys`) are also tools of the triage's stage.
const AGENT_NOISE: [&str; 8] = [
    "think",
    "list_files",
    "web_search",
    "read_logs",
    "list_deploys",
    "ask_user",
    "calculator",
    "get_weather",
];

/// Which workflows a generated log holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// The seed's tool workflows, each with tools of its own (mostly), run one after another.
    #[default]
    Tools,
    /// Agent-shaped logs: branches after a shared start, workflows that
    /// share steps, a loop, stage tools that are noise too, and two workflows interleaved in
    /// half the sessions that run two.
    Agent,
}

impl Shape {
    fn workflows(self) -> &'static [Workflow] {
        match self {
            Shape::Tools => &WORKFLOWS,
            Shape::Agent => &AGENT_WORKFLOWS,
        }
    }

    fn noise(self) -> &'static [&'static str] {
        match self {
            Shape::Tools => &NOISE,
            Shape::Agent => &AGENT_NOISE,
        }
    }
}

/// The data flow planted with payloads, per workflow: bindings, constants, variables.
type Flow = (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    &'static [&'static str],
);

fn planted_flow(name: &str) -> Flow {
    match name {
        "github_pr" => (
            &[
                (
                    "github_create_pr.issue",
                    "github_list_issues.issues[0].number",
                ),
                ("slack_send_message.link", "github_create_pr.url"),
            ],
            &[
                "github_list_issues.state",
                "github_create_pr.base",
                "slack_send_message.channel",
            ],
            &["repo"],
        ),
        "data_pipeline" => (
            &[
                ("transform_data.dataset_id", "fetch_data.dataset_id"),
                ("store_data.source_table", "transform_data.output_table"),
            ],
            &[
                "transform_data.schema",
                "store_data.table",
                "send_notification.to",
            ],
            &[],
        ),
        "deploy" => (
            &[
                ("run_unit_tests.image", "build_image.image"),
                ("scan_image.image", "build_image.image"),
                ("lint_image.image", "build_image.image"),
                ("deploy_service.image", "build_image.image"),
            ],
            &["deploy_service.env"],
            &[],
        ),
        _ => (&[], &[], &[]),
    }
}

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
    /// Write `arguments` and `result` JSON columns, with values passed between steps.
    pub payloads: bool,
    /// How messy the log is: 1 is like monitoring logs (other calls between steps, some beyond
    /// a gap of 2, runs abandoned after 5–20 % of steps, retries), 0 is clean (no abandoned runs,
    /// no long gaps), 2 twice as messy.
    pub noise: f64,
    pub shape: Shape,
    pub outcomes: PlantOutcomes,
}

/// Whether and where a generated log gets its sessions' task outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlantOutcomes {
    #[default]
    None,
    /// An `outcome` column (1 solved, 0 not) on every row of the session.
    Column,
    /// In [`Truth::outcomes`], for a results file of their own.
    Listed,
}

/// The chance that a session solves its task when it ran no planted workflow whole: after a run
/// abandoned half way, and otherwise.
const SOLVES_AFTER_ABANDONING: f64 = 0.2;
const SOLVES_OTHERWISE: f64 = 0.5;

impl Default for GenerateParams {
    fn default() -> GenerateParams {
        GenerateParams {
            sessions: 3000,
            seed: 42,
            payloads: true,
            noise: 1.0,
            shape: Shape::Tools,
            outcomes: PlantOutcomes::None,
        }
    }
}

/// The ground truth of a generated log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Truth {
    pub seed: u64,
    pub noise: f64,
    #[serde(skip_serializing_if = "is_tools")]
    pub shape: Shape,
    pub sessions: usize,
    pub events: usize,
    /// With outcomes: the sessions that solved their task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solved: Option<usize>,
    pub workflows: Vec<Planted>,
    /// With [`PlantOutcomes::Listed`]: each session's id and whether it solved its task.
    #[serde(skip)]
    pub outcomes: Vec<(String, bool)>,
}

fn is_tools(shape: &Shape) -> bool {
    *shape == Shape::Tools
}

/// One call to write: its tool, its payloads, and whether the next call starts while it runs.
struct Call {
    tool: &'static str,
    arguments: Value,
    result: Value,
    overlaps_next: bool,
}

impl Call {
    fn new(tool: &'static str, (arguments, result): (Value, Value)) -> Call {
        Call {
            tool,
            arguments,
            result,
            overlaps_next: false,
        }
    }
}

/// Writes a CSV log (`session_id,timestamp,tool,success,duration_ms` and, with payloads,
/// `arguments,result`) to `out` and returns the ground truth.
pub fn generate(params: GenerateParams, out: impl Write) -> csv::Result<Truth> {
    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec!["session_id", "timestamp", "tool", "success", "duration_ms"];
    if params.payloads {
        header.extend(["arguments", "result"]);
    }
    if params.outcomes == PlantOutcomes::Column {
        header.push("outcome");
    }
    csv.write_record(&header)?;
    // Outcomes are drawn from a generator of their own: a log with outcomes has the calls of
    // the same log without.
    let mut fate = StdRng::seed_from_u64(params.seed ^ 0x0C7C_0E5E);
    let planting = params.outcomes != PlantOutcomes::None;
    let mut solved_sessions = 0;
    let mut listed = Vec::new();
    let workflows = params.shape.workflows();
    let noise_tools = params.shape.noise();
    let mut planted: Vec<Planted> = workflows
        .iter()
        .map(|w| {
            let (bindings, constants, variables) = if params.payloads {
                planted_flow(w.name)
            } else {
                (&[][..], &[][..], &[][..])
            };
            Planted {
                name: w.name,
                tools: w.tools,
                weight: w.weight,
                sessions: 0,
                funnel: vec![0; w.tools.len()],
                abandon: (w.abandon * params.noise).min(0.5),
                parallel: w
                    .parallel
                    .iter()
                    .map(|r| w.tools[r.clone()].to_vec())
                    .collect(),
                is_loop: w
                    .tools
                    .iter()
                    .enumerate()
                    .any(|(i, t)| w.tools[..i].contains(t)),
                loops: (w.rounds.iter())
                    .map(|(body, most)| PlantedLoop {
                        start: body.start,
                        end: body.end - 1,
                        rounds: vec![0; *most],
                    })
                    .collect(),
                variants: w
                    .extra
                    .map(|(i, tool, _)| PlantedVariant {
                        kind: "extra",
                        step: w.tools[i],
                        tool: Some(tool),
                        sessions: 0,
                    })
                    .into_iter()
                    .chain(w.skip.map(|(i, _)| PlantedVariant {
                        kind: "skipped",
                        step: w.tools[i],
                        tool: None,
                        sessions: 0,
                    }))
                    .collect(),
                bindings: bindings.to_vec(),
                constants: constants.to_vec(),
                variables: variables.to_vec(),
                solves: planting.then_some(w.solves),
                whole: planting.then_some(0),
                solved: planting.then_some(0),
            }
        })
        .collect();
    // 2026-01-05T09:00:00Z
    let mut clock_us: i64 = 1_767_603_600_000_000;
    let mut events = 0;
    let width = params.sessions.to_string().len().max(6);
    let mut calls: Vec<Call> = Vec::new();
    for s in 0..params.sessions {
        calls.clear();
        let mut chosen = Vec::new();
        for _ in 0..if rng.random_bool(0.2) { 2 } else { 1 } {
            let mut pick = rng.random::<f64>();
            let workflow = workflows.iter().position(|w| {
                pick -= w.weight;
                pick < 0.0
            });
            if let Some(w) = workflow.filter(|w| !chosen.contains(w)) {
                chosen.push(w);
            }
        }
        noise(&mut rng, noise_tools, &mut calls, 1..4);
        let mut runs: Vec<Vec<Call>> = Vec::new();
        // The workflows this session ran whole, and whether it abandoned one.
        let mut whole = Vec::new();
        let mut abandoned = false;
        for &w in &chosen {
            let mut calls = Vec::new();
            planted[w].sessions += 1;
            let workflow = &workflows[w];
            let abandon = planted[w].abandon;
            let rounds = (workflow.rounds.as_ref()).map(|(_, most)| rng.random_range(1..=*most));
            let mut steps: Vec<Call> = payloads(&mut rng, workflow.name, workflow.tools.len())
                .into_iter()
                .zip(workflow.tools)
                .map(|(p, &tool)| Call::new(tool, p))
                .collect();
            if let Some(block) = workflow.parallel.clone() {
                steps[block.clone()].shuffle(&mut rng);
                for step in &mut steps[block.start..block.end - 1] {
                    step.overlaps_next = true;
                }
            }
            let extra = workflow.extra.filter(|e| rng.random_bool(e.2));
            let skip = workflow.skip.filter(|s| rng.random_bool(s.1)).map(|s| s.0);
            let mut ran_variant = false;
            for (i, step) in steps.into_iter().enumerate() {
                if skip == Some(i) {
                    // The run goes past the step it skips (the last is never skipped).
                    planted[w].funnel[i] += 1;
                    ran_variant = true;
                    continue;
                }
                let in_block = workflow
                    .parallel
                    .as_ref()
                    .is_some_and(|b| b.start < i && i < b.end);
                // Agents go round a loop without other calls in between.
                let in_body =
                    (workflow.rounds.as_ref()).is_some_and(|(b, _)| b.start < i && i < b.end);
                if i > 0 && !in_block && !in_body {
                    // Mostly adjacent, sometimes one or two other calls in between, now and
                    // then more than a gap of 2 allows.
                    let long = 0.03 * params.noise;
                    let gap = match rng.random::<f64>() {
                        x if x < long => rng.random_range(3..6),
                        x if x < 0.70 => 0,
                        x if x < 0.93 => 1,
                        _ => 2,
                    };
                    noise(&mut rng, noise_tools, &mut calls, gap..gap + 1);
                }
                planted[w].funnel[i] += 1;
                if step.tool == "web_search" {
                    // Searches with other queries before the one whose results are used.
                    for _ in 1..rng.random_range(1..=3) {
                        calls.push(Call::new(step.tool, generic(&mut rng)));
                    }
                }
                let last = i + 1 == workflow.tools.len();
                let leaves_block =
                    !in_block || workflow.parallel.as_ref().is_some_and(|b| i + 1 == b.end);
                calls.push(step);
                // The body again, back to back, for each further round.
                if let Some((body, _)) = workflow.rounds.as_ref().filter(|(b, _)| b.end == i + 1) {
                    let rounds = rounds.expect("drawn for a loop");
                    for _ in 1..rounds {
                        for &tool in &workflow.tools[body.clone()] {
                            calls.push(Call::new(tool, generic(&mut rng)));
                        }
                    }
                    planted[w].loops[0].rounds[rounds - 1] += 1;
                }
                if let Some((_, tool, _)) = extra.filter(|e| e.0 == i) {
                    calls.push(Call::new(tool, generic(&mut rng)));
                    ran_variant = true;
                }
                // A run may stop after any step (not inside a parallel stage).
                if !last && leaves_block && rng.random_bool(abandon) {
                    abandoned = true;
                    break;
                }
                if last {
                    whole.push(w);
                }
            }
            if ran_variant
                && let Some(v) = planted[w].variants.iter_mut().find(|v| {
                    (v.kind == "extra" && extra.is_some())
                        || (v.kind == "skipped" && skip.is_some())
                })
            {
                v.sessions += 1;
            }
            noise(&mut rng, noise_tools, &mut calls, 0..3);
            runs.push(calls);
        }
        // Agents interleave two tasks in half the sessions that run two.
        if params.shape == Shape::Agent && runs.len() == 2 && rng.random_bool(0.5) {
            let b = runs.pop().expect("two");
            let a = runs.pop().expect("two");
            let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
            while a.peek().is_some() || b.peek().is_some() {
                let from_a = b.peek().is_none() || (a.peek().is_some() && rng.random_bool(0.5));
                calls.extend(if from_a { a.next() } else { b.next() });
            }
        }
        for run in runs {
            calls.extend(run);
        }
        noise(&mut rng, noise_tools, &mut calls, 0..3);

        let session = format!("sess-{s:0width$}");
        let chance = match (whole.is_empty(), abandoned) {
            (false, _) => {
                whole.iter().map(|&w| workflows[w].solves).sum::<f64>() / whole.len() as f64
            }
            (true, true) => SOLVES_AFTER_ABANDONING,
            (true, false) => SOLVES_OTHERWISE,
        };
        let solved = fate.random_bool(chance);
        if planting {
            solved_sessions += usize::from(solved);
            for &w in &whole {
                *planted[w].whole.as_mut().expect("planting") += 1;
                *planted[w].solved.as_mut().expect("planting") += usize::from(solved);
            }
        }
        if params.outcomes == PlantOutcomes::Listed {
            listed.push((session.clone(), solved));
        }
        clock_us += rng.random_range(1_000_000..60_000_000);
        let mut t = clock_us;
        // When the last of the calls running at once ends.
        let mut busy_until = t;
        for call in &calls {
            // A failed call is usually retried at once; the retry is a repeat the miner collapses.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let ok = !rng.random_bool(failure_rate(call.tool));
                let duration_ms = rng.random_range(20..2_000);
                let stamp = DateTime::from_timestamp_micros(t)
                    .expect("in range")
                    .to_rfc3339_opts(SecondsFormat::Millis, true);
                let mut record = vec![
                    session.clone(),
                    stamp,
                    call.tool.to_string(),
                    if ok { "1" } else { "0" }.to_string(),
                    duration_ms.to_string(),
                ];
                if params.payloads {
                    record.push(call.arguments.to_string());
                    record.push(if ok {
                        call.result.to_string()
                    } else {
                        String::new()
                    });
                }
                if params.outcomes == PlantOutcomes::Column {
                    record.push(u8::from(solved).to_string());
                }
                csv.write_record(&record)?;
                events += 1;
                busy_until = busy_until.max(t + duration_ms * 1_000);
                let retried = !ok && attempts < 3 && rng.random_bool(0.6);
                t = if call.overlaps_next && !retried {
                    // The next call of a parallel block starts while this one runs.
                    t + rng.random_range(5_000..50_000)
                } else {
                    busy_until + rng.random_range(10_000..3_000_000)
                };
                if !retried {
                    break;
                }
            }
        }
    }
    csv.flush()?;
    Ok(Truth {
        seed: params.seed,
        noise: params.noise,
        shape: params.shape,
        sessions: params.sessions,
        events,
        solved: planting.then_some(solved_sessions),
        workflows: planted,
        outcomes: listed,
    })
}

const REPOS: [&str; 6] = [
    "acme/app",
    "acme/api",
    "acme/web",
    "globex/core",
    "initech/tps",
    "umbrella/lab",
];
const SERVICES: [&str; 4] = ["checkout", "search", "billing", "gateway"];

/// Arguments and results for the steps of a workflow run, in the workflow's order, with the
/// data flow of [`planted_flow`].
fn payloads(rng: &mut StdRng, workflow: &str, steps: usize) -> Vec<(Value, Value)> {
    match workflow {
        "github_pr" => {
            let repo = REPOS[rng.random_range(0..REPOS.len())];
            let (issue, other) = (rng.random_range(1..5000), rng.random_range(1..5000));
            let pr = rng.random_range(100..10_000);
            let url = format!("https://github.com/{repo}/pull/{pr}");
            vec![
                (
                    json!({"repo": repo, "state": "open"}),
                    json!({"issues": [{"number": issue, "title": format!("Bug {issue}")},
                                      {"number": other, "title": format!("Bug {other}")}]}),
                ),
                (
                    json!({"repo": repo, "issue": issue, "title": format!("Fix #{issue}"), "base": "main"}),
                    json!({"url": url, "number": pr}),
                ),
                (
                    json!({"channel": "#dev", "link": url}),
                    json!({"ok": true, "ts": format!("{}.{:06}", rng.random_range(1_700_000_000..1_800_000_000u64), rng.random_range(0..1_000_000))}),
                ),
            ]
        }
        "data_pipeline" => {
            let dataset = format!("ds-{:08x}", rng.random::<u32>());
            let table = format!("tmp_{:08x}", rng.random::<u32>());
            let rows = rng.random_range(1_000..1_000_000);
            vec![
                (
                    json!({"source_url": format!("https://data.example.com/export/{}.csv", rng.random_range(1..100_000))}),
                    json!({"dataset_id": dataset, "rows": rows}),
                ),
                (
                    json!({"dataset_id": dataset, "schema": "v2"}),
                    json!({"output_table": table, "rows": rows}),
                ),
                (
                    json!({"source_table": table, "table": "analytics.events"}),
                    json!({"stored": rows}),
                ),
                (
                    json!({"to": "data-team@example.com", "table": "analytics.events"}),
                    json!({"sent": true}),
                ),
            ]
        }
        "deploy" => {
            let service = SERVICES[rng.random_range(0..SERVICES.len())];
            let image = format!(
                "registry.example.com/{service}:{:07x}",
                rng.random::<u32>() >> 4
            );
            vec![
                (json!({"service": service}), json!({"image": image})),
                (
                    json!({"image": image}),
                    json!({"passed": rng.random_range(50..500), "failed": 0}),
                ),
                (json!({"image": image}), json!({"vulnerabilities": 0})),
                (
                    json!({"image": image}),
                    json!({"warnings": rng.random_range(0..20)}),
                ),
                (
                    json!({"image": image, "env": "prod"}),
                    json!({"url": format!("https://{service}.example.com"), "revision": rng.random_range(1..1000)}),
                ),
            ]
        }
        _ => (0..steps).map(|_| generic(rng)).collect(),
    }
}

/// Arguments and a result with no data flow: an id that varies, an `ok` result.
fn generic(rng: &mut StdRng) -> (Value, Value) {
    (
        json!({"id": rng.random_range(1..100_000)}),
        json!({"ok": true}),
    )
}

fn failure_rate(tool: &str) -> f64 {
    match tool {
        "wait_for_approval" => 0.12,
        "github_create_pr" => 0.08,
        "http_get" | "fetch_data" => 0.06,
        _ => 0.02,
    }
}

fn noise(
    rng: &mut StdRng,
    tools: &[&'static str],
    calls: &mut Vec<Call>,
    count: std::ops::Range<usize>,
) {
    let n = if count.len() > 1 {
        rng.random_range(count)
    } else {
        count.start
    };
    for _ in 0..n {
        let tool = tools[rng.random_range(0..tools.len())];
        calls.push(Call::new(tool, generic(rng)));
    }
}
