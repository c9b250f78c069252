//! Checks of a template, every problem reported at once.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::expr::{Condition, Text, is_name};
use super::model::{OnError, WorkflowTemplate};

/// Whether `name` can be a library file name: letters, digits, `_`, `-` and `.`, not starting
/// with a dot, at most 200 characters. Rules out `../x`, slashes and control characters.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Every problem of `t`; empty when it is valid.
pub fn problems(t: &WorkflowTemplate) -> Vec<String> {
    let mut out = Vec::new();
    if !is_safe_name(&t.name) {
        out.push(format!(
            "name {:?} is not a safe file name (letters, digits, '_', '-', '.'; not starting with '.')",
            t.name
        ));
    }
    if t.steps.is_empty() {
        out.push("the workflow has no steps".into());
    }
    let mut seen = HashSet::new();
    for s in &t.steps {
        if !is_name(&s.step_id) {
            out.push(format!(
                "step id {:?} is not a name (letters, digits, '_'; not true, false or null)",
                s.step_id
            ));
        }
        if !seen.insert(s.step_id.as_str()) {
            out.push(format!("step id '{}' is used twice", s.step_id));
        }
        if s.tool_name.trim().is_empty() {
            out.push(format!("step '{}' has no tool_name", s.step_id));
        }
    }
    // Placeholders and conditions parse.
    for s in &t.steps {
        let compensate = s.compensate.iter().flat_map(|c| &c.parameters);
        let texts = s
            .parameters
            .iter()
            .map(|(k, v)| (format!("parameter '{k}'"), v))
            .chain(compensate.map(|(k, v)| (format!("compensate parameter '{k}'"), v)));
        for (what, value) in texts {
            for text in strings(value) {
                if let Err(e) = Text::parse(text) {
                    out.push(format!("step '{}', {what}: {e}", s.step_id));
                }
            }
        }
        if let Some(Err(e)) = s.condition.as_deref().map(Condition::parse) {
            out.push(format!("step '{}', condition: {e}", s.step_id));
        }
    }
    let ids: HashSet<&str> = t.steps.iter().map(|s| s.step_id.as_str()).collect();
    for s in &t.steps {
        for d in &s.depends_on {
            if !ids.contains(d.as_str()) {
                out.push(format!(
                    "step '{}' depends on unknown step '{d}'",
                    s.step_id
                ));
            }
        }
        match &s.on_error {
            OnError::Fallback(f) if !ids.contains(f.as_str()) => {
                out.push(format!("step '{}' falls back to unknown step '{f}'", s.step_id))
            }
            OnError::Unknown(p) => out.push(format!(
                "step '{}' has unknown on_error policy '{p}' (abort, continue, fallback:<step_id>, compensate)",
                s.step_id
            )),
            _ => {}
        }
    }
    let retries = t.retry.iter().map(|r| ("the template".to_string(), r));
    let step_retries = t.steps.iter().filter_map(|s| {
        s.retry
            .as_ref()
            .map(|r| (format!("step '{}'", s.step_id), r))
    });
    for (owner, r) in retries.chain(step_retries) {
        if let Some(p) = r.problem() {
            out.push(format!("{owner} has a bad retry policy: {p}"));
        }
    }
    for s in &t.steps {
        if let Some(secs) = s.timeout_seconds
            && !(secs.is_finite() && secs > 0.0)
        {
            out.push(format!(
                "step '{}' has timeout_seconds {secs}; it must be a number above 0",
                s.step_id
            ));
        }
    }
    for group in &t.parallel_groups {
        for id in group.iter().filter(|id| !ids.contains(id.as_str())) {
            out.push(format!("parallel group names unknown step '{id}'"));
        }
    }
    if let Some(circle) = cycle(t) {
        out.push(format!(
            "steps depend on each other in a circle: {}",
            circle.join(" → ")
        ));
    }
    let mut looped = HashSet::new();
    for (k, l) in t.loops.iter().enumerate() {
        let which = format!("loop {} ({})", k + 1, l.steps.join(" → "));
        if l.steps.is_empty() {
            out.push(format!("{which} has no steps"));
        }
        for id in &l.steps {
            if !ids.contains(id.as_str()) {
                out.push(format!("{which} names unknown step '{id}'"));
            } else if !looped.insert(id.as_str()) {
                out.push(format!("step '{id}' is in two loops"));
            }
        }
        if !(1..=super::model::MAX_ROUNDS).contains(&l.max_rounds) {
            out.push(format!(
                "{which} has max_rounds {}; it must be 1 to {} (a loop is never unbounded)",
                l.max_rounds,
                super::model::MAX_ROUNDS
            ));
        }
        if let Err(e) = Condition::parse(&l.until) {
            out.push(format!("{which}, until: {e}"));
        }
    }
    out
}

