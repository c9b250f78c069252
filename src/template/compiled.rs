//! A template's texts parsed once: what the executor renders and what a server asks for.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::WorkflowTemplate;
use super::expr::{Condition, EvalError, Parsed, Reference, Scope};

/// Every text of a template, parsed ([`super::compile`]).
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// One per step, in the template's order.
    pub steps: Vec<CompiledStep>,
    /// One per loop, in the template's order (none where it does not parse).
    pub untils: Vec<Option<Condition>>,
}

/// A step's parameters, condition and compensation parameters, parsed.
#[derive(Debug, Clone, Default)]
pub struct CompiledStep {
    pub parameters: Parameters,
    pub condition: Option<Condition>,
    pub compensate: Option<Parameters>,
}

/// Parameters, parsed, in the template's order.
#[derive(Debug, Clone, Default)]
pub struct Parameters(pub Vec<(String, Parsed)>);

impl Parameters {
    /// Every parameter with its placeholders substituted; an error names the parameter.
    pub fn render(&self, scope: &dyn Scope) -> Result<Value, String> {
        self.0
            .iter()
            .map(|(k, v)| match v.render(scope) {
                Ok(v) => Ok((k.clone(), v)),
                Err(e) => Err(format!("parameter '{k}': {e}")),
            })
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object)
    }

    /// As [`Parameters::render`], keeping the placeholders of steps that have not run.
    pub fn render_known(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        self.0
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.render_known(scope)?)))
            .collect::<Result<Map<_, _>, EvalError>>()
            .map(Value::Object)
    }

    /// The parameters whose values are known before the run, and the names of the others (they
    /// wait for a step's result).
    pub fn known(&self, scope: &dyn Scope) -> (Map<String, Value>, Vec<String>) {
        let mut known = Map::new();
        let mut later = Vec::new();
        for (k, v) in &self.0 {
            match v.render(scope) {
                Ok(v) => {
                    known.insert(k.clone(), v);
                }
                Err(_) => later.push(k.clone()),
            }
        }
        (known, later)
    }

    /// Every path a parameter reads, with the parameter's name.
    pub fn references(&self) -> impl Iterator<Item = (&str, Reference)> {
        self.0
            .iter()
            .flat_map(|(k, v)| v.references().into_iter().map(move |r| (k.as_str(), r)))
    }
}

/// A variable a template reads: whether a run must give it (no `|default:`), and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub required: bool,
    /// The steps and parameters it feeds (`step`, `parameter`); a condition is "condition".
    pub feeds: Vec<(String, String)>,
}

impl Compiled {
    /// The variables of `t` (whose texts these are), in order of first use: every root a text
    /// reads that is not a step.
    pub fn variables(&self, t: &WorkflowTemplate) -> IndexMap<String, Variable> {
        let ids: std::collections::HashSet<&str> =
            t.steps.iter().map(|s| s.step_id.as_str()).collect();
        let mut out: IndexMap<String, Variable> = IndexMap::new();
        for (s, c) in t.steps.iter().zip(&self.steps) {
            let condition = (c.condition.iter())
                .flat_map(|c| c.references())
                .map(|r| ("condition", r));
            let compensate = c.compensate.iter().flat_map(|p| p.references());
            for (what, r) in c.parameters.references().chain(condition).chain(compensate) {
                if ids.contains(r.path.root.as_str()) {
                    continue;
                }
                let v = out.entry(r.path.root.clone()).or_insert(Variable {
                    required: false,
                    feeds: Vec::new(),
                });
                v.required |= !r.optional;
                let feed = (s.step_id.clone(), what.to_string());
                if !v.feeds.contains(&feed) {
                    v.feeds.push(feed);
                }
            }
        }
        for (l, until) in t.loops.iter().zip(&self.untils) {
            for r in until.iter().flat_map(Condition::references) {
                if !ids.contains(r.path.root.as_str()) {
                    let v = out.entry(r.path.root.clone()).or_insert(Variable {
                        required: false,
                        feeds: Vec::new(),
                    });
                    v.required |= !r.optional;
                    v.feeds.push((l.steps.join(" → "), "until".into()));
                }
            }
        }
        out
    }
}
