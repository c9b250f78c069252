//! `patterns serve` driven by real MCP clients: the official Python SDK (`mcp` on PyPI, in the
//! venv the MCP tests make) over stdio, with command tools (the stand-ins) and the reference
//! server mcp-server-time behind the workflows.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Workdir, data, run_ok};
use crate::mcp::python;
use crate::run::{gone, wait_until};

/// The stand-in tools of the run tests, bound in `w`'s tools.toml with what each may do, and the
/// time server's two tools.
fn tools(w: &Workdir) {
    let stand_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/stand_in.py");
    let stand_in = stand_in.display();
    let mut toml = String::new();
    for (name, kind, hints) in [
        (
            "list_issues",
            "list_issues",
            "read_only = true\nopen_world = false",
        ),
        ("create_pr", "create_pr", "destructive = false"),
        // Nothing said: taken as destructive.
        ("slack", "slack", ""),
        ("fail", "fail", "read_only = true\nopen_world = false"),
        ("hang", "hang", ""),
    ] {
        toml.push_str(&format!(
            "[tools.{name}]\ncommand = [\"python3\", \"{stand_in}\", \"{kind}\"]\n{hints}\n"
        ));
    }
    toml.push_str(&format!(
        "[servers.time]\ncommand = [{:?}, \"-m\", \"mcp_server_time\", \"--local-timezone\", \"UTC\"]\n\
         [tools.now]\nserver = \"time\"\ntool = \"get_current_time\"\n\
         [tools.convert_time]\nserver = \"time\"\n\
         [tools.github_list_issues]\nbuiltin = \"echo\"\n\
         [tools.github_create_pr]\nbuiltin = \"echo\"\n\
         [tools.slack_send_message]\nbuiltin = \"echo\"\n",
        python()
    ));
    w.write("tools.toml", toml);
}

/// A user template in the library folder of `w`.
fn template(w: &Workdir, name: &str, steps: Value) {
    std::fs::create_dir_all(w.path("workflows")).unwrap();
    w.write(
        &format!("workflows/{name}.json"),
        json!({"name": name, "steps": steps}).to_string(),
    );
}

/// Plays `scenario` of serve_client.py against `patterns serve` in `w`: what the client saw, and
/// the server's stderr.
fn client(w: &Workdir, scenario: &str) -> (Value, String) {
    client_with(w, scenario, &[], &[])
}

/// As [`client`], with more arguments to `serve` and variables in the client's environment.
fn client_with(
    w: &Workdir,
    scenario: &str,
    serve: &[&str],
    env: &[(&str, &str)],
) -> (Value, String) {
    let patterns = assert_cmd::cargo::cargo_bin("patterns");
    let mut args = vec![patterns.to_str().unwrap()];
    args.extend([
        "--library",
        "workflows",
        "--tools",
        "tools.toml",
        "--poll",
        "0.2",
    ]);
    args.extend(serve);
    play(w, scenario, &args, env)
}

/// serve_client.py SCENARIO ARGS in `w` with `env`: what the client saw, and its stderr (with
/// the server's, over stdio).
fn play(w: &Workdir, scenario: &str, args: &[&str], env: &[(&str, &str)]) -> (Value, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/serve_client.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(scenario)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(w.path(""))
        .env_remove("PATTERNS_LIBRARY")
        .env_remove("PATTERNS_TOOLS")
        .env_remove("PATTERNS_STATE_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "client failed: {stderr}");
    let seen = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON from the client ({e}); stderr: {stderr}"));
    (seen, stderr)
}

/// The sample's workflows, mined into `w`'s library folder.
fn mine_sample(w: &Workdir) {
    run_ok(
        w.patterns()
            .arg("mine")
            .arg(data("sample.csv"))
            .args(["--library", "workflows"]),
    );
}

fn tool<'a>(seen: &'a Value, name: &str) -> &'a Value {
    (seen["tools"].as_array().unwrap().iter())
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name} in {:#}", seen["tools"]))
}

