//! `patterns run` on real MCP servers: the reference servers mcp-server-time and mcp-server-git
//! from PyPI, in a virtual environment that the tests make once per machine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::common::{Workdir, cache_dir, python_venv, run_ok};
use crate::run::{finish, gone, run, spawn_run, wait_until};

/// The reference servers, pinned.
const PACKAGES: [&str; 2] = ["mcp-server-time==2026.10.19", "mcp-server-git==2026.10.19"];

/// A Python virtual environment with the reference servers, in `$PATTERNS_MCP_VENV` or
/// `~/.cache/patterns-mcp-venv`.
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = std::env::var_os("PATTERNS_MCP_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache_dir("patterns-mcp-venv"));
        python_venv(dir, &PACKAGES)
    })
}

pub fn python() -> String {
    venv().join("bin/python").display().to_string()
}

#[test]
fn the_time_server_feeds_one_call_into_the_next_and_the_run_log_mines_back() {
    let w = Workdir::new();
    w.write(
        "tools.toml",
        format!(
            "[servers.time]\ncommand = [{:?}, \"-m\", \"mcp_server_time\", \"--local-timezone\", \"UTC\"]\n\
             [tools.now]\nserver = \"time\"\ntool = \"get_current_time\"\n\
             [tools.convert_time]\nserver = \"time\"\n",
            python()
        ),
    );
    w.write(
        "flow.json",
        json!({"name": "time_flow", "steps": [
            {"step_id": "now", "tool_name": "now", "parameters": {"timezone": "{{zone}}"}},
            {"step_id": "convert", "tool_name": "convert_time", "depends_on": ["now"],
             "parameters": {"source_timezone": "{{now.timezone}}", "time": "12:30", "target_timezone": "Asia/Tokyo"}}
        ]})
        .to_string(),
    );
    for zone in ["Europe/Paris", "America/New_York"] {
        let (code, state) = run(
            &w,
            &["--var", &format!("zone={zone}"), "--run-log", "runs.csv"],
        );
        assert_eq!(code, 0, "{state:#}");
        let now = &state["steps"]["now"]["result"];
        assert_eq!(
            now["timezone"], zone,
            "structuredContent of the first call: {now}"
        );
        let converted = &state["steps"]["convert"]["result"];
        assert_eq!(
            converted["source"]["timezone"], zone,
            "fed from the first call: {converted}"
        );
        assert!(
            converted["target"]["datetime"]
                .as_str()
                .unwrap()
                .contains("+09:00"),
            "{converted}"
        );
        // The server's stderr went to the run's log folder, not the terminal.
        let run_id = state["run_id"].as_str().unwrap();
        assert!(
            w.path(&format!(".patterns/runs/{run_id}.servers/time.stderr.log"))
                .exists()
        );
    }
    let out = run_ok(w.patterns().args([
        "mine",
        "runs.csv",
        "--min-support",
        "2",
        "--json",
        "--no-write",
    ]));
    let mined: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mined["input"]["skipped"], 0);
    assert_eq!(
        mined["patterns"][0]["pattern"],
        json!(["now", "convert_time"])
    );
}

#[test]
fn a_git_review_runs_on_the_git_server_bound_whole() {
    let w = Workdir::new();
    let repo = w.path("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "test@example.com"]);
    git(&["config", "user.name", "Test"]);
    std::fs::write(repo.join("a.txt"), "one\n").unwrap();
    git(&["add", "a.txt"]);
    git(&["commit", "-qm", "first commit"]);
    std::fs::write(repo.join("a.txt"), "one\ntwo\n").unwrap();
    w.write(
        "tools.toml",
        format!(
            "[servers.git]\ncommand = [{:?}, \"-m\", \"mcp_server_git\", \"--repository\", {:?}]\nexpose = \"all\"\n",
            python(),
            repo.display().to_string()
        ),
    );
    w.write(
        "flow.json",
        json!({"name": "git_review", "steps": [
            {"step_id": "status", "tool_name": "git_status", "parameters": {"repo_path": "{{repo}}"}},
            {"step_id": "diff", "tool_name": "git_diff_unstaged", "depends_on": ["status"], "parameters": {"repo_path": "{{repo}}"}},
            {"step_id": "log", "tool_name": "git_log", "depends_on": ["diff"], "parameters": {"repo_path": "{{repo}}", "max_count": 5}}
        ]})
        .to_string(),
    );
    let (code, state) = run(&w, &["--var", &format!("repo={}", repo.display())]);
    assert_eq!(code, 0, "{state:#}");
    let text = |step: &str| {
        state["steps"][step]["result"]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        text("status").contains("modified:   a.txt"),
        "{}",
        text("status")
    );
    assert!(text("diff").contains("+two"), "{}", text("diff"));
    assert!(
        text("log").contains("Message: first commit"),
        "{}",
        text("log")
    );

    // `tools list` names every tool the server lists, with its required parameters.
    let out = run_ok(w.patterns().args(["tools", "list", "--json"]));
    let tools: Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "git_status")
        .unwrap();
    assert_eq!(status["server"], "git");
    assert_eq!(status["required"], json!(["repo_path"]));
    assert_eq!(status["description"], "Shows the working tree status");
    assert!(tools.as_array().unwrap().len() >= 10, "{tools:#}");
}

