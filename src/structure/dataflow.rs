//! Data flow: where each argument of a mined workflow's steps comes from, learned from the
//! `arguments` and `result` JSON of its occurrences.
//!
//! Per argument, in this order: the same value in (nearly) every occurrence is a constant; a value
//! that equals a value at one path of an earlier step's result in most occurrences is a binding
//! `{{step.path}}`; a varying value shared with other steps' arguments is one workflow variable
//! named after the argument; anything else is an input of that step alone.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::Workflow;
use crate::events::EventLog;
use crate::exchange::{self, Exchange};
use crate::mining::Embedding;
use crate::template::expr;

/// Evidence thresholds.
#[derive(Debug, Clone, Copy)]
pub struct FlowParams {
    /// A binding or a shared variable must hold in this share of the occurrences.
    pub min_share: f64,
    /// A constant has one value in this share of the occurrences.
    pub constant_share: f64,
    /// At most this many occurrences are read.
    pub max_occurrences: usize,
}

impl Default for FlowParams {
    fn default() -> FlowParams {
        FlowParams {
            min_share: 0.8,
            constant_share: 0.95,
            max_occurrences: 2000,
        }
    }
}

/// Where an argument's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Constant(Value),
    /// The value at `path` of the result of step `step` (a canonical index).
    Binding {
        step: usize,
        path: String,
    },
    /// A workflow variable shared by several steps, and the JSON Schema type of its values.
    Shared(String, Option<&'static str>),
    /// A value given for this step alone, and the JSON Schema type of its values.
    Input(Option<&'static str>),
}

/// The JSON Schema type that every value seen has (`integer` when all are whole numbers), if
/// they share one.
fn kind_of<'a>(values: impl IntoIterator<Item = &'a Value>) -> Option<&'static str> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let mut kinds = values.into_iter().map(kind);
    let first = kinds.next()?;
    kinds.try_fold(first, |k, next| match (k, next) {
        _ if k == next => Some(k),
        ("integer" | "number", "integer" | "number") => Some("number"),
        _ => None,
    })
}

/// A step (canonical index) and the name of one of its arguments.
type Argument = (usize, String);

/// Per step (canonical order) of one occurrence: its arguments and its result.
type Row = Vec<(Option<Value>, Option<Value>)>;

/// Per step of the canonical ordering, its arguments and their sources; `None` when the log
/// has no arguments.
/// `found` holds the occurrences of the workflow's orderings: (ordering index, occurrence).
/// At most `params.max_occurrences` are read, one per session: those of the sessions with the
/// smallest keys, over every part of the log (`ex`), so that the answer does not depend on the
/// order the sessions were read in or on how the log was split.
pub fn infer(
    workflow: &Workflow,
    found: &[(usize, Embedding)],
    log: &EventLog,
    keep_repeats: bool,
    params: &FlowParams,
    ex: &dyn Exchange,
) -> Option<Vec<IndexMap<String, Source>>> {
    let mut rows = exchange::gather(
        ex,
        rows(workflow, found, log, keep_repeats, params.max_occurrences),
    );
    rows.sort_by_key(|(key, _)| *key);
    rows.truncate(params.max_occurrences);
    let occurrences: Vec<Row> = rows.into_iter().map(|(_, row)| row).collect();
    log.payloads.as_ref()?;
    from_rows(workflow, &occurrences, params)
}

/// The arguments and results of the occurrences in `found` of the `max` sessions with the
/// smallest keys, one per session, with the session's key.
fn rows(
    workflow: &Workflow,
    found: &[(usize, Embedding)],
    log: &EventLog,
    keep_repeats: bool,
    max: usize,
) -> Vec<(u64, Row)> {
    let Some(payloads) = log.payloads.as_ref() else {
        return Vec::new();
    };
    let n = workflow.mined.pattern.len();
    let parse = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
    let mut sessions = HashSet::new();
    let mut first: Vec<(u64, &(usize, Embedding))> = (found.iter())
        .filter(|(_, e)| sessions.insert(e.session))
        .map(|o| (log.session_keys[o.1.session], o))
        .collect();
    first.sort_by_key(|(key, _)| *key);
    first.truncate(max);
    let canonical: Vec<Vec<usize>> = (0..workflow.orderings.len())
        .map(|k| workflow.canonical_index(k))
        .collect();
    (first.into_iter())
        .map(|(key, (k, e))| {
            let calls: Vec<_> = log.collapsed(e.session, keep_repeats).collect();
            let mut row = vec![(None, None); n];
            for (x, &pos) in e.positions.iter().enumerate() {
                // The last attempt of a retried call is the one whose result was used.
                let call = calls[pos].end - 1;
                row[canonical[*k][x]] = (
                    parse(payloads.arguments(call)),
                    parse(payloads.result(call)),
                );
            }
            (key, row)
        })
        .collect()
}

