//! One module per subcommand: its arguments and a `run` that is glue over the engine.

pub mod generate;
pub mod library;
pub mod mine;
pub mod suggest;
mod table;

use std::path::Path;

use anyhow::Context;

use crate::template::{Library, WorkflowTemplate};

/// The templates of the library at `dir` with the built-ins; files that cannot be used are
/// named on stderr and skipped.
fn read_catalog(dir: &Path) -> anyhow::Result<Vec<WorkflowTemplate>> {
    let catalog = Library::new(dir)
        .catalog()
        .with_context(|| format!("could not read the library '{}'", dir.display()))?;
    for (path, problems) in &catalog.broken {
        eprintln!(
            "warning: skipped {}: {}",
            path.display(),
            problems.join("; ")
        );
    }
    Ok(catalog.templates)
}
