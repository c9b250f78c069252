//! The executor: runs a workflow template against real tools.
//!
//! [`plan`] checks a template before anything runs and orders its steps in levels; [`execute`]
//! runs the levels, with [`context`] substituting `{{...}}` placeholders ([`crate::template::expr`]) from the
//! variables and the results of earlier steps; [`tools`] binds tool names to commands and
//! built-ins, and [`mcp`] to tools on MCP servers; [`runlog`] writes every call in the input log schema; [`state`] keeps checkpoints
//! for `--resume`.

pub mod context;
pub mod execute;
pub mod mcp;
pub mod plan;
pub mod runlog;
pub mod state;
pub mod tools;

pub use execute::{Options, RunState, RunStatus, Status, StepRecord, execute};
pub use plan::{Plan, PlanError};
pub use tools::{Tool, ToolError, Toolbox};
