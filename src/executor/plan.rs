//! The plan of a run: a template checked against its tools and variables, in dependency levels.
//!
//! Everything that can be known before a tool runs is checked here, and every problem is
//! reported at once; a plan that exists can be executed.

use std::collections::{BTreeMap, HashMap, HashSet};

use itertools::Itertools;
use serde_json::{Map, Value};

use super::context::Context;
use super::toolbox::Toolbox;
use crate::template::expr::{Condition, Reference};
use crate::template::{Compiled, CompiledStep, OnError, WorkflowTemplate, compile, cycle};

/// A template that passed every check, with its variables and its texts parsed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub template: WorkflowTemplate,
    pub vars: Map<String, Value>,
    /// The template's texts, parsed once: one entry per step of `template.steps`.
    pub steps: Vec<CompiledStep>,
    /// Indices into `template.steps`, level by level: a step's dependencies are all in earlier
    /// levels. Steps that only run as another step's fallback are in no level.
    pub levels: Vec<Vec<usize>>,
    /// The template's loops, each over consecutive levels of its own.
    pub loops: Vec<PlannedLoop>,
}

/// A loop of the template, placed: its body is `levels[first..=last]`, which hold its steps
/// and nothing else.
#[derive(Debug, Clone)]
pub struct PlannedLoop {
    pub first: usize,
    pub last: usize,
    pub until: Condition,
    pub max_rounds: u32,
    /// The body's step ids, for messages and to run it again.
    pub steps: Vec<String>,
}

/// Why a template cannot run.
#[derive(Debug, thiserror::Error)]
#[error("workflow '{workflow}' cannot run:\n  - {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
pub struct PlanError {
    pub workflow: String,
    pub problems: Vec<Problem>,
}

/// One reason a template cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The template itself (see [`crate::template::problems`]).
    #[error("{0}")]
    Template(String),
    #[error("tool '{tool}' (step {}) is not bound in tools.toml{}", .steps.join(", "), bound_list(.bound))]
    Unbound {
        tool: String,
        steps: Vec<String>,
        /// What is bound (for the message).
        bound: Vec<String>,
    },
    #[error("variable '{name}' is not given (used by {}); pass --var {name}=...", .steps.join(", "))]
    MissingVariable { name: String, steps: Vec<String> },
    #[error(
        "step '{step}', {what}: {{{{{path}}}}} reads step '{root}', which '{step}' does not depend on"
    )]
    Unordered {
        step: String,
        what: String,
        path: String,
        root: String,
    },
    #[error("step '{step}' depends on '{on}', which only runs as a fallback")]
    DependsOnFallback { step: String, on: String },
    #[error("fallback step '{0}' has a fallback of its own")]
    NestedFallback(String),
    #[error(
        "fallback step '{fallback}' of '{step}' depends on '{on}', which '{step}' does not depend on"
    )]
    FallbackDependency {
        fallback: String,
        step: String,
        on: String,
    },
    #[error("loop ({0}): a fallback step cannot be in a loop")]
    FallbackInLoop(String),
    #[error(
        "loop ({0}): other steps run beside its steps; a loop's steps must depend on each other \
         and nothing outside the loop may run at the same time"
    )]
    LoopNotAlone(String),
    /// A tool's MCP server: it does not start, lacks the tool, or the parameters break its schema.
    #[error("{0}")]
    Server(String),
}

impl PlanError {
    pub fn new(workflow: &str, problems: Vec<Problem>) -> PlanError {
        PlanError {
            workflow: workflow.to_string(),
            problems,
        }
    }
}

impl Plan {
    /// What the texts can read before any step ran: the variables.
    pub fn context(&self) -> Context {
        Context::new(
            self.vars.clone(),
            self.template.steps.iter().map(|s| s.step_id.clone()),
        )
    }

