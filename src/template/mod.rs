//! Workflow templates: the JSON model, its checks, names for mined chains, the built-ins and the
//! library folder.

mod builtin;
mod library;
mod mined;
mod model;
mod validate;

pub use builtin::builtins;
pub use library::{
    Entry, Library, LibraryError, MAX_FILE_BYTES, SaveOptions, SaveReport, read_template,
    write_atomic,
};
pub use mined::{ChainStats, from_chain, name, slug, step_ids, unique_name};
pub use model::{Metadata, OnError, Source, WorkflowStep, WorkflowTemplate};
pub use validate::{is_safe_name, problems};
