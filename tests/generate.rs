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

#[test]
fn the_committed_truth_agrees_with_the_committed_log() {
    // Per session, its tools with their counts.
    let text = std::fs::read_to_string(data("sample.csv")).unwrap();
    let mut sessions: std::collections::HashMap<&str, std::collections::HashMap<&str, usize>> =
        Default::default();
    for line in text.lines().skip(1) {
        let mut cols = line.split(',');
        let (session, tool) = (cols.next().unwrap(), cols.nth(1).unwrap());
        *sessions
            .entry(session)
            .or_default()
            .entry(tool)
            .or_default() += 1;
    }
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("sample.truth.json")).unwrap()).unwrap();
    assert_eq!(sessions.len() as u64, truth["sessions"].as_u64().unwrap());
    assert_eq!(
        text.lines().count() as u64 - 1,
        truth["events"].as_u64().unwrap()
    );
    for w in truth["workflows"].as_array().unwrap() {
        let tools: Vec<&str> = (w["tools"].as_array().unwrap().iter())
            .map(|t| t.as_str().unwrap())
            .collect();
        let funnel: Vec<u64> = (w["funnel"].as_array().unwrap().iter())
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(funnel.len(), tools.len(), "{}", w["name"]);
        // Runs start at the first step, and a skipped step counts as passed: it never rises.
        assert!(
            funnel.windows(2).all(|p| p[1] <= p[0]),
            "{}: {funnel:?}",
            w["name"]
        );
        assert!(funnel[0] <= w["sessions"].as_u64().unwrap());
        // Runs that got to the last step called its first and last tools (a middle step may
        // have been skipped): at least that many sessions of the log did.
        let ends = [tools[0], tools[tools.len() - 1]];
        let whole = (sessions.values())
            .filter(|calls| {
                ends.iter().all(|t| {
                    calls.get(t).copied().unwrap_or(0) >= ends.iter().filter(|u| *u == t).count()
                })
            })
            .count() as u64;
        assert!(
            whole >= *funnel.last().unwrap(),
            "{}: {whole} sessions have its first and last tools, the truth says {} finished",
            w["name"],
            funnel.last().unwrap()
        );
    }
}
