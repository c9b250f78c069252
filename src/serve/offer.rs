//! Which workflows of a library a server offers, and as what MCP tool: a description a model can
//! choose by, an input schema from the template's variables, an output schema, annotations from
//! what the bound tools may do.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool as McpTool, ToolAnnotations};
use serde_json::{Map, Value, json};

use crate::executor::{Hints, Plan, Problem, Toolbox};
use crate::template::{Variable, WorkflowTemplate, compile, describe, tool_chain};

/// The name of the tool that says which workflows continue a chain of tools.
pub const SUGGEST: &str = "suggest_workflow";

/// MCP tool names are at most this long.
const MAX_NAME: usize = 128;

/// A workflow offered as a tool.
#[derive(Debug, Clone)]
pub struct Offered {
    pub template: WorkflowTemplate,
    pub tool: McpTool,
}

/// A workflow not offered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub name: String,
    pub reason: String,
}

/// What a library offers with the tools of `tools`: every template whose tools are all bound and
/// that would run given its variables, as a tool; the others with the reason.
pub async fn offer(
    templates: Vec<WorkflowTemplate>,
    tools: &Toolbox,
) -> (Vec<Offered>, Vec<LeftOut>) {
    let mut offered = Vec::new();
    let mut left_out = Vec::new();
    for t in templates {
        match tool_of(&t, tools).await {
            Ok(tool) => offered.push(Offered { template: t, tool }),
            Err(reason) => left_out.push(LeftOut {
                name: t.name,
                reason,
            }),
        }
    }
    (offered, left_out)
}

async fn tool_of(t: &WorkflowTemplate, tools: &Toolbox) -> Result<McpTool, String> {
    if t.name.len() > MAX_NAME {
        return Err(format!("its name is longer than {MAX_NAME} characters"));
    }
    if t.name == SUGGEST {
        return Err(format!("{SUGGEST} is the server's own tool"));
    }
    // Every problem but the variables a caller gives.
    if let Err(e) = Plan::new(t.clone(), Map::new(), tools) {
        // The unbound tools in one line, without the list of what is bound.
        let unbound: Vec<&str> = (e.problems.iter())
            .filter_map(|p| match p {
                Problem::Unbound { tool, .. } => Some(tool.as_str()),
                _ => None,
            })
            .collect();
        let mut problems: Vec<String> = (e.problems.iter())
            .filter(|p| !matches!(p, Problem::MissingVariable { .. } | Problem::Unbound { .. }))
            .map(ToString::to_string)
            .collect();
        if !unbound.is_empty() {
            problems.insert(
                0,
                format!("not bound in tools.toml: {}", unbound.join(", ")),
            );
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
    }
    let variables = compile(t).0.variables(t);
    let mut hints = Vec::new();
    for s in &t.steps {
        hints.push(tools.hints(&s.tool_name).await);
    }
    let hints = Hints::all(&hints);
    let annotations = ToolAnnotations::from_raw(
        Some(tool_chain(t)),
        hints.read_only,
        hints.destructive,
        hints.idempotent,
        hints.open_world,
    );
    Ok(McpTool::new(
        t.name.clone(),
        describe(t, &variables),
        input_schema(t, &variables),
    )
    .with_title(tool_chain(t))
    .with_raw_output_schema(Arc::new(output_schema()))
    .with_annotations(annotations))
}

/// An object with one property per variable, each saying which steps it feeds; required unless
/// every use has a `|default:`. Nothing else is accepted.
pub fn input_schema(
    t: &WorkflowTemplate,
    variables: &indexmap::IndexMap<String, Variable>,
) -> JsonObject {
    let types = t.metadata.extra.get("variables").and_then(Value::as_object);
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, v) in variables {
        let feeds: Vec<String> = (v.feeds.iter())
            .map(|(step, what)| format!("step {step} ({what})"))
            .collect();
        let mut property = json!({ "description": format!("Goes to {}", feeds.join(", ")) });
        if let Some(kind) = (types.and_then(|t| t.get(name)))
            .and_then(|v| v.get("type"))
            .filter(|k| k.is_string())
        {
            property["type"] = kind.clone();
        }
        properties.insert(name.clone(), property);
        if v.required {
            required.push(Value::String(name.clone()));
        }
    }
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    schema.as_object().expect("an object").clone()
}

/// What every workflow call returns as `structuredContent`.
fn output_schema() -> JsonObject {
    let schema = json!({
        "type": "object",
        "properties": {
            "workflow": {"type": "string"},
            "run_id": {"type": "string", "description": "The run's id: its checkpoint and the session_id of its calls in the run log"},
            "status": {"type": "string", "enum": ["succeeded", "partial", "failed", "cancelled", "not_started"]},
            "result": {"description": "The final step's result"},
            "error": {"type": "string"},
            "steps": {
                "type": "object",
                "description": "Each step that ran, the final one first: its tool, status, result or error",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "tool": {"type": "string"},
                        "status": {"type": "string"},
                        "result": {},
                        "error": {"type": "string"},
                        "attempts": {"type": "integer"},
                        "duration_ms": {"type": "integer"}
                    },
                    "required": ["tool", "status"]
                }
            }
        },
        "required": ["workflow", "status", "steps"]
    });
    schema.as_object().expect("an object").clone()
}

/// The server's own tool: the workflows that continue a chain of tools, and the next tools.
pub fn suggest_tool() -> McpTool {
    let input = json!({
        "type": "object",
        "properties": {
            "tools": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The tools called so far, in order (the last few are enough)"
            },
            "limit": {"type": "integer", "minimum": 1, "description": "At most this many workflows (default 5)"}
        },
        "required": ["tools"],
        "additionalProperties": false
    });
    let output = json!({
        "type": "object",
        "properties": {
            "workflows": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"},
                "match": {"type": "string", "enum": ["prefix", "contiguous", "gapped"]},
                "then": {"type": "array", "items": {"type": "string"}},
                "served": {"type": "boolean", "description": "Whether this server offers it as a tool"},
                "usage_count": {"type": ["integer", "null"]}
            }, "required": ["name", "match", "then", "served"]}},
            "next_tools": {"type": "array", "items": {"type": "object", "properties": {
                "tool": {"type": "string"}, "share": {"type": "number"}
            }, "required": ["tool", "share"]}}
        },
        "required": ["workflows", "next_tools"]
    });
    McpTool::new(
        SUGGEST,
        "Given the tools you have called so far, the learned workflows that continue them (call \
         one to run the rest in a single call) and the tools that usually come next.",
        input.as_object().expect("an object").clone(),
    )
    .with_title("Suggest a workflow")
    .with_raw_output_schema(Arc::new(output.as_object().expect("an object").clone()))
    .with_annotations(ToolAnnotations::from_raw(
        Some("Suggest a workflow".into()),
        Some(true),
        Some(false),
        Some(true),
        Some(false),
    ))
}
