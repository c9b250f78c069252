//! Checkpoints: a run's state saved after every finished step, so that `--resume` can finish a
//! run that was killed without repeating what it had done.
//!
//! A checkpoint is two files: `RUN_ID.json`, the template, the variables and the state when the
//! run (or its resume) began, written once; and `RUN_ID.journal`, one JSON line appended (and
//! flushed to disk) per finished step with what changed. A step costs what it changed, however
//! big the template; a line cut short by a crash was never done, and is ignored.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use indexmap::IndexMap;

use super::execute::{Compensation, Options, RunState, RunStatus, StepRecord};
use super::plan::Plan;
use super::toolbox::Toolbox;
use crate::template::{WorkflowTemplate, is_safe_name, write_private};

/// Everything needed to resume a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub template: WorkflowTemplate,
    pub vars: Map<String, Value>,
    pub state: RunState,
    /// Which start of the run this is: journal lines of another belong to an older start.
    #[serde(default)]
    pub generation: u64,
}

/// One line of a journal: what a finished step (or a loop's new round, or the end) changed.
#[derive(Debug, Serialize, Deserialize)]
struct Change {
    generation: u64,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    steps: IndexMap<String, StepRecord>,
    /// Steps that finished since the line before, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    finished_more: Vec<String>,
    /// The whole list, when steps left it (a loop went round again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished: Option<Vec<String>>,
    status: RunStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rounds: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    compensations: Vec<Compensation>,
}

impl Change {
    fn apply(self, state: &mut RunState) {
        for (id, record) in self.steps {
            if let Some(r) = state.steps.get_mut(&id) {
                *r = record;
            }
        }
        if let Some(all) = self.finished {
            state.finished = all;
        }
        state.finished.extend(self.finished_more);
        state.status = self.status;
        state.rounds = self.rounds;
        state.error = self.error;
        state.compensations = self.compensations;
    }
}

/// The journal of a run being executed.
pub struct Journal {
    file: std::fs::File,
    path: PathBuf,
    generation: u64,
    /// How many steps `finished` held at the last line.
    finished: usize,
}

impl Journal {
    /// Starts a run's checkpoint in `dir`: `checkpoint` written whole (as the start after
    /// `checkpoint.generation`), the journal emptied.
    pub fn start(dir: &Path, mut checkpoint: Checkpoint) -> Result<Journal, StateError> {
        checkpoint.generation += 1;
        let generation = checkpoint.generation;
        let finished = checkpoint.state.finished.len();
        save(dir, &checkpoint)?;
        let path = journal(dir, &checkpoint.state.run_id);
        let file = std::fs::File::options()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StateError::Write {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Journal {
            file,
            path,
            generation,
            finished,
        })
    }

    /// Appends what changed in `state`: the records of `changed`, and the run's own fields.
    pub fn record(&mut self, state: &RunState, changed: &[String]) -> Result<(), StateError> {
        use std::io::Write;
        let steps: IndexMap<String, StepRecord> = (changed.iter())
            .filter_map(|id| Some((id.clone(), state.steps.get(id)?.clone())))
            .collect();
        // A loop's new round takes its steps out of `finished`: then the whole list.
        let appended = state.finished.len() >= self.finished
            && !steps.values().any(|r| r.status == super::Status::Pending);
        let change = Change {
            generation: self.generation,
            steps,
            finished_more: match appended {
                true => state.finished[self.finished..].to_vec(),
                false => Vec::new(),
            },
            finished: (!appended).then(|| state.finished.clone()),
            status: state.status,
            rounds: state.rounds.clone(),
            error: state.error.clone(),
            compensations: state.compensations.clone(),
        };
        self.finished = state.finished.len();
        let mut line = serde_json::to_vec(&change).expect("changes serialise");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| StateError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }
}