#[test]
fn bad_mcp_bindings_are_rejected_before_anything_runs() {
    let w = Workdir::new();
    w.write(
        "tools.toml",
        format!(
            "[servers.time]\ncommand = [{:?}, \"-m\", \"mcp_server_time\"]\n\
             [tools.now]\nserver = \"time\"\ntool = \"get_the_time\"\n\
             [tools.convert_time]\nserver = \"time\"\n",
            python()
        ),
    );
    w.write(
        "flow.json",
        json!({"name": "bad", "steps": [
            {"step_id": "now", "tool_name": "now", "parameters": {"timezone": "UTC"}},
            {"step_id": "convert", "tool_name": "convert_time", "parameters": {"source_timezone": 5, "time": "12:30"}}
        ]})
        .to_string(),
    );
    let out = w
        .patterns()
        .args(["run", "flow.json", "--run-log", "runs.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "tool 'now': server 'time' has no tool 'get_the_time' (it has: get_current_time, convert_time)",
        "step 'convert', tool 'convert_time' on server 'time': 'target_timezone' is required",
        "step 'convert', tool 'convert_time' on server 'time': 'source_timezone' should be string but is a number",
    ] {
        assert!(stderr.contains(problem), "{problem}\nin\n{stderr}");
    }
    assert!(!w.path("runs.csv").exists(), "nothing ran");

    // A server whose program does not exist is named.
    w.write(
        "tools.toml",
        "[servers.gone]\ncommand = [\"./no-such-server\"]\n[tools.now]\nserver = \"gone\"\n",
    );
    let out = w.patterns().args(["run", "flow.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server 'gone': program"),
        "{out:?}"
    );
}

/// The project's own test server (tests/mcp_server.rs, an example that `cargo test` builds).
fn test_server() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let release = deps.parent().unwrap().parent().unwrap();
    let exe = release.join("examples/mcp_test_server");
    assert!(exe.exists(), "{} not built", exe.display());
    exe
}

fn own_server(w: &Workdir, steps: Value) {
    w.write(
        "tools.toml",
        format!(
            "[servers.test]\ncommand = [{:?}]\nenv = {{ MCP_TEST_RECORD = {:?} }}\nexpose = \"all\"\n",
            test_server().display().to_string(),
            w.path("record.txt").display().to_string()
        ),
    );
    let t = json!({"name": "own", "steps": steps, "retry": {"initial_delay_seconds": 0.05}});
    w.write("flow.json", t.to_string());
}

