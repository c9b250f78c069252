//! The library folder that `mine` writes: merging, safety under concurrency and crashes, and
//! what it does with broken files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use predicates::str::contains;

use crate::common::{Workdir, data, run_ok};

/// File name → bytes of every file in `dir` (hidden files included).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn mine(w: &Workdir, log: &Path, args: &[&str]) -> std::process::Output {
    run_ok(
        w.patterns()
            .arg("mine")
            .arg(log)
            .args(["--library", "lib"])
            .args(args),
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn mined_templates_from_the_sample() {
    let w = Workdir::new();
    mine(&w, &data("sample.csv"), &[]);
    let text = std::fs::read_to_string(w.path("lib/list_issues-create_pr-slack_send_message.json"))
        .unwrap();
    insta::assert_snapshot!("github_pr_mined", text);
    let text = std::fs::read_to_string(
        w.path("lib/fetch_data-transform_data-store_data-send_notification.json"),
    )
    .unwrap();
    insta::assert_snapshot!("data_pipeline_mined", text);
    // The searches of search & report run one to three times in a row with other queries:
    // repeats, not retries.
    let search = json(&w.path("lib/web_search-aggregate_results-format_report-send_email.json"));
    assert_eq!(search["steps"][0]["retry_count"], 0, "{search}");
    assert_eq!(
        snapshot(&w.path("lib"))
            .keys()
            .filter(|k| k.ends_with(".json"))
            .count(),
        8
    );
}

#[test]
fn remining_the_same_input_leaves_the_library_byte_identical() {
    let w = Workdir::new();
    mine(&w, &data("sample.csv"), &[]);
    let first = snapshot(&w.path("lib"));
    let mtimes = modified(&w.path("lib"));
    let out = mine(&w, &data("sample.csv"), &[]);
    assert_eq!(snapshot(&w.path("lib")), first);
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 new, 0 updated, 8 unchanged"));
    // Not rewritten with the same bytes either: a nightly job does not touch what did not change.
    assert_eq!(modified(&w.path("lib")), mtimes);
}

/// File name → modification time of every template in `dir`.
fn modified(dir: &Path) -> BTreeMap<String, std::time::SystemTime> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().modified().unwrap())
        })
        .collect()
}

#[test]
fn a_user_template_survives_a_remine_unchanged() {
    let w = Workdir::new();
    std::fs::create_dir(w.path("lib")).unwrap();
    let mine_by_hand = r#"{"name": "list_issues-create_pr-slack_send_message", "description": "mine, by hand",
  "steps": [{"step_id": "only", "tool_name": "github_list_issues"}], "metadata": {"source": "user", "note": "keep"}}
"#;
    let path = w.write(
        "lib/list_issues-create_pr-slack_send_message.json",
        mine_by_hand,
    );
    mine(&w, &data("sample.csv"), &[]);
    mine(&w, &data("sample.csv"), &["--prune"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), mine_by_hand);
    // The mined chain went to a file of its own, with a stable suffix.
    let mined: Vec<String> = snapshot(&w.path("lib"))
        .into_keys()
        .filter(|k| k.starts_with("list_issues-create_pr-slack_send_message_"))
        .collect();
    assert_eq!(mined.len(), 1, "{mined:?}");
    let t = json(&w.path(&format!("lib/{}", mined[0])));
    assert_eq!(t["metadata"]["source"], "mined");
    assert_eq!(t["metadata"]["pattern"][2], "slack_send_message");
}

#[test]
fn chains_that_fall_below_the_threshold_go_stale_or_are_pruned() {
    let w = Workdir::new();
    mine(&w, &data("sample.csv"), &[]);
    // Only the three most common workflows run whole in 10 % of the sessions, and the first two
    // steps of the approval (which fewer runs finish): it is a new entry.
    mine(&w, &data("sample.csv"), &["--min-support", "0.1"]);
    let files = snapshot(&w.path("lib"));
    let stale: Vec<&String> = files
        .keys()
        .filter(|k| k.ends_with(".json"))
        .filter(|k| json(&w.path(&format!("lib/{k}")))["metadata"]["stale"] == true)
        .collect();
    assert_eq!(stale.len(), 8 - 3, "{stale:?}");
    assert_eq!(
        json(&w.path("lib/list_issues-create_pr-slack_send_message.json"))["metadata"].get("stale"),
        None
    );
    mine(
        &w,
        &data("sample.csv"),
        &["--min-support", "0.1", "--prune"],
    );
    let left: Vec<String> = snapshot(&w.path("lib"))
        .into_keys()
        .filter(|k| k.ends_with(".json"))
        .collect();
    assert_eq!(
        left,
        [
            "create_item-notify_approver.json",
            "fetch_data-transform_data-store_data-send_notification.json",
            "list_issues-create_pr-slack_send_message.json",
            "web_search-aggregate_results-format_report-send_email.json"
        ]
    );
}