/// The sources of the arguments, from the arguments and results of occurrences.
fn from_rows(
    workflow: &Workflow,
    occurrences: &[Row],
    params: &FlowParams,
) -> Option<Vec<IndexMap<String, Source>>> {
    if occurrences.is_empty() {
        return None;
    }
    let n = workflow.mined.pattern.len();
    let stage: Vec<usize> = {
        let mut stage = vec![0; n];
        for (s, steps) in workflow.stages().iter().enumerate() {
            for &i in steps {
                stage[i] = s;
            }
        }
        stage
    };
    let leaves: Vec<Vec<Vec<(String, &Value)>>> = occurrences
        .iter()
        .map(|row| {
            row.iter()
                .map(|(_, result)| {
                    let mut out = Vec::new();
                    if let Some(r) = result {
                        flatten(r, String::new(), 0, &mut out);
                    }
                    out
                })
                .collect()
        })
        .collect();

    let mut out: Vec<IndexMap<String, Source>> = vec![IndexMap::new(); n];
    // Arguments that are neither constants nor bindings, with their values per occurrence.
    let mut open: Vec<(Argument, Vec<Option<&Value>>)> = Vec::new();
    for j in 0..n {
        let mut keys: Vec<&String> = Vec::new();
        for row in occurrences {
            if let Some(Value::Object(args)) = &row[j].0 {
                for k in args.keys() {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
        }
        for key in keys {
            let values: Vec<Option<&Value>> = occurrences
                .iter()
                .map(|row| row[j].0.as_ref().and_then(|a| a.get(key)))
                .collect();
            let present = values.iter().flatten().count();
            // An argument that is rarely given is left out.
            if (present as f64) < params.min_share * occurrences.len() as f64 {
                continue;
            }
            let needed = params.min_share * present as f64;
            let mut counts: HashMap<String, (usize, &Value)> = HashMap::new();
            for v in values.iter().flatten() {
                counts.entry(v.to_string()).or_insert((0, v)).0 += 1;
            }
            let (_, &(count, value)) = counts
                .iter()
                .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| b.0.cmp(a.0)))
                .expect("present values");
            if count as f64 >= params.constant_share * present as f64 {
                out[j].insert(key.clone(), Source::Constant(value.clone()));
                continue;
            }
            // Candidate (step, path) pairs, counted once per occurrence.
            let mut found: HashMap<(usize, &str), usize> = HashMap::new();
            for (o, v) in values.iter().enumerate() {
                let Some(v) = v.filter(|v| !matches!(v, Value::Null | Value::Bool(_))) else {
                    continue;
                };
                let mut here = HashSet::new();
                for i in (0..n).filter(|&i| stage[i] < stage[j]) {
                    for (path, leaf) in &leaves[o][i] {
                        if *leaf == v && here.insert((i, path.as_str())) {
                            *found.entry((i, path.as_str())).or_default() += 1;
                        }
                    }
                }
            }
            // The most frequent source; ties go to the latest step, then the shortest path.
            let best = found.into_iter().max_by(|a, b| {
                a.1.cmp(&b.1)
                    .then(a.0.0.cmp(&b.0.0))
                    .then(b.0.1.len().cmp(&a.0.1.len()))
                    .then(b.0.1.cmp(a.0.1))
            });
            match best {
                Some(((step, path), c)) if c as f64 >= needed => {
                    out[j].insert(
                        key.clone(),
                        Source::Binding {
                            step,
                            path: path.to_string(),
                        },
                    );
                }
                _ => {
                    let kind = kind_of(values.iter().flatten().copied());
                    out[j].insert(key.clone(), Source::Input(kind));
                    open.push(((j, key.clone()), values));
                }
            }
        }
    }

    // Open arguments equal to each other in most occurrences where both are given share a
    // variable, named after the argument of the earliest step.
    let mut group: Vec<usize> = (0..open.len()).collect();
    for a in 0..open.len() {
        for b in a + 1..open.len() {
            if open[a].0.0 == open[b].0.0 {
                continue;
            }
            let both: Vec<(Option<&Value>, Option<&Value>)> = open[a]
                .1
                .iter()
                .zip(&open[b].1)
                .filter(|(x, y)| x.is_some() && y.is_some())
                .map(|(x, y)| (*x, *y))
                .collect();
            let equal = both.iter().filter(|(x, y)| x == y).count();
            if !both.is_empty() && equal as f64 >= params.min_share * both.len() as f64 {
                let (ga, gb) = (group[a], group[b]);
                for g in group.iter_mut().filter(|g| **g == gb) {
                    *g = ga;
                }
            }
        }
    }
    let mut names: HashMap<usize, String> = HashMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    for (a, ((j, key), _)) in open.iter().enumerate() {
        if group.iter().filter(|&&g| g == group[a]).count() < 2 {
            continue;
        }
        let name = names
            .entry(group[a])
            .or_insert_with(|| unique(key.clone(), &mut taken));
        // The type of the values of every argument of the group.
        let members = (open.iter().enumerate()).filter(|(b, _)| group[*b] == group[a]);
        let kind = kind_of(members.flat_map(|(_, (_, values))| values.iter().flatten().copied()));
        out[*j].insert(key.clone(), Source::Shared(name.clone(), kind));
    }
    Some(out)
}

