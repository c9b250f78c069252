//! `patterns run` against real processes: the stand-ins of tests/tools/stand_in.py.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Workdir, run_ok};

/// Tool name → stand-in arguments, all bound in the fixture's tools.toml.
const TOOLS: [(&str, &[&str]); 17] = [
    ("github_list_issues", &["list_issues"]),
    ("github_create_pr", &["create_pr"]),
    ("slack_send_message", &["slack"]),
    ("echo", &["echo"]),
    ("undo", &["echo"]),
    ("undo_fail", &["fail"]),
    ("data", &["data"]),
    ("sleep_1", &["sleep", "1"]),
    ("sleep_short", &["sleep", "0.3"]),
    ("flaky_1", &["flaky", "1"]),
    ("flaky_2", &["flaky", "2"]),
    ("fail", &["fail"]),
    ("hang", &["hang"]),
    ("hold", &["hold", "hold.flag"]),
    ("builtin_echo", &[]),
    ("builtin_sleep", &[]),
    ("builtin_fail", &[]),
];

/// A working directory with tools.toml binding every stand-in.
fn workdir() -> Workdir {
    let w = Workdir::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/stand_in.py");
    let mut toml = String::new();
    for (name, args) in TOOLS {
        toml.push_str(&format!("[tools.{name}]\n"));
        match name.strip_prefix("builtin_") {
            Some(builtin) => toml.push_str(&format!("builtin = \"{builtin}\"\n")),
            None => {
                let argv: Vec<String> = ["python3", script.to_str().unwrap()]
                    .iter()
                    .chain(args)
                    .map(|a| format!("{a:?}"))
                    .collect();
                toml.push_str(&format!("command = [{}]\n", argv.join(", ")));
            }
        }
    }
    w.write("tools.toml", toml);
    w
}

/// A workflow from its steps, written to flow.json.
fn flow(w: &Workdir, steps: Value) {
    let t = json!({"name": "flow", "steps": steps, "retry": {"initial_delay_seconds": 0.05}});
    w.write("flow.json", t.to_string());
}

/// What the stand-ins received, in the order they finished.
fn calls(w: &Workdir) -> Vec<Value> {
    std::fs::read_to_string(w.path("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn calls_of<'a>(calls: &'a [Value], tool: &str) -> Vec<&'a Value> {
    calls.iter().filter(|c| c["tool"] == tool).collect()
}

/// `patterns run flow.json --json` with `args`; the exit code and the parsed state.
pub fn run(w: &Workdir, args: &[&str]) -> (i32, Value) {
    let out = w
        .patterns()
        .args(["run", "flow.json", "--json"])
        .args(args)
        .output()
        .unwrap();
    let state = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), state)
}

/// Waits for `what` to hold, polling; fails the test with `what` after 30 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids a `hang` stand-in wrote (itself and its grandchild), once both are written.
fn hang_pids(w: &Workdir) -> Vec<String> {
    let mut pids = Vec::new();
    wait_until("hang.pids holds two pids", || {
        pids = std::fs::read_to_string(w.path("hang.pids"))
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        pids.len() == 2
    });
    pids
}

/// Waits until every process of `pids` is gone: SIGKILL is delivered at once, but the kernel
/// may take a moment to tear a process down.
fn wait_gone(pids: &[String]) {
    assert!(!pids.is_empty());
    wait_until(&format!("processes {pids:?} gone"), || {
        pids.iter().all(|p| gone(p))
    });
}

/// `patterns run flow.json --json ARGS` started in `w`.
pub fn spawn_run(w: &Workdir, args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("patterns"))
        .current_dir(w.path(""))
        .args(["run", "flow.json", "--json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The exit code and the state printed by a run started with [`spawn_run`].
pub fn finish(child: std::process::Child) -> (i32, Value) {
    let out = child.wait_with_output().unwrap();
    let state = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), state)
}

/// The status of `step` in the checkpoint of run `run_id`, once there is one.
/// The checkpoint of `run_id` in `w`'s state folder, as `--resume` reads it.
fn checkpoint(w: &Workdir, run_id: &str) -> Option<Value> {
    let c = patterns::executor::state::load(&w.path(".patterns/runs"), run_id).ok()?;
    Some(serde_json::to_value(c).unwrap())
}

fn step_status(w: &Workdir, run_id: &str, step: &str) -> Option<String> {
    checkpoint(w, run_id)?["state"]["steps"][step]["status"]
        .as_str()
        .map(String::from)
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap()
}

#[test]
fn diamond_runs_its_middle_at_once_and_keeps_types() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "a", "tool_name": "data"},
            {"step_id": "b", "tool_name": "sleep_1", "depends_on": ["a"]},
            {"step_id": "c", "tool_name": "sleep_1", "depends_on": ["a"]},
            {"step_id": "d", "tool_name": "echo", "depends_on": ["b", "c"],
             "parameters": {"items": "{{a.items}}", "count": "{{a.count}}", "first": "{{a.items[0].name}}",
                            "text": "{{a.count}} items, b ok: {{b.success}}", "nested": {"list": ["{{a.items[1].id}}"]}}}
        ]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 0, "{state:#}");
    assert_eq!(state["status"], "succeeded");
    let (b, c) = (&state["steps"]["b"], &state["steps"]["c"]);
    assert!(
        time(&b["started_at"]) < time(&c["finished_at"])
            && time(&c["started_at"]) < time(&b["finished_at"]),
        "b and c overlap: {b:#} {c:#}"
    );
    let d = calls_of(&calls(&w), "echo")[0]["params"].clone();
    assert_eq!(
        d,
        json!({"items": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}], "count": 2, "first": "one",
               "text": "2 items, b ok: true", "nested": {"list": [2]}})
    );
    assert_eq!(
        state["steps"]["d"]["result"], d,
        "the result of a command is its JSON stdout"
    );
}