#[test]
fn accumulate_adds_each_runs_counts() {
    let w = Workdir::new();
    mine(&w, &data("sample.csv"), &[]);
    let once = json(&w.path("lib/list_issues-create_pr-slack_send_message.json"));
    mine(&w, &data("sample.csv"), &["--accumulate"]);
    let twice = json(&w.path("lib/list_issues-create_pr-slack_send_message.json"));
    assert_eq!(
        twice["metadata"]["usage_count"],
        2 * once["metadata"]["usage_count"].as_u64().unwrap()
    );
    assert_eq!(
        twice["metadata"]["score"],
        2.0 * once["metadata"]["score"].as_f64().unwrap()
    );
    let (a, b) = (
        once["metadata"]["success_rate"].as_f64().unwrap(),
        twice["metadata"]["success_rate"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-12, "{a} {b}");
    // Without --accumulate a re-mine takes this run's counts again.
    mine(&w, &data("sample.csv"), &[]);
    assert_eq!(
        json(&w.path("lib/list_issues-create_pr-slack_send_message.json")),
        once
    );
}

#[test]
fn a_held_lock_makes_mine_wait_then_fail_clearly() {
    let w = Workdir::new();
    std::fs::create_dir(w.path("lib")).unwrap();
    let lock = std::fs::File::create(w.path("lib/.patterns.lock")).unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    w.patterns()
        .arg("mine")
        .arg(data("sample.csv"))
        .args(["--library", "lib", "--lock-wait", "1"])
        .assert()
        .code(1)
        .stderr(contains("waiting for"))
        .stderr(contains("is locked by another patterns process"));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        snapshot(&w.path("lib")).len(),
        1,
        "nothing but the lock file was written"
    );
    drop(lock);
    mine(&w, &data("sample.csv"), &[]);
}

#[test]
fn two_concurrent_mines_wait_for_the_lock_and_leave_what_one_would() {
    let alone = Workdir::new();
    mine(&alone, &data("sample.csv"), &[]);
    let w = Workdir::new();
    // The test holds the lock until both mines have said they wait for it.
    std::fs::create_dir(w.path("lib")).unwrap();
    let lock = std::fs::File::create(w.path("lib/.patterns.lock")).unwrap();
    lock.lock().unwrap();
    let (said, waiting) = std::sync::mpsc::channel();
    let spawn = || {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("patterns"))
            .current_dir(w.path(""))
            .arg("mine")
            .arg(data("sample.csv"))
            .args(["--library", "lib", "--lock-wait", "120"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let said = said.clone();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let line = line.unwrap();
                if line.starts_with("waiting for") {
                    said.send(()).unwrap();
                }
                text += &line;
                text.push('\n');
            }
            text
        });
        (KillOnDrop(child), reader)
    };
    let (mut a, mut b) = (spawn(), spawn());
    for _ in 0..2 {
        waiting
            .recv_timeout(Duration::from_secs(60))
            .expect("both mines say they wait for the lock");
    }
    // Held a little longer: neither goes ahead while it is held.
    std::thread::sleep(Duration::from_millis(300));
    for child in [&mut a.0, &mut b.0] {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "a mine finished under a held lock"
        );
    }
    // Released while they wait: both go ahead, one after the other.
    drop(lock);
    for (mut child, reader) in [a, b] {
        let status = child.0.wait().unwrap();
        let stderr = reader.join().unwrap();
        assert!(status.success(), "{stderr}");
    }
    assert_eq!(snapshot(&w.path("lib")), snapshot(&alone.path("lib")));
}