/// Every string inside a JSON value.
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(o) => o.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// A dependency circle, named from a step back to itself, if there is one.
pub fn cycle(t: &WorkflowTemplate) -> Option<Vec<String>> {
    // A duplicated step id (reported on its own) gets the dependencies of all its steps.
    let mut deps: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in &t.steps {
        deps.entry(&s.step_id)
            .or_default()
            .extend(s.depends_on.iter().map(String::as_str));
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    // Depth first without recursion (a chain may have any length); `path` holds the steps being
    // visited with the index of the next dependency to follow.
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    for s in &t.steps {
        if marks.contains_key(s.step_id.as_str()) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(&s.step_id, 0)];
        marks.insert(&s.step_id, Mark::Visiting);
        while let Some((id, next)) = path.last_mut() {
            let id = *id;
            let Some(&d) = deps[id].get(*next) else {
                marks.insert(id, Mark::Done);
                path.pop();
                continue;
            };
            *next += 1;
            if !deps.contains_key(d) {
                continue;
            }
            match marks.get(d) {
                Some(Mark::Done) => {}
                Some(Mark::Visiting) => {
                    let start = path.iter().position(|(p, _)| *p == d).expect("on the path");
                    let mut circle: Vec<String> =
                        path[start..].iter().map(|(p, _)| p.to_string()).collect();
                    circle.push(d.to_string());
                    return Some(circle);
                }
                None => {
                    marks.insert(d, Mark::Visiting);
                    path.push((d, 0));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(json: &str) -> WorkflowTemplate {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let t = template(
            r#"{"name": "../evil", "steps": [
                {"step_id": "a", "tool_name": "x", "depends_on": ["c"]},
                {"step_id": "b", "tool_name": "y", "depends_on": ["a", "nope"], "on_error": "fallback:zz"},
                {"step_id": "c", "tool_name": "z", "depends_on": ["b"]},
                {"step_id": "c", "tool_name": "z"}
            ], "parallel_groups": [["a", "q"]]}"#,
        );
        let p = problems(&t);
        assert!(
            p[0].starts_with("name \"../evil\" is not a safe file name"),
            "{p:#?}"
        );
        assert!(
            p.contains(&"step id 'c' is used twice".to_string()),
            "{p:#?}"
        );
        assert!(
            p.contains(&"step 'b' depends on unknown step 'nope'".to_string()),
            "{p:#?}"
        );
        assert!(
            p.contains(&"step 'b' falls back to unknown step 'zz'".to_string()),
            "{p:#?}"
        );
        assert!(
            p.contains(&"parallel group names unknown step 'q'".to_string()),
            "{p:#?}"
        );
        assert!(p.iter().any(|m| m.ends_with("a → c → b → a")), "{p:#?}");
    }

    #[test]
    fn names_and_policies() {
        for bad in ["", ".hidden", "a/b", "a\\b", "tab\there", "é"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        assert!(is_safe_name("github_list_issues_to_slack_send_message"));
        let retry = template(
            r#"{"name": "x", "steps": [{"step_id": "a", "tool_name": "t", "on_error": "retry"}]}"#,
        );
        assert_eq!(
            problems(&retry),
            [
                "step 'a' has unknown on_error policy 'retry' (abort, continue, fallback:<step_id>, compensate)"
            ]
        );
        assert_eq!(
            retry.to_json().matches("\"on_error\": \"retry\"").count(),
            1,
            "kept as written"
        );
        let empty = template(r#"{"name": "x", "steps": []}"#);
        assert_eq!(problems(&empty), ["the workflow has no steps"]);
    }
}
