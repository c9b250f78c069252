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
        .map(|p| {
            p["pattern"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" → ")
        })
        .collect()
}
