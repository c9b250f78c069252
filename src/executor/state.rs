//! Checkpoints: a run's state saved after every finished step, so that `--resume` can finish a
//! run that was killed without repeating what it had done.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::execute::RunState;
use crate::template::{WorkflowTemplate, is_safe_name, write_atomic};

/// Everything needed to resume a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub template: WorkflowTemplate,
    pub vars: Map<String, Value>,
    pub state: RunState,
}

/// Why a checkpoint cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no run '{run_id}' in {dir} (no {file})")]
    NotFound {
        run_id: String,
        dir: PathBuf,
        file: String,
    },
    #[error("cannot read checkpoint {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("cannot write checkpoint {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    /// A run id that is not a plain file name: it would read or write outside the state folder.
    #[error("run id {run_id:?} is not a safe file name (letters, digits, '_', '-', '.')")]
    UnsafeId { run_id: String },
}

/// A run id names a file in the state folder and nothing else.
fn check_id(run_id: &str) -> Result<(), StateError> {
    match is_safe_name(run_id) {
        true => Ok(()),
        false => Err(StateError::UnsafeId {
            run_id: run_id.to_string(),
        }),
    }
}

fn file(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.json"))
}

/// Writes the checkpoint of `checkpoint.state.run_id` into `dir` (atomically).
pub fn save(dir: &Path, checkpoint: &Checkpoint) -> Result<(), StateError> {
    check_id(&checkpoint.state.run_id)?;
    let path = file(dir, &checkpoint.state.run_id);
    let write_error = |reason: String| StateError::Write {
        path: path.clone(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(e.to_string()))?;
    let mut json = serde_json::to_string_pretty(checkpoint).expect("checkpoints serialise");
    json.push('\n');
    write_atomic(&path, json.as_bytes()).map_err(|e| write_error(e.to_string()))
}

/// Reads the checkpoint of `run_id` from `dir`, and checks that it is one: its own run id is
/// `run_id`, and its steps are its template's.
pub fn load(dir: &Path, run_id: &str) -> Result<Checkpoint, StateError> {
    check_id(run_id)?;
    let path = file(dir, run_id);
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StateError::NotFound {
            run_id: run_id.to_string(),
            dir: dir.to_path_buf(),
            file: format!("{run_id}.json"),
        },
        _ => StateError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        },
    })?;
    let checkpoint: Checkpoint =
        serde_json::from_str(&text).map_err(|e| StateError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let unreadable = |reason: String| StateError::Unreadable {
        path: path.clone(),
        reason,
    };
    if checkpoint.state.run_id != run_id {
        return Err(unreadable(format!(
            "it is the checkpoint of run {:?}, not of {run_id:?}",
            checkpoint.state.run_id
        )));
    }
    let template: Vec<&str> = (checkpoint.template.steps.iter())
        .map(|s| s.step_id.as_str())
        .collect();
    let recorded: Vec<&str> = checkpoint.state.steps.keys().map(String::as_str).collect();
    if template != recorded {
        return Err(unreadable(format!(
            "its steps ({}) are not its template's ({})",
            recorded.join(", "),
            template.join(", ")
        )));
    }
    Ok(checkpoint)
}
