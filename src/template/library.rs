//! The library folder: one `<name>.json` per template. Writes are atomic (temp file + rename in
//! the folder), a lock file keeps two writers from interleaving, and re-mining merges.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::mined::{ChainStats, from_chain, unique_name};
use super::model::{Source, WorkflowTemplate};
use super::validate;

/// Library files larger than this are not read.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

const LOCK_FILE: &str = ".patterns.lock";

/// Errors of the library layer.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process held the lock for longer than we were willing to wait.
    #[error(
        "{path} is locked by another patterns process (a concurrent mine?); gave up after {waited:?}, run again when it is done"
    )]
    Locked { path: PathBuf, waited: Duration },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LibraryError + '_ {
    move |source| LibraryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file of the library and what it holds.
#[derive(Debug)]
pub struct Entry {
    pub path: PathBuf,
    /// The template, or every reason it cannot be used.
    pub template: Result<WorkflowTemplate, Vec<String>>,
}

/// What a save did, by template name.
#[derive(Debug, Default, PartialEq)]
pub struct SaveReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub marked_stale: Vec<String>,
    pub removed: Vec<String>,
    /// Templates not written because they would be over [`MAX_FILE_BYTES`], which the library
    /// does not read back (a tool with a huge name, say).
    pub too_large: Vec<String>,
    /// Templates not written because they fail the checks every library file must pass, with
    /// their problems (a bug of `mine`: a template it wrote would be refused when read).
    pub invalid: Vec<(String, Vec<String>)>,
}

/// How re-mining treats what the library already has.
#[derive(Debug, Clone, Copy, Default)]
pub struct SaveOptions {
    /// Add the new counts to the old ones (nightly increments) instead of replacing them.
    pub accumulate: bool,
    /// Delete mined templates that fell below the threshold instead of marking them stale.
    pub prune: bool,
    /// How long to wait for another writer's lock.
    pub lock_wait: Duration,
}

/// What a library offers: its usable templates with the built-ins, and its broken files.
#[derive(Debug)]
pub struct Catalog {
    pub templates: Vec<WorkflowTemplate>,
    /// Files that cannot be used, with every reason.
    pub broken: Vec<(PathBuf, Vec<String>)>,
}

/// A library folder.
#[derive(Debug, Clone)]
pub struct Library {
    dir: PathBuf,
}

/// Holds the library's lock until dropped.
pub struct Lock {
    _file: File,
}

impl Library {
    pub fn new(dir: impl Into<PathBuf>) -> Library {
        Library { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of template `name`'s file.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Every `*.json` file of the folder in name order, parsed and checked. A missing folder is
    /// an empty library.
    pub fn entries(&self) -> Result<Vec<Entry>, LibraryError> {
        let mut paths: Vec<PathBuf> = match fs::read_dir(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect(),
        };
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| Entry {
                template: read_template(&path),
                path,
            })
            .collect())
    }