    /// Checks `template` against the bound tools and the given variables.
    pub fn new(
        template: WorkflowTemplate,
        vars: Map<String, Value>,
        tools: &Toolbox,
    ) -> Result<Plan, PlanError> {
        let (compiled, problems) = compile(&template);
        let mut out: Vec<Problem> = problems.into_iter().map(Problem::Template).collect();
        let t = &template;
        let ids: HashSet<&str> = t.steps.iter().map(|s| s.step_id.as_str()).collect();
        let fallbacks: HashSet<&str> = t
            .steps
            .iter()
            .filter_map(|s| match &s.on_error {
                OnError::Fallback(f) => Some(f.as_str()),
                _ => None,
            })
            .collect();

        // Tools, each unbound one once with the steps that use it.
        let mut unbound: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in &t.steps {
            let tools_used =
                std::iter::once(&s.tool_name).chain(s.compensate.iter().map(|c| &c.tool_name));
            for tool in tools_used {
                if tools.get(tool).is_none() {
                    unbound.entry(tool).or_default().push(s.step_id.clone());
                }
            }
        }
        for (tool, steps) in unbound {
            out.push(Problem::Unbound {
                tool: tool.to_string(),
                steps,
                bound: tools.names().into_iter().map(String::from).collect(),
            });
        }

        // Placeholders and conditions: their steps come before them, their variables are
        // given. Ancestors cannot be followed round a circle (reported above).
        let reach = cycle(t).is_none().then(|| Reach::new(t));
        for (s, c) in t.steps.iter().zip(&compiled.steps) {
            let mut refs: Vec<(String, Reference)> = (c.parameters.references())
                .map(|(name, r)| (format!("parameter '{name}'"), r))
                .collect();
            refs.extend(
                (c.condition.iter())
                    .flat_map(Condition::references)
                    .map(|r| ("condition".to_string(), r)),
            );
            let compensation_refs = refs.len();
            refs.extend(
                (c.compensate.iter())
                    .flat_map(|p| p.references())
                    .map(|(name, r)| (format!("compensate parameter '{name}'"), r)),
            );
            for (i, (what, r)) in refs.into_iter().enumerate() {
                let root = r.path.root.as_str();
                if !ids.contains(root) {
                    continue;
                }
                // A compensation runs after its own step, so it may read it.
                let own = i >= compensation_refs && root == s.step_id;
                let before = reach.as_ref().is_none_or(|r| r.depends(&s.step_id, root));
                if !own && !before {
                    out.push(Problem::Unordered {
                        step: s.step_id.clone(),
                        what,
                        path: r.path.to_string(),
                        root: root.to_string(),
                    });
                }
            }
        }
        let mut missing: Vec<(String, Vec<String>)> = (compiled.variables(t).into_iter())
            .filter(|(name, v)| v.required && !vars.contains_key(name))
            .map(|(name, v)| {
                (
                    name,
                    v.feeds.into_iter().map(|(step, _)| step).unique().collect(),
                )
            })
            .collect();
        missing.sort();
        out.extend(
            (missing.into_iter()).map(|(name, steps)| Problem::MissingVariable { name, steps }),
        );

        // Fallback steps run in place of a failed step, so they need nothing that step lacks.
        for s in &t.steps {
            if let Some(d) = s.depends_on.iter().find(|d| fallbacks.contains(d.as_str())) {
                out.push(Problem::DependsOnFallback {
                    step: s.step_id.clone(),
                    on: d.clone(),
                });
            }
            if let OnError::Fallback(f) = &s.on_error
                && let Some(fallback) = t.steps.iter().find(|x| &x.step_id == f)
            {
                if let OnError::Fallback(_) = fallback.on_error {
                    out.push(Problem::NestedFallback(f.clone()));
                }
                for d in &fallback.depends_on {
                    if reach.as_ref().is_some_and(|r| !r.depends(&s.step_id, d)) {
                        out.push(Problem::FallbackDependency {
                            fallback: f.clone(),
                            step: s.step_id.clone(),
                            on: d.clone(),
                        });
                    }
                }
            }
        }

        if !out.is_empty() {
            return Err(PlanError::new(&template.name, out));
        }
        let levels = levels(&template, &fallbacks);
        let loops = place_loops(&template, &compiled, &levels)
            .map_err(|problems| PlanError::new(&template.name, problems))?;
        Ok(Plan {
            steps: compiled.steps,
            template,
            vars,
            levels,
            loops,
        })
    }
}

/// The plan of `template` with `vars`, checked against `tools` (their MCP servers started, the
/// parameters known before the run checked against the tools' schemas): what `run` and `serve`
/// execute. Every problem is reported at once.
pub async fn prepare(
    template: WorkflowTemplate,
    vars: Map<String, Value>,
    tools: &Toolbox,
) -> Result<Plan, PlanError> {
    let plan = Plan::new(template, vars, tools)?;
    let problems = tools.check(&plan).await;
    match problems.is_empty() {
        true => Ok(plan),
        false => Err(PlanError::new(&plan.template.name, problems)),
    }
}

