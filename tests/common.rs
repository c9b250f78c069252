//! Helpers: the binary under test and a temporary working directory with files in it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `patterns` binary, with a clean environment for the settings it reads.
pub fn patterns() -> Command {
    let mut cmd = Command::cargo_bin("patterns").expect("binary built");
    cmd.env_remove("PATTERNS_LIBRARY")
        .env_remove("PATTERNS_TOOLS")
        .env_remove("PATTERNS_STATE_DIR")
        .env_remove("RAYON_NUM_THREADS");
    cmd
}

/// A temporary directory that tests write logs into and run the binary in.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write fixture");
        path
    }

    /// `patterns` running in this directory.
    pub fn patterns(&self) -> Command {
        let mut cmd = patterns();
        cmd.current_dir(self.dir.path());
        cmd
    }
}

/// Runs `patterns generate ARGS` in `w` and returns the log's path and its ground truth.
pub fn generate(w: &Workdir, args: &[&str]) -> (PathBuf, serde_json::Value) {
    let log = w.path("gen.csv");
    let truth = w.path("gen.truth.json");
    run_ok(
        w.patterns()
            .arg("generate")
            .args(args)
            .arg("--output")
            .arg(&log)
            .arg("--truth")
            .arg(&truth),
    );
    let truth = serde_json::from_slice(&std::fs::read(truth).expect("truth")).expect("JSON");
    (log, truth)
}

/// A small agent-shaped log (`generate --shape agent`: branches, shared steps, a fix loop) in
/// `w`.
pub fn agent_log(w: &Workdir) -> PathBuf {
    let args = [
        "--shape",
        "agent",
        "--sessions",
        "2000",
        "--seed",
        "3",
        "--no-payloads",
    ];
    generate(w, &args).0
}

/// A file shipped in `data/`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// Runs `cmd`, which must succeed (else the test fails with its stderr).
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd`, which must succeed, and parses its stdout as JSON.
pub fn json_of(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_slice(&run_ok(cmd).stdout).expect("valid JSON")
}

/// Runs `patterns mine ARGS --json --no-write` and returns the parsed output.
pub fn mine_json(args: &[&str]) -> serde_json::Value {
    json_of(
        patterns()
            .arg("mine")
            .args(args)
            .args(["--json", "--no-write"]),
    )
}

/// The chains of a `mine --json` output, each as its tools joined by " → ".
pub fn chains(json: &serde_json::Value) -> Vec<String> {
    json["patterns"]
        .as_array()
        .expect("patterns array")
        .iter()
        .map(|p| chain_text(&p["pattern"]))
        .collect()
}

/// A JSON array of tool names as its tools joined by " → ".
pub fn chain_text(pattern: &serde_json::Value) -> String {
    pattern
        .as_array()
        .expect("a list of tools")
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// `~/.cache/NAME`: where the tests keep what they install once per machine.
pub fn cache_dir(name: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
        .join(".cache")
        .join(name)
}

/// A Python virtual environment at `dir` with `packages` (pinned) from PyPI: made once, then
/// reused.
pub fn python_venv(dir: PathBuf, packages: &[&str]) -> PathBuf {
    installed_once(dir, packages, |dir| {
        let venv = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            venv.status.success(),
            "python3 -m venv: {}",
            String::from_utf8_lossy(&venv.stderr)
        );
        let pip = std::process::Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages)
            .output()
            .unwrap();
        assert!(
            pip.status.success(),
            "pip install {packages:?}: {}",
            String::from_utf8_lossy(&pip.stderr)
        );
    })
}

/// A folder at `dir` with the npm `packages` (pinned) installed in `dir/node_modules`: made once,
/// then reused.
pub fn node_modules(dir: PathBuf, packages: &[&str]) -> PathBuf {
    installed_once(dir, packages, |dir| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("package.json"), "{\"private\": true}").unwrap();
        let npm = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .args(packages)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            npm.status.success(),
            "npm install {packages:?}: {}",
            String::from_utf8_lossy(&npm.stderr)
        );
    })
}

/// `dir`, made by `install` unless a `ready-…` file there names `packages` as installed. Test
/// processes that start together wait for the one that installs.
fn installed_once(dir: PathBuf, packages: &[&str], install: impl FnOnce(&Path)) -> PathBuf {
    let ready = dir.join(format!("ready-{}", packages.join("-").replace('/', "_")));
    if ready.exists() {
        return dir;
    }
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let lock = dir.with_extension("lock");
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(_) if ready.exists() => return dir,
            // A lock left by a killed installer is stale after ten minutes.
            Err(_)
                if lock.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                    t.elapsed().unwrap_or_default() > std::time::Duration::from_secs(600)
                }) =>
            {
                std::fs::remove_dir(&lock).ok();
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
    if !ready.exists() {
        std::fs::remove_dir_all(&dir).ok();
        install(&dir);
        std::fs::write(&ready, "").unwrap();
    }
    std::fs::remove_dir(&lock).ok();
    dir
}