/// The scalar leaves (strings and numbers) of `v` with their paths: `issues[0].number`. Arrays
/// contribute their first three items; at most 256 leaves, 6 levels deep.
fn flatten<'a>(v: &'a Value, path: String, depth: usize, out: &mut Vec<(String, &'a Value)>) {
    if out.len() >= 256 || depth > 6 {
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = match (path.is_empty(), expr::is_identifier(k)) {
                    (true, true) => k.clone(),
                    (false, true) => format!("{path}.{k}"),
                    (_, false) => format!("{path}[{}]", expr::quote(k)),
                };
                flatten(x, p, depth + 1, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().take(3).enumerate() {
                flatten(x, format!("{path}[{i}]"), depth + 1, out);
            }
        }
        Value::String(_) | Value::Number(_) if !path.is_empty() => out.push((path, v)),
        _ => {}
    }
}

/// A variable's name and the JSON Schema type of its values, when they share one.
pub type Typed = (String, Option<String>);

/// The parameters of each step as template JSON, given the step ids, and the variables a user
/// must give with the JSON Schema type of the values seen, in order of first use. Values seen in the log arrive literally (escaped); variables
/// get names the language can read, unlike any step id and each other (`max-results` →
/// `max_results`, `file.path` → `file_path`).
pub fn parameters(
    sources: &[IndexMap<String, Source>],
    step_ids: &[String],
) -> (Vec<Map<String, Value>>, Vec<Typed>) {
    let mut taken: HashSet<String> = step_ids.iter().cloned().collect();
    let mut named: HashMap<String, String> = HashMap::new();
    let mut variables: Vec<Typed> = Vec::new();
    let mut need = |raw: String, kind: Option<&str>| {
        let name = named
            .entry(raw)
            .or_insert_with_key(|raw| unique(variable_name(raw), &mut taken))
            .clone();
        if !variables.iter().any(|(v, _)| *v == name) {
            variables.push((name.clone(), kind.map(String::from)));
        }
        Value::String(format!("{{{{{name}}}}}"))
    };
    let params = sources
        .iter()
        .zip(step_ids)
        .map(|(args, id)| {
            args.iter()
                .map(|(key, source)| {
                    let value = match source {
                        Source::Constant(v) => expr::escape_value(v),
                        Source::Binding { step, path } => {
                            let dot = if path.starts_with('[') { "" } else { "." };
                            Value::String(format!("{{{{{}{dot}{path}}}}}", step_ids[*step]))
                        }
                        Source::Shared(name, kind) => need(name.clone(), *kind),
                        Source::Input(kind) => {
                            need(format!("{id}_{}", crate::template::slug(key)), *kind)
                        }
                    };
                    (key.clone(), value)
                })
                .collect()
        })
        .collect();
    (params, variables)
}