/// Where each loop's body runs: the levels that hold its steps must follow each other and hold
/// nothing else, so that a round runs the body and only the body again.
fn place_loops(
    t: &WorkflowTemplate,
    compiled: &Compiled,
    levels: &[Vec<usize>],
) -> Result<Vec<PlannedLoop>, Vec<Problem>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let level_of = |id: &str| {
        let i = t.steps.iter().position(|s| s.step_id == id)?;
        levels.iter().position(|l| l.contains(&i))
    };
    for (l, until) in t.loops.iter().zip(&compiled.untils) {
        let which = l.steps.join(" → ");
        let at: Vec<Option<usize>> = l.steps.iter().map(|id| level_of(id)).collect();
        let Some(at) = at.into_iter().collect::<Option<Vec<usize>>>() else {
            problems.push(Problem::FallbackInLoop(which));
            continue;
        };
        let (first, last) = (
            *at.iter().min().expect("a body"),
            *at.iter().max().expect("a body"),
        );
        let only_body = levels[first..=last]
            .iter()
            .flatten()
            .all(|&i| l.steps.contains(&t.steps[i].step_id));
        if !only_body {
            problems.push(Problem::LoopNotAlone(which));
            continue;
        }
        out.push(PlannedLoop {
            first,
            last,
            until: until.clone().expect("checked with the template"),
            max_rounds: l.max_rounds,
            steps: l.steps.clone(),
        });
    }
    match problems.is_empty() {
        true => Ok(out),
        false => Err(problems),
    }
}

fn bound_list(names: &[String]) -> String {
    if names.is_empty() {
        " (no tools are bound: give --tools FILE)".into()
    } else {
        format!(" (bound: {})", names.join(", "))
    }
}

/// Which steps a step depends on, directly or not, found by walking its dependencies when asked:
/// a table of every step's ancestors would be quadratic in the steps (a chain of 30,000 steps,
/// 450 million entries).
struct Reach<'a> {
    deps: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Reach<'a> {
    fn new(t: &'a WorkflowTemplate) -> Reach<'a> {
        let mut deps: HashMap<&str, Vec<&str>> = HashMap::new();
        for s in &t.steps {
            deps.entry(&s.step_id)
                .or_default()
                .extend(s.depends_on.iter().map(String::as_str));
        }
        Reach { deps }
    }

    /// Whether `step` depends on `on`, directly or through other steps.
    fn depends(&self, step: &str, on: &str) -> bool {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut pending: Vec<&str> = self.deps.get(step).cloned().unwrap_or_default();
        while let Some(d) = pending.pop() {
            if d == on {
                return true;
            }
            if seen.insert(d) {
                pending.extend(self.deps.get(d).into_iter().flatten());
            }
        }
        false
    }
}

