//! `patterns mine` end to end: planted workflows come out on top, output forms.

use predicates::str::contains;

use crate::common::{Workdir, chains, data};

/// A generated log of `sessions` sessions and its truth.
pub fn generated(
    w: &Workdir,
    sessions: usize,
    seed: u64,
) -> (std::path::PathBuf, serde_json::Value) {
    let (sessions, seed) = (sessions.to_string(), seed.to_string());
    crate::common::generate(w, &["--sessions", &sessions, "--seed", &seed])
}

#[test]
fn keep_all_shows_the_fragments_that_closed_prunes() {
    let sample = data("sample.csv");
    let closed =
        crate::common::mine_json(&[sample.to_str().unwrap(), "--top", "0", "--keep", "closed"]);
    let all = crate::common::mine_json(&[sample.to_str().unwrap(), "--top", "0", "--keep", "all"]);
    let (closed, all) = (chains(&closed), chains(&all));
    assert!(all.len() > closed.len());
    assert!(closed.iter().all(|c| all.contains(c)));
    // A window of the pipeline that nearly always runs on to its end is closed's to drop.
    let fragment = "transform_data → store_data → send_notification".to_string();
    assert!(all.contains(&fragment) && !closed.contains(&fragment));
}

#[test]
fn table_output_has_ranks_chains_and_a_summary() {
    let out = crate::common::patterns()
        .arg("mine")
        .arg(data("sample.csv"))
        .args(["--top", "3", "--no-write"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "rank", "support", "success", "score", "sessions", "time", "workflow"
        ]
    );
    // Each workflow's row, then its funnel (and its variants when it has any) below the
    // workflow column.
    let blank = lines.iter().position(|l| l.is_empty()).unwrap();
    let rows: Vec<usize> = (1..blank)
        .filter(|&i| lines[i].trim_start().starts_with(char::is_numeric))
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    let at = lines[0].find("workflow").unwrap();
    for (k, &i) in rows.iter().enumerate() {
        assert!(
            lines[i].trim_start().starts_with(&format!("{} ", k + 1)),
            "{stdout}"
        );
        // The workflow column starts at the same place on every row.
        assert!(
            lines[i].chars().nth(at - 2).unwrap() == ' '
                && lines[i].chars().nth(at).unwrap() != ' ',
            "{stdout}"
        );
        let funnel = lines[i + 1];
        assert!(funnel[..at].trim().is_empty(), "{stdout}");
        assert!(funnel[at..].starts_with("funnel: "), "{stdout}");
    }
    // The pipeline's planted variant is shown under it.
    assert!(
        stdout.contains("variants: + validate_data after transform_data"),
        "{stdout}"
    );
    let summary = lines[blank + 1];
    assert!(summary.starts_with("1 file · "), "{stdout}");
    assert!(summary.contains(" sessions · "), "{stdout}");
    assert!(summary.contains(" workflows, 3 shown · "), "{stdout}");
}

#[test]
fn top_zero_prints_every_kept_chain() {
    // Every frequent chain: far more than the 20 printed by default.
    let log = data("sample.csv");
    let log = log.to_str().unwrap();
    let all = crate::common::mine_json(&[log, "--keep", "all", "--top", "0"]);
    let top = crate::common::mine_json(&[log, "--keep", "all"]);
    let (all, top, kept) = (
        all["patterns"].as_array().unwrap(),
        top["patterns"].as_array().unwrap(),
        top["kept"].as_u64().unwrap() as usize,
    );
    assert!(kept > 100, "{kept}");
    assert_eq!(all.len(), kept);
    assert_eq!(top.len(), 20);
    assert_eq!(&all[..20], &top[..]);
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
        .stderr(contains("no workflow runs whole in 5 or more sessions"));
    w.patterns()
        .args(["mine", "log.csv", "--keep", "all"])
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
