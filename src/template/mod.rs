//! Workflow templates: the JSON model, the `{{...}}` language of its strings ([`expr`]), its
//! checks, names for mined chains, the built-ins and the library folder.

mod builtin;
mod compiled;
pub mod expr;
mod flow;
mod library;
mod mined;
mod model;
mod skill;
mod validate;

pub use builtin::builtins;
pub use compiled::{Compiled, CompiledStep, Parameters, Variable};
pub use flow::{DataEdge, data_edges};
pub use library::{
    Catalog, Entry, Library, LibraryError, MAX_FILE_BYTES, SaveOptions, SaveReport, read_template,
    read_text, remove_temp_files, write_atomic, write_private,
};
pub use mined::{
    ChainStats, chain_text, from_chain, name, slug, stage_text, step_ids, unique_name,
};
pub use model::{
    Action, Failure, LoopBlock, MAX_ROUNDS, Metadata, OnError, RetryPolicy, Source, WorkflowStep,
    WorkflowTemplate,
};
pub use skill::{describe, skill, skill_name, tool_chain};
pub use validate::{compile, cycle, is_safe_name, problems};
