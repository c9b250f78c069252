//! What a workflow is, in words for a model: the description a server gives its tool, and an
//! Agent Skill (`SKILL.md`) that Claude Code and Codex load.

use indexmap::IndexMap;
use serde_json::Value;

use super::{Source, Variable, WorkflowTemplate, compile};

/// The most a skill's name may hold (the Agent Skills spec).
const MAX_SKILL_NAME: usize = 64;
/// The most a skill's description may hold (the Agent Skills spec).
const MAX_SKILL_DESCRIPTION: usize = 1024;

/// `s` on one line: control characters (a line break in a tool name from a log) escaped as JSON
/// escapes them, so that nothing from a log can start a heading or end the front matter.
fn inline(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string");
    quoted[1..quoted.len() - 1].replace("\\\"", "\"")
}

/// `s` as Markdown code: a span fenced by more backticks than any run inside, which cannot end it.
fn code(s: &str) -> String {
    let longest = (s.split(|c| c != '`')).map(str::len).max().unwrap_or(0);
    match longest {
        0 => format!("`{s}`"),
        n => {
            let fence = "`".repeat(n + 1);
            format!("{fence} {s} {fence}")
        }
    }
}

/// The chain of tools: `a → b → c`.
pub fn tool_chain(t: &WorkflowTemplate) -> String {
    t.tools().collect::<Vec<_>>().join(" → ")
}

/// What the workflow does, its steps, how often it ran and succeeded, and what to give.
pub fn describe(t: &WorkflowTemplate, variables: &IndexMap<String, Variable>) -> String {
    let m = &t.metadata;
    let mut out = String::new();
    match t.description.trim() {
        // A mined description is the chain with the flags of `run`: the chain is said below.
        d if !d.is_empty() && m.source != Source::Mined => out.push_str(d.trim_end_matches('.')),
        _ => out.push_str(&format!("Runs {} in one call", tool_chain(t))),
    }
    out.push_str(". Steps: ");
    let steps: Vec<String> = (t.steps.iter())
        .map(|s| match s.step_id == s.tool_name {
            true => s.tool_name.clone(),
            false => format!("{} ({})", s.step_id, s.tool_name),
        })
        .collect();
    out.push_str(&steps.join(", "));
    out.push('.');
    if let (Some(n), Some(rate)) = (m.usage_count, m.success_rate) {
        out.push_str(&format!(
            " Learned from tool-usage logs: this chain ran {n} times, every call succeeding in {:.0}% of them.",
            rate * 100.0
        ));
    }
    out.push_str(&worth(m));
    if !variables.is_empty() {
        let names: Vec<&str> = variables.keys().map(String::as_str).collect();
        out.push_str(&format!(" Arguments: {}.", names.join(", ")));
    }
    out.push_str(" Returns each step's result, the final step's first.");
    out
}

/// What the logs said the workflow is worth, when they knew: the task outcomes of the sessions
/// that ran it (a caution when markedly worse than the others'), and the model turns and tokens
/// that running it as one call saved (medians per run).
fn worth(m: &super::Metadata) -> String {
    let number = |k: &str| m.measured(k, None);
    let mut out = String::new();
    if let (Some(rate), Some(others)) = (number("outcome_rate"), number("outcome_rate_without")) {
        let rate_word = m.extra.get("outcome_kind").and_then(|k| k.as_str()) == Some("rate");
        let (a, b) = match rate_word {
            true => (
                format!("{:.0}%", rate * 100.0),
                format!("{:.0}%", others * 100.0),
            ),
            false => (
                format!("a mean reward of {rate:.2}"),
                format!("{others:.2}"),
            ),
        };
        let said = match m.extra.get("outcome_effect").and_then(|e| e.as_str()) {
            Some("drop") => format!(
                " Caution: sessions that ran it solved their task markedly less often ({a}) than the others ({b})."
            ),
            Some("lift") => format!(
                " Sessions that ran it solved their task markedly more often ({a}) than the others ({b})."
            ),
            _ => format!(
                " Sessions that ran it solved their task {a} of the time ({b} for the others)."
            ),
        };
        out.push_str(&said);
    }
    let median = |k: &str| m.measured(k, Some("median"));
    if let (Some(turns), Some(tokens)) = (median("turns_saved"), median("tokens_saved")) {
        out.push_str(&format!(
            " One call instead of the chain saves a median {turns} model turns and {} tokens per run.",
            crate::numbers::count(tokens.round() as u64)
        ));
    }
    out
}

/// A skill's name for template `name`: lower-case letters, digits and single hyphens, at most 64
/// characters, not starting or ending with a hyphen (`github_pr_workflow` → `github-pr-workflow`).
pub fn skill_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            _ if !out.is_empty() && !out.ends_with('-') => out.push('-'),
            _ => {}
        }
    }
    out.truncate(MAX_SKILL_NAME);
    let out = out.trim_end_matches('-').to_string();
    match out.is_empty() {
        true => "workflow".into(),
        false => out,
    }
}

