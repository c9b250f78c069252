//! The data flow a template states: which step's result feeds which parameter.

use super::WorkflowTemplate;
use super::expr::Text;

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
    let ids: Vec<&str> = t.steps.iter().map(|s| s.step_id.as_str()).collect();
    let mut out = Vec::new();
    for s in &t.steps {
        for (param, value) in &s.parameters {
            let Some(text) = value.as_str().and_then(|v| Text::parse(v).ok()) else {
                continue;
            };
            for r in text
                .references()
                .into_iter()
                .filter(|r| ids.contains(&r.path.root.as_str()))
            {
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
                    param: param.clone(),
                });
            }
        }
    }
    out
}
