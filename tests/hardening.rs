//! Regression tests of the issue "Hardening": each named after the defect it pins.

use std::io::Read;
use std::process::{Command, Stdio};

use predicates::str::contains;

use crate::common::{Workdir, data};

/// Runs `patterns ARGS` with stdout into a pipe that is closed after the first bytes; returns
/// the exit code and stderr.
fn with_pipe_closed_early(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("patterns"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_pipe_exits_0_quietly() {
    // Enough output that the writer is still writing when the pipe closes.
    let generate = ["generate", "--sessions", "200000", "--no-payloads"];
    let sample = data("sample.csv");
    let mine = [
        "mine",
        sample.to_str().unwrap(),
        "--keep",
        "all",
        "--json",
        "--no-write",
        "--top",
        "0",
    ];
    for args in [&generate[..], &mine[..]] {
        let (code, stderr) = with_pipe_closed_early(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn every_row_bad_is_exit_2_with_the_first_errors() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool\ns1,yesterday,a\ns1,today,b\n",
    );
    w.patterns()
        .args(["mine", "log.csv", "--no-write"])
        .assert()
        .code(2)
        .stderr(contains("no usable row: all 2 rows are bad"))
        .stderr(contains(
            "log.csv:2: timestamp does not parse in column 'timestamp': \"yesterday\"",
        ));
}
