//! One module per subcommand: its arguments and a `run` that is glue over the engine.

pub mod generate;
pub mod library;
mod logargs;
pub mod mine;
mod mining_args;
pub mod report;
pub mod run;
pub mod serve;
pub mod spark;
pub mod suggest;
pub mod table;
pub mod tools;

use std::path::Path;

use anyhow::Context;

use crate::UsageError;
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

/// The template named `name`, or a usage error with the closest names.
fn find_template(templates: Vec<WorkflowTemplate>, name: &str) -> anyhow::Result<WorkflowTemplate> {
    let names = templates.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    templates
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            let close =
                crate::suggest::did_you_mean(name, &names.iter().map(String::as_str).collect());
            let hint = if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.join(", "))
            };
            UsageError(format!("no template named '{name}'{hint}")).into()
        })
}