#[test]
fn a_client_lists_calls_and_follows_the_workflows_of_a_library() {
    let w = Workdir::new();
    tools(&w);
    // Mined from the sample: its variables are typed by the values logged.
    mine_sample(&w);
    template(
        &w,
        "github_pr",
        json!([
            {"step_id": "list", "tool_name": "list_issues", "parameters": {"repo": "{{repo}}"}},
            {"step_id": "pr", "tool_name": "create_pr", "depends_on": ["list"],
             "parameters": {"repo": "{{repo}}", "title": "Fix: {{list.issues[0].title}}"}},
            {"step_id": "notify", "tool_name": "slack", "depends_on": ["pr"],
             "parameters": {"channel": "{{channel|default:'#dev'}}", "text": "{{pr.url}}"}}
        ]),
    );
    template(
        &w,
        "lookup",
        json!([{"step_id": "list", "tool_name": "list_issues", "parameters": {"repo": "{{repo}}"}}]),
    );
    template(
        &w,
        "failing",
        json!([
            {"step_id": "list", "tool_name": "list_issues", "parameters": {"repo": "x"}},
            {"step_id": "boom", "tool_name": "fail", "depends_on": ["list"]}
        ]),
    );
    template(
        &w,
        "time_flow",
        json!([
            {"step_id": "now", "tool_name": "now", "parameters": {"timezone": "{{zone}}"}},
            {"step_id": "convert", "tool_name": "convert_time", "depends_on": ["now"],
             "parameters": {"source_timezone": "{{now.timezone}}", "time": "12:30", "target_timezone": "Asia/Tokyo"}}
        ]),
    );
    template(
        &w,
        "unbound",
        json!([{"step_id": "a", "tool_name": "nope"}]),
    );
    w.write(
        "new.json",
        json!({"name": "new", "steps": [{"step_id": "l", "tool_name": "list_issues", "parameters": {"repo": "r"}}]})
            .to_string(),
    );
    w.write(
        "calls.json",
        json!([
            ["github_pr", {"repo": "acme/app"}],
            ["failing", {}],
            ["time_flow", {"zone": "Europe/Paris"}],
            ["github_pr", {}],
            ["github_pr", {"repo": "acme/app", "branch": "x"}]
        ])
        .to_string(),
    );
    let (seen, stderr) = client(&w, "session");

    // Listed: what runs, with what it needs and may do; left out with the reason.
    assert!(
        stderr.contains("not offered: unbound: not bound in tools.toml: nope\n"),
        "{stderr}"
    );
    let names: Vec<&str> = (seen["tools"].as_array().unwrap().iter())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"unbound"), "{names:?}");
    for name in [
        "github_pr",
        "lookup",
        "failing",
        "time_flow",
        "list_issues-create_pr-slack_send_message",
        "suggest_workflow",
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    let pr = tool(&seen, "github_pr");
    assert_eq!(pr["input_schema"]["required"], json!(["repo"]));
    assert_eq!(pr["input_schema"]["additionalProperties"], json!(false));
    assert!(
        pr["input_schema"]["properties"]["repo"]["description"]
            .as_str()
            .unwrap()
            .contains("step list (repo), step pr (repo)"),
        "{pr:#}"
    );
    assert_eq!(pr["title"], "list_issues → create_pr → slack");
    assert!(
        pr["description"]
            .as_str()
            .unwrap()
            .contains("Steps: list (list_issues), pr (create_pr), notify (slack)"),
        "{pr:#}"
    );
    // slack says nothing: the workflow may destroy; lookup only reads.
    assert_eq!(pr["annotations"]["readOnlyHint"], false, "{pr:#}");
    assert_eq!(pr["annotations"]["destructiveHint"], true, "{pr:#}");
    let lookup = &tool(&seen, "lookup")["annotations"];
    assert_eq!(lookup["readOnlyHint"], true, "{lookup:#}");
    assert_eq!(lookup["openWorldHint"], false, "{lookup:#}");
    let mined = tool(&seen, "list_issues-create_pr-slack_send_message");
    assert_eq!(
        mined["input_schema"]["properties"]["repo"]["type"], "string",
        "typed by the logged values: {mined:#}"
    );
    assert!(
        mined["description"]
            .as_str()
            .unwrap()
            .contains("Learned from tool-usage logs: this chain ran"),
        "{mined:#}"
    );
    assert_eq!(
        pr["output_schema"]["required"],
        json!(["workflow", "status", "steps"])
    );

    // A call runs the workflow: each step's result, the final one first, progress per step.
    let calls = seen["calls"].as_array().unwrap();
    let ok = &calls[0];
    assert_eq!(ok["is_error"], false, "{ok:#}");
    let s = &ok["structured"];
    assert_eq!(s["status"], "succeeded");
    let order: Vec<&String> = s["steps"].as_object().unwrap().keys().collect();
    assert_eq!(order, ["notify", "list", "pr"]);
    assert_eq!(s["result"]["channel"], "#dev");
    assert_eq!(
        s["steps"]["pr"]["result"]["url"],
        "https://github.com/acme/app/pull/101"
    );
    let progress = ok["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 3, "{progress:?}");
    assert_eq!(progress[2][0], 3.0);
    assert_eq!(progress[2][1], 3.0);
    assert_eq!(
        serde_json::from_str::<Value>(ok["text"][0].as_str().unwrap()).unwrap(),
        *s
    );

    // A failing step: an error that names the step, its tool and why, with what ran.
    let failed = &calls[1];
    assert_eq!(failed["is_error"], true);
    let text = failed["text"][0].as_str().unwrap();
    assert!(
        text.contains("workflow failing failed at step 'boom' (tool fail)")
            && text.contains("the service said no")
            && text.contains("Ran: list succeeded, boom failed"),
        "{text}"
    );
    assert_eq!(failed["structured"]["steps"]["list"]["status"], "succeeded");

    // Through the reference time server: one call, the first call's result fed to the second.
    let time = &calls[2]["structured"];
    assert_eq!(time["status"], "succeeded", "{time:#}");
    assert_eq!(
        time["steps"]["convert"]["result"]["source"]["timezone"],
        "Europe/Paris"
    );

    // Bad arguments: nothing runs, and the error says what to give.
    for (call, says) in [
        (&calls[3], "variable 'repo' is not given"),
        (&calls[4], "'branch' is not an argument of github_pr"),
    ] {
        assert_eq!(call["is_error"], true);
        assert_eq!(call["structured"]["status"], "not_started");
        assert!(call["text"][0].as_str().unwrap().contains(says), "{call:#}");
    }

    // suggest_workflow: what continues list_issues, and whether it is served.
    let suggest = &seen["suggest"]["structured"];
    let found = (suggest["workflows"].as_array().unwrap().iter())
        .find(|w| w["name"] == "github_pr")
        .unwrap_or_else(|| panic!("{suggest:#}"));
    assert_eq!(found["then"], json!(["create_pr", "slack"]));
    assert_eq!(found["served"], true);
    assert_eq!(suggest["next_tools"][0]["tool"], "create_pr", "{suggest:#}");

    // The library changed under the server: the client was told, and the new tool is listed.
    assert!(
        seen["tools_after"]
            .as_array()
            .unwrap()
            .contains(&json!("new")),
        "{seen:#}"
    );

    // Every call is in the run log, in the input schema: tonight's mine reads it.
    let run_id = s["run_id"].as_str().unwrap();
    let log = std::fs::read_to_string(w.path(".patterns/calls.csv")).unwrap();
    let rows: Vec<&str> = log.lines().filter(|l| l.starts_with(run_id)).collect();
    assert_eq!(rows.len(), 3, "{log}");
    // Each row names its workflow and what it replaced (tokens unknown: an empty field).
    for (row, trips) in rows.iter().zip(["0", "1", "1"]) {
        assert!(row.ends_with(&format!(",github_pr,{trips},")), "{log}");
    }
    assert!(stderr.contains("serve: 5 calls (2 succeeded)"), "{stderr}");
    assert!(stderr.contains("model round-trips saved"), "{stderr}");
    // The sample has no model usage: the tokens the calls replaced are unknown, not 0.
    assert!(
        stderr.contains("tokens saved unknown (the logs had no usage)"),
        "{stderr}"
    );
}

#[test]
fn a_cancelled_call_stops_its_tools_and_leaves_a_checkpoint() {
    let w = Workdir::new();
    tools(&w);
    template(
        &w,
        "hanging",
        json!([{"step_id": "h", "tool_name": "hang"}]),
    );
    let (seen, _) = client(&w, "cancel");
    assert_eq!(seen["after_cancel"], json!(["hanging", "suggest_workflow"]));
    let pids = std::fs::read_to_string(w.path("hang.pids")).unwrap();
    for pid in pids.split_whitespace() {
        wait_until(&format!("process {pid} gone"), || gone(pid));
    }
    let runs = w.path(".patterns/runs");
    let checkpoint = std::fs::read_dir(&runs)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no checkpoint in {}", runs.display()));
    let run_id = checkpoint.file_stem().unwrap().to_str().unwrap();
    let listed =
        run_ok(
            w.patterns()
                .args(["run", "--list", "--json", "--state-dir", ".patterns/runs"]),
        );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["run_id"], run_id, "{listed:#}");
    assert_eq!(listed[0]["status"], "cancelled", "{listed:#}");
}

