//! Task outcomes: read from a column or a results file, compared per workflow against the
//! generator's planted truth (outcomes that disagree with call success), the score that uses
//! them, the paths to failure, and what a results file with problems is told.

use serde_json::Value;

use crate::common::{Workdir, chain_text, data, json_of, run_ok};

/// An agent-shaped log with planted outcomes (`generate --shape agent`): the cancel branch
/// solves 5% of its tasks, the hand-over 30%, the rebooking 90%, all with calls that succeed.
/// `how` is `--with-outcomes` (a column) or `--outcomes results.csv` (a file).
fn planted(w: &Workdir, how: &[&str]) -> Value {
    let args = [
        "generate",
        "--shape",
        "agent",
        "--sessions",
        "3000",
        "--seed",
        "7",
        "--no-payloads",
        "--output",
        "runs.csv",
        "--truth",
        "truth.json",
    ];
    run_ok(w.patterns().args(args).args(how));
    serde_json::from_slice(&std::fs::read(w.path("truth.json")).unwrap()).unwrap()
}

fn mine(w: &Workdir, args: &[&str]) -> Value {
    let mine = ["mine", "runs.csv", "--json", "--no-write", "--top", "0"];
    json_of(w.patterns().args(mine).args(args))
}

/// The mined workflow made of the planted workflow's tools (a stage's order may differ).
fn mined_as<'a>(json: &'a Value, planted: &Value) -> &'a Value {
    let mut tools: Vec<&str> = (planted["tools"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap())
        .collect();
    tools.sort_unstable();
    (json["patterns"].as_array().unwrap().iter())
        .find(|p| {
            let mut mined: Vec<&str> = (p["pattern"].as_array().unwrap().iter())
                .map(|t| t.as_str().unwrap())
                .collect();
            mined.sort_unstable();
            mined == tools
        })
        .unwrap_or_else(|| panic!("{} not found: {:?}", planted["name"], json["patterns"]))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn planted_outcomes_are_found_per_workflow_with_intervals_that_hold_the_truth() {
    let w = Workdir::new();
    let truth = planted(&w, &["--with-outcomes"]);
    let json = mine(&w, &[]);
    assert_eq!(json["score"], "support × outcome rate");
    let o = &json["input"]["outcomes"];
    assert_eq!(
        (o["known"].as_u64(), o["unknown"].as_u64()),
        (Some(3000), Some(0))
    );
    assert_eq!(o["binary"], true);
    let (sessions, solved) = (f(&truth["sessions"]), f(&truth["solved"]));
    let mut rates = Vec::new();
    for p in truth["workflows"].as_array().unwrap() {
        let m = mined_as(&json, p);
        let name = p["name"].as_str().unwrap();
        // The truth: of the sessions that ran it whole, the share that solved the task, and
        // that of the other sessions.
        let (whole, won) = (f(&p["whole"]), f(&p["solved"]));
        let (rate, rest) = (won / whole, (solved - won) / (sessions - whole));
        let found = f(&m["outcome_rate"]);
        assert!(
            (found - rate).abs() < 0.05,
            "{name}: {found} against {rate}"
        );
        let [low, high] = [0, 1].map(|i| f(&m["outcome_interval"][i]));
        assert!(
            low <= rate - rest && rate - rest <= high,
            "{name}: the true difference {} outside [{low}, {high}]",
            rate - rest
        );
        let expected = match name {
            "cancel" | "hand_over" => "drop",
            "rebook" | "fix" | "feature" => "lift",
            _ => m["outcome_effect"].as_str().unwrap(),
        };
        assert_eq!(m["outcome_effect"], expected, "{name}");
        // The score is support × outcome rate; the call success stays beside it.
        let score = f(&m["support"]) * found;
        assert!(
            (f(&m["score"]) - score).abs() < 0.01 * f(&m["support"]),
            "{name}"
        );
        assert!(f(&m["success_rate"]) > 0.9, "{name}: its calls succeed");
        rates.push((f(&p["solves"]), found, name));
        // Where runs left it: never after the last stage, and no more sessions than those that
        // reached a stage of it without a whole run.
        let exits = m["exits"].as_array().unwrap();
        let last = m["funnel"].as_array().unwrap().last().unwrap()["step"].clone();
        assert!(
            exits.iter().all(|e| e["after"] != last),
            "{name}: {exits:?}"
        );
        let left: u64 = exits.iter().map(|e| e["sessions"].as_u64().unwrap()).sum();
        let reached = (m["funnel"].as_array().unwrap().iter())
            .map(|s| s["sessions"].as_u64().unwrap())
            .max()
            .unwrap();
        let partial = reached - m["support"].as_u64().unwrap();
        assert!(
            left > 0 && left <= partial,
            "{name}: {left} left of {partial}"
        );
    }
    // Ranked by the planted chance wherever the chances are 0.1 or more apart.
    for a in &rates {
        for b in rates.iter().filter(|b| a.0 >= b.0 + 0.1) {
            assert!(
                a.1 > b.1,
                "{} ({}) should solve more than {} ({})",
                a.2,
                a.1,
                b.2,
                b.1
            );
        }
    }
    // Best score first.
    let scores: Vec<f64> = (json["patterns"].as_array().unwrap().iter())
        .map(|p| f(&p["score"]))
        .collect();
    assert!(scores.windows(2).all(|s| s[0] >= s[1]), "{scores:?}");

    // The paths to failure: the cancel and hand-over branches and the cancel tool; nothing made
    // of noise alone.
    let paths = json["paths_to_failure"].as_array().unwrap();
    let listed: Vec<(String, String)> = (paths.iter())
        .map(|p| (p["kind"].as_str().unwrap().into(), chain_text(&p["chain"])))
        .collect();
    for (kind, chain) in [
        ("workflow", "get_customer → get_booking → cancel_booking"),
        ("workflow", "get_customer → get_booking → transfer_to_agent"),
        ("tool", "cancel_booking"),
        ("tool", "transfer_to_agent"),
    ] {
        assert!(
            listed.contains(&(kind.into(), chain.into())),
            "{kind} {chain} not in {listed:?}"
        );
    }
    let noise = [
        "think",
        "list_files",
        "web_search",
        "read_logs",
        "list_deploys",
        "ask_user",
        "calculator",
        "get_weather",
    ];
    for p in paths {
        let chain = p["chain"].as_array().unwrap();
        assert!(
            !chain.iter().all(|t| noise.contains(&t.as_str().unwrap())),
            "noise listed as a path to failure: {p}"
        );
        assert_eq!(p["outcome_effect"], "drop", "{p}");
        let then: u64 = (p["then"].as_array().unwrap().iter())
            .map(|t| t["sessions"].as_u64().unwrap())
            .sum();
        assert_eq!(then, p["outcome_sessions"].as_u64().unwrap(), "{p}");
    }
}

#[test]
fn a_results_file_gives_the_answer_of_a_column() {
    let w = Workdir::new();
    planted(&w, &["--with-outcomes"]);
    let column = mine(&w, &[]);
    let w2 = Workdir::new();
    planted(&w2, &["--outcomes", "results.csv"]);
    let results = std::fs::read_to_string(w2.path("results.csv")).unwrap();
    assert!(
        results.starts_with("session_id,outcome\nsess-000000,"),
        "{results}"
    );
    let no_column = json_of(
        w2.patterns()
            .args(["mine", "runs.csv", "--json", "--no-write"]),
    );
    assert!(no_column["input"]["outcomes"].is_null());
    assert!(no_column["paths_to_failure"].is_null());
    assert_eq!(no_column["score"], "support × success rate");
    let file = mine(&w2, &["--outcomes", "results.csv"]);
    assert_eq!(file["patterns"], column["patterns"]);
    assert_eq!(file["paths_to_failure"], column["paths_to_failure"]);
    assert_eq!(
        file["input"]["outcomes"]["source"],
        "results.csv, column 'outcome'"
    );
    assert_eq!(file["input"]["outcomes"]["matched"], 3000);
    // Templates carry the figures.
    run_ok(
        w2.patterns()
            .args(["mine", "runs.csv", "--outcomes", "results.csv"]),
    );
    let cancel: Value = serde_json::from_slice(
        &std::fs::read(w2.path("workflows/customer-booking-cancel_booking.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cancel["metadata"]["outcome_effect"], "drop");
    assert!(f(&cancel["metadata"]["outcome_rate"]) < 0.2);
    // suggest ranks by the score that uses them and shows the rate.
    let suggest = run_ok(
        w2.patterns()
            .args(["suggest", "get_customer", "get_booking"]),
    );
    let text = String::from_utf8(suggest.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.contains("solved"), "{text}");
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.contains("update_booking"),
        "the rebooking first: {text}"
    );
}

/// A small log of three sessions and a results file with every kind of problem.
#[test]
fn a_results_files_problems_are_counted_and_shown_and_rewards_averaged() {
    let w = Workdir::new();
    let mut log = String::from("session_id,timestamp,tool,success\n");
    for s in ["a", "b", "c", "d", "e"] {
        log += &format!("{s},1,x,1\n{s},2,y,1\n");
    }
    w.write("log.csv", log);
    w.write(
        "results.csv",
        "task,session_id,reward\n1,a,0.5\n2,b,1\n3,b,0\n4,c,maybe\n5,zz,1\n6,d,0.25\n",
    );
    let out = run_ok(w.patterns().args([
        "mine",
        "log.csv",
        "--outcomes",
        "results.csv",
        "--json",
        "--no-write",
        "--min-support",
        "2",
    ]));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let o = &json["input"]["outcomes"];
    assert_eq!(o["known"], 2, "a and d: {o}");
    assert_eq!(
        o["unknown"], 3,
        "b given twice, c not an outcome, e not listed: {o}"
    );
    assert_eq!(
        (o["conflicting"].as_u64(), o["bad"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (o["listed"].as_u64(), o["matched"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(o["binary"], false, "rewards");
    assert_eq!((f(&o["min"]), f(&o["max"])), (0.25, 0.5));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for said in [
        "outcomes: 2 of 5 sessions known (40%), from results.csv, column 'reward'; rewards from 0.25 to 0.5",
        "warning: 1 session given different outcomes (unknown)",
        "warning: 1 outcome value that could not be read (unknown)",
        "warning: 1 session of the results file not in the log",
        "results.csv:5: 'maybe' in column 'reward' is not an outcome",
        "session b: given different outcomes",
    ] {
        assert!(stderr.contains(said), "'{said}' not in:\n{stderr}");
    }
    let x_y = &json["patterns"][0];
    assert_eq!(x_y["outcome_kind"], "mean_reward");
    assert_eq!(f(&x_y["outcome_rate"]), 0.375, "the mean of a and d");
    assert_eq!(x_y["outcome_sessions"], 2);

    // A results file without an outcome column names the flag; a flag naming a column that is
    // not there too.
    w.write("bad.csv", "session_id,score\na,1\n");
    for (flags, said) in [
        (
            &["--outcomes", "bad.csv"][..],
            "no outcome column (looked for outcome, reward",
        ),
        (
            &["--outcomes", "results.csv", "--outcome-col", "nope"][..],
            "no column 'nope' (given by --outcome-col)",
        ),
    ] {
        let out = w
            .patterns()
            .args(["mine", "log.csv"])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
    }
}

#[test]
fn outcomes_in_a_column_that_disagree_within_a_session_are_unknown() {
    let w = Workdir::new();
    w.write(
        "log.jsonl",
        [
            r#"{"session_id":"a","ts":1,"tool":"x","resolved":true}"#,
            r#"{"session_id":"a","ts":2,"tool":"y","resolved":true}"#,
            r#"{"session_id":"b","ts":1,"tool":"x","resolved":"unresolved"}"#,
            r#"{"session_id":"b","ts":2,"tool":"y"}"#,
            r#"{"session_id":"c","ts":1,"tool":"x","resolved":1}"#,
            r#"{"session_id":"c","ts":2,"tool":"y","resolved":0}"#,
        ]
        .join("\n"),
    );
    let out = run_ok(w.patterns().args([
        "mine",
        "log.jsonl",
        "--json",
        "--no-write",
        "--min-support",
        "2",
    ]));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let o = &json["input"]["outcomes"];
    assert_eq!(o["source"], "column 'resolved'");
    assert_eq!(
        (o["known"].as_u64(), o["conflicting"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(json["patterns"][0]["outcome_rate"], 0.5, "a solved, b not");
}

/// The tau-bench airline runs shipped in `data/` with their rewards: the cancellations after the
/// two lookups are not the most reliable workflow any more.
#[test]
fn real_airline_runs_with_their_rewards() {
    let log = data("taubench_airline_gpt4o.csv");
    let results = data("taubench_airline_gpt4o.outcomes.csv");
    let w = Workdir::new();
    let json = json_of(
        w.patterns()
            .arg("mine")
            .arg(&log)
            .arg("--outcomes")
            .arg(&results)
            .args(["--json", "--no-write"]),
    );
    assert_eq!(json["input"]["outcomes"]["known"], 182);
    let book_twice = (json["paths_to_failure"].as_array().unwrap().iter())
        .find(|p| chain_text(&p["chain"]) == "book_reservation")
        .expect("booking is a path to failure");
    assert!(f(&book_twice["outcome_rate"]) < 0.1, "{book_twice}");
    let page = run_ok(
        w.patterns()
            .arg("report")
            .arg(&log)
            .arg("--outcomes")
            .arg(&results)
            .args(["-o", "r.html"]),
    );
    drop(page);
    let page = std::fs::read_to_string(w.path("r.html")).unwrap();
    assert!(page.contains("<h2>Paths to failure</h2>"));
    assert!(
        page.contains("<p class=\"outcome\">outcome: solved in "),
        "cards say it"
    );
}