/// What the test server recorded, but its pid.
fn record(w: &Workdir) -> Vec<String> {
    std::fs::read_to_string(w.path("record.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("pid "))
        .map(String::from)
        .collect()
}

/// The pids of the test servers started in `w`.
fn server_pids(w: &Workdir) -> Vec<String> {
    let text = std::fs::read_to_string(w.path("record.txt")).unwrap_or_default();
    let pids: Vec<String> = (text.lines())
        .filter_map(|l| l.strip_prefix("pid "))
        .map(String::from)
        .collect();
    assert!(!pids.is_empty(), "the server recorded its pid");
    pids
}

/// Waits until the servers started in `w` are gone.
fn servers_gone(w: &Workdir) {
    let pids = server_pids(w);
    wait_until(&format!("servers {pids:?} gone"), || {
        pids.iter().all(|p| gone(p))
    });
}

#[test]
fn a_timeout_cancels_the_request_and_the_server_is_told() {
    let w = Workdir::new();
    // One at a time, in order: the server is still serving (the connection open) when the
    // second call asks it how many calls were cancelled, so the cancellation came as
    // notifications/cancelled, not from the connection closing.
    own_server(
        &w,
        json!([
            {"step_id": "wait", "tool_name": "slow", "parameters": {"seconds": 30}, "timeout_seconds": 1,
             "on_error": "continue"},
            {"step_id": "ask", "tool_name": "cancellations"}
        ]),
    );
    let (code, state) = run(&w, &["--max-parallel", "1"]);
    assert_eq!(code, 0, "{state:#}");
    assert_eq!(state["steps"]["wait"]["error"], "timed out after 1 s");
    assert_eq!(state["steps"]["ask"]["result"], json!({"cancelled": 1}));
    assert_eq!(
        record(&w),
        ["slow started", "slow cancelled", "cancellations 1"]
    );
    assert_eq!(server_pids(&w).len(), 1, "one server for both calls");
    servers_gone(&w);
}

#[test]
fn servers_are_gone_after_a_failed_run_and_after_ctrl_c() {
    let w = Workdir::new();
    own_server(
        &w,
        json!([{"step_id": "f", "tool_name": "flaky", "parameters": {"failures": 5}}]),
    );
    let (code, _) = run(&w, &[]);
    assert_eq!(code, 1);
    servers_gone(&w);

    let w = Workdir::new();
    own_server(
        &w,
        json!([{"step_id": "wait", "tool_name": "slow", "parameters": {"seconds": 60}}]),
    );
    let child = spawn_run(&w, &[]);
    wait_until("the slow call started", || {
        record(&w).contains(&"slow started".to_string())
    });
    // SAFETY: signals a child process of this test.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, state) = finish(child);
    assert_eq!(code, 130, "{state:#}");
    servers_gone(&w);
}

#[test]
fn a_failing_mcp_tool_is_retried() {
    let w = Workdir::new();
    own_server(
        &w,
        json!([{"step_id": "f", "tool_name": "flaky", "parameters": {"failures": 2}, "retry_count": 2}]),
    );
    let (code, state) = run(&w, &["--run-log", "runs.csv"]);
    assert_eq!(code, 0, "{state:#}");
    assert_eq!(state["steps"]["f"]["attempts"], 3);
    assert_eq!(
        state["steps"]["f"]["result"],
        json!({"attempt": 3}),
        "text content parsed as JSON"
    );
    assert_eq!(record(&w), ["flaky call 1", "flaky call 2", "flaky call 3"]);
    let log = std::fs::read_to_string(w.path("runs.csv")).unwrap();
    assert!(
        log.contains(",flaky failure 1,f,1"),
        "isError is a failure with its text: {log}"
    );
    servers_gone(&w);
}

#[test]
fn a_server_that_exits_mid_run_fails_the_next_call_clearly() {
    let w = Workdir::new();
    own_server(
        &w,
        json!([
            {"step_id": "boom", "tool_name": "die", "on_error": "continue"},
            {"step_id": "after", "tool_name": "slow", "parameters": {"seconds": 0}}
        ]),
    );
    // One at a time, in order: the server dies before `after` is called.
    let (code, state) = run(&w, &["--max-parallel", "1"]);
    assert_eq!(code, 1, "{state:#}");
    assert_eq!(state["steps"]["boom"]["status"], "failed");
    let after = state["steps"]["after"]["error"].as_str().unwrap();
    assert!(
        after.starts_with("server 'test' is not running any more (tool 'slow'); its stderr is in "),
        "{after}"
    );
    assert_eq!(record(&w), ["dying"]);
}

#[test]
fn protocol_failures_are_not_retried_unless_asked() {
    let w = Workdir::new();
    // `seconds` becomes the string "x1" only when `one` has answered: the schema check happens
    // at the call, and fails it.
    let steps = |retry: Value| {
        json!([
            {"step_id": "one", "tool_name": "flaky", "parameters": {"failures": 0}},
            {"step_id": "two", "tool_name": "slow", "depends_on": ["one"], "retry_count": 2,
             "retry": retry, "parameters": {"seconds": "x{{one.attempt}}"}}
        ])
    };
    own_server(&w, steps(json!({"initial_delay_seconds": 0.01})));
    let (code, state) = run(&w, &[]);
    assert_eq!(code, 1);
    assert_eq!(state["steps"]["two"]["attempts"], 1, "{state:#}");
    assert_eq!(
        state["steps"]["two"]["error"],
        "server 'test', tool 'slow': parameters do not fit its schema: 'seconds' should be number but is a string"
    );
    own_server(
        &w,
        steps(json!({"initial_delay_seconds": 0.01, "retry_on": ["protocol"]})),
    );
    let (_, state) = run(&w, &[]);
    assert_eq!(state["steps"]["two"]["attempts"], 3, "asked for: {state:#}");
}

#[test]
fn a_servers_log_is_its_owners_with_its_env_values_masked() {
    let w = Workdir::new();
    own_server(
        &w,
        json!([{"step_id": "ask", "tool_name": "cancellations"}]),
    );
    let (code, state) = run(&w, &["--run-id", "logged"]);
    assert_eq!(code, 0, "{state:#}");
    let log = w.path(".patterns/runs/logged.servers/test.stderr.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "recording to <env MCP_TEST_RECORD>\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