/// The official MCP Inspector in CLI mode, pinned, in `$PATTERNS_NODE_MODULES` or
/// `~/.cache/patterns-node`.
fn inspector() -> std::path::PathBuf {
    let dir = std::env::var_os("PATTERNS_NODE_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::common::cache_dir("patterns-node"));
    crate::common::node_modules(dir, &NODE_PACKAGES).join("node_modules/.bin/mcp-inspector")
}

/// The npm packages the tests drive patterns with.
/// The conformance suite is 0.1.12: later ones need Node 22 (`fs.globSync`); the machines have
/// Node 20.
pub const NODE_PACKAGES: [&str; 3] = [
    "@modelcontextprotocol/inspector@2.12.0",
    "skills-ref@0.1.5",
    "@modelcontextprotocol/conformance@0.1.12",
];

/// `mcp-inspector --cli patterns serve … ARGS` in `w`: its JSON answer.
fn inspect(w: &Workdir, args: &[&str]) -> Value {
    let out = std::process::Command::new(inspector())
        .arg("--cli")
        .arg(assert_cmd::cargo::cargo_bin("patterns"))
        .args(["serve", "--library", "workflows", "--tools", "tools.toml"])
        .args(args)
        .current_dir(w.path(""))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inspector failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON from the inspector ({e}); stderr: {stderr}"))
}

#[test]
fn the_mcp_inspector_lists_and_calls_a_workflow() {
    let w = Workdir::new();
    echo_library(&w);
    let listed = inspect(&w, &["--method", "tools/list"]);
    let names: Vec<&str> = (listed["tools"].as_array().unwrap().iter())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pr_flow", "suggest_workflow"]);
    assert_eq!(
        listed["tools"][0]["inputSchema"]["required"],
        json!(["repo"])
    );
    assert_eq!(listed["tools"][0]["annotations"]["readOnlyHint"], true);

    let called = inspect(
        &w,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "pr_flow",
            "--tool-arg",
            "repo=acme/app",
        ],
    );
    assert_eq!(called["isError"], false, "{called:#}");
    let s = &called["structuredContent"];
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["result"], json!({"title": "Fix in acme/app"}));
    assert_eq!(s["steps"]["list"]["result"], json!({"repo": "acme/app"}));
}

