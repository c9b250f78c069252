//! `patterns mine` end to end: planted workflows come out on top, output forms.

use predicates::str::contains;

use crate::common::{Workdir, chains, data};

pub fn generated(
    w: &Workdir,
    sessions: usize,
    seed: u64,
) -> (std::path::PathBuf, serde_json::Value) {
    let log = w.path("gen.csv");
    let truth = w.path("gen.truth.json");
    w.patterns()
        .args([
            "generate",
            "--sessions",
            &sessions.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg("--output")
        .arg(&log)
        .arg("--truth")
        .arg(&truth)
        .assert()
        .success();
    (
        log,
        serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap(),
    )
}

#[test]
fn planted_workflows_are_the_top_chains_and_fragments_are_pruned() {
    for seed in [1, 2, 3] {
        let w = Workdir::new();
        let (log, truth) = generated(&w, 3000, seed);
        let out = w
            .patterns()
            .arg("mine")
            .arg(&log)
            .args(["--json", "--top", "10"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let top = chains(&json);
        let planted: Vec<Vec<String>> = truth["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                w["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect()
            })
            .collect();
        for workflow in &planted {
            assert!(
                top.contains(&workflow.join(" → ")),
                "seed {seed}: {workflow:?} not in the top 10: {top:#?}"
            );
        }
        // No top chain is a part of a planted workflow: fragments do not crowd the top.
        for chain in &top {
            let steps: Vec<&str> = chain.split(" → ").collect();
            for workflow in &planted {
                let is_part = steps.len() < workflow.len() && {
                    let mut rest = workflow.iter();
                    steps.iter().all(|s| rest.any(|t| t == s))
                };
                assert!(
                    !is_part,
                    "seed {seed}: fragment {chain} of {workflow:?} in the top 10"
                );
            }
        }
    }
}

#[test]
fn keep_all_shows_the_fragments_that_closed_prunes() {
    let sample = data("sample.csv");
    let closed = crate::common::mine_json(&[sample.to_str().unwrap(), "--top", "0"]);
    let all = crate::common::mine_json(&[sample.to_str().unwrap(), "--top", "0", "--keep", "all"]);
    let (closed, all) = (chains(&closed), chains(&all));
    assert!(all.len() > closed.len());
    assert!(closed.iter().all(|c| all.contains(c)));
    let fragment = "github_list_issues → github_create_pr".to_string();
    assert!(all.contains(&fragment) && !closed.contains(&fragment));
}

#[test]
fn table_output_has_ranks_chains_and_a_summary() {
    let out = crate::common::patterns()
        .arg("mine")
        .arg(data("sample.csv"))
        .args(["--top", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["rank", "support", "success", "score", "chain"]
    );
    assert!(lines[1].trim_start().starts_with("1 "), "{stdout}");
    assert!(lines[3].trim_start().starts_with("3 "), "{stdout}");
    assert_eq!(lines[4], "");
    assert!(lines[5].starts_with("1 file · "), "{stdout}");
    assert!(lines[5].contains(" sessions · "), "{stdout}");
    assert!(lines[5].contains(", 3 shown · "), "{stdout}");
    // The chain column starts at the same place on every row.
    let at = lines[0].find("chain").unwrap();
    for line in &lines[1..4] {
        assert!(
            line.chars().nth(at - 2).unwrap() == ' ' && line.chars().nth(at).unwrap() != ' ',
            "{stdout}"
        );
    }
}

#[test]
fn top_zero_prints_every_kept_chain() {
    let json = crate::common::mine_json(&[data("sample.csv").to_str().unwrap(), "--top", "0"]);
    assert_eq!(
        json["patterns"].as_array().unwrap().len() as u64,
        json["kept"].as_u64().unwrap()
    );
}

#[test]
fn scores_are_support_times_success_rate_and_sorted() {
    let json = crate::common::mine_json(&[data("sample.csv").to_str().unwrap(), "--top", "0"]);
    let patterns = json["patterns"].as_array().unwrap();
    let mut last = f64::INFINITY;
    for p in patterns {
        let (support, rate, score) = (
            p["support"].as_f64().unwrap(),
            p["success_rate"].as_f64().unwrap(),
            p["score"].as_f64().unwrap(),
        );
        assert!((support * rate - score).abs() < 1e-9, "{p}");
        assert!(score <= last, "not sorted by score: {p}");
        assert!(p["occurrences"].as_f64().unwrap() >= support);
        last = score;
    }
}

#[test]
fn an_impossible_threshold_explains_the_empty_answer() {
    let w = Workdir::new();
    w.write("log.csv", "session_id,timestamp,tool\ns1,1,a\ns1,2,b\n");
    w.patterns()
        .args(["mine", "log.csv"])
        .assert()
        .success()
        .stderr(contains(
            "no chain of 2–6 tools occurs in 5 or more sessions",
        ));
}

#[test]
fn help_has_examples_and_says_how_the_default_support_grows() {
    let out = crate::common::patterns()
        .args(["mine", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("Examples: patterns mine data/sample.csv"),
        "{help}"
    );
    assert!(
        help.contains("'auto' = max(5, 0.1 % of the sessions)"),
        "{help}"
    );
}