    /// The library's usable templates and the built-ins that no library file shadows, in name
    /// order, and the problems of the files that cannot be used.
    pub fn catalog(&self) -> Result<Catalog, LibraryError> {
        let mut templates = Vec::new();
        let mut broken = Vec::new();
        let mut names = HashSet::new();
        for e in self.entries()? {
            names.insert(stem(&e.path));
            match e.template {
                Ok(t) => templates.push(t),
                Err(problems) => broken.push((e.path, problems)),
            }
        }
        templates.extend(
            super::builtins()
                .into_iter()
                .filter(|b| !names.contains(&b.name)),
        );
        templates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Catalog { templates, broken })
    }

    /// Takes the lock, waiting up to `wait` (with `on_wait` told once) for another holder.
    pub fn lock(&self, wait: Duration, on_wait: impl FnOnce(&Path)) -> Result<Lock, LibraryError> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let started = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {
                    if let Some(f) = on_wait.take() {
                        f(&path);
                    }
                    if started.elapsed() >= wait {
                        return Err(LibraryError::Locked {
                            path,
                            waited: started.elapsed(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
            }
        }
    }

    /// Merges freshly mined chains into the library under its lock: a chain that has a mined
    /// template gets its metadata updated; a new chain gets a new file; mined templates whose
    /// chain is not among `chains` are marked stale (or removed with `prune`). User and built-in
    /// templates, and files that do not parse, are never touched. Files whose content would not
    /// change are not rewritten.
    pub fn save_mined(
        &self,
        chains: &[(Vec<String>, ChainStats)],
        options: SaveOptions,
        on_wait: impl FnOnce(&Path),
    ) -> Result<SaveReport, LibraryError> {
        let _lock = self.lock(options.lock_wait, on_wait)?;
        self.remove_stale_temp_files();
        let entries = self.entries()?;
        let mut taken: HashSet<String> = entries.iter().map(|e| stem(&e.path)).collect();
        let mut mined: HashMap<Vec<String>, (String, WorkflowTemplate)> = HashMap::new();
        for e in entries {
            if let Ok(t) = e.template
                && t.metadata.source == Source::Mined
            {
                mined.insert(t.metadata.pattern.clone(), (stem(&e.path), t));
            }
        }
        let mut report = SaveReport::default();
        for (chain, stats) in chains {
            let (file, template, is_new) = match mined.remove(chain) {
                Some((file, old)) => {
                    let t = merge(old, stats, options.accumulate);
                    (file, t, false)
                }
                None => {
                    let name = unique_name(chain, |n| taken.contains(n));
                    taken.insert(name.clone());
                    (name.clone(), from_chain(name, chain, stats), true)
                }
            };
            let problems = validate::problems(&template);
            if !problems.is_empty() {
                report.invalid.push((file, problems));
                continue;
            }
            let json = template.to_json();
            if json.len() as u64 > MAX_FILE_BYTES {
                report.too_large.push(file);
                continue;
            }
            let changed = self.write_if_changed(&file, &json)?;
            match (is_new, changed) {
                (true, _) => report.created.push(file),
                (false, true) => report.updated.push(file),
                (false, false) => report.unchanged.push(file),
            }
        }
        // What is left fell below the threshold in this run.
        let mut left: Vec<(String, WorkflowTemplate)> = mined.into_values().collect();
        left.sort_by(|a, b| a.0.cmp(&b.0));
        for (file, mut t) in left {
            if options.prune {
                let path = self.path_of(&file);
                fs::remove_file(&path).map_err(io(&path))?;
                report.removed.push(file);
            } else if !t.metadata.stale {
                t.metadata.stale = true;
                self.write_if_changed(&file, &t.to_json())?;
                report.marked_stale.push(file);
            }
        }
        Ok(report)
    }

    /// Removes the temp files (`.NAME.PID.tmp`) that killed writers left: under the lock no other
    /// writer has one open.
    fn remove_stale_temp_files(&self) {
        remove_temp_files(&self.dir, false);
    }

    /// Writes `contents` to `<name>.json` atomically unless it already holds exactly that.
    fn write_if_changed(&self, name: &str, contents: &str) -> Result<bool, LibraryError> {
        let path = self.path_of(name);
        if fs::read(&path).is_ok_and(|old| old == contents.as_bytes()) {
            return Ok(false);
        }
        write_atomic(&path, contents.as_bytes())?;
        Ok(true)
    }

    /// Writes a template (e.g. a built-in) as a new file; an existing file is left alone.
    pub fn add(&self, t: &WorkflowTemplate) -> Result<bool, LibraryError> {
        let path = self.path_of(&t.name);
        if path.exists() {
            return Ok(false);
        }
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        write_atomic(&path, t.to_json().as_bytes())?;
        Ok(true)
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A mined template with the figures of a new run.
fn merge(mut t: WorkflowTemplate, stats: &ChainStats, accumulate: bool) -> WorkflowTemplate {
    let m = &mut t.metadata;
    let old_usage = m.usage_count.unwrap_or(0);
    if accumulate && old_usage > 0 {
        let usage = old_usage + stats.support;
        let successes = m.success_rate.unwrap_or(0.0) * old_usage as f64
            + stats.success_rate * stats.support as f64;
        m.usage_count = Some(usage);
        m.success_rate = Some(successes / usage as f64);
        m.score = Some(m.score.unwrap_or(0.0) + stats.score);
        m.avg_duration_ms = match (m.avg_duration_ms, stats.avg_duration_ms) {
            (Some(a), Some(b)) => {
                Some(((a * old_usage as f64 + b * stats.support as f64) / usage as f64).round())
            }
            (a, b) => b.or(a),
        };
        m.first_seen = min_opt(m.first_seen.take(), stats.first_seen.clone(), false);
        m.last_seen = min_opt(m.last_seen.take(), stats.last_seen.clone(), true);
    } else {
        m.usage_count = Some(stats.support);
        m.success_rate = Some(stats.success_rate);
        m.score = Some(stats.score);
        m.first_seen = stats.first_seen.clone();
        m.last_seen = stats.last_seen.clone();
        m.avg_duration_ms = stats.avg_duration_ms;
    }
    m.stale = false;
    // Mined templates belong to mine: their steps, groups and bindings follow the log.
    let fresh = from_chain(t.name.clone(), &t.metadata.pattern, stats);
    t.description = fresh.description;
    t.steps = fresh.steps;
    t.parallel_groups = fresh.parallel_groups;
    for field in super::mined::MINED_FIELDS {
        t.metadata.extra.remove(field);
    }
    t.metadata.extra.extend(fresh.metadata.extra);
    t
}

/// The earlier (or with `max`, the later) of two RFC 3339 times in the same zone (UTC).
fn min_opt(a: Option<String>, b: Option<String>, max: bool) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if (a <= b) != max { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The text of a template file, at most [`MAX_FILE_BYTES`] of it, counted while reading (a
/// link to `/dev/zero` says nothing true in its size). With `regular_only`, what is not a
/// regular file (a FIFO would block, a device never end) is refused unopened.
pub fn read_text(path: &Path, regular_only: bool) -> Result<String, String> {
    use std::io::Read;
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if regular_only && !meta.is_file() {
        return Err("not a regular file (a FIFO, a device or a socket): not read".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the file is {} bytes; templates over {MAX_FILE_BYTES} bytes are not read",
            meta.len()
        ));
    }
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is over {MAX_FILE_BYTES} bytes; templates that large are not read"
        ));
    }
    Ok(text)
}

/// Reads and checks one library file.
pub fn read_template(path: &Path) -> Result<WorkflowTemplate, Vec<String>> {
    let text = read_text(path, true).map_err(|e| vec![e])?;
    let t: WorkflowTemplate =
        serde_json::from_str(&text).map_err(|e| vec![format!("not a workflow template: {e}")])?;
    let mut problems = validate::problems(&t);
    if problems.is_empty() && stem(path) != t.name {
        problems.push(format!(
            "the template is named '{}' but the file is '{}.json'",
            t.name,
            stem(path)
        ));
    }
    if problems.is_empty() {
        Ok(t)
    } else {
        Err(problems)
    }
}

/// Removes the temp files [`write_atomic`] leaves in `dir` when its writer is killed
/// (`.NAME.PID.tmp`): all of them (under a lock no other writer is at work), or only those of
/// processes that are gone.
pub fn remove_temp_files(dir: &Path, only_of_dead_writers: bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let pid = rest.rsplit('.').next().and_then(|p| p.parse::<i32>().ok());
        // SAFETY: signal 0 only checks that the process exists.
        let dead = || pid.is_some_and(|pid| pid > 0 && unsafe { libc::kill(pid, 0) } != 0);
        if !only_of_dead_writers || dead() {
            fs::remove_file(entry.path()).ok();
        }
    }
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees the old file or the new one,
/// never a mix: a temp file in the same folder, flushed to disk, renamed over the target. A link
/// is followed and its target replaced (the link stays); a target that is not a regular file (a
/// device, a FIFO, a terminal) is written through as `>` would, never replaced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LibraryError> {
    write_file(path, bytes, 0o666)
}

