//! From a mined chain to a template: deterministic, readable, file-system-safe names.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::model::{LoopBlock, Metadata, OnError, Source, WorkflowStep, WorkflowTemplate};

/// The figures of a mined chain that go into its template's metadata.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChainStats {
    pub support: u64,
    pub success_rate: f64,
    pub score: f64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Per step, the tool to call, where it is not the chain's name: a refined tool
    /// (`Bash:cargo test`) calls the tool it refines (`Bash`). Empty: the chain's names.
    pub tools: Vec<String>,
    /// Per step, the retries to plan for (empty: none).
    pub retries: Vec<u32>,
    /// Steps that runs repeated back to back, and the most rounds a run went through them.
    #[serde(default)]
    pub loops: Vec<(std::ops::Range<usize>, u32)>,
    /// Mean time of an occurrence (its steps' calls, retries included), when the log has durations.
    pub avg_duration_ms: Option<f64>,
    /// Ranges of steps that run in any order (parallel groups).
    pub blocks: Vec<std::ops::Range<usize>>,
    /// Other orderings of the chain merged into it.
    pub orderings: Vec<Vec<String>>,
    /// Per step, its parameters with `{{...}}` bindings (empty: none known).
    pub parameters: Vec<Map<String, Value>>,
    /// The variables a user must give, in order of first use, with the JSON Schema type of the
    /// values seen when they share one.
    pub variables: Vec<(String, Option<String>)>,
    /// What the summary folded into the workflow (its funnel, variants, sessions), as metadata
    /// fields of their own.
    pub folded: Map<String, Value>,
}

/// The metadata fields that `mine` owns besides the figures: refreshed on every re-mine.
pub const MINED_FIELDS: [&str; 20] = [
    "exits",
    "round_trips_saved",
    "turns_saved",
    "tokens_saved",
    "outcome_kind",
    "outcome_rate",
    "outcome_rate_without",
    "outcome_sessions",
    "outcome_sessions_without",
    "outcome_difference",
    "outcome_interval",
    "outcome_effect",
    "orderings",
    "sessions",
    "coverage",
    "funnel",
    "variants",
    "loops",
    "branch",
    "variables",
];

/// `Take in charge ticket` → `take_in_charge_ticket`: lower-case letters and digits joined by
/// single underscores.
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The template name of a chain, from its steps' ids (namespaces that several steps share left
/// out): up to four steps all of them (`list_issues-create_pr-slack_send_message`), a longer
/// chain its first two steps, its last and its length (`fetch-check-to-close-9_steps`); cut to
/// stay a short file name. It depends on the chain alone, so it is stable across re-mines.
pub fn name(chain: &[String]) -> String {
    let ids = step_ids(chain);
    let name = match ids.len() {
        0 => String::new(),
        1..=4 => ids.join("-"),
        n => format!("{}-{}-to-{}-{n}_steps", ids[0], ids[1], ids[n - 1]),
    };
    let name: String = name.chars().take(120).collect();
    let name = name.trim_end_matches(['-', '_']).to_string();
    if name.is_empty() {
        "workflow".into()
    } else {
        name
    }
}

/// A name for `chain` that differs from every name in `taken`: the plain name, or with a short
/// hash of the whole chain when the plain one is taken (stable across runs and input order).
pub fn unique_name(chain: &[String], taken: impl Fn(&str) -> bool) -> String {
    let plain = name(chain);
    if !taken(&plain) {
        return plain;
    }
    // FNV-1a over the chain: the same chain always gets the same suffix.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in chain.join("\u{1f}").bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x100_0000_01b3);
    }
    format!("{plain}_{:06x}", hash & 0xff_ffff)
}

