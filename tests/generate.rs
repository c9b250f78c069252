//! The generator is deterministic, and the committed sample is what it makes.

use crate::common::{Workdir, data};

#[test]
fn the_committed_sample_is_the_generators_output() {
    let w = Workdir::new();
    w.patterns()
        .args([
            "generate",
            "--sessions",
            "3000",
            "--seed",
            "42",
            "--output",
            "s.csv",
            "--truth",
            "s.json",
        ])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(w.path("s.csv")).unwrap(),
        std::fs::read(data("sample.csv")).unwrap()
    );
    assert_eq!(
        std::fs::read(w.path("s.json")).unwrap(),
        std::fs::read(data("sample.truth.json")).unwrap()
    );
}

#[test]
fn the_committed_agent_samples_are_the_generators_output() {
    let w = Workdir::new();
    for (kind, file) in [
        ("claude-code", "claude-code.jsonl"),
        ("codex", "codex.jsonl"),
        ("otlp", "otlp.jsonl"),
        ("langfuse", "langfuse.jsonl"),
        ("xes", "sample.xes"),
    ] {
        w.patterns()
            .args(["generate", "--sessions", "60", "--seed", "42", "--as", kind])
            .args(["--output", file])
            .assert()
            .success();
        assert_eq!(
            std::fs::read(w.path(file)).unwrap(),
            std::fs::read(data(&format!("agents/{file}"))).unwrap(),
            "{kind}"
        );
    }
}

#[test]
fn truth_counts_match_the_log() {
    let mut csv = Vec::new();
    let truth = patterns::generate::generate(
        patterns::generate::GenerateParams {
            sessions: 500,
            seed: 5,
            payloads: true,
            ..Default::default()
        },
        &mut csv,
    )
    .unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert_eq!(text.lines().count() - 1, truth.events);
    let sessions: std::collections::BTreeSet<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(sessions.len(), 500);
    let planted: usize = truth.workflows.iter().map(|w| w.sessions).sum();
    assert!(
        planted > 500,
        "most sessions run a workflow, some two: {planted}"
    );
}