#[test]
fn every_template_exports_as_a_skill_the_reference_validator_accepts() {
    let w = Workdir::new();
    mine_sample(&w);
    // A name that is not a skill name, and one that collides with it once made one.
    template(
        &w,
        "My_Flow",
        json!([{"step_id": "a", "tool_name": "x", "parameters": {"q": "{{query}}"}}]),
    );
    template(&w, "my-flow", json!([{"step_id": "a", "tool_name": "x"}]));
    let out = run_ok(w.patterns().args([
        "library",
        "export",
        "--all",
        "--format",
        "skill",
        "--output",
        ".agents/skills",
    ]));
    let written: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("wrote ").unwrap().to_string())
        .collect();
    // Eight mined, two by hand; no built-in.
    assert_eq!(written.len(), 10, "{written:?}");
    assert!(written.contains(&".agents/skills/my-flow/SKILL.md".to_string()));
    assert!(written.contains(&".agents/skills/my-flow-2/SKILL.md".to_string()));
    let validator = inspector().with_file_name("skills-ref");
    for file in &written {
        let folder = w.path(file.trim_end_matches("/SKILL.md"));
        let check = std::process::Command::new(&validator)
            .arg("validate")
            .arg(&folder)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let skill = std::fs::read_to_string(w.path(".agents/skills/my-flow/SKILL.md")).unwrap();
    assert!(
        skill.contains("patterns run My_Flow --var query=<query> --json"),
        "{skill}"
    );
}

