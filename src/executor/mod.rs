//! The executor: runs a workflow template against real tools.
//!
//! [`plan`] checks a template before anything runs and orders its steps in levels ([`prepare`]
//! adds the MCP tools' schema checks: what `run` and `serve` call); [`execute`]
//! runs the levels, with [`context`] substituting `{{...}}` placeholders ([`crate::template::expr`]) from the
//! variables and the results of earlier steps; [`toolbox`] binds the tool names of tools.toml to
//! the kinds of [`tool::Tool`]: [`command`]s, [`builtin`]s and tools on [`mcp`] servers; [`runlog`] writes every call in the input log schema; [`state`] keeps checkpoints
//! for `--resume` ([`state::execute_checkpointed`]: execution with its checkpoint kept).

mod builtin;
mod command;
pub mod context;
pub mod execute;
pub mod mcp;
pub mod plan;
pub mod runlog;
pub mod state;
pub mod tool;
pub mod toolbox;

pub use execute::{Options, RunState, RunStatus, Served, Status, StepRecord, execute};
pub use plan::{Plan, PlanError, Problem, prepare};
pub use tool::{Hints, Tool, ToolError};
pub use toolbox::Toolbox;
