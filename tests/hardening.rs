//! Regression tests of the issue "Hardening": each named after the defect it pins.

use std::io::Read;
use std::process::{Command, Stdio};

use predicates::str::contains;

use crate::common::{Workdir, data, run_ok};
use serde_json::json;

/// The `.json` files in `dir` (none when it does not exist), sorted.
fn json_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Runs `patterns ARGS` with stdout into a pipe that is closed after the first bytes; returns
/// the exit code and stderr.
fn with_pipe_closed_early(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("patterns"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_pipe_exits_0_quietly() {
    // Enough output that the writer is still writing when the pipe closes.
    let generate = ["generate", "--sessions", "200000", "--no-payloads"];
    let sample = data("sample.csv");
    let mine = [
        "mine",
        sample.to_str().unwrap(),
        "--keep",
        "all",
        "--json",
        "--no-write",
        "--top",
        "0",
    ];
    for args in [&generate[..], &mine[..]] {
        let (code, stderr) = with_pipe_closed_early(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn every_row_bad_is_exit_2_with_the_first_errors() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool\ns1,yesterday,a\ns1,today,b\n",
    );
    w.patterns()
        .args(["mine", "log.csv", "--no-write"])
        .assert()
        .code(2)
        .stderr(contains("no usable row: all 2 rows are bad"))
        .stderr(contains(
            "log.csv:2: timestamp does not parse in column 'timestamp': \"yesterday\"",
        ));
}

#[test]
fn a_repeat_with_other_arguments_is_not_a_retry() {
    let w = Workdir::new();
    // `look` runs twice in a row in every session, then `act`. The retry count the template plans
    // for `look`, given how the first `look` ended and the second's arguments.
    let planned = |first_ok: u8, second_id: u8| {
        let mut csv = String::from("session_id,timestamp,tool,success,arguments\n");
        for s in 1..=3 {
            csv.push_str(&format!(
                "s{s},1,look,{first_ok},\"{{\"\"id\"\":1}}\"\n\
                 s{s},2,look,1,\"{{\"\"id\"\":{second_id}}}\"\n\
                 s{s},3,act,1,{{}}\n"
            ));
        }
        let dir = format!("lib{first_ok}{second_id}");
        w.write("log.csv", csv);
        w.patterns()
            .args(["mine", "log.csv", "--min-support", "3", "--library", &dir])
            .assert()
            .success();
        let t: serde_json::Value = serde_json::from_slice(
            &std::fs::read(w.path(&format!("{dir}/look-act.json"))).unwrap(),
        )
        .unwrap();
        t["steps"][0]["retry_count"].as_u64().unwrap()
    };
    assert_eq!(
        planned(0, 1),
        1,
        "a failed call repeated with the same arguments"
    );
    assert_eq!(planned(1, 1), 0, "a repeat after a success");
    assert_eq!(planned(0, 2), 0, "a repeat with other arguments");
}

#[test]
fn top_decides_what_is_printed_not_what_the_library_keeps() {
    let w = Workdir::new();
    let sample = data("sample.csv");
    let sample = sample.to_str().unwrap();
    w.patterns()
        .args(["mine", sample, "--library", "lib"])
        .assert()
        .success();
    let files = || json_files(&w.path("lib"));
    let all = files();
    assert_eq!(all.len(), 8, "{all:?}");
    // Printing two leaves every template as it was: none goes stale.
    w.patterns()
        .args(["mine", sample, "--library", "lib", "--top", "2"])
        .assert()
        .success()
        .stderr(contains(
            "0 new, 0 updated, 8 unchanged, 0 marked stale, 0 removed",
        ));
    assert_eq!(files(), all);
}

#[test]
fn prune_on_an_input_with_no_usable_row_deletes_nothing() {
    let w = Workdir::new();
    w.patterns()
        .arg("mine")
        .arg(data("sample.csv"))
        .args(["--library", "lib"])
        .assert()
        .success();
    let before = std::fs::read_dir(w.path("lib")).unwrap().count();
    w.write("header.csv", "session_id,timestamp,tool\n");
    w.write("bad.csv", "session_id,timestamp,tool\ns1,never,a\n");
    for (file, message) in [
        ("header.csv", "header.csv: no rows, only a header"),
        ("bad.csv", "no usable row: all 1 rows are bad"),
    ] {
        w.patterns()
            .args(["mine", file, "--library", "lib", "--prune"])
            .assert()
            .code(2)
            .stderr(contains(message));
    }
    assert_eq!(std::fs::read_dir(w.path("lib")).unwrap().count(), before);
}

#[test]
fn crlf_files_report_the_right_line() {
    let w = Workdir::new();
    for (name, eol) in [("lf.csv", "\n"), ("crlf.csv", "\r\n")] {
        let csv = [
            "session_id,timestamp,tool",
            "s1,1,a",
            "s1,2,b",
            "s1,never,c",
            "s2,1,a",
            "",
        ]
        .join(eol);
        w.write(name, csv);
        w.patterns()
            .args(["mine", name, "--no-write", "--min-support", "1"])
            .assert()
            .success()
            .stderr(contains(format!(
                "{name}:4: timestamp does not parse in column 'timestamp': \"never\""
            )));
    }
}

#[test]
fn stdin_takes_every_format_the_loader_sniffs() {
    use polars::prelude::*;
    let w = Workdir::new();
    let jsonl = "{\"session_id\":\"s1\",\"timestamp\":1,\"tool\":\"a\"}\n\
                 {\"session_id\":\"s1\",\"timestamp\":2,\"tool\":\"b\"}\n\
                 {\"session_id\":\"s2\",\"timestamp\":1,\"tool\":\"a\"}\n\
                 {\"session_id\":\"s2\",\"timestamp\":2,\"tool\":\"b\"}\n";
    w.write("log.jsonl", jsonl);
    let mut frame = df!(
        "session_id" => ["s1", "s1", "s2", "s2"],
        "timestamp" => [1i64, 2, 1, 2],
        "tool" => ["a", "b", "a", "b"]
    )
    .unwrap();
    let mut file = std::fs::File::create(w.path("log.parquet")).unwrap();
    ParquetWriter::new(&mut file).finish(&mut frame).unwrap();
    // The same bytes gzip-compressed, as `gzip -c log.jsonl | patterns mine -` gives them.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, jsonl.as_bytes()).unwrap();
    w.write("log.jsonl.gz", gz.finish().unwrap());
    for name in ["log.jsonl", "log.parquet", "log.jsonl.gz"] {
        let args = [
            "mine",
            "--json",
            "--no-write",
            "--min-support",
            "2",
            "--keep",
            "all",
        ];
        let from_file = crate::common::json_of(w.patterns().args(args).arg(name));
        let from_stdin = crate::common::json_of(
            w.patterns()
                .args(args)
                .arg("-")
                .write_stdin(std::fs::read(w.path(name)).unwrap()),
        );
        assert_eq!(from_stdin["patterns"], from_file["patterns"], "{name}");
        assert_eq!(crate::common::chains(&from_stdin), ["a → b"], "{name}");
    }
}

#[test]
fn missing_columns_are_reported_all_at_once() {
    let w = Workdir::new();
    w.write("log.csv", "who,when,what\ns1,1,a\n");
    let out = w
        .patterns()
        .args(["mine", "log.csv", "--no-write", "--success-col", "fine"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for expected in [
        "log.csv: no session_id column",
        "log.csv: no timestamp column",
        "log.csv: no tool column",
        "log.csv: no column 'fine' (given by --success-col)",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

#[test]
fn a_folder_reads_the_log_files_under_it() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path("logs/day2")).unwrap();
    w.write(
        "logs/day1.csv",
        "session_id,timestamp,tool\ns1,1,a\ns1,2,b\n",
    );
    w.write(
        "logs/day2/more.jsonl",
        "{\"session_id\":\"s2\",\"timestamp\":1,\"tool\":\"a\"}\n\
         {\"session_id\":\"s2\",\"timestamp\":2,\"tool\":\"b\"}\n",
    );
    w.write("logs/notes.txt", "not a log");
    w.write("logs/.hidden.csv", "garbage");
    let json = crate::common::json_of(w.patterns().args([
        "mine",
        "logs",
        "--json",
        "--no-write",
        "--min-support",
        "2",
        "--keep",
        "all",
    ]));
    let files: Vec<&str> = json["input"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].ends_with("day1.csv") && files[1].ends_with("more.jsonl"),
        "{files:?}"
    );
    assert_eq!(crate::common::chains(&json), ["a → b"]);
    std::fs::create_dir(w.path("empty")).unwrap();
    w.patterns()
        .args(["mine", "empty", "--no-write"])
        .assert()
        .code(2)
        .stderr(contains("empty: a folder with no log file under it"));
}

#[test]
fn shell_completions_are_printed() {
    for (shell, marker) in [
        ("bash", "complete -F _patterns"),
        ("zsh", "#compdef patterns"),
        ("fish", "complete -c patterns"),
    ] {
        let out = crate::common::run_ok(crate::common::patterns().args(["completions", shell]));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(200)]
        );
        // The subcommands and their flags are in it.
        assert!(
            text.contains("suggest") && text.contains("min-support"),
            "{shell}"
        );
    }
}

#[test]
fn semicolon_separated_csv_with_a_bom_is_read() {
    let w = Workdir::new();
    let rows = "s1;1;a\ns1;2;b\ns2;1;a\ns2;2;b\n";
    w.write(
        "export.csv",
        [
            &b"\xef\xbb\xbfsession_id;timestamp;tool\n"[..],
            rows.as_bytes(),
        ]
        .concat(),
    );
    let json = crate::common::json_of(w.patterns().args([
        "mine",
        "export.csv",
        "--json",
        "--no-write",
        "--min-support",
        "2",
        "--keep",
        "all",
    ]));
    assert_eq!(json["input"]["rows"], 4);
    assert_eq!(crate::common::chains(&json), ["a → b"]);
}

/// Three calls of a session with nested arguments and results, and the tool inside an object,
/// as JSON objects.
fn nested_calls(sessions: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for s in 0..sessions {
        for (i, (tool, args)) in [
            ("search", serde_json::json!({"q": format!("x{s}")})),
            ("fetch", serde_json::json!({"url": "u"})),
        ]
        .into_iter()
        .enumerate()
        {
            out.push(serde_json::json!({
                "session": format!("s{s}"),
                "ts": 1_700_000_000 + s * 100 + i,
                "tool": {"name": tool, "server": "m"},
                "arguments": args,
                "result": {"id": s},
                "success": true,
            }));
        }
    }
    out
}

#[test]
fn a_json_array_file_is_read_as_its_objects() {
    let w = Workdir::new();
    let calls = nested_calls(5);
    let lines: Vec<String> = calls.iter().map(ToString::to_string).collect();
    w.write("calls.jsonl", lines.join("\n"));
    w.write("calls.json", serde_json::to_string_pretty(&calls).unwrap());
    // Pretty-printed documents one after another, as some exporters write.
    let pretty: Vec<String> = calls
        .iter()
        .map(|c| serde_json::to_string_pretty(c).unwrap())
        .collect();
    w.write("docs.json", pretty.join("\n"));
    let mine = |file: &str| {
        crate::common::json_of(w.patterns().args([
            "mine",
            file,
            "--tool-col",
            "tool.name",
            "--min-support",
            "5",
            "--no-write",
            "--json",
        ]))
    };
    let lines = mine("calls.jsonl");
    assert_eq!(crate::common::chains(&lines), ["search → fetch"]);
    assert_eq!(lines["input"]["rows"], 10);
    for other in ["calls.json", "docs.json"] {
        let got = mine(other);
        assert_eq!(got["patterns"], lines["patterns"], "{other}");
        assert_eq!(got["input"]["rows"], 10, "{other}");
    }
}

#[test]
fn nested_jsonl_objects_are_parameters_and_tool_col_takes_a_path() {
    let w = Workdir::new();
    let lines: Vec<String> = nested_calls(5).iter().map(ToString::to_string).collect();
    w.write("calls.jsonl", lines.join("\n"));
    // Without a path into the object, a clear error that names it.
    w.patterns()
        .args(["mine", "calls.jsonl", "--no-write"])
        .assert()
        .code(2)
        .stderr(contains(
            "calls.jsonl: 'tool' holds JSON objects where the tool should be; name a field inside them, e.g. --tool-col tool.name",
        ));
    w.patterns()
        .args([
            "mine",
            "calls.jsonl",
            "--tool-col",
            "tool.name",
            "--min-support",
            "5",
        ])
        .args(["--library", "lib"])
        .assert()
        .success();
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path("lib/search-fetch.json")).unwrap()).unwrap();
    assert_eq!(
        t["steps"][0]["parameters"],
        serde_json::json!({"q": "{{search_q}}"})
    );
    assert_eq!(t["steps"][1]["parameters"], serde_json::json!({"url": "u"}));
}