#[test]
fn a_flaky_tool_succeeds_on_its_third_attempt_and_every_attempt_is_logged() {
    let w = workdir();
    flow(
        &w,
        json!([{"step_id": "flaky", "tool_name": "flaky_2", "retry_count": 2}]),
    );
    let (code, state) = run(&w, &["--run-log", "runs.csv"]);
    assert_eq!(code, 0, "{state:#}");
    assert_eq!(state["steps"]["flaky"]["attempts"], 3);
    assert_eq!(state["steps"]["flaky"]["result"], json!({"attempt": 3}));
    let log = std::fs::read_to_string(w.path("runs.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(log.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let cols = |i: usize| rows.iter().map(|r| r[i].to_string()).collect::<Vec<_>>();
    assert_eq!(cols(3), ["false", "false", "true"], "success");
    assert_eq!(cols(9), ["1", "2", "3"], "attempt");
    assert_eq!(cols(10), ["flow", "flow", "flow"], "workflow");
    // Run from a shell, not served to an agent: no model round-trips replaced.
    assert_eq!(cols(11), ["", "", ""], "round_trips_saved");
    assert_eq!(cols(7)[0], "exit status 1: flaky failure 1");

    // With one retry fewer it fails, after 2 attempts.
    let w = workdir();
    flow(
        &w,
        json!([{"step_id": "flaky", "tool_name": "flaky_2", "retry_count": 1}]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    assert_eq!(state["steps"]["flaky"]["attempts"], 2);
    assert_eq!(
        state["steps"]["flaky"]["error"],
        "exit status 1: flaky failure 2"
    );
}

/// Whether a process is gone (a zombie waiting for its parent counts as gone).
pub fn gone(pid: &str) -> bool {
    patterns::executor::mcp::exited(pid.parse().expect("a pid"))
}

#[test]
fn a_hanging_tool_is_killed_with_its_children_at_the_timeout() {
    let w = workdir();
    flow(
        &w,
        json!([{"step_id": "h", "tool_name": "hang", "timeout_seconds": 1.0}]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    assert_eq!(state["steps"]["h"]["status"], "failed");
    assert_eq!(state["steps"]["h"]["error"], "timed out after 1 s");
    wait_gone(&hang_pids(&w));
}

#[test]
fn abort_lets_running_steps_finish_and_starts_nothing_new() {
    let w = workdir();
    w.write("hold.flag", "");
    flow(
        &w,
        json!([
            {"step_id": "bad", "tool_name": "fail"},
            {"step_id": "slow", "tool_name": "hold"},
            {"step_id": "after", "tool_name": "echo", "depends_on": ["slow"]}
        ]),
    );
    // `slow` is held until the failure of `bad` is checkpointed: it finishes after it.
    let child = spawn_run(&w, &["--run-id", "r0"]);
    wait_until("bad failed and was checkpointed", || {
        step_status(&w, "r0", "bad").as_deref() == Some("failed")
    });
    std::fs::remove_file(w.path("hold.flag")).unwrap();
    let (code, state) = finish(child);
    assert_eq!(code, 1);
    assert_eq!(state["status"], "failed");
    let s = &state["steps"];
    assert_eq!(s["bad"]["status"], "failed");
    assert_eq!(s["bad"]["error"], "exit status 2: the service said no");
    assert_eq!(
        s["slow"]["status"], "succeeded",
        "already running: finished"
    );
    assert_eq!(s["after"]["status"], "not_run");
    assert!(calls_of(&calls(&w), "echo").is_empty());

    // With one step at a time, the step waiting for its turn (after `bad`, in template order)
    // does not start either.
    flow(
        &w,
        json!([
            {"step_id": "bad", "tool_name": "fail"},
            {"step_id": "slow", "tool_name": "sleep_short"}
        ]),
    );
    let (_, state) = run(&w, &["--max-parallel", "1"]);
    assert_eq!(state["steps"]["slow"]["status"], "not_run", "{state:#}");
}

#[test]
fn continue_skips_the_dependants_and_runs_the_rest() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "bad", "tool_name": "fail", "on_error": "continue"},
            {"step_id": "needs_bad", "tool_name": "echo", "depends_on": ["bad"]},
            {"step_id": "then", "tool_name": "echo", "depends_on": ["needs_bad"]},
            {"step_id": "other", "tool_name": "data"},
            {"step_id": "after_other", "tool_name": "echo", "depends_on": ["other"], "parameters": {"n": "{{other.count}}"}}
        ]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 0, "only a step that may fail failed");
    assert_eq!(state["status"], "partial");
    let s = &state["steps"];
    assert_eq!(s["needs_bad"]["status"], "not_run");
    assert_eq!(
        s["needs_bad"]["error"],
        "not run: dependency 'bad' did not succeed"
    );
    assert_eq!(s["then"]["status"], "not_run");
    assert_eq!(s["after_other"]["status"], "succeeded");
    assert_eq!(calls_of(&calls(&w), "echo").len(), 1);
}

#[test]
fn a_fallback_runs_in_place_of_the_failed_step() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "pr", "tool_name": "fail", "on_error": "fallback:pr_backup"},
            {"step_id": "pr_backup", "tool_name": "echo", "parameters": {"url": "https://backup/1"}},
            {"step_id": "notify", "tool_name": "slack_send_message", "depends_on": ["pr"],
             "parameters": {"message": "PR: {{pr.url}}"}}
        ]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 0, "{state:#}");
    let s = &state["steps"];
    assert_eq!(s["pr"]["status"], "succeeded");
    assert_eq!(s["pr"]["fallback"], "pr_backup");
    assert_eq!(s["pr_backup"]["status"], "succeeded");
    let calls = calls(&w);
    assert_eq!(
        calls_of(&calls, "slack")[0]["params"]["message"],
        "PR: https://backup/1"
    );
}