#[test]
fn the_proxy_records_an_agents_calls_and_the_workflow_it_ran_comes_back_as_one_tool() {
    let w = Workdir::new();
    w.write(
        "tools.toml",
        format!(
            "[servers.time]\ncommand = [{:?}, \"-m\", \"mcp_server_time\", \"--local-timezone\", \"UTC\"]\n\
             expose = \"all\"\n",
            python()
        ),
    );
    std::fs::create_dir_all(w.path("workflows")).unwrap();
    // Three agent sessions through the proxy, each: what time is it there, and in Tokyo?
    for zone in ["Europe/Paris", "America/New_York", "Europe/Paris"] {
        let (seen, stderr) = client_with(&w, "time", &["--proxy"], &[("ZONE", zone)]);
        assert!(stderr.contains("serve: proxying "), "{stderr}");
        // Forwarded as they are: the server's names, schemas and results.
        let now = tool(&seen, "get_current_time");
        assert_eq!(
            now["input_schema"]["required"],
            json!(["timezone"]),
            "{now:#}"
        );
        let calls = seen["calls"].as_array().unwrap();
        assert_eq!(calls[0]["structured"]["timezone"], zone, "{calls:#?}");
        assert_eq!(
            calls[1]["structured"]["source"]["timezone"], zone,
            "{calls:#?}"
        );
    }
    let log = std::fs::read_to_string(w.path(".patterns/calls.csv")).unwrap();
    let sessions: std::collections::BTreeSet<&str> = (log.lines().skip(1))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(sessions.len(), 3, "one session per client session: {log}");
    assert_eq!(log.lines().count(), 1 + 6, "{log}");

    // Tonight's mine learns the workflow from the log ...
    run_ok(w.patterns().args([
        "mine",
        ".patterns/calls.csv",
        "--library",
        "workflows",
        "--min-support",
        "3",
    ]));
    // ... and tomorrow the same server offers it as one tool, which does both calls at once.
    let (listed, _) = client_with(&w, "calls", &["--proxy"], &[]);
    let mined = (listed["tools"].as_array().unwrap().iter())
        .find(|t| t["title"] == "get_current_time → convert_time")
        .unwrap_or_else(|| panic!("not offered: {:#}", listed["tools"]));
    let name = mined["name"].as_str().unwrap();
    let required = mined["input_schema"]["required"].as_array().unwrap();
    assert_eq!(
        required.len(),
        1,
        "the zone varies, the rest was constant: {mined:#}"
    );
    let zone = required[0].as_str().unwrap();
    assert_eq!(mined["input_schema"]["properties"][zone]["type"], "string");
    w.write(
        "calls.json",
        json!([[name, {zone: "America/New_York"}]]).to_string(),
    );
    let (called, _) = client_with(&w, "calls", &["--proxy"], &[]);
    let result = &called["calls"][0];
    assert_eq!(result["is_error"], false, "{result:#}");
    let s = &result["structured"];
    assert_eq!(
        s["result"]["source"]["timezone"], "America/New_York",
        "{s:#}"
    );
    assert!(
        s["result"]["target"]["datetime"]
            .as_str()
            .unwrap()
            .contains("+09:00"),
        "{s:#}"
    );
}