/// Steps by dependency level (longest path from a root), in template order within a level.
fn levels(t: &WorkflowTemplate, fallbacks: &HashSet<&str>) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = t
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.step_id.as_str(), i))
        .collect();
    // Depth first without recursion (a chain may have any length): a step's level is known once
    // its dependencies' are.
    let level = |i: usize, memo: &mut Vec<Option<usize>>| {
        let mut stack = vec![i];
        while let Some(&j) = stack.last() {
            if memo[j].is_some() {
                stack.pop();
                continue;
            }
            let deps: Vec<usize> = t.steps[j]
                .depends_on
                .iter()
                .map(|d| index[d.as_str()])
                .collect();
            let unknown: Vec<usize> = deps
                .iter()
                .copied()
                .filter(|&d| memo[d].is_none())
                .collect();
            if unknown.is_empty() {
                memo[j] = Some(
                    deps.iter()
                        .map(|&d| memo[d].expect("known") + 1)
                        .max()
                        .unwrap_or(0),
                );
                stack.pop();
            } else {
                stack.extend(unknown);
            }
        }
        memo[i].expect("computed")
    };
    let mut memo = vec![None; t.steps.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, s) in t.steps.iter().enumerate() {
        if fallbacks.contains(s.step_id.as_str()) {
            continue;
        }
        let l = level(i, &mut memo);
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(i);
    }
    // A level can be empty when its only steps were fallbacks.
    out.retain(|l| !l.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::tool::Tool;
    use serde_json::json;
    use std::sync::Arc;

    fn tools(names: &[&str]) -> Toolbox {
        struct Nothing;
        impl Tool for Nothing {
            fn call<'a>(
                &'a self,
                _: &'a Value,
            ) -> super::super::tool::BoxFuture<'a, Result<Value, super::super::tool::ToolError>>
            {
                Box::pin(async { Ok(Value::Null) })
            }
            fn describe(&self) -> String {
                "nothing".into()
            }
        }
        let mut t = Toolbox::default();
        for n in names {
            t.insert(*n, Arc::new(Nothing));
        }
        t
    }

    fn plan(template: Value, vars: Value, bound: &[&str]) -> Result<Plan, PlanError> {
        Plan::new(
            serde_json::from_value(template).unwrap(),
            vars.as_object().unwrap().clone(),
            &tools(bound),
        )
    }

    fn texts(err: &PlanError) -> Vec<String> {
        err.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn diamond_levels() {
        let p = plan(
            json!({"name": "d", "steps": [
                {"step_id": "d", "tool_name": "t", "depends_on": ["b", "c"]},
                {"step_id": "a", "tool_name": "t"},
                {"step_id": "b", "tool_name": "t", "depends_on": ["a"]},
                {"step_id": "c", "tool_name": "t", "depends_on": ["a"]},
                {"step_id": "e", "tool_name": "t", "depends_on": ["a", "d"]}
            ]}),
            json!({}),
            &["t"],
        )
        .unwrap();
        assert_eq!(p.levels, [vec![1], vec![2, 3], vec![0], vec![4]]);
    }

    #[test]
    fn every_problem_before_anything_runs() {
        let err = plan(
            json!({"name": "w", "steps": [
                {"step_id": "a", "tool_name": "list", "parameters": {"repo": "{{repo}}", "x": ["{{b.url}}"]}},
                {"step_id": "b", "tool_name": "create", "depends_on": ["a"],
                 "parameters": {"title": "{{a.issues[0].title", "owner": "{{owner}}", "l": "{{labels|default:'bug'}}"},
                 "condition": "{{a.success}} === true"},
                {"step_id": "c", "tool_name": "list", "parameters": {"r": "{{repo}}"},
                 "compensate": {"tool_name": "undo", "parameters": {"id": "{{c.id}}"}}}
            ]}),
            json!({}),
            &["list"],
        )
        .unwrap_err();
        assert_eq!(
            texts(&err),
            [
                "step 'b', parameter 'title': expected '}}', found the end at character 19 of \"{{a.issues[0].title\"",
                "step 'b', condition: unexpected '=' at character 16 of \"{{a.success}} === true\"",
                "tool 'create' (step b) is not bound in tools.toml (bound: list)",
                "tool 'undo' (step c) is not bound in tools.toml (bound: list)",
                "step 'a', parameter 'x': {{b.url}} reads step 'b', which 'a' does not depend on",
                "variable 'owner' is not given (used by b); pass --var owner=...",
                "variable 'repo' is not given (used by a, c); pass --var repo=...",
            ]
        );
        assert!(
            err.to_string()
                .starts_with("workflow 'w' cannot run:\n  - step 'b', parameter 'title'")
        );
        // What a caller decides by is in the problem, not only in its text.
        assert_eq!(
            err.problems[6],
            Problem::MissingVariable {
                name: "repo".into(),
                steps: vec!["a".into(), "c".into()]
            }
        );
    }

    #[test]
    fn cycles_and_fallbacks() {
        let err = plan(
            json!({"name": "w", "steps": [
                {"step_id": "a", "tool_name": "t", "depends_on": ["b"]},
                {"step_id": "b", "tool_name": "t", "depends_on": ["a"]}
            ]}),
            json!({}),
            &["t"],
        )
        .unwrap_err();
        assert_eq!(
            texts(&err),
            ["steps depend on each other in a circle: a → b → a"]
        );

        let p = plan(
            json!({"name": "w", "steps": [
                {"step_id": "a", "tool_name": "t"},
                {"step_id": "b", "tool_name": "t", "depends_on": ["a"], "on_error": "fallback:plan_b"},
                {"step_id": "plan_b", "tool_name": "t", "depends_on": ["a"], "parameters": {"x": "{{a.y}}"}},
                {"step_id": "c", "tool_name": "t", "depends_on": ["b"]}
            ]}),
            json!({}),
            &["t"],
        )
        .unwrap();
        assert_eq!(
            p.levels,
            [vec![0], vec![1], vec![3]],
            "plan_b runs only as a fallback"
        );

        let err = plan(
            json!({"name": "w", "steps": [
                {"step_id": "a", "tool_name": "t", "on_error": "fallback:f"},
                {"step_id": "z", "tool_name": "t"},
                {"step_id": "f", "tool_name": "t", "depends_on": ["z"]},
                {"step_id": "c", "tool_name": "t", "depends_on": ["f"]}
            ]}),
            json!({}),
            &["t"],
        )
        .unwrap_err();
        assert_eq!(
            texts(&err),
            [
                "fallback step 'f' of 'a' depends on 'z', which 'a' does not depend on",
                "step 'c' depends on 'f', which only runs as a fallback"
            ]
        );
    }
}