#[test]
fn compensate_undoes_finished_steps_in_reverse() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "create", "tool_name": "data",
             "compensate": {"tool_name": "undo", "parameters": {"undo": "create", "count": "{{create.count}}"}}},
            {"step_id": "label", "tool_name": "github_list_issues", "depends_on": ["create"],
             "compensate": {"tool_name": "undo", "parameters": {"undo": "label", "first": "{{label.issues[0].number}}"}}},
            {"step_id": "publish", "tool_name": "fail", "depends_on": ["label"], "on_error": "compensate"},
            {"step_id": "never", "tool_name": "echo", "depends_on": ["publish"]}
        ]),
    );
    let (code, state) = run(&w, &["--run-log", "runs.csv"]);
    assert_eq!(code, 1);
    assert_eq!(state["status"], "failed");
    assert_eq!(
        state["compensations"],
        json!([
            {"step_id": "label", "tool": "undo", "success": true, "error": null},
            {"step_id": "create", "tool": "undo", "success": true, "error": null}
        ])
    );
    let calls = calls(&w);
    let undone: Vec<&Value> = calls_of(&calls, "echo")
        .iter()
        .map(|c| &c["params"])
        .collect();
    assert_eq!(
        undone,
        [
            &json!({"undo": "label", "first": 42}),
            &json!({"undo": "create", "count": 2})
        ]
    );
    assert_eq!(state["steps"]["never"]["status"], "not_run");
}

#[test]
fn a_false_condition_skips_a_step_and_its_dependants_can_ask() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "check", "tool_name": "data"},
            {"step_id": "only_if_ok", "tool_name": "echo", "depends_on": ["check"],
             "condition": "{{check.ok}} == true || {{check.count}} > 5"},
            {"step_id": "report", "tool_name": "slack_send_message", "depends_on": ["only_if_ok"],
             "parameters": {"ran": "{{only_if_ok.success}}", "items": "{{check.count}}"}},
            {"step_id": "only_if_many", "tool_name": "echo", "depends_on": ["check"],
             "condition": "!({{check.ok}}) && {{check.count}} >= 2"}
        ]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 0, "{state:#}");
    let s = &state["steps"];
    assert_eq!(s["only_if_ok"]["status"], "skipped");
    assert_eq!(s["report"]["status"], "succeeded");
    assert_eq!(s["only_if_many"]["status"], "succeeded");
    let calls = calls(&w);
    assert_eq!(
        calls_of(&calls, "slack")[0]["params"],
        json!({"ran": false, "items": 2})
    );
}

#[test]
fn bad_plans_are_rejected_before_anything_runs() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "a", "tool_name": "data", "depends_on": ["c"]},
            {"step_id": "b", "tool_name": "echo", "depends_on": ["a"], "parameters": {"repo": "{{repo}}"}},
            {"step_id": "c", "tool_name": "echo", "depends_on": ["b"]},
            {"step_id": "d", "tool_name": "github_delete_repo", "parameters": {"who": "{{owner}}"}}
        ]),
    );
    let out = w.patterns().args(["run", "flow.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "steps depend on each other in a circle: a → c → b → a",
        "tool 'github_delete_repo' (step d) is not bound in tools.toml (bound: builtin_echo,",
        "variable 'owner' is not given (used by d); pass --var owner=...",
        "variable 'repo' is not given (used by b); pass --var repo=...",
    ] {
        assert!(stderr.contains(problem), "{problem}\nin\n{stderr}");
    }
    assert!(calls(&w).is_empty(), "nothing ran");
    assert!(!w.path(".patterns").exists(), "no checkpoint either");
}