#[test]
fn accumulate_over_two_logs_weights_rates_and_durations_and_spans_both() {
    // Day one: 10 runs of a → b → c, 8 succeeding, 100 ms a call. Day two: 6 runs, all
    // succeeding, 200 ms a call.
    let day = |date: &str, runs: usize, ok: usize, ms: u32| {
        let mut csv = String::from("session_id,timestamp,tool,success,duration_ms\n");
        for s in 0..runs {
            for (k, tool) in ["a", "b", "c"].iter().enumerate() {
                let success = k < 2 || s < ok;
                csv += &format!(
                    "{date}-{s},{date}T{:02}:00:0{k}Z,{tool},{},{ms}\n",
                    8 + s,
                    success as u8
                );
            }
        }
        csv
    };
    let w = Workdir::new();
    let one = w.write("one.csv", day("2026-01-01", 10, 8, 100));
    let two = w.write("two.csv", day("2026-01-05", 6, 6, 200));
    for (first, second, lib) in [(&one, &two, "lib"), (&two, &one, "lib2")] {
        run_ok(w.patterns().arg("mine").arg(first).args(["--library", lib]));
        run_ok(
            w.patterns()
                .arg("mine")
                .arg(second)
                .args(["--library", lib, "--accumulate"]),
        );
        let t = json(&w.path(&format!("{lib}/a-b-c.json")));
        let m = &t["metadata"];
        assert_eq!(m["usage_count"], 16);
        assert!(
            (m["success_rate"].as_f64().unwrap() - 14.0 / 16.0).abs() < 1e-12,
            "{m}"
        );
        // (10 × 300 + 6 × 600) / 16 = 412.5 ms.
        assert_eq!(m["avg_duration_ms"], 413.0);
        assert_eq!(m["first_seen"], "2026-01-01T08:00:00Z");
        assert_eq!(m["last_seen"], "2026-01-05T13:00:02Z");
    }
}

/// A child process that a failing test does not leave running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn a_mine_killed_mid_write_leaves_every_file_whole() {
    let w = Workdir::new();
    let library = w.path("lib");
    // 5,000 templates take seconds to write (each is flushed to disk before its rename).
    let mut child = KillOnDrop(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("patterns"))
            .current_dir(w.path(""))
            .arg("mine")
            .arg(data("sample.csv"))
            .args(["--library", "lib", "--top", "5000", "--keep", "all"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let json_files = || {
        let Ok(dir) = std::fs::read_dir(&library) else {
            return 0;
        };
        dir.filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count()
    };
    let started = Instant::now();
    while json_files() < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "mine wrote too slowly"
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "mine finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let written = json_files();
    assert!(written < 5000, "the kill came after every file was written");
    for entry in patterns::template::Library::new(&library)
        .entries()
        .unwrap()
    {
        assert!(
            entry.template.is_ok(),
            "{}: {:?}",
            entry.path.display(),
            entry.template
        );
    }
}

#[test]
fn broken_and_malicious_library_files_are_reported_and_left_alone() {
    let w = Workdir::new();
    std::fs::create_dir(w.path("lib")).unwrap();
    w.write(
        "lib/evil.json",
        r#"{"name": "../../outside", "steps": [{"step_id": "a", "tool_name": "t"}]}"#,
    );
    w.write("lib/garbage.json", "{ not json");
    w.write(
        "lib/circle.json",
        r#"{"name": "circle", "steps": [{"step_id": "a", "tool_name": "t", "depends_on": ["b"]}, {"step_id": "b", "tool_name": "t", "depends_on": ["a"]}]}"#,
    );
    let huge = std::fs::File::create(w.path("lib/huge.json")).unwrap();
    huge.set_len(100 * 1024 * 1024).unwrap();
    let before = snapshot(&w.path("lib"));

    w.patterns()
        .args(["library", "validate", "--library", "lib"])
        .assert()
        .code(1)
        .stdout("0 of 4 files valid\n")
        .stderr(contains(
            "evil.json: name \"../../outside\" is not a safe file name",
        ))
        .stderr(contains("garbage.json: not a workflow template"))
        .stderr(contains(
            "circle.json: steps depend on each other in a circle: a → b → a",
        ))
        .stderr(contains("huge.json: the file is 104857600 bytes"));
    w.patterns()
        .args(["library", "list", "--library", "lib"])
        .assert()
        .success()
        .stderr(contains("warning: skipped").count(4))
        .stdout(contains("github_pr_workflow"));
    mine(&w, &data("sample.csv"), &[]);
    let after = snapshot(&w.path("lib"));
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{name} was changed");
    }
    assert!(!w.path("outside.json").exists() && !w.path("../outside.json").exists());
}