/// `patterns serve --http 127.0.0.1:0 ARGS` running in `w` (killed when dropped), and its URL.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl HttpServer {
    fn start(w: &Workdir, args: &[&str]) -> HttpServer {
        HttpServer::start_reading(w, args, true)
    }

    /// As [`HttpServer::start`]; with `read_stderr` false, the server's stderr is closed once it
    /// listens (as a client that stops reading it may do).
    fn start_reading(w: &Workdir, args: &[&str], read_stderr: bool) -> HttpServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("patterns"))
            .args(["serve", "--library", "workflows", "--tools", "tools.toml"])
            .args(["--http", "127.0.0.1:0"])
            .args(args)
            .current_dir(w.path(""))
            .env_remove("PATTERNS_SERVE_TOKEN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in stderr.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("serve: listening on ") {
                let url = format!("{}mcp", rest.split_whitespace().next().unwrap());
                // The server goes on writing to stderr: read it to the end.
                if read_stderr {
                    std::thread::spawn(move || stderr.for_each(drop));
                }
                return HttpServer { child, url };
            }
            seen.push(line);
        }
        child.kill().ok();
        child.wait().ok();
        panic!("serve --http did not start: {seen:#?}");
    }

    /// The status line of a raw `initialize` POST with `headers`.
    fn status_of(&self, headers: &[(&str, &str)]) -> String {
        use std::io::{Read, Write};
        let addr = self
            .url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp");
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}})
        .to_string();
        let mut request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok();
        answer.lines().next().unwrap_or_default().to_string()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A library with one workflow of builtins, and its tools.
fn echo_library(w: &Workdir) {
    w.write(
        "tools.toml",
        "[tools.list_issues]\nbuiltin = \"echo\"\n[tools.create_pr]\nbuiltin = \"echo\"\n",
    );
    template(
        w,
        "pr_flow",
        json!([
            {"step_id": "list", "tool_name": "list_issues", "parameters": {"repo": "{{repo}}"}},
            {"step_id": "pr", "tool_name": "create_pr", "depends_on": ["list"],
             "parameters": {"title": "Fix in {{list.repo}}"}}
        ]),
    );
}