#[test]
fn dry_run_shows_levels_and_known_values_and_runs_nothing() {
    let w = workdir();
    let out = run_ok(w.patterns().args([
        "run",
        "github_pr_workflow",
        "--dry-run",
        "--var",
        "repo=acme/app",
        "--var",
        "branch=fix-42",
    ]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("workflow github_pr_workflow: 3 steps in 3 levels\nlevel 1\n  list_issues · github_list_issues (command [\"python3\""), "{stdout}");
    assert!(stdout.contains("    repo = \"acme/app\"\n"), "{stdout}");
    assert!(
        stdout.contains("    labels = \"bug\"\n"),
        "default applied: {stdout}"
    );
    assert!(
        stdout.contains("    title = \"Fix #{{list_issues.issues[0].number}}: {{list_issues.issues[0].title}}\"\n"),
        "step values stay placeholders: {stdout}"
    );
    assert!(
        stdout.contains("    if {{list_issues.success}} == true\n"),
        "{stdout}"
    );
    assert!(calls(&w).is_empty());
}

#[test]
fn the_builtin_github_pr_workflow_runs_end_to_end() {
    let w = workdir();
    let out = run_ok(w.patterns().args([
        "run",
        "github_pr_workflow",
        "--var",
        "repo=acme/app",
        "--var",
        "branch=fix-42",
        "--run-log",
        "runs.csv",
    ]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("run github_pr_workflow-"), "{stdout}");
    assert!(
        stdout.contains(": succeeded; calls logged to runs.csv"),
        "{stdout}"
    );
    let calls = calls(&w);
    assert_eq!(
        calls_of(&calls, "list_issues")[0]["params"],
        json!({"repo": "acme/app", "state": "open", "labels": "bug"})
    );
    assert_eq!(
        calls_of(&calls, "create_pr")[0]["params"],
        json!({"repo": "acme/app", "title": "Fix #42: Crash on start", "body": "Fixes #42",
               "head": "fix-42", "base": "main"})
    );
    assert_eq!(
        calls_of(&calls, "slack")[0]["params"],
        json!({"channel": "#dev", "message": "PR created: https://github.com/acme/app/pull/101"})
    );
}

#[test]
fn run_logs_are_mined_without_a_skipped_row() {
    let w = workdir();
    for i in 0..3 {
        let branch = format!("branch=fix-{i}");
        run_ok(w.patterns().args([
            "run",
            "github_pr_workflow",
            "--var",
            "repo=acme/app",
            "--var",
            &branch,
            "--run-log",
            "runs.csv",
        ]));
    }
    // A failing run is logged too.
    flow(
        &w,
        json!([{"step_id": "flaky", "tool_name": "flaky_2", "retry_count": 1}]),
    );
    run(&w, &["--run-log", "runs.csv"]);
    let out = run_ok(w.patterns().args([
        "mine",
        "runs.csv",
        "--min-support",
        "3",
        "--json",
        "--no-write",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("skipped"), "{stderr}");
    let mined: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mined["input"]["skipped"], 0, "{mined:#}");
    assert_eq!(mined["input"]["sessions"], 4, "{mined:#}");
    assert_eq!(
        mined["input"]["calls"], 11,
        "three runs of 3 calls, 2 attempts of a flaky one"
    );
    let chain = json!([
        "github_list_issues",
        "github_create_pr",
        "slack_send_message"
    ]);
    let found = mined["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"] == chain)
        .unwrap_or_else(|| panic!("{mined:#}"));
    assert_eq!(found["support"], 3);
}

/// `first → held → last`, `held` waiting while hold.flag exists and `last` reading `first`.
fn held_flow(w: &Workdir) {
    w.write("hold.flag", "");
    flow(
        w,
        json!([
            {"step_id": "first", "tool_name": "data"},
            {"step_id": "held", "tool_name": "hold", "depends_on": ["first"]},
            {"step_id": "last", "tool_name": "echo", "depends_on": ["held"], "parameters": {"n": "{{first.count}}"}}
        ]),
    );
}

#[test]
fn resume_after_a_killed_run_does_not_repeat_finished_steps() {
    let w = workdir();
    held_flow(&w);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("patterns"))
        .current_dir(w.path(""))
        .args(["run", "flow.json", "--run-id", "r1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until `first` is checkpointed and `held` runs.
    wait_until("first finished and was checkpointed", || {
        step_status(&w, "r1", "first").as_deref() == Some("succeeded")
    });
    wait_until("held started", || {
        std::fs::read_to_string(w.path("hold.pid")).is_ok_and(|p| p.ends_with('\n'))
    });
    // While the run runs, it holds its lock: a resume is refused, nothing runs twice.
    let out = w
        .patterns()
        .args(["run", "--resume", "r1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run r1 is running in another process"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Checkpoints hold --var values and results: their owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(w.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(".patterns/runs/r1.json"), 0o600);
    assert_eq!(mode(".patterns/runs"), 0o700);
    assert_eq!(mode(".patterns"), 0o700);
    // Killed, patterns takes its running tool with it: no orphan beside the resume.
    child.kill().unwrap();
    child.wait().unwrap();
    let held = std::fs::read_to_string(w.path("hold.pid")).unwrap();
    wait_gone(&[held.trim().to_string()]);
    std::fs::remove_file(w.path("hold.flag")).unwrap();

    let out = run_ok(w.patterns().args(["run", "--resume", "r1", "--json"]));
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["status"], "succeeded");
    assert_eq!(state["steps"]["first"]["resumed"], true);
    let calls = calls(&w);
    assert_eq!(calls_of(&calls, "data").len(), 1, "first ran once");
    assert_eq!(
        calls_of(&calls, "echo")[0]["params"],
        json!({"n": 2}),
        "its result was reused"
    );
    let out = w
        .patterns()
        .args(["run", "--resume", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 'nope' in .patterns/runs"));
}

#[test]
fn ctrl_c_stops_running_tools_and_keeps_the_log() {
    signal_stops_running_tools_and_keeps_the_log(libc::SIGINT);
}

#[test]
fn sigterm_and_sighup_stop_running_tools_as_ctrl_c_does() {
    signal_stops_running_tools_and_keeps_the_log(libc::SIGTERM);
    signal_stops_running_tools_and_keeps_the_log(libc::SIGHUP);
}

fn signal_stops_running_tools_and_keeps_the_log(signal: i32) {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "first", "tool_name": "data"},
            {"step_id": "stuck", "tool_name": "hang", "depends_on": ["first"]},
            {"step_id": "never", "tool_name": "echo", "depends_on": ["stuck"]}
        ]),
    );
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("patterns"))
        .current_dir(w.path(""))
        .args([
            "run",
            "flow.json",
            "--run-id",
            "r2",
            "--run-log",
            "runs.csv",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the tool runs (it wrote its pids), patterns is waiting on it.
    let pids = hang_pids(&w);
    // SAFETY: signals a child process of this test.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "signal {signal}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("patterns run --resume r2"), "{stderr}");
    wait_gone(&pids);
    let log = std::fs::read_to_string(w.path("runs.csv")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(
        last.starts_with("r2,")
            && last.contains(",hang,false,")
            && last.contains(",cancelled,stuck,1"),
        "{log}"
    );
    let checkpoint = checkpoint(&w, "r2").unwrap();
    assert_eq!(checkpoint["state"]["status"], "cancelled");
    assert_eq!(checkpoint["state"]["steps"]["stuck"]["status"], "cancelled");
    assert_eq!(checkpoint["state"]["steps"]["never"]["status"], "not_run");
}

#[test]
fn a_missing_path_names_the_step_parameter_and_path() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "a", "tool_name": "data"},
            {"step_id": "b", "tool_name": "echo", "depends_on": ["a"],
             "parameters": {"fine": "{{a.count}}", "id": "{{a.items[5].id}}"}}
        ]),
    );
    let out = w.patterns().args(["run", "flow.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout.lines().find(|l| l.starts_with("b ")).unwrap();
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "b",
            "echo",
            "failed",
            "0",
            "0",
            "parameter 'id': a.items[5].id: a.items has 2 items, no [5]"
        ],
        "{stdout}"
    );
    assert!(calls_of(&calls(&w), "echo").is_empty(), "b was not called");
}