#[test]
fn one_bad_jsonl_line_is_one_skipped_row_with_its_line() {
    let w = Workdir::new();
    let mut text: Vec<u8> = Vec::new();
    for call in nested_calls(5) {
        text.extend(call.to_string().bytes());
        text.push(b'\n');
    }
    // Line 11: invalid UTF-8; 12: nested 10,000 deep (a stack overflow once); 13: cut short.
    text.extend(b"{\"session\":\"s1\",\"ts\":1700000005,\"tool\":{\"name\":\"b\xffd\"}}\n");
    text.extend(b"{\"a\":");
    text.extend(std::iter::repeat_n(b'[', 10_000));
    text.extend(std::iter::repeat_n(b']', 10_000));
    text.extend(b"}\n{\"session\":\"s1\",\"ts\":17");
    w.write("calls.jsonl", &text);
    let out = w
        .patterns()
        .args([
            "mine",
            "calls.jsonl",
            "--tool-col",
            "tool.name",
            "--min-support",
            "5",
        ])
        .args(["--no-write"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("skipped 3 bad rows of 13"), "{stderr}");
    for line in [11, 12, 13] {
        assert!(
            stderr.contains(&format!("calls.jsonl:{line}: ")),
            "{line}: {stderr}"
        );
    }
    assert!(stderr.contains("recursion limit exceeded"), "{stderr}");
    assert!(
        stderr.contains("calls.jsonl:13: the line is cut short"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // With --strict, the first of them is the error.
    w.patterns()
        .args([
            "mine",
            "calls.jsonl",
            "--tool-col",
            "tool.name",
            "--strict",
            "--no-write",
        ])
        .assert()
        .code(2)
        .stderr(contains(
            "calls.jsonl:11: not a JSON object (invalid unicode",
        ));
}

#[test]
fn escape_codes_in_log_data_do_not_reach_the_terminal_raw() {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..3 {
        csv.push_str(&format!("s{s},1,open\ns{s},2,\"evil\u{1b}[2J\"\n"));
    }
    w.write("log.csv", csv);
    let out = crate::common::run_ok(w.patterns().args([
        "mine",
        "log.csv",
        "--no-write",
        "--min-support",
        "3",
    ]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(stdout.contains("open → evil\\u{1b}[2J"), "{stdout}");
}

#[test]
fn io_errors_name_their_cause_once() {
    let w = Workdir::new();
    w.write("plain.csv", "session_id,timestamp,tool\n");
    let out = w
        .patterns()
        .args(["mine", "plain.csv/inner.csv", "--no-write"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: plain.csv/inner.csv: "),
        "{stderr}"
    );
}

#[test]
fn compressed_logs_are_read_as_they_are() {
    use std::io::Write;
    let w = Workdir::new();
    let csv = std::fs::read(data("sample.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&csv).unwrap();
    w.write("sample.csv.gz", gz.finish().unwrap());
    let args = ["--json", "--no-write", "--top", "0"];
    let plain = crate::common::json_of(w.patterns().arg("mine").arg(data("sample.csv")).args(args));
    let packed = crate::common::json_of(w.patterns().args(["mine", "sample.csv.gz"]).args(args));
    assert_eq!(packed["patterns"], plain["patterns"]);
    assert_eq!(packed["input"]["rows"], plain["input"]["rows"]);
    // A bad row in a compressed file is named with its line, as in a plain one.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"session_id,timestamp,tool\ns1,1,a\ns1,never,b\n")
        .unwrap();
    w.write("bad.csv.gz", gz.finish().unwrap());
    w.patterns()
        .args(["mine", "bad.csv.gz", "--no-write", "--min-support", "1"])
        .assert()
        .success()
        .stderr(contains("bad.csv.gz:3: timestamp does not parse"));
}

#[test]
fn resume_refuses_unsafe_ids_and_checkpoints_that_do_not_match() {
    let w = Workdir::new();
    w.write("tools.toml", "[tools.say]\nbuiltin = \"echo\"\n");
    w.write(
        "flow.json",
        r#"{"name": "flow", "steps": [
            {"step_id": "a", "tool_name": "say", "parameters": {"x": 1}},
            {"step_id": "b", "tool_name": "say", "parameters": {"y": 2}, "depends_on": ["a"]}
        ]}"#,
    );
    w.patterns()
        .args([
            "run",
            "flow.json",
            "--tools",
            "tools.toml",
            "--run-id",
            "r1",
        ])
        .assert()
        .success();
    let checkpoint = w.path(".patterns/runs/r1.json");
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The same checkpoint under another run's name, and one whose steps are not its template's.
    w.write(".patterns/runs/r2.json", &text);
    let steps = json["state"]["steps"].as_object_mut().unwrap();
    let b = steps.remove("b").unwrap();
    steps.insert("zzz".into(), b);
    w.write(
        ".patterns/runs/r3.json",
        json.to_string().replace("\"r1\"", "\"r3\""),
    );
    for (id, message) in [
        ("../../x", "run id \"../../x\" is not a safe file name"),
        ("r2", "it is the checkpoint of run \"r1\", not of \"r2\""),
        ("r3", "its steps (a, zzz) are not its template's (a, b)"),
    ] {
        let out = w
            .patterns()
            .args(["run", "--resume", id, "--tools", "tools.toml"])
            .assert()
            .code(2)
            .stderr(contains(message));
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_template_over_the_size_limit_is_not_written_again_and_again() {
    let w = Workdir::new();
    // A tool whose name is 3 MB: its template would be over the 10 MB a library file may have.
    let huge = "x".repeat(3 * 1024 * 1024);
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..5 {
        csv.push_str(&format!("s{s},1,{huge}\ns{s},2,small\n"));
    }
    w.write("log.csv", csv);
    for _ in 0..2 {
        w.patterns()
            .args(["mine", "log.csv", "--library", "lib"])
            .assert()
            .success()
            .stderr(contains(
                "not written: it would be over the library's limit of 10 MB",
            ));
    }
    let files = json_files(&w.path("lib")).len();
    assert_eq!(files, 0);
}

#[test]
fn tools_init_writes_a_stub_binding_every_tool_of_a_template() {
    let w = Workdir::new();
    w.patterns()
        .args(["tools", "init", "github_pr_workflow"])
        .assert()
        .success()
        .stderr(contains("tools.toml: 3 tools added as stubs"));
    let text = std::fs::read_to_string(w.path("tools.toml")).unwrap();
    for tool in [
        "github_list_issues",
        "github_create_pr",
        "slack_send_message",
    ] {
        assert!(text.contains(&format!("[tools.{tool}]")), "{text}");
    }
    // The plan can be shown before anything is wired.
    w.patterns()
        .args(["run", "github_pr_workflow", "--dry-run"])
        .args(["--var", "repo=acme/app", "--var", "branch=b"])
        .assert()
        .success()
        .stdout(contains("3 steps in 3 levels"));
    // A binding written by hand is kept; only what is missing is added.
    w.write(
        "tools.toml",
        "[tools.github_list_issues]\nbuiltin = \"sleep\"\n",
    );
    w.patterns()
        .args(["tools", "init", "github_pr_workflow"])
        .assert()
        .success()
        .stderr(contains("2 tools added as stubs"))
        .stderr(contains("1 already bound"));
    let text = std::fs::read_to_string(w.path("tools.toml")).unwrap();
    assert!(
        text.starts_with("[tools.github_list_issues]\nbuiltin = \"sleep\"\n"),
        "{text}"
    );
    assert_eq!(
        text.matches("[tools.github_list_issues]").count(),
        1,
        "{text}"
    );
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn a_parquet_decimal_or_float16_column_is_an_error_not_a_panic() {
    // Written by pyarrow; the extra column is not even used.
    for file in ["decimal.parquet", "float16.parquet"] {
        let out = crate::common::patterns()
            .arg("mine")
            .arg(fixture(file))
            .args(["--no-write", "--min-support", "2"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        if out.status.code() == Some(0) {
            // Read after all (a polars that copes): then the calls are all there.
            assert!(String::from_utf8_lossy(&out.stdout).contains("a → b → c"));
        } else {
            assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
            assert!(
                stderr.contains(&format!("{file}: cannot read as Parquet")),
                "{stderr}"
            );
        }
    }
}

#[test]
fn dictionary_encoded_parquet_strings_are_read() {
    let out = crate::common::run_ok(
        crate::common::patterns()
            .arg("mine")
            .arg(fixture("dictionary.parquet"))
            .args(["--no-write", "--min-support", "2"]),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("a → b → c"));
}

#[test]
fn a_named_fifo_is_read_once_not_waited_on_forever() {
    let w = Workdir::new();
    let fifo = w.path("log.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path in our temp dir.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut csv = String::from("session_id,timestamp,tool\n");
            for s in 0..3 {
                csv.push_str(&format!("s{s},1,open\ns{s},2,read\n"));
            }
            std::fs::write(fifo, csv).unwrap();
        })
    };
    let out = w
        .patterns()
        .args(["mine", "log.fifo", "--no-write", "--min-support", "3"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("open → read"));
}

#[test]
fn sigbus_while_reading_is_an_error_not_a_core_dump() {
    // A log truncated under a memory map raises SIGBUS; the signal is sent by hand here, to a
    // `mine` waiting on standard input, once its handler is in place.
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("patterns"))
        .args(["mine", "-", "--no-write"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Standard input stays open until the child is gone: at its end of file, `mine` would say
    // the log is empty and exit before the signal reached it.
    let stdin = child.stdin.take();
    // Once a thread of it waits on standard input, main has installed its handler (the mask of
    // caught signals in /proc would not tell: Rust's runtime catches SIGBUS before main, for its
    // stack guard, and lets a sent one pass). A thread waits on fd 0 when its system call is
    // read(0, …) ("0 0x0 …" in /proc), or, where that is hidden, when it sleeps in a pipe read.
    let waits_on_stdin = |task: &std::path::Path| {
        let syscall = std::fs::read_to_string(task.join("syscall")).unwrap_or_default();
        let wchan = std::fs::read_to_string(task.join("wchan")).unwrap_or_default();
        syscall.starts_with("0 0x0 ") || wchan.contains("pipe_read")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .any(|task| waits_on_stdin(&task.unwrap().path()))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no thread of `mine` waited on standard input within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGBUS) }, 0);
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shrank while it was being read"),
        "{out:?}"
    );
}

#[test]
fn run_list_shows_the_checkpoints_resume_can_take_and_a_resume_is_locked() {
    let w = Workdir::new();
    w.write(
        "tools.toml",
        "[tools.say]\nbuiltin = \"echo\"\n[tools.bad]\nbuiltin = \"fail\"\n",
    );
    w.write(
        "flow.json",
        r#"{"name": "flow", "steps": [
            {"step_id": "a", "tool_name": "say", "parameters": {"x": 1}},
            {"step_id": "b", "tool_name": "bad", "depends_on": ["a"]}
        ]}"#,
    );
    // Temp files of checkpoint writers: one of a process that is gone, one of a live one.
    std::fs::create_dir_all(w.path(".patterns/runs")).unwrap();
    w.write(".patterns/runs/.r0.json.2147483646.tmp", "{");
    let live = format!(".patterns/runs/.r0.json.{}.tmp", std::process::id());
    w.write(&live, "{");
    // No checkpoint yet: nothing to list, and that is not an error.
    let empty = crate::common::json_of(w.patterns().args(["run", "--list", "--json"]));
    assert_eq!(empty, serde_json::json!([]));
    w.patterns()
        .args([
            "run",
            "flow.json",
            "--tools",
            "tools.toml",
            "--run-id",
            "r1",
        ])
        .assert()
        .code(1);
    assert!(
        !w.path(".patterns/runs/.r0.json.2147483646.tmp").exists(),
        "swept"
    );
    assert!(w.path(&live).exists(), "a live writer's temp file is kept");
    let runs = crate::common::json_of(w.patterns().args(["run", "--list", "--json"]));
    assert_eq!(runs[0]["run_id"], "r1");
    assert_eq!(runs[0]["workflow"], "flow");
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(
        runs[0]["finished"], 1,
        "a failed step is run again: not finished"
    );
    assert_eq!(runs[0]["failed"], 1);
    assert_eq!(runs[0]["steps"], 2);
    let table = crate::common::run_ok(w.patterns().args(["run", "--list"]));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("r1") && table.contains("1/2 (1 failed)"),
        "{table}"
    );
    // A resume while another process holds the run (here: this test) is refused; a lock file
    // nobody holds (its process gone) is no obstacle.
    let held = std::fs::File::create(w.path(".patterns/runs/r1.lock")).unwrap();
    held.try_lock().unwrap();
    w.patterns()
        .args(["run", "--resume", "r1", "--tools", "tools.toml"])
        .assert()
        .code(2)
        .stderr(contains("run r1 is running in another process"));
    drop(held);
    w.patterns()
        .args(["run", "--resume", "r1", "--tools", "tools.toml"])
        .assert()
        .code(1)
        .stderr(contains("workflow 'flow' failed"));
}

#[test]
fn the_same_session_id_days_apart_in_two_files_is_warned_about_or_kept_apart() {
    let w = Workdir::new();
    let day = |date: &str| {
        let mut csv = String::from("session_id,timestamp,tool\n");
        for s in 1..=3 {
            csv.push_str(&format!(
                "sess-{s},{date}T09:00:0{s}Z,open\nsess-{s},{date}T09:00:1{s}Z,read\n"
            ));
        }
        csv
    };
    w.write("monday.csv", day("2026-01-05"));
    w.write("tuesday.csv", day("2026-01-13"));
    let out = crate::common::run_ok(w.patterns().args([
        "mine",
        "monday.csv",
        "tuesday.csv",
        "--no-write",
        "--json",
        "--min-support",
        "3",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("3 session ids have calls in two files more than a day apart (e.g. sess-"),
        "{stderr}"
    );
    assert!(stderr.contains("give --session-per-file"), "{stderr}");
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(merged["input"]["sessions"], 3);
    let apart = crate::common::run_ok(w.patterns().args([
        "mine",
        "monday.csv",
        "tuesday.csv",
        "--no-write",
        "--json",
        "--min-support",
        "3",
        "--session-per-file",
    ]));
    assert!(!String::from_utf8_lossy(&apart.stderr).contains("a day apart"));
    let apart: serde_json::Value = serde_json::from_slice(&apart.stdout).unwrap();
    assert_eq!(apart["input"]["sessions"], 6);
    assert_eq!(apart["patterns"][0]["support"], 6);
}

#[test]
fn tool_output_is_capped_and_a_grandchild_holding_stdout_does_not_hang_a_step() {
    let w = Workdir::new();
    w.write(
        "tools.toml",
        r#"
[tools.flood]
command = ["sh", "-c", "head -c 80000000 /dev/zero"]
[tools.detach]
command = ["sh", "-c", "sleep 100 & echo '{\"ok\": 1}'"]
"#,
    );
    w.write(
        "flood.json",
        r#"{"name": "flood", "steps": [{"step_id": "a", "tool_name": "flood"}]}"#,
    );
    w.write(
        "detach.json",
        r#"{"name": "detach", "steps": [{"step_id": "a", "tool_name": "detach"}]}"#,
    );
    w.patterns()
        .args(["run", "flood.json", "--tools", "tools.toml"])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .code(1)
        .stdout(contains(
            "printed more than 64 MB on stdout; it was stopped",
        ));
    // Without the fix this waits for the background sleep (100 s) and the timeout fails it.
    let out = w
        .patterns()
        .args(["run", "detach.json", "--tools", "tools.toml", "--json"])
        .timeout(std::time::Duration::from_secs(50))
        .assert()
        .success();
    let state: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        state["steps"]["a"]["result"],
        serde_json::json!({"ok": 1}),
        "{state}"
    );
}

#[test]
fn planning_a_long_chain_takes_memory_linear_in_its_steps() {
    // 30,000 steps, each reading the one before and the last reading the first: the table of
    // every step's ancestors this once needed would hold 450 million entries (> 12 GB); the
    // recursion of the cycle check and of the levels would overflow the stack.
    let w = Workdir::new();
    let n = 30_000;
    let steps: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut step = serde_json::json!({"step_id": format!("s{i}"), "tool_name": "say"});
            if i > 0 {
                step["depends_on"] = serde_json::json!([format!("s{}", i - 1)]);
                step["parameters"] = serde_json::json!({"prev": format!("{{{{s{}.x}}}}", i - 1)});
            }
            if i == n - 1 {
                step["parameters"]["first"] = serde_json::json!("{{s0.x}}");
            }
            step
        })
        .collect();
    w.write(
        "long.json",
        serde_json::json!({"name": "long", "steps": steps}).to_string(),
    );
    w.write("tools.toml", "[tools.say]\nbuiltin = \"echo\"\n");
    let out = crate::common::run_ok(w.patterns().args([
        "run",
        "long.json",
        "--tools",
        "tools.toml",
        "--dry-run",
    ]));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("s29999"), "the plan lists the last step");
    w.patterns()
        .args(["library", "validate", "long.json"])
        .assert()
        .success();
}

#[test]
fn min_support_1_on_a_huge_session_is_refused_before_it_takes_gigabytes() {
    // One session of 100,000 calls of 20 tools: with support 1 every chain of up to 6 of them
    // is frequent (21 million of them, 19 GB once).
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool\n");
    let mut x: u64 = 1;
    for i in 0..100_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        csv.push_str(&format!("s1,{i},t{}\n", (x >> 33) % 20));
    }
    w.write("one.csv", csv);
    w.patterns()
        .args([
            "mine",
            "one.csv",
            "--min-support",
            "1",
            "--keep",
            "all",
            "--no-write",
        ])
        .assert()
        .code(2)
        .stderr(contains(
            "more than 5 million frequent chains (support 1, up to 6 tools, gap 2)",
        ))
        .stderr(contains(
            "raise --min-support, or lower --max-len or --max-gap",
        ));
    // The default (the distinct workflows) needs no such guard.
    w.patterns()
        .args(["mine", "one.csv", "--min-support", "1", "--no-write"])
        .assert()
        .success();
}

#[test]
fn files_in_a_folder_that_are_not_logs_are_passed_over_and_said() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path("logs/project")).unwrap();
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..3 {
        csv.push_str(&format!("s{s},1,open\ns{s},2,read\n"));
    }
    w.write("logs/project/calls.csv", csv);
    w.write("logs/settings.json", r#"{"theme": "dark"}"#);
    w.write("logs/project/notes.csv", "a,b\n1,2\n");
    let out = crate::common::run_ok(w.patterns().args([
        "mine",
        "logs",
        "--no-write",
        "--min-support",
        "3",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("passed over 2 entries of the folders given:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("settings.json: no session_id column"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("open → read"));
    // Named on the command line, such a file is an error; a folder with no log either.
    w.patterns()
        .args(["mine", "logs/settings.json", "--no-write"])
        .assert()
        .code(2);
    std::fs::remove_file(w.path("logs/project/calls.csv")).unwrap();
    w.patterns()
        .args(["mine", "logs", "--no-write"])
        .assert()
        .code(2)
        .stderr(contains("none of the files found is a log; the first: "));
}

/// Polars reads local files as object storage, whose paths refuse `..`: a path through `..`
/// (and one with spaces, `#` and `%`) is read all the same, and named as given.
#[test]
fn paths_with_dot_dot_and_odd_characters_are_read() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path("odd dir #1/sub")).unwrap();
    let log = w.path("odd dir #1/100% log.csv");
    std::fs::copy(data("sample.csv"), &log).unwrap();
    let through = w.path("odd dir #1/sub/../100% log.csv");
    let out = w
        .patterns()
        .args(["mine", "--no-write"])
        .arg(&through)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("27,618 rows (0 skipped) · 3,000 sessions"),
        "{text}"
    );
    let bad = w.write(
        "odd dir #1/bad.csv",
        "session_id,timestamp,tool\ns1,never,a\n",
    );
    let given = w.path("odd dir #1/sub/../bad.csv");
    assert_eq!(bad.exists(), given.exists());
    w.patterns()
        .args(["mine", "--no-write", "--strict"])
        .arg(&given)
        .assert()
        .code(2)
        .stderr(contains(format!("{}:2", given.display())));
}

/// A library holding one template whose tool names carry a line break, an escape code, quotes and
/// Mermaid directives, as a log can give them.
fn hostile_names(w: &Workdir) {
    let t = json!({"name": "odd", "description": "evil\u{1b}]0;title\u{7}",
        "steps": [
            {"step_id": "a", "tool_name": "x\n%%{init: {}}%%\nclick s_a call alert()", "parameters": {"k\u{1b}[2J": 1}},
            {"step_id": "b", "tool_name": "it's \u{1b}[31mred\"", "depends_on": ["a"],
             "condition": "{{a.success}} == '\u{1b}[2J'"}]});
    std::fs::create_dir_all(w.path("lib")).unwrap();
    w.write("lib/odd.json", t.to_string());
}

#[test]
fn names_from_logs_are_shown_not_obeyed() {
    let w = Workdir::new();
    hostile_names(&w);
    let show = run_ok(
        w.patterns()
            .args(["library", "show", "odd", "--library", "lib"]),
    );
    let unbound = w
        .patterns()
        .args(["run", "odd", "--library", "lib"])
        .assert()
        .code(2);
    w.write("tools.toml", "[tools.kept]\nbuiltin = \"echo\"\n");
    let init = run_ok(
        w.patterns()
            .args(["tools", "init", "odd", "--library", "lib"]),
    );
    let dry = run_ok(
        w.patterns()
            .args(["run", "odd", "--library", "lib", "--dry-run"]),
    );
    for (what, text) in [
        ("show", show.stdout),
        ("dry run", dry.stdout),
        ("tools init", init.stderr),
        ("an error", unbound.get_output().stderr.clone()),
    ] {
        let text = String::from_utf8(text).unwrap();
        assert!(!text.contains('\u{1b}'), "{what}: {text:?}");
        assert!(text.contains("\\u{1b}"), "{what}: {text:?}");
    }
    // The stubs read back as TOML, the binding written by hand with them.
    let toml: toml::Table = toml::from_str(&std::fs::read_to_string(w.path("tools.toml")).unwrap())
        .expect("tools.toml parses");
    let tools = toml["tools"].as_table().unwrap();
    assert!(tools.contains_key("kept"));
    assert!(tools.contains_key("x\n%%{init: {}}%%\nclick s_a call alert()"));
    assert!(tools.contains_key("it's \u{1b}[31mred\""));
    // A Mermaid label cannot start a line or end its quotes.
    let mermaid = run_ok(
        w.patterns()
            .args(["library", "export", "odd", "--library", "lib"]),
    );
    let mermaid = String::from_utf8(mermaid.stdout).unwrap();
    for line in mermaid.lines() {
        assert!(
            line.starts_with("flowchart") || line.starts_with("  "),
            "{mermaid}"
        );
    }
    assert!(mermaid.contains("it#39;s #27;[31mred#quot;"), "{mermaid}");
    let dot = run_ok(w.patterns().args([
        "library",
        "export",
        "odd",
        "--library",
        "lib",
        "--format",
        "dot",
    ]));
    let dot = String::from_utf8(dot.stdout).unwrap();
    assert!(!dot.contains('\u{1b}'), "{dot}");
    assert!(dot.contains("x\\n%%{init: {}}%%\\nclick"), "{dot}");
}

#[test]
fn outputs_are_written_through_what_is_not_a_regular_file() {
    let w = Workdir::new();
    let log = data("sample.csv");
    // A FIFO: the reader gets the page, the FIFO stays a FIFO.
    let fifo = w.path("page.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    run_ok(w.patterns().arg("report").arg(&log).arg("-o").arg(&fifo));
    let page = reader.join().unwrap();
    assert!(
        page.starts_with("<!doctype html>"),
        "{}",
        &page[..page.len().min(80)]
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // A link to a regular file: the file gets the page, the link stays a link.
    w.write("real.html", "old");
    std::os::unix::fs::symlink(w.path("real.html"), w.path("link.html")).unwrap();
    run_ok(
        w.patterns()
            .arg("report")
            .arg(&log)
            .args(["-o", "link.html"]),
    );
    assert!(w.path("link.html").is_symlink());
    assert!(
        std::fs::read_to_string(w.path("real.html"))
            .unwrap()
            .starts_with("<!doctype html>")
    );
}

/// A 12-row log in `logs/`, with `logs/sub/up` a link back to `logs`, `logs/sub/again` a second
/// one, a dangling link, a link to the log under another name, and a FIFO named like a log.
#[test]
fn a_folder_walk_reads_each_regular_file_once_and_says_what_it_passed_over() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path("logs/sub")).unwrap();
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..4 {
        csv.push_str(&format!("s{s},1,open\ns{s},2,read\ns{s},3,close\n"));
    }
    w.write("logs/calls.csv", csv);
    let link = |to: &str, at: &str| std::os::unix::fs::symlink(to, w.path(at)).unwrap();
    link("..", "logs/sub/up");
    link("../..", "logs/sub/again");
    link("nowhere.csv", "logs/sub/dangling.csv");
    link("../calls.csv", "logs/sub/same.csv");
    assert!(
        Command::new("mkfifo")
            .arg(w.path("logs/sub/pipe.csv"))
            .status()
            .unwrap()
            .success()
    );
    let out = w
        .patterns()
        .args(["mine", "logs", "--json", "--no-write", "--min-support", "4"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["input"]["files"].as_array().unwrap().len(),
        1,
        "{}",
        json["input"]
    );
    assert_eq!(json["input"]["rows"], 12);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for said in [
        "logs/sub/up: a link to a folder read already",
        "logs/sub/dangling.csv: No such file or directory",
        "logs/sub/pipe.csv: a FIFO; only regular files are read in folders",
    ] {
        assert!(stderr.contains(said), "{said}\nin\n{stderr}");
    }
}

#[test]
fn a_library_reads_regular_files_only_and_within_its_size_limit() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.path("lib")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(w.path("lib/pipe.json"))
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("/dev/zero", w.path("lib/zero.json")).unwrap();
    let out = w
        .patterns()
        .args(["library", "list", "--library", "lib"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for file in ["pipe.json", "zero.json"] {
        assert!(
            stderr.contains(&format!("lib/{file}: not a regular file")),
            "{file}\nin\n{stderr}"
        );
    }
    // `run FILE` takes a FIFO, but not more than the library's limit from anything.
    let out = w
        .patterns()
        .args(["run", "lib/zero.json", "--dry-run"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("over 10485760 bytes"),
        "{out:?}"
    );
}

#[test]
fn a_decompression_bomb_is_refused_at_its_limit() {
    let w = Workdir::new();
    // 300 gzip members of 1 MB of newlines each: 300 MB from about 300 KB.
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut member, &vec![b'\n'; 1 << 20]).unwrap();
    let member = member.finish().unwrap();
    w.write("bomb.csv.gz", member.repeat(300));
    let out = w
        .patterns()
        .args(["mine", "bomb.csv.gz", "--no-write"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("decompresses to more than 256 MB, over 200× its"),
        "{stderr}"
    );
}

#[test]
fn a_library_that_cannot_be_written_fails_after_the_answer_is_printed() {
    let w = Workdir::new();
    w.write("lib", "a file where the library folder should be");
    let out = w
        .patterns()
        .arg("mine")
        .arg(data("sample.csv"))
        .args(["--library", "lib", "--top", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("list_issues"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not update the library 'lib'"),
        "{out:?}"
    );
}

#[test]
fn a_session_or_tool_that_is_not_text_is_shown_in_the_message() {
    let w = Workdir::new();
    let mut lines = String::new();
    for i in 0..5 {
        lines.push_str(&format!(
            "{{\"session_id\": \"s{i}\", \"timestamp\": 1, \"tool\": \"a\"}}\n\
             {{\"session_id\": {{\"id\": {i}}}, \"timestamp\": 2, \"tool\": \"b\"}}\n\
             {{\"session_id\": \"s{i}\", \"timestamp\": 3, \"tool\": [\"c\"]}}\n"
        ));
    }
    w.write("odd.jsonl", lines);
    let out = run_ok(w.patterns().args(["mine", "odd.jsonl", "--no-write"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("odd.jsonl:2: no session id in column 'session_id': \"{\\\"id\\\":0}\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("odd.jsonl:3: no tool name in column 'tool': \"[\\\"c\\\"]\""),
        "{stderr}"
    );
}

#[test]
fn a_csv_cut_short_mid_row_skips_that_row_only() {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..5 {
        csv.push_str(&format!("s{s},1,a\ns{s},2,b\n"));
    }
    for (name, tail) in [("quote.csv", "s6,1,\"ab"), ("fields.csv", "s6,1")] {
        w.write(name, format!("{csv}{tail}"));
        let out = run_ok(w.patterns().args(["mine", name, "--no-write", "--json"]));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["input"]["rows"], 11, "{name}");
        assert_eq!(json["input"]["skipped"], 1, "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains(&format!("{name}:12: the last row is cut short")),
            "{out:?}"
        );
    }
    // A whole last row without a line end is a row like any other.
    w.write("whole.csv", format!("{csv}s6,1,a"));
    let json =
        crate::common::json_of(
            w.patterns()
                .args(["mine", "whole.csv", "--no-write", "--json"]),
        );
    assert_eq!(
        (
            json["input"]["rows"].as_u64(),
            json["input"]["skipped"].as_u64()
        ),
        (Some(11), Some(0))
    );
}

#[test]
fn a_transcript_time_that_does_not_parse_is_shown_in_the_message() {
    let w = Workdir::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts/claude/proj/s1.jsonl");
    let text = std::fs::read_to_string(src).unwrap().replacen(
        "2026-01-05T09:00:01.000Z",
        "yesterday at noon",
        1,
    );
    w.write("s1.jsonl", text);
    let out = run_ok(
        w.patterns()
            .args(["mine", "s1.jsonl", "--no-write", "--min-support", "1"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("timestamp does not parse in column 'timestamp': \"yesterday at noon\""),
        "{stderr}"
    );
}