/// As [`write_atomic`], for a file only its owner may read (mode 0600): checkpoints hold the
/// values of `--var` and what tools returned.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), LibraryError> {
    write_file(path, bytes, 0o600)
}

/// [`write_atomic`] with the mode a new file gets (before the umask).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), LibraryError> {
    use std::os::unix::fs::OpenOptionsExt;
    let resolved;
    let path = match fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return File::options()
                .write(true)
                .truncate(true)
                .open(path)
                .and_then(|mut f| f.write_all(bytes))
                .map_err(io(path));
        }
        Ok(_) if path.is_symlink() => {
            resolved = fs::canonicalize(path).map_err(io(path))?;
            resolved.as_path()
        }
        _ => path,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    // Whatever is at the temp name (a file a killed run left, a planted symlink) goes, and the
    // file is created anew, never opened through a link: create_new is O_CREAT | O_EXCL.
    fs::remove_file(&tmp).ok();
    let result = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        fs::remove_file(&tmp).ok();
    }
    result.map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_at_the_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        fs::write(&outside, "keep me").unwrap();
        let target = dir.path().join("lib").join("t.json");
        fs::create_dir(target.parent().unwrap()).unwrap();
        let tmp = target
            .parent()
            .unwrap()
            .join(format!(".t.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&outside, &tmp).unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep me");
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert!(!tmp.exists());
    }

    #[test]
    fn temp_files_of_killed_writers_are_removed_on_the_next_save() {
        let dir = tempfile::tempdir().unwrap();
        let library = Library::new(dir.path());
        fs::write(dir.path().join(".x.json.999999.tmp"), "half").unwrap();
        library
            .save_mined(&[], SaveOptions::default(), |_| {})
            .unwrap();
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