/// `SKILL.md` of template `t` as skill `name` ([`skill_name`]): front matter with the name and
/// the description (at most 1,024 characters), then when to use it, its steps, and the
/// `patterns run` command with its arguments.
pub fn skill(t: &WorkflowTemplate, name: &str) -> String {
    let variables = compile(t).0.variables(t);
    let mut description = describe(t, &variables);
    if description.chars().count() > MAX_SKILL_DESCRIPTION {
        description = description
            .chars()
            .take(MAX_SKILL_DESCRIPTION - 1)
            .collect();
        description.push('…');
    }
    let types = t.metadata.extra.get("variables").and_then(Value::as_object);
    let quote = |s: &str| serde_json::to_string(s).expect("a string");
    let mut out = format!(
        "---\nname: {name}\ndescription: {}\nmetadata:\n  generator: patterns\n  workflow: {}\n---\n\n",
        quote(&description),
        quote(&t.name)
    );
    out += &format!("# {}\n\n", t.name);
    out += "## When to use it\n\n";
    out += &format!(
        "When the task calls for {}: one `patterns run` does every step, in order, feeding each \
         step's result to the next, instead of one tool call (and one model turn) per step.",
        inline(&tool_chain(t))
    );
    if let (Some(n), Some(rate)) = (t.metadata.usage_count, t.metadata.success_rate)
        && t.metadata.source == Source::Mined
    {
        out += &format!(
            " It was learned from tool-usage logs, where this chain ran {n} times, every call \
             succeeding in {:.0}% of them.",
            rate * 100.0
        );
    }
    out += "\n\n## Steps\n\n";
    for (k, s) in t.steps.iter().enumerate() {
        out += &format!(
            "{}. `{}`: tool {}",
            k + 1,
            s.step_id,
            code(&inline(&s.tool_name))
        );
        if !s.depends_on.is_empty() {
            out += &format!(", after {}", s.depends_on.join(", "));
        }
        out += "\n";
        for (key, value) in &s.parameters {
            out += &format!(
                "   - {} = {}\n",
                code(&inline(key)),
                code(&value.to_string())
            );
        }
    }
    out += "\n## Run it\n\n```sh\npatterns run ";
    out += &t.name;
    for name in variables.keys() {
        out += &format!(" --var {name}=<{name}>");
    }
    out += " --json\n```\n\n";
    if !variables.is_empty() {
        out += "Arguments:\n\n";
        for (name, v) in &variables {
            let kind = (types.and_then(|t| t.get(name)))
                .and_then(|v| v.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("any");
            let feeds: Vec<String> = (v.feeds.iter())
                .map(|(step, what)| format!("step {step} ({what})"))
                .collect();
            let required = if v.required { "required" } else { "optional" };
            out += &format!(
                "- `{name}` ({kind}, {required}): goes to {}\n",
                feeds.join(", ")
            );
        }
        out += "\n";
    }
    out += "The tools are bound in tools.toml (`patterns tools list` shows them). The JSON printed \
            has each step's status and result; exit code 0 means the workflow succeeded. A failed \
            run names the step that failed and how to finish it (`patterns run --resume RUN_ID`).\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_workflow_is_worth_is_said_when_the_logs_knew_it() {
        let t = |extra: serde_json::Value| -> WorkflowTemplate {
            serde_json::from_value(serde_json::json!({
                "name": "w", "steps": [{"step_id": "a", "tool_name": "a"}],
                "metadata": extra,
            }))
            .unwrap()
        };
        let plain = describe(&t(serde_json::json!({})), &IndexMap::new());
        assert!(
            !plain.contains("solved") && !plain.contains("tokens"),
            "{plain}"
        );
        let worse = describe(
            &t(
                serde_json::json!({"outcome_kind": "rate", "outcome_rate": 0.104,
                "outcome_rate_without": 0.562, "outcome_effect": "drop",
                "turns_saved": {"runs": 9, "total": 27, "median": 3.0},
                "tokens_saved": {"runs": 9, "total": 668515, "median": 72366.0}}),
            ),
            &IndexMap::new(),
        );
        assert!(
            worse.contains(" Caution: sessions that ran it solved their task markedly less often (10%) than the others (56%).")
                && worse.contains(" saves a median 3 model turns and 72,366 tokens per run."),
            "{worse}"
        );
    }

    #[test]
    fn skill_names_follow_the_spec() {
        assert_eq!(skill_name("github_pr_workflow"), "github-pr-workflow");
        assert_eq!(skill_name("__A--b..C__"), "a-b-c");
        assert_eq!(skill_name("Été 2026"), "t-2026");
        assert_eq!(skill_name("---"), "workflow");
        let long = skill_name(&"ab_".repeat(40));
        assert!(long.len() <= 64 && !long.ends_with('-'), "{long}");
    }

    #[test]
    fn nothing_from_a_log_breaks_the_skill_file() {
        let t: WorkflowTemplate = serde_json::from_value(serde_json::json!({
            "name": "evil",
            "description": "x".repeat(3000),
            "steps": [{"step_id": "a", "tool_name": "t\n---\n# `x` ``y``",
                       "parameters": {"k\nname: z": "a ``` b", "repo": "{{repo}}"}}]
        }))
        .unwrap();
        let text = skill(&t, "evil");
        let front: Vec<&str> = text.split("---\n").nth(1).unwrap().lines().collect();
        assert_eq!(front[0], "name: evil");
        let description: String =
            serde_json::from_str(front[1].strip_prefix("description: ").unwrap()).unwrap();
        assert_eq!(description.chars().count(), 1024, "cut to the spec's limit");
        assert_eq!(
            text.matches("\n---\n").count(),
            1,
            "the front matter ends once: {text}"
        );
        let headings: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            headings,
            ["# evil", "## When to use it", "## Steps", "## Run it"]
        );
        assert!(
            text.contains("tool ``` t\\n---\\n# `x` ``y`` ```"),
            "{text}"
        );
        assert!(text.contains("= ```` \"a ``` b\" ````"), "{text}");
        assert!(text.contains("--var repo=<repo>"), "{text}");
    }
}