#[test]
fn a_mined_template_runs_with_only_its_true_inputs() {
    let w = workdir();
    run_ok(
        w.patterns()
            .arg("mine")
            .arg(crate::common::data("sample.csv"))
            .args(["--library", "lib", "--top", "6"]),
    );
    let name = "list_issues-create_pr-slack_send_message";
    // The template asks for what varies from run to run and nothing else.
    let dry = run_ok(
        w.patterns()
            .args(["run", name, "--library", "lib"])
            .arg("--dry-run")
            .args([
                "--var",
                "repo=acme/app",
                "--var",
                "create_pr_title=Fix the crash",
            ]),
    );
    let plan = String::from_utf8(dry.stdout).unwrap();
    assert!(
        plan.contains("    issue = \"{{list_issues.issues[0].number}}\"\n"),
        "{plan}"
    );
    let out = w
        .patterns()
        .args(["run", name, "--library", "lib", "--var", "repo=acme/app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("variable 'create_pr_title' is not given")
    );

    run_ok(w.patterns().args([
        "run",
        name,
        "--library",
        "lib",
        "--var",
        "repo=acme/app",
        "--var",
        "create_pr_title=Fix the crash",
    ]));
    let calls = calls(&w);
    assert_eq!(
        calls_of(&calls, "list_issues")[0]["params"],
        json!({"repo": "acme/app", "state": "open"})
    );
    // Values flow as they did in the log: the first issue's number into the PR, its URL into Slack.
    assert_eq!(
        calls_of(&calls, "create_pr")[0]["params"],
        json!({"repo": "acme/app", "issue": 42, "title": "Fix the crash", "base": "main"})
    );
    assert_eq!(
        calls_of(&calls, "slack")[0]["params"],
        json!({"channel": "#dev", "link": "https://github.com/acme/app/pull/101"})
    );
}

#[test]
fn retries_wait_at_least_the_backoff_between_attempts() {
    let w = workdir();
    let t = json!({"name": "flow", "steps": [{"step_id": "flaky", "tool_name": "flaky_2", "retry_count": 2,
        "retry": {"initial_delay_seconds": 0.2, "factor": 3.0, "jitter": 0.0}}]});
    w.write("flow.json", t.to_string());
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 0, "{state:#}");
    let attempts = calls_of(&calls(&w), "flaky")
        .into_iter()
        .map(|c| (c["start"].as_f64().unwrap(), c["end"].as_f64().unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(attempts.len(), 3);
    // The n-th retry waits 0.2 × 3^n seconds (lower bounds only: a loaded machine waits longer).
    for (n, pair) in attempts.windows(2).enumerate() {
        let waited = pair[1].0 - pair[0].1;
        let least = 0.2 * 3f64.powi(n as i32);
        assert!(waited >= least, "retry {n} after {waited:.3} s < {least} s");
    }
}

#[test]
fn a_timeout_is_retried_by_default_and_retry_on_can_leave_errors_alone() {
    let w = workdir();
    flow(
        &w,
        json!([{"step_id": "slow", "tool_name": "sleep_1", "timeout_seconds": 0.2, "retry_count": 1}]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    assert_eq!(state["steps"]["slow"]["attempts"], 2, "{state:#}");
    assert!(
        state["steps"]["slow"]["error"]
            .as_str()
            .unwrap()
            .starts_with("timed out")
    );

    // Only timeouts retried: an error fails at once.
    let w = workdir();
    let t = json!({"name": "flow", "steps": [{"step_id": "bad", "tool_name": "fail", "retry_count": 2,
        "retry": {"initial_delay_seconds": 0.05, "retry_on": ["timeout"]}}]});
    w.write("flow.json", t.to_string());
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    assert_eq!(state["steps"]["bad"]["attempts"], 1, "{state:#}");
    assert_eq!(calls_of(&calls(&w), "fail").len(), 1);
}

/// The `retry_count` of step `b` mined from 20 sessions of `a → b` in which `b` failed and was
/// called again `retried[k]` times in session k (the rest ran once).
fn mined_retry_count(retried: &[usize]) -> u64 {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool,success\n");
    for s in 0..20 {
        csv += &format!("s{s},1,a,1\n");
        let again = retried.get(s).copied().unwrap_or(0);
        for k in 0..again {
            csv += &format!("s{s},{},b,0\n", 2 + k);
        }
        csv += &format!("s{s},{},b,1\n", 2 + again);
    }
    w.write("log.csv", csv);
    run_ok(w.patterns().args(["mine", "log.csv", "--library", "lib"]));
    let file = std::fs::read_dir(w.path("lib"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let t: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(t["steps"][0]["retry_count"], 0);
    t["steps"][1]["retry_count"].as_u64().unwrap()
}

#[test]
fn a_mined_step_plans_the_median_retries_when_one_run_in_ten_was_retried() {
    // 1 run in 20 retried: below one in ten, no retries planned.
    assert_eq!(mined_retry_count(&[3]), 0);
    // 2 in 20: the median of the retried runs' retries (1, 3 → the upper median).
    assert_eq!(mined_retry_count(&[1, 3]), 3);
    assert_eq!(mined_retry_count(&[1, 2, 5]), 2);
}

#[test]
fn a_failed_fallback_fails_its_step_with_both_errors() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "pr", "tool_name": "fail", "on_error": "fallback:pr_backup"},
            {"step_id": "pr_backup", "tool_name": "fail"},
            {"step_id": "notify", "tool_name": "echo", "depends_on": ["pr"]}
        ]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    let s = &state["steps"];
    assert_eq!(s["pr"]["status"], "failed");
    assert_eq!(
        s["pr"]["error"],
        "exit status 2: the service said no (fallback 'pr_backup': exit status 2: the service said no)"
    );
    assert_eq!(s["pr_backup"]["status"], "failed");
    assert_eq!(s["notify"]["status"], "not_run");
    assert!(calls_of(&calls(&w), "echo").is_empty());
}

#[test]
fn a_failed_compensation_is_reported_and_the_others_still_run() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "a", "tool_name": "echo", "compensate": {"tool_name": "undo", "parameters": {"undo": "a"}}},
            {"step_id": "b", "tool_name": "echo", "depends_on": ["a"], "compensate": {"tool_name": "undo_fail"}},
            {"step_id": "c", "tool_name": "fail", "depends_on": ["b"], "on_error": "compensate"}
        ]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        state["compensations"],
        json!([
            {"step_id": "b", "tool": "undo_fail", "success": false, "error": "exit status 2: the service said no"},
            {"step_id": "a", "tool": "undo", "success": true, "error": null}
        ])
    );
    let calls = calls(&w);
    assert_eq!(
        calls_of(&calls, "echo").last().unwrap()["params"],
        json!({"undo": "a"})
    );
}

