//! `patterns suggest`: ranking, next tools, unknown tools, empty libraries, and `--logs`.

use std::collections::HashMap;

use predicates::str::contains;

use crate::common::{Workdir, data, json_of};

fn suggest_json(w: &Workdir, args: &[&str]) -> serde_json::Value {
    json_of(
        w.patterns()
            .arg("suggest")
            .args(args)
            .args(["--library", "lib", "--json"]),
    )
}

#[test]
fn the_github_pr_workflow_comes_first_and_slack_comes_next() {
    let w = Workdir::new();
    w.patterns()
        .arg("mine")
        .arg(data("sample.csv"))
        .args(["--library", "lib"])
        .assert()
        .success();
    let json = suggest_json(&w, &["github_list_issues", "github_create_pr"]);
    assert_eq!(
        json["workflows"][0]["name"],
        "list_issues-create_pr-slack_send_message"
    );
    assert_eq!(json["workflows"][0]["match"], "prefix");
    assert_eq!(
        json["workflows"][0]["remaining"],
        serde_json::json!(["slack_send_message"])
    );
    assert_eq!(json["next_tools"][0]["tool"], "slack_send_message");
    // The human form says the same.
    w.patterns()
        .args([
            "suggest",
            "github_list_issues",
            "github_create_pr",
            "--library",
            "lib",
        ])
        .assert()
        .success()
        .stdout(contains(
            "next tools after github_list_issues → github_create_pr:",
        ))
        .stdout(contains("slack_send_message   100%"));
}

#[test]
fn prefix_matches_rank_above_contiguous_and_gapped_ones() {
    let w = Workdir::new();
    std::fs::create_dir(w.path("lib")).unwrap();
    let user = |name: &str, tools: &[&str], score: f64| {
        let steps: Vec<serde_json::Value> = tools
            .iter()
            .enumerate()
            .map(|(i, t)| serde_json::json!({"step_id": format!("s{i}"), "tool_name": t}))
            .collect();
        let t = serde_json::json!({"name": name, "steps": steps, "metadata": {"source": "user", "score": score}});
        w.write(&format!("lib/{name}.json"), t.to_string());
    };
    user("gapped", &["a", "x", "b"], 1000.0);
    user("contiguous", &["x", "a", "b", "c"], 100.0);
    user("prefix", &["a", "b", "d"], 1.0);
    user("other", &["b", "a"], 5000.0);
    let json = suggest_json(&w, &["a", "b"]);
    let got: Vec<(&str, &str)> = json["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["match"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("prefix", "prefix"),
            ("contiguous", "contiguous"),
            ("gapped", "gapped")
        ]
    );
    let next: Vec<&str> = json["next_tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["tool"].as_str().unwrap())
        .collect();
    assert_eq!(next, ["c", "d"]);
}

#[test]
fn an_unknown_tool_gets_did_you_mean_and_exit_code_2() {
    let w = Workdir::new();
    for json in [&[][..], &["--json"][..]] {
        w.patterns()
            .args(["suggest", "github_list_issue", "--library", "lib"])
            .args(json)
            .assert()
            .code(2)
            .stdout("")
            .stderr(contains(
                "unknown tool 'github_list_issue': did you mean github_list_issues?",
            ));
    }
}

#[test]
fn an_empty_library_still_has_the_builtins_and_says_why_nothing_matches() {
    let w = Workdir::new();
    std::fs::create_dir(w.path("lib")).unwrap();
    let json = suggest_json(&w, &["fetch_data"]);
    assert_eq!(json["workflows"][0]["name"], "data_pipeline");
    w.patterns()
        .args([
            "suggest",
            "send_notification",
            "fetch_data",
            "--library",
            "lib",
        ])
        .assert()
        .success()
        .stdout("")
        .stderr(contains(
            "no workflow contains send_notification → fetch_data in that order",
        ));
}

#[test]
fn with_logs_the_next_tools_are_counted_in_the_log() {
    let w = Workdir::new();
    let log = data("taubench_airline_gpt4o.csv");
    let json = suggest_json(&w, &["get_user_details", "--logs", log.to_str().unwrap()]);
    // Count by hand: in each run, the call after the first get_user_details (repeats collapsed).
    let text = std::fs::read_to_string(&log).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut runs: Vec<(String, Vec<String>)> = Vec::new();
    for r in rdr.records() {
        let r = r.unwrap();
        match runs.last_mut() {
            Some((id, tools)) if id == &r[0] => {
                if tools.last().map(String::as_str) != Some(&r[2]) {
                    tools.push(r[2].to_string())
                }
            }
            _ => runs.push((r[0].to_string(), vec![r[2].to_string()])),
        }
    }
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut with = 0;
    for (_, tools) in &runs {
        if let Some(i) = tools.iter().position(|t| t == "get_user_details") {
            with += 1;
            if let Some(t) = tools.get(i + 1) {
                *next.entry(t.clone()).or_default() += 1;
            }
        }
    }
    let first = &json["next_tools"][0];
    assert_eq!(first["tool"], "get_reservation_details");
    assert_eq!(
        first["share"].as_f64().unwrap(),
        next["get_reservation_details"] as f64 / with as f64
    );
    assert_eq!(
        json["workflows"][0]["name"],
        "user_details-reservation_details-cancel_reservation"
    );
}

#[test]
fn suggest_from_logs_can_normalise_mcp_names() {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..5 {
        csv.push_str(&format!(
            "s{s},1,mcp__git__git_status\ns{s},2,git_diff_unstaged\n"
        ));
    }
    let log = w.write("mcp.csv", csv);
    let out = w
        .patterns()
        .args(["suggest", "git_status", "--normalize-mcp", "--logs"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("git_diff_unstaged   100%"), "{stdout}");
}

/// 60 sessions of `lookup` then a tool of its own: `lookup` is frequent, no workflow reaches the
/// least support.
#[test]
fn a_frequent_tool_without_a_workflow_still_gets_its_next_tools_from_the_logs() {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..60 {
        csv.push_str(&format!("s{s},1,lookup\ns{s},2,t{}\n", s % 30));
    }
    w.write("log.csv", csv);
    let out = w
        .patterns()
        .args(["suggest", "lookup", "--logs", "log.csv", "--json"])
        .assert()
        .success()
        .stderr(contains("no workflow contains lookup in that order"));
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["workflows"].as_array().unwrap().len(), 0);
    let next = json["next_tools"].as_array().unwrap();
    assert_eq!(next.len(), 30);
    assert!(
        (next[0]["share"].as_f64().unwrap() - 2.0 / 60.0).abs() < 1e-9,
        "{next:?}"
    );
    // A lower least support gives the workflows.
    let json = json_of(w.patterns().args([
        "suggest",
        "lookup",
        "--logs",
        "log.csv",
        "--min-support",
        "2",
        "--json",
    ]));
    assert_eq!(json["workflows"].as_array().unwrap().len(), 10, "{json}");
}