/// Step ids for the tools of a chain: the tool's slug, without a first segment that several
/// different tools share (`github_list_issues`, `github_create_pr` → `list_issues`, `create_pr`); a
/// repeated id gets `_2`, `_3`; one that is not a name (`3d`, `true`) gets `s_` before it.
pub fn step_ids(tools: &[String]) -> Vec<String> {
    let slugs: Vec<String> = tools.iter().map(|t| slug(t)).collect();
    let head = |s: &str| s.split_once('_').map(|(h, _)| h.to_string());
    // How many different tools share each first segment.
    let mut namespace_count: HashMap<String, usize> = HashMap::new();
    for (i, s) in slugs.iter().enumerate() {
        if let Some(h) = head(s)
            && !slugs[..i].contains(s)
        {
            *namespace_count.entry(h).or_default() += 1;
        }
    }
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    slugs
        .iter()
        .map(|s| {
            let base = match s.split_once('_') {
                Some((h, rest)) if namespace_count[h] > 1 => rest.to_string(),
                _ => s.clone(),
            };
            let base = match base.as_str() {
                "" => "step".to_string(),
                b if !super::expr::is_name(b) => format!("s_{base}"),
                _ => base,
            };
            // The next free number of this base (`a_2` may be another tool's id already).
            let n = used.entry(base.clone()).or_default();
            loop {
                *n += 1;
                let id = match *n {
                    1 => base.clone(),
                    n => format!("{base}_{n}"),
                };
                if taken.insert(id.clone()) {
                    return id;
                }
            }
        })
        .collect()
}

