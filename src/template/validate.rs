//! Checks of a template, every problem reported at once.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::compiled::{Compiled, CompiledStep, Parameters};
use super::expr::{Condition, Parsed, is_name};
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
    compile(t).1
}

/// Checks `t` and parses its texts, once: the texts that parse, and every problem of `t` (the
/// texts are whole when there is none).
pub fn compile(t: &WorkflowTemplate) -> (Compiled, Vec<String>) {
    let mut out = Vec::new();
    let mut compiled = Compiled::default();
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
        let mut parse = |what: &str, params: &serde_json::Map<String, Value>| {
            let mut parsed = Parameters::default();
            for (k, v) in params {
                match Parsed::parse(v) {
                    Ok(p) => parsed.0.push((k.clone(), p)),
                    Err(e) => out.push(format!("step '{}', {what} '{k}': {e}", s.step_id)),
                }
            }
            parsed
        };
        let parameters = parse("parameter", &s.parameters);
        let compensate =
            (s.compensate.as_ref()).map(|c| parse("compensate parameter", &c.parameters));
        let condition = match s.condition.as_deref().map(Condition::parse) {
            Some(Err(e)) => {
                out.push(format!("step '{}', condition: {e}", s.step_id));
                None
            }
            Some(Ok(c)) => Some(c),
            None => None,
        };
        compiled.steps.push(CompiledStep {
            parameters,
            condition,
            compensate,
        });
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
        let until = Condition::parse(&l.until);
        if let Err(e) = &until {
            out.push(format!("{which}, until: {e}"));
        }
        compiled.untils.push(until.ok());
    }
    (compiled, out)
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