#[test]
fn resume_after_a_failure_runs_the_failed_step_again_in_the_given_state_dir() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "first", "tool_name": "data"},
            {"step_id": "flaky", "tool_name": "flaky_1", "depends_on": ["first"]},
            {"step_id": "last", "tool_name": "echo", "depends_on": ["flaky"], "parameters": {"n": "{{first.count}}"}}
        ]),
    );
    let (code, state) = run(&w, &["--run-id", "f1", "--state-dir", "st"]);
    assert_eq!(code, 1, "{state:#}");
    assert!(w.path("st/f1.json").exists());
    assert!(!w.path(".patterns").exists(), "the state dir given is used");
    let out = run_ok(
        w.patterns()
            .args(["run", "--resume", "f1", "--state-dir", "st", "--json"]),
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["status"], "succeeded", "{state:#}");
    assert_eq!(state["steps"]["first"]["resumed"], true);
    let calls = calls(&w);
    assert_eq!(calls_of(&calls, "data").len(), 1, "first ran once");
    assert_eq!(calls_of(&calls, "flaky").len(), 2, "flaky ran again");
    assert_eq!(calls_of(&calls, "echo")[0]["params"], json!({"n": 2}));
}

#[test]
fn resume_after_ctrl_c_finishes_the_run() {
    let w = workdir();
    held_flow(&w);
    let child = spawn_run(&w, &["--run-id", "c1"]);
    wait_until("first finished and was checkpointed", || {
        step_status(&w, "c1", "first").as_deref() == Some("succeeded")
    });
    // SAFETY: signals a child process of this test.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, state) = finish(child);
    assert_eq!(code, 130);
    assert_eq!(state["steps"]["held"]["status"], "cancelled", "{state:#}");
    std::fs::remove_file(w.path("hold.flag")).unwrap();
    let out = run_ok(w.patterns().args(["run", "--resume", "c1", "--json"]));
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["status"], "succeeded", "{state:#}");
    let calls = calls(&w);
    assert_eq!(calls_of(&calls, "data").len(), 1, "first ran once");
    assert_eq!(calls_of(&calls, "echo")[0]["params"], json!({"n": 2}));
}

#[test]
fn max_parallel_bounds_how_many_steps_run_at_once() {
    let w = workdir();
    let steps: Vec<Value> = (0..5)
        .map(|i| json!({"step_id": format!("s{i}"), "tool_name": "sleep_short"}))
        .collect();
    flow(&w, Value::Array(steps));
    let (code, state) = run(&w, &["--max-parallel", "2"]);
    assert_eq!(code, 0, "{state:#}");
    let calls = calls(&w);
    let spans: Vec<(f64, f64)> = calls_of(&calls, "sleep")
        .iter()
        .map(|c| (c["start"].as_f64().unwrap(), c["end"].as_f64().unwrap()))
        .collect();
    assert_eq!(spans.len(), 5);
    // At the start of each call, how many calls were running (itself included).
    let most = (spans.iter())
        .map(|&(t, _)| spans.iter().filter(|&&(s, e)| s <= t && t < e).count())
        .max()
        .unwrap();
    assert!(most <= 2, "{most} steps ran at once: {spans:?}");
}

#[test]
fn vars_come_from_a_json_file_with_their_types_and_var_wins() {
    let w = workdir();
    w.write(
        "vars.json",
        r#"{"repo": "acme/app", "n": 3, "labels": ["bug"]}"#,
    );
    flow(
        &w,
        json!([{"step_id": "e", "tool_name": "echo",
                "parameters": {"repo": "{{repo}}", "n": "{{n}}", "labels": "{{labels}}"}}]),
    );
    let (code, state) = run(&w, &["--vars", "vars.json", "--var", "repo=other/app"]);
    assert_eq!(code, 0, "{state:#}");
    assert_eq!(
        calls_of(&calls(&w), "echo")[0]["params"],
        json!({"repo": "other/app", "n": 3, "labels": ["bug"]})
    );
}

#[test]
fn the_builtins_echo_sleep_and_fail() {
    let w = workdir();
    flow(
        &w,
        json!([
            {"step_id": "say", "tool_name": "builtin_echo", "parameters": {"x": [1, 2]}},
            {"step_id": "nap", "tool_name": "builtin_sleep", "parameters": {"seconds": 0.3}},
            {"step_id": "no", "tool_name": "builtin_fail", "depends_on": ["say", "nap"],
             "parameters": {"message": "not today"}},
            {"step_id": "bad_nap", "tool_name": "builtin_sleep", "parameters": {"seconds": "abc"},
             "on_error": "continue"},
            {"step_id": "text_nap", "tool_name": "builtin_sleep", "parameters": {"seconds": "0.1"}}
        ]),
    );
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    let s = &state["steps"];
    assert_eq!(s["say"]["result"], json!({"x": [1, 2]}));
    assert_eq!(s["nap"]["status"], "succeeded");
    assert!(s["nap"]["duration_ms"].as_u64().unwrap() >= 300, "{s:#}");
    assert_eq!(s["no"]["status"], "failed");
    assert_eq!(s["no"]["error"], "not today");
    assert_eq!(s["bad_nap"]["status"], "failed");
    assert_eq!(
        s["bad_nap"]["error"],
        "sleep: seconds must be a number, not \"abc\""
    );
    assert_eq!(s["text_nap"]["status"], "succeeded");
}

