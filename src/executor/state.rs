//! Checkpoints: a run's state saved after every finished step, so that `--resume` can finish a
//! run that was killed without repeating what it had done.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::execute::RunState;
use crate::template::{WorkflowTemplate, is_safe_name, write_private};

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
    create_private_dir(dir).map_err(|e| write_error(e.to_string()))?;
    let mut json = serde_json::to_string_pretty(checkpoint).expect("checkpoints serialise");
    json.push('\n');
    write_private(&path, json.as_bytes()).map_err(|e| write_error(e.to_string()))
}

/// Creates `dir` (and its parents) for its owner alone (0700) where it does not exist yet.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
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

/// Removes the temp files of checkpoint writers that were killed mid-write (those of live
/// processes are theirs).
pub fn sweep(dir: &Path) {
    crate::template::remove_temp_files(dir, true);
}

/// A checkpoint as `run --list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub workflow: String,
    pub status: super::RunStatus,
    /// Steps done for good (succeeded or skipped: a resume does not run them again), of `steps`.
    pub finished: usize,
    /// Steps that failed (a resume runs them again).
    pub failed: usize,
    pub steps: usize,
    /// When the checkpoint was last written (RFC 3339).
    pub saved: Option<String>,
}

/// The checkpoints in `dir`, most recent first; files that are not checkpoints are left out.
pub fn list(dir: &Path) -> Result<Vec<RunSummary>, StateError> {
    sweep(dir);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StateError::Unreadable {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let mut runs: Vec<(std::time::SystemTime, RunSummary)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let run_id = name.strip_suffix(".json")?;
            let checkpoint = load(dir, run_id).ok()?;
            let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
            let state = checkpoint.state;
            Some((
                modified,
                RunSummary {
                    run_id: state.run_id,
                    workflow: state.workflow,
                    status: state.status,
                    finished: state.steps.values().filter(|s| s.is_final()).count(),
                    failed: (state.steps.values())
                        .filter(|s| s.status == super::Status::Failed)
                        .count(),
                    steps: state.steps.len(),
                    saved: Some(
                        chrono::DateTime::<chrono::Utc>::from(modified)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                },
            ))
        })
        .collect();
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.run_id.cmp(&b.1.run_id)));
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}

/// The lock of a run: while its process holds it, a `--resume` of the same run is refused rather
/// than running its steps a second time. An OS file lock, as the library's: the system releases
/// it when the process ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock of `run_id` in `dir`, or says that another process holds it.
    pub fn take(dir: &Path, run_id: &str) -> Result<RunLock, String> {
        check_id(run_id).map_err(|e| e.to_string())?;
        let path = dir.join(format!("{run_id}.lock"));
        create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "run {run_id} is running in another process ({} is locked); wait for it to end",
                path.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
    }
}