/// `raw` as a name: each run of characters other than letters, digits and `_` one `_`, `v_`
/// before what is still not a name (`3d`, `true`, nothing).
fn variable_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_');
    if expr::is_name(out) {
        out.to_string()
    } else {
        format!("v_{out}")
    }
}

/// `name`, or `name_2`, `name_3` … when it is taken; the name returned is taken from then on.
fn unique(name: String, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 1;
    while !taken.insert(candidate.clone()) {
        n += 1;
        candidate = format!("{name}_{n}");
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_have_template_paths() {
        let v =
            json!({"issues": [{"number": 7, "title": "x"}], "odd key": "y", "ok": true, "n": null});
        let mut out = Vec::new();
        flatten(&v, String::new(), 0, &mut out);
        let paths: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["issues[0].number", "issues[0].title", "[\"odd key\"]"]
        );
    }

    #[test]
    fn the_type_of_a_variable_is_the_one_its_values_share() {
        let kinds = |v: Value| kind_of(v.as_array().unwrap().iter());
        assert_eq!(kinds(json!([1, 2, 30])), Some("integer"));
        assert_eq!(kinds(json!([1, 2.5])), Some("number"));
        assert_eq!(kinds(json!(["a", "b"])), Some("string"));
        assert_eq!(kinds(json!([true, false])), Some("boolean"));
        assert_eq!(kinds(json!([["a"], []])), Some("array"));
        assert_eq!(kinds(json!(["7", 7])), None, "mixed: no type");
        assert_eq!(kinds(json!([])), None);
    }

    #[test]
    fn parameters_name_their_sources() {
        let mut a = IndexMap::new();
        a.insert(
            "repo".to_string(),
            Source::Shared("repo".into(), Some("string")),
        );
        a.insert("state".to_string(), Source::Constant(json!("open")));
        let mut b = IndexMap::new();
        b.insert(
            "repo".to_string(),
            Source::Shared("repo".into(), Some("string")),
        );
        b.insert(
            "issue".to_string(),
            Source::Binding {
                step: 0,
                path: "issues[0].number".into(),
            },
        );
        b.insert("Title".to_string(), Source::Input(None));
        let ids = ["list_issues".to_string(), "create_pr".to_string()];
        let (params, vars) = parameters(&[a, b], &ids);
        assert_eq!(
            Value::Array(params.into_iter().map(Value::Object).collect()),
            json!([{"repo": "{{repo}}", "state": "open"},
                   {"repo": "{{repo}}", "issue": "{{list_issues.issues[0].number}}", "Title": "{{create_pr_title}}"}])
        );
        assert_eq!(
            vars,
            [
                ("repo".to_string(), Some("string".to_string())),
                ("create_pr_title".to_string(), None)
            ]
        );
    }

    #[test]
    fn variables_are_names_unlike_the_steps_and_each_other() {
        let shared = |names: &[&str]| -> IndexMap<String, Source> {
            (names.iter())
                .map(|n| (n.to_string(), Source::Shared(n.to_string(), None)))
                .collect()
        };
        let ids = ["list".to_string(), "send".to_string()];
        let (params, vars) = parameters(
            &[
                shared(&["max-results", "file.path", "k}}-{{x", "true", "3d"]),
                shared(&["list", "a-b", "a.b", "é"]),
            ],
            &ids,
        );
        let vars: Vec<&str> = vars.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            vars,
            [
                "max_results",
                "file_path",
                "k_x",
                "v_true",
                "v_3d",
                "list_2",
                "a_b",
                "a_b_2",
                "v_"
            ]
        );
        assert_eq!(params[1]["list"], json!("{{list_2}}"));
    }
}