/// Issue 22: a loop mined from the logs (test → (edit → test)+ → commit → open PR) replays
/// against stand-in tools: round after round until the tests pass, then on; a loop whose tests
/// never pass stops at its most rounds with the run failed and the reason said.
#[test]
fn a_mined_loop_runs_until_the_tests_pass_and_stops_at_its_most_rounds() {
    let w = Workdir::new();
    let log = crate::common::agent_log(&w);
    run_ok(
        w.patterns()
            .args(["mine", log.to_str().unwrap(), "--library", "lib"]),
    );
    let name = "run_tests-edit_file-to-open_pr-5_steps";
    let template: Value =
        serde_json::from_slice(&std::fs::read(w.path(&format!("lib/{name}.json"))).unwrap())
            .unwrap();
    let description = template["description"].as_str().unwrap();
    assert!(
        description
            .starts_with("run_tests → (edit_file → run_tests)+ → git_commit → open_pr (mined)"),
        "{description}"
    );
    assert_eq!(
        template["loops"],
        json!([{"steps": ["edit_file", "run_tests_2"], "until": "{{run_tests_2.success}} == true", "max_rounds": 4}])
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/stand_in.py");
    let tools = |tests: &str| {
        let bind = |tool: &str, args: &str| {
            format!(
                "[tools.{tool}]\ncommand = [\"python3\", {:?}, {args}]\n",
                script.to_str().unwrap()
            )
        };
        [
            bind("run_tests", tests),
            bind("edit_file", "\"edit\""),
            bind("git_commit", "\"echo\""),
            bind("open_pr", "\"echo\""),
        ]
        .concat()
    };
    // Green after the second edit: two rounds.
    w.write("tools.toml", tools("\"tests_after\", \"2\""));
    let out = run_ok(
        w.patterns()
            .args(["run", name, "--library", "lib", "--json"]),
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["rounds"], json!([2]), "{state:#}");
    assert_eq!(
        state["steps"]["open_pr"]["status"], "succeeded",
        "{state:#}"
    );
    let tools_called: Vec<String> = calls(&w)
        .iter()
        .map(|c| c["tool"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        tools_called,
        [
            "tests_after",
            "edit",
            "tests_after",
            "edit",
            "tests_after",
            "echo",
            "echo"
        ]
    );
    // Never green: four rounds, then the run fails and says why.
    std::fs::remove_file(w.path("calls.jsonl")).unwrap();
    w.write("tools.toml", tools("\"fail\""));
    let out = w
        .patterns()
        .args(["run", name, "--library", "lib"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("loop (edit_file → run_tests_2) did not get to its end in 4 rounds: until {{run_tests_2.success}} == true never held"),
        "{stdout}"
    );
    assert!(
        stdout.contains("open_pr      open_pr     not_run"),
        "{stdout}"
    );
    assert_eq!(calls_of(&calls(&w), "edit").len(), 4);
}

#[test]
fn a_loop_must_be_bounded_and_name_its_steps() {
    let w = workdir();
    let t = json!({"name": "flow", "steps": [
        {"step_id": "a", "tool_name": "builtin_echo"},
        {"step_id": "b", "tool_name": "builtin_echo", "depends_on": ["a"]},
        {"step_id": "c", "tool_name": "builtin_echo"}
    ], "loops": [
        {"steps": ["b", "nope"], "until": "{{b.success}} == true", "max_rounds": 0},
        {"steps": ["a", "b"], "until": "{{b.success}} ==", "max_rounds": 3}
    ]});
    w.write("flow.json", t.to_string());
    let out = w.patterns().args(["run", "flow.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "loop 1 (b → nope) names unknown step 'nope'",
        "loop 1 (b → nope) has max_rounds 0; it must be 1 to 1000 (a loop is never unbounded)",
        "step 'b' is in two loops",
        "loop 2 (a → b), until:",
    ] {
        assert!(stderr.contains(problem), "{problem}: {stderr}");
    }
    // A loop beside a step that runs at the same time cannot go round alone.
    let t = json!({"name": "flow", "steps": [
        {"step_id": "a", "tool_name": "builtin_echo"},
        {"step_id": "c", "tool_name": "builtin_echo"}
    ], "loops": [{"steps": ["a"], "until": "{{a.success}} == true", "max_rounds": 3}]});
    w.write("flow.json", t.to_string());
    let out = w.patterns().args(["run", "flow.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("other steps run beside its steps"));
}

/// Ten sessions of `echo` then `undo` whose logged arguments hold template syntax, under keys
/// that are not names.
fn injected_log(w: &Workdir) -> std::path::PathBuf {
    let long = format!("{{{{{}true}}}}", "false || ".repeat(8000));
    let mut lines = String::new();
    for i in 0..10 {
        let shared =
            json!({"max-results": i, "file.path": format!("f{i}.txt"), "k}}-{{x": format!("v{i}")});
        let mut first = shared.clone();
        first["q"] = json!("{{secret|default:'PWNED'}}");
        first["cond"] = json!("{{ 1 > 0 ? 'EVAL-YES' : 'no' }}");
        first["token"] = json!("{{api_token}}");
        first["open"] = json!("{{");
        first["long"] = json!(long);
        for (k, (tool, args)) in [("echo", first), ("undo", shared)].into_iter().enumerate() {
            let call = json!({"session_id": format!("s{i}"), "timestamp": format!("2026-01-05T09:00:0{k}Z"),
                "tool": tool, "arguments": args, "result": {"ok": true}, "success": true});
            lines.push_str(&format!("{call}\n"));
        }
    }
    w.write("injected.jsonl", lines)
}

#[test]
fn logged_template_syntax_arrives_literally_and_keys_name_usable_variables() {
    let w = workdir();
    let log = injected_log(&w);
    let mined = run_ok(
        w.patterns()
            .arg("mine")
            .arg(&log)
            .args(["--library", "lib"]),
    );
    let stderr = String::from_utf8_lossy(&mined.stderr);
    assert!(stderr.contains("1 new"), "{stderr}");
    let template: Value =
        serde_json::from_slice(&std::fs::read(w.path("lib/echo-undo.json")).unwrap()).unwrap();
    let description = template["description"].as_str().unwrap();
    assert!(
        description.ends_with("give --var max_results=… --var file_path=… --var k_x=…"),
        "{description}"
    );
    // What mine wrote, the library takes back.
    run_ok(
        w.patterns()
            .args(["library", "validate", "--library", "lib"]),
    );
    run_ok(w.patterns().args([
        "run",
        "echo-undo",
        "--library",
        "lib",
        "--var",
        "secret=S3CR3T",
        "--var",
        "api_token=SECRET-TOKEN",
        "--var",
        "max_results=5",
        "--var",
        "file_path=a.txt",
        "--var",
        "k_x=kx",
    ]));
    let calls = calls(&w);
    let echo = &calls_of(&calls, "echo")[0]["params"];
    assert_eq!(echo["q"], "{{secret|default:'PWNED'}}");
    assert_eq!(echo["cond"], "{{ 1 > 0 ? 'EVAL-YES' : 'no' }}");
    assert_eq!(echo["token"], "{{api_token}}");
    assert_eq!(echo["open"], "{{");
    assert!(
        echo["long"]
            .as_str()
            .unwrap()
            .starts_with("{{false || false")
    );
    for step in [echo, &calls[1]["params"]] {
        assert_eq!(step["max-results"], "5");
        assert_eq!(step["file.path"], "a.txt");
        assert_eq!(step["k}}-{{x"], "kx");
    }
}

#[test]
fn what_a_tool_leaves_running_ends_with_its_step() {
    let w = workdir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/stand_in.py");
    w.write(
        "tools.toml",
        format!(
            "[tools.background]\ncommand = [\"python3\", {:?}, \"background\"]\n",
            script.to_str().unwrap()
        ),
    );
    flow(&w, json!([{"step_id": "bg", "tool_name": "background"}]));
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 0, "{state}");
    let pid = std::fs::read_to_string(w.path("background.pid")).unwrap();
    wait_gone(&[pid.trim().to_string()]);
}

#[test]
fn env_values_are_masked_in_results_errors_and_checkpoints() {
    let w = workdir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/stand_in.py");
    let bind = |name: &str, arg: &str| {
        format!(
            "[tools.{name}]\ncommand = [\"python3\", {:?}, \"token\", \"{arg}\"]\nenv = {{ TOKEN = \"s3cr3t-t0ken\", DEBUG = \"1\" }}\n",
            script.to_str().unwrap()
        )
    };
    w.write("tools.toml", bind("say", "ok") + &bind("fail", "fail"));
    flow(
        &w,
        json!([{"step_id": "say", "tool_name": "say"},
               {"step_id": "fail", "tool_name": "fail", "depends_on": ["say"], "retry_count": 0}]),
    );
    let (code, state) = run(&w, &["--run-id", "m1", "--run-log", "calls.csv"]);
    assert_eq!(code, 1, "{state}");
    assert_eq!(
        state["steps"]["say"]["result"],
        json!({"token": "<env TOKEN>", "note": "used <env TOKEN>"})
    );
    let error = state["steps"]["fail"]["error"].as_str().unwrap();
    assert!(
        error.ends_with("auth failed with token <env TOKEN>"),
        "{error}"
    );
    for file in [
        ".patterns/runs/m1.json",
        ".patterns/runs/m1.journal",
        "calls.csv",
    ] {
        let text = std::fs::read_to_string(w.path(file)).unwrap();
        assert!(!text.contains("s3cr3t-t0ken"), "{file}: {text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.path(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
        assert!(
            file.ends_with(".json") || text.contains("<env TOKEN>"),
            "{file}: {text}"
        );
    }
}

#[test]
fn a_checkpoint_grows_with_what_each_step_changed_not_with_the_template() {
    let w = workdir();
    // 2,000 steps in a chain, each with 1 KB of parameters: a 2 MB template.
    let steps: Vec<Value> = (0..2000)
        .map(|i| {
            let mut step = json!({"step_id": format!("s{i}"), "tool_name": "builtin_echo",
                "parameters": {"pad": "x".repeat(1000), "n": i}});
            if i > 0 {
                step["depends_on"] = json!([format!("s{}", i - 1)]);
            }
            step
        })
        .collect();
    flow(&w, Value::Array(steps));
    let (code, state) = run(&w, &["--run-id", "big"]);
    assert_eq!(code, 0);
    assert_eq!(state["steps"]["s1999"]["status"], "succeeded");
    let journal = std::fs::read_to_string(w.path(".patterns/runs/big.journal")).unwrap();
    assert_eq!(journal.lines().count(), 2001, "a line per step and the end");
    let longest = journal.lines().map(str::len).max().unwrap();
    assert!(
        longest < 1500,
        "a line holds its step's record, not the template: {longest}"
    );
    // The run reads back whole from its start and its journal.
    let list = crate::common::json_of(w.patterns().args(["run", "--list", "--json"]));
    assert_eq!(list[0]["finished"], 2000);
}
