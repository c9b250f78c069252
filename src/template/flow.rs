//! The data flow a template states: which step's result feeds which parameter.

use super::WorkflowTemplate;
use super::validate::compile;

/// A value flowing from one step's result into a later step's parameter.
pub struct DataEdge {
    pub from: String,
    /// The path in `from`'s result.
    pub field: String,
    pub to: String,
    pub param: String,
}

/// Every `{{step.path}}` that a parameter of `t` reads from another step's result.
pub fn data_edges(t: &WorkflowTemplate) -> Vec<DataEdge> {
    // The texts that parse: a template with a problem elsewhere still shows its flow.
    let compiled = compile(t).0;
    let ids: Vec<&str> = t.steps.iter().map(|s| s.step_id.as_str()).collect();
    let mut out = Vec::new();
    for (s, c) in t.steps.iter().zip(&compiled.steps) {
        for (param, r) in c.parameters.references() {
            if !ids.contains(&r.path.root.as_str()) {
                continue;
            }
            let path = r.path.to_string();
            let field = path
                .strip_prefix(&r.path.root)
                .unwrap_or(&path)
                .trim_start_matches('.')
                .to_string();
            out.push(DataEdge {
                from: r.path.root.clone(),
                field,
                to: s.step_id.clone(),
                param: param.to_string(),
            });
        }
    }
    out
}