/// `NAME-YYYYMMDDTHHMMSS-XXXX`: sortable, readable, and distinct for runs started together. The
/// name is the workflow's slug: a template named like a path cannot put files outside the state
/// folder.
pub fn new_run_id(workflow: &str) -> String {
    let now = chrono::Utc::now();
    let noise = (now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    let name = crate::template::slug(workflow);
    format!("{name}-{}-{noise:04x}", now.format("%Y%m%dT%H%M%S"))
}

/// Executes `plan` from `state` (`generation`: the checkpoint's, 0 for a new run) with its
/// checkpoint kept in `dir` step by step, so that it can be resumed however it ends; `on_step`
/// sees each change after it is recorded. A checkpoint that cannot be written is warned about
/// on stderr, once, and the run goes on. What `run` and `serve` both run.
pub async fn execute_checkpointed(
    plan: &Plan,
    tools: &Toolbox,
    options: &Options,
    state: RunState,
    dir: &Path,
    generation: u64,
    on_step: &mut (dyn FnMut(&RunState, &[String]) + Send),
) -> RunState {
    let mut journal = Journal::start(
        dir,
        Checkpoint {
            template: plan.template.clone(),
            vars: plan.vars.clone(),
            state: state.clone(),
            generation,
        },
    );
    if let Err(e) = &journal {
        say!("warning: {e}; this run cannot be resumed");
    }
    let mut checkpoint = |state: &RunState, changed: &[String]| {
        if let Ok(j) = &mut journal
            && let Err(e) = j.record(state, changed)
        {
            say!("warning: {e}; this run cannot be resumed");
            journal = Err(e);
        }
        on_step(state, changed);
    };
    super::execute(plan, tools, options, state, &mut checkpoint).await
}

fn journal(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.journal"))
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
fn save(dir: &Path, checkpoint: &Checkpoint) -> Result<(), StateError> {
    check_id(&checkpoint.state.run_id)?;
    let path = file(dir, &checkpoint.state.run_id);
    let write_error = |reason: String| StateError::Write {
        path: path.clone(),
        reason,
    };
    create_private_dir(dir).map_err(|e| write_error(e.to_string()))?;
    let mut json = serde_json::to_string_pretty(checkpoint).expect("checkpoints serialise");
    json.push('\n');
    write_private(&path, json.as_bytes()).map_err(|e| {
        // The path is said already: the cause (a full disk, say) is what the message needs.
        write_error(match e {
            crate::template::LibraryError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        })
    })
}

/// Creates `dir` (and its parents) for its owner alone (0700) where it does not exist yet.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Reads the checkpoint of `run_id` from `dir`, its journal's lines of the same start applied,
/// and checks that it is one: its own run id is `run_id`, and its steps are its template's.
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
    let mut checkpoint: Checkpoint =
        serde_json::from_str(&text).map_err(|e| StateError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    if let Ok(lines) = std::fs::read(journal(dir, run_id)) {
        // A line that does not parse was cut short by a crash: it, and anything after, never
        // happened.
        let changes = (lines.split(|&b| b == b'\n'))
            .map_while(|line| serde_json::from_slice::<Change>(line).ok())
            .filter(|c| c.generation == checkpoint.generation);
        for change in changes {
            change.apply(&mut checkpoint.state);
        }
    }
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
            // Saved last: its journal's last line, or its start.
            let modified = [entry.path(), journal(dir, run_id)]
                .iter()
                .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
                .max()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::Status;

    fn checkpoint() -> Checkpoint {
        let template: WorkflowTemplate = serde_json::from_str(
            r#"{"name": "t", "steps": [{"step_id": "a", "tool_name": "x"},
                {"step_id": "b", "tool_name": "x", "depends_on": ["a"]}]}"#,
        )
        .unwrap();
        let state = RunState {
            run_id: "r".into(),
            workflow: "t".into(),
            status: RunStatus::Running,
            steps: ["a", "b"]
                .map(|id| (id.to_string(), StepRecord::new(Status::Pending, None)))
                .into_iter()
                .collect(),
            finished: Vec::new(),
            compensations: Vec::new(),
            rounds: Vec::new(),
            error: None,
        };
        Checkpoint {
            template,
            vars: Map::new(),
            state,
            generation: 0,
        }
    }

    #[test]
    fn a_full_disk_is_named_as_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        // Written through the link, as to any device: /dev/full answers ENOSPC.
        std::os::unix::fs::symlink("/dev/full", dir.path().join("r.json")).unwrap();
        let e = Journal::start(dir.path(), checkpoint())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.ends_with("r.json: No space left on device (os error 28)"),
            "{e}"
        );
    }

    #[test]
    fn a_journal_replays_its_start_and_nothing_cut_short_or_older() {
        let dir = tempfile::tempdir().unwrap();
        let start = checkpoint();
        let mut journal = Journal::start(dir.path(), start.clone()).unwrap();
        let mut state = start.state.clone();
        state.steps["a"] = StepRecord::new(Status::Succeeded, None);
        state.finished.push("a".into());
        journal.record(&state, &["a".into()]).unwrap();
        let loaded = load(dir.path(), "r").unwrap();
        assert_eq!(loaded.state, state);
        assert_eq!(loaded.generation, 1);
        // A line cut short by a crash is not applied.
        let path = dir.path().join("r.journal");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(r#"{"generation": 1, "steps": {"b": {"status": "succ"#);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(load(dir.path(), "r").unwrap().state, state);
        // A resume starts anew: the lines of the first start no longer count.
        let mut again = load(dir.path(), "r").unwrap();
        again.state.status = RunStatus::Running;
        let resumed = again.state.clone();
        Journal::start(dir.path(), again).unwrap();
        std::fs::write(&path, text).unwrap();
        let loaded = load(dir.path(), "r").unwrap();
        assert_eq!((loaded.generation, loaded.state), (2, resumed));
    }
}