#[test]
fn init_writes_the_builtins_once() {
    let w = Workdir::new();
    w.patterns()
        .args(["library", "init", "--library", "lib"])
        .assert()
        .success()
        .stdout(contains("wrote").count(4));
    w.patterns()
        .args(["library", "init", "--library", "lib"])
        .assert()
        .success()
        .stdout(contains("kept existing").count(4));
    w.patterns()
        .args(["library", "validate", "--library", "lib"])
        .assert()
        .success()
        .stdout("4 of 4 files valid\n");
    let out = w
        .patterns()
        .args([
            "library",
            "export",
            "github_pr_workflow",
            "--format",
            "mermaid",
            "--library",
            "lib",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "flowchart TD\n  s_list_issues[\"list_issues<br/><i>github_list_issues</i>\"]\n  s_create_pr[\"create_pr<br/><i>github_create_pr</i>\"]\n  s_notify[\"notify<br/><i>slack_send_message</i>\"]\n  s_list_issues --> s_create_pr\n  s_create_pr --> s_notify\n\
         \x20 s_list_issues -.->|\"issues[0].number → title\"| s_create_pr\n\
         \x20 s_list_issues -.->|\"issues[0].title → title\"| s_create_pr\n\
         \x20 s_list_issues -.->|\"issues[0].number → body\"| s_create_pr\n\
         \x20 s_create_pr -.->|\"url → message\"| s_notify\n",
        "dotted edges: data flow"
    );
}

#[test]
fn durations_and_retries_in_the_log_reach_the_template() {
    let w = Workdir::new();
    // s2 retried a once after it failed; s3's b has no duration, so s3 does not count for the
    // average.
    let log = w.write(
        "log.csv",
        "session_id,timestamp,tool,duration_ms,success\n\
         s1,1,a,100,1\ns1,2,b,200,1\n\
         s2,1,a,10,0\ns2,2,a,20,1\ns2,3,b,30,1\n\
         s3,1,a,5,1\ns3,2,c,7,1\ns3,3,b,,1\n",
    );
    mine(&w, &log, &["--min-support", "3"]);
    let t = json(&w.path("lib/a-b.json"));
    assert_eq!(t["metadata"]["usage_count"], 3);
    assert_eq!(t["metadata"]["avg_duration_ms"], (300.0 + 60.0) / 2.0);
    assert_eq!(t["steps"][0]["retry_count"], 1);
    assert_eq!(t["steps"][1]["retry_count"], 0);
    assert_eq!(
        t["metadata"].get("first_seen"),
        None,
        "order keys are not times"
    );
}

#[test]
fn validate_reports_placeholders_and_conditions_that_do_not_parse() {
    let w = Workdir::new();
    std::fs::create_dir(w.path("lib")).unwrap();
    w.write(
        "lib/broken_syntax.json",
        r#"{"name": "broken_syntax", "steps": [
            {"step_id": "a", "tool_name": "t", "parameters": {"x": ["ok {{v}}", "{{v"]}, "condition": "{{v}} =="}
        ]}"#,
    );
    let out = w
        .patterns()
        .args(["library", "validate", "--library", "lib"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "step 'a', parameter 'x': expected '}}', found the end at character 3 of \"{{v\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("step 'a', condition: expected a value, found the end"),
        "{stderr}"
    );
}

#[test]
fn show_and_export_draw_steps_groups_and_data_flow() {
    let w = Workdir::new();
    mine(&w, &data("sample.csv"), &[]);
    let name = "list_issues-create_pr-slack_send_message";
    let show = run_ok(
        w.patterns()
            .args(["library", "show", name, "--library", "lib"]),
    );
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains("create_pr: github_create_pr (after list_issues)"),
        "{show}"
    );
    assert!(
        show.contains("issue = \"{{list_issues.issues[0].number}}\""),
        "{show}"
    );
    let shown = run_ok(
        w.patterns()
            .args(["library", "show", name, "--library", "lib", "--json"]),
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown, json(&w.path(&format!("lib/{name}.json"))));

    let dot = run_ok(w.patterns().args([
        "library",
        "export",
        name,
        "--format",
        "dot",
        "--library",
        "lib",
    ]));
    let dot = String::from_utf8_lossy(&dot.stdout);
    for line in [
        "\"list_issues\" -> \"create_pr\";",
        "\"create_pr\" -> \"slack_send_message\";",
        "\"list_issues\" -> \"create_pr\" [style=dashed, label=\"issues[0].number → issue\"];",
        "\"create_pr\" -> \"slack_send_message\" [style=dashed, label=\"url → link\"];",
    ] {
        assert!(dot.contains(line), "no {line} in\n{dot}");
    }
    // A stage of three tools is a cluster.
    let dot = run_ok(w.patterns().args([
        "library",
        "export",
        "build_image-lint_image-to-deploy_service-5_steps",
        "--format",
        "dot",
        "--library",
        "lib",
    ]));
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(dot.contains("subgraph cluster_"), "{dot}");
    assert_eq!(dot.matches(" -> \"deploy_service\";").count(), 3, "{dot}");
}