/// The rows of the CSV at `path` in `w`, header first.
fn csv_rows(w: &Workdir, path: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(w.path(path)).unwrap();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn the_run_log_says_what_each_served_call_replaced_and_sums_to_the_line_at_exit() {
    let w = Workdir::new();
    echo_library(&w);
    // As `mine` writes it for logs with model usage: a run saved 4,000 tokens (median).
    let path = w.path("workflows/pr_flow.json");
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    t["metadata"] = json!({"tokens_saved": {"runs": 7, "total": 30000, "median": 4000.0}});
    std::fs::write(&path, t.to_string()).unwrap();
    w.write(
        "calls.json",
        json!([["pr_flow", {"repo": "acme/app"}], ["pr_flow", {"repo": "acme/web"}]]).to_string(),
    );
    let (seen, stderr) = client_with(&w, "calls", &[], &[]);
    assert_eq!(seen["calls"][1]["is_error"], false, "{seen:#}");

    let rows = csv_rows(&w, ".patterns/calls.csv");
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let (workflow, trips, tokens) = (
        col("workflow"),
        col("round_trips_saved"),
        col("tokens_saved"),
    );
    let calls = &rows[1..];
    assert_eq!(calls.len(), 4, "{rows:?}");
    assert!(calls.iter().all(|r| r[workflow] == "pr_flow"), "{rows:?}");
    // Per run: the first call replaced none, the second one round-trip; the tokens on the first.
    for run in calls.chunks(2) {
        assert_eq!(run[0][0], run[1][0], "one run id per call: {rows:?}");
        assert_eq!([&run[0][trips], &run[1][trips]], ["0", "1"], "{rows:?}");
        assert_eq!([&run[0][tokens], &run[1][tokens]], ["4000", ""], "{rows:?}");
    }
    assert!(
        stderr.contains("2 model round-trips saved, ~8,000 tokens saved by the mined medians of 2"),
        "{stderr}"
    );

    // A run log of an earlier version (without these columns) is appended to in its own.
    let earlier =
        "session_id,timestamp,tool,success,duration_ms,arguments,result,error,step_id,attempt";
    w.write("old.csv", format!("{earlier}\n"));
    let (_, stderr) = client_with(&w, "calls", &["--run-log", "old.csv"], &[]);
    assert!(
        stderr.contains("has the columns of an earlier version"),
        "{stderr}"
    );
    let rows = csv_rows(&w, "old.csv");
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows.iter().all(|r| r.len() == 10), "{rows:?}");
}

#[test]
fn over_http_a_client_with_the_token_runs_a_workflow_and_others_are_turned_away() {
    let w = Workdir::new();
    echo_library(&w);
    let token = "s3cret-token-for-the-test";
    let server = HttpServer::start(&w, &["--token", token]);
    w.write(
        "calls.json",
        json!([["pr_flow", {"repo": "acme/app"}]]).to_string(),
    );
    let (seen, _) = play(&w, "calls", &[&server.url], &[("TOKEN", token)]);
    assert_eq!(seen["calls"][0]["is_error"], false, "{seen:#}");
    assert_eq!(
        seen["calls"][0]["structured"]["result"],
        json!({"title": "Fix in acme/app"})
    );
    // A server whose stderr was closed still answers (what it says there is lost, not the call).
    let mute = HttpServer::start_reading(&w, &[], false);
    let (seen, _) = play(&w, "calls", &[&mute.url], &[]);
    assert_eq!(seen["calls"][0]["is_error"], false, "{seen:#}");

    let bearer = format!("Bearer {token}");
    assert!(server.status_of(&[]).contains(" 401 "), "no token");
    assert!(
        server
            .status_of(&[("Authorization", "Bearer wrong")])
            .contains(" 401 "),
        "a wrong token"
    );
    assert!(
        server
            .status_of(&[("Authorization", &bearer)])
            .contains(" 200 "),
        "the token"
    );
    // A page on another site cannot drive the server through its visitor's browser.
    assert!(
        server
            .status_of(&[
                ("Authorization", &bearer),
                ("Origin", "http://evil.example")
            ])
            .contains(" 403 "),
        "a foreign Origin"
    );
    assert!(
        server
            .status_of(&[
                ("Authorization", &bearer),
                ("Origin", "http://localhost:3000")
            ])
            .contains(" 200 "),
        "a local Origin"
    );

    // Beyond loopback only with a token.
    let out = w
        .patterns()
        .args(["serve", "--http", "0.0.0.0:0"])
        .env_remove("PATTERNS_SERVE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("give --token TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_mcp_conformance_suite_passes_but_for_the_listed_scenarios() {
    let w = Workdir::new();
    echo_library(&w);
    let server = HttpServer::start(&w, &[]);
    let baseline =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/conformance-baseline.yml");
    let suite = inspector().with_file_name("conformance");
    let out = std::process::Command::new(suite)
        .args(["server", "--url", &server.url, "--expected-failures"])
        .arg(&baseline)
        .current_dir(w.path(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "unexpected results (a failure not in the baseline, or a baseline entry that passes now): \
         {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