/// `a → {b ∥ c} → (d → e)+`: a chain, with each parallel block in braces and each loop's body
/// (step ranges) in parentheses, around the stages that hold its first and last steps.
pub fn chain_text(
    chain: &[impl AsRef<str>],
    blocks: &[std::ops::Range<usize>],
    loops: &[std::ops::Range<usize>],
) -> String {
    let names: Vec<&str> = chain.iter().map(AsRef::as_ref).collect();
    stages(names.len(), blocks)
        .iter()
        .map(|stage| {
            let open = loops.iter().any(|l| stage.contains(&l.start));
            let close = loops.iter().any(|l| stage.contains(&(l.end - 1)));
            format!(
                "{}{}{}",
                if open { "(" } else { "" },
                stage_text(&names[stage.clone()]),
                if close { ")+" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// A stage as text: its tool, or `{a ∥ b}` for tools that run in any order.
pub fn stage_text(tools: &[impl AsRef<str>]) -> String {
    match tools {
        [one] => one.as_ref().to_string(),
        _ => {
            let names: Vec<&str> = tools.iter().map(AsRef::as_ref).collect();
            format!("{{{}}}", names.join(" ∥ "))
        }
    }
}

/// The stages of a chain of `len` steps: each block one stage, every other step its own.
fn stages(len: usize, blocks: &[std::ops::Range<usize>]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < len {
        let end = blocks
            .iter()
            .find(|b| b.start == i && b.len() > 1 && b.end <= len)
            .map_or(i + 1, |b| b.end);
        out.push(i..end);
        i = end;
    }
    out
}

/// The template of a mined chain: each stage depends on the one before, where a stage is one
/// step or the parallel group; data edges always point to an earlier stage, so the stage edges
/// are their transitive reduction too.
pub fn from_chain(name: String, chain: &[String], stats: &ChainStats) -> WorkflowTemplate {
    let ids = step_ids(chain);
    let stages = stages(chain.len(), &stats.blocks);
    // The steps of the stage before step i.
    let before = |i: usize| -> Vec<String> {
        let k = stages
            .iter()
            .position(|s| s.contains(&i))
            .expect("every step");
        k.checked_sub(1)
            .map(|p| stages[p].clone().map(|p| ids[p].clone()).collect())
            .unwrap_or_default()
    };
    let blocks: Vec<std::ops::Range<usize>> =
        stages.iter().filter(|s| s.len() > 1).cloned().collect();
    // The step before a loop that calls what the loop's last step calls is its first check
    // (test → (edit → test)+): when it fails, the loop runs; the run goes on.
    let check = |i: usize| {
        (stats.loops.iter()).any(|(body, _)| body.start == i + 1 && chain[i] == chain[body.end - 1])
    };
    let steps = chain
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, (tool, id))| WorkflowStep {
            step_id: id.clone(),
            tool_name: stats.tools.get(i).unwrap_or(tool).clone(),
            parameters: stats.parameters.get(i).cloned().unwrap_or_default(),
            depends_on: before(i),
            condition: None,
            retry_count: stats.retries.get(i).copied().unwrap_or(0),
            timeout_seconds: None,
            on_error: match check(i) {
                true => OnError::Continue,
                false => OnError::Abort,
            },
            retry: None,
            compensate: None,
        })
        .collect();
    let loop_steps: Vec<std::ops::Range<usize>> = stats.loops.iter().map(|l| l.0.clone()).collect();
    let mut description = format!("{} (mined)", chain_text(chain, &blocks, &loop_steps));
    if !stats.variables.is_empty() {
        description.push_str(&format!(
            "; give {}",
            stats
                .variables
                .iter()
                .map(|(v, _)| format!("--var {v}=…"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let mut extra = stats.folded.clone();
    // The type of each variable's values in the log: what a server asks a client for.
    let types: Map<String, Value> = (stats.variables.iter())
        .filter_map(|(v, kind)| Some((v.clone(), serde_json::json!({ "type": kind.as_ref()? }))))
        .collect();
    if !types.is_empty() {
        extra.insert("variables".into(), Value::Object(types));
    }
    if !stats.orderings.is_empty() {
        extra.insert(
            "orderings".into(),
            serde_json::to_value(&stats.orderings).expect("strings"),
        );
    }
    // A mined loop goes round until its last step succeeds, at most as often as a run did.
    let loops = (stats.loops.iter())
        .map(|(body, most)| LoopBlock {
            steps: ids[body.clone()].to_vec(),
            until: format!("{{{{{}.success}}}} == true", ids[body.end - 1]),
            max_rounds: *most,
        })
        .collect();
    WorkflowTemplate {
        name,
        description,
        steps,
        parallel_groups: blocks.iter().map(|b| ids[b.clone()].to_vec()).collect(),
        retry: None,
        loops,
        metadata: Metadata {
            source: Source::Mined,
            pattern: chain.to_vec(),
            usage_count: Some(stats.support),
            success_rate: Some(stats.success_rate),
            score: Some(stats.score),
            first_seen: stats.first_seen.clone(),
            last_seen: stats.last_seen.clone(),
            avg_duration_ms: stats.avg_duration_ms,
            extra,
            ..Metadata::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(tools: &[&str]) -> Vec<String> {
        tools.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_and_ids_read_well() {
        let c = chain(&[
            "github_list_issues",
            "github_create_pr",
            "slack_send_message",
        ]);
        assert_eq!(name(&c), "list_issues-create_pr-slack_send_message");
        assert_eq!(
            step_ids(&c),
            ["list_issues", "create_pr", "slack_send_message"]
        );
        let c = chain(&[
            "Take in charge ticket",
            "Wait",
            "Take in charge ticket",
            "3d/render",
        ]);
        assert_eq!(
            name(&c),
            "take_in_charge_ticket-wait-take_in_charge_ticket_2-s_3d_render"
        );
        let long: Vec<String> = (1..=9).map(|i| format!("step{i}")).collect();
        assert_eq!(name(&long), "step1-step2-to-step9-9_steps");
        assert_eq!(
            step_ids(&c),
            [
                "take_in_charge_ticket",
                "wait",
                "take_in_charge_ticket_2",
                "s_3d_render"
            ]
        );
        assert_eq!(name(&chain(&["../../etc/passwd"])), "etc_passwd");
        assert_eq!(
            step_ids(&chain(&["true", "a", "a", "a_2"])),
            ["s_true", "a", "a_2", "a_2_2"]
        );
    }

    #[test]
    fn a_taken_name_gets_a_stable_suffix() {
        let c = chain(&["a", "b", "c"]);
        let other = chain(&["a", "x", "c"]);
        let n1 = unique_name(&c, |n| n == "a-b-c");
        let n2 = unique_name(&other, |n| n == "a-x-c" || n == "a-b-c");
        assert!(
            n1.starts_with("a-b-c_") && n1.len() == "a-b-c_".len() + 6,
            "{n1}"
        );
        assert_ne!(n1, n2);
        assert_eq!(n1, unique_name(&c, |n| n == "a-b-c"));
        assert_eq!(unique_name(&c, |_| false), "a-b-c");
    }
}
