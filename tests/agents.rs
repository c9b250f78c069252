//! Agent transcripts and traces (issue "Read agent transcripts and traces as users have them"):
//! every format reads into the same calls as the flat table of them, and the awkward cases of
//! the hand-made fixtures in `tests/transcripts/` (written by its `make_fixtures.py`).

use std::path::{Path, PathBuf};

use crate::common::{Workdir, json_of, run_ok};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(name)
}

/// The templates a library folder holds, by file name, without the model usage they measured
/// (which only transcripts and traces have).
fn library(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let mut t: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let metadata = t["metadata"].as_object_mut().unwrap();
            metadata.remove("turns_saved");
            metadata.remove("tokens_saved");
            (p.file_name().unwrap().to_string_lossy().into_owned(), t)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_format_reads_into_the_same_calls_as_the_flat_table() {
    let w = Workdir::new();
    let mine = |file: &str, lib: &str| {
        let mut json = json_of(w.patterns().args([
            "mine",
            file,
            "--library",
            lib,
            "--json",
            "--min-support",
            "10",
        ]));
        // What differs by design: the file names and what was read of each kind, and the model
        // usage that transcripts and traces record (and a table of calls has not).
        json["input"]["files"] = serde_json::Value::Null;
        json["input"]["formats"] = serde_json::Value::Null;
        let measured = ["claude-code", "codex", "otlp", "langfuse"]
            .iter()
            .any(|k| file.starts_with(k));
        for p in json["patterns"].as_array_mut().unwrap() {
            for field in ["turns_saved", "tokens_saved"] {
                let usage = p.as_object_mut().unwrap().remove(field).unwrap();
                assert_eq!(usage.is_null(), !measured, "{file} {field}: {usage}");
            }
        }
        json
    };
    let gen_args = [
        "generate",
        "--sessions",
        "300",
        "--seed",
        "5",
        "--noise",
        "1",
    ];
    run_ok(w.patterns().args(gen_args).args(["--output", "flat.csv"]));
    let flat = mine("flat.csv", "lib-flat");
    let flat_library = library(&w.path("lib-flat"));
    assert!(flat["patterns"].as_array().unwrap().len() >= 5, "{flat}");
    // Data flow is there to compare: some step binds a field of an earlier one.
    let templates = serde_json::to_string(&flat_library).unwrap();
    assert!(templates.contains("{{"), "no binding in {templates}");
    for kind in ["claude-code", "codex", "otlp", "langfuse", "xes"] {
        let file = format!("{kind}.log");
        run_ok(
            w.patterns()
                .args(gen_args)
                .args(["--as", kind, "--output", &file]),
        );
        let got = mine(&file, &format!("lib-{kind}"));
        let formats = json_of(w.patterns().args(["mine", &file, "--json", "--no-write"]));
        assert_eq!(formats["input"]["formats"][0]["format"], kind);
        assert_eq!(formats["input"]["formats"][0]["sessions"], 300, "{kind}");
        if kind == "xes" {
            // XES carries no arguments or results: the same chains and figures, no data flow.
            let chains = |j: &serde_json::Value| crate::common::chains(j);
            assert_eq!(chains(&got), chains(&flat), "{kind}");
            for (a, b) in got["patterns"]
                .as_array()
                .unwrap()
                .iter()
                .zip(flat["patterns"].as_array().unwrap())
            {
                for field in ["support", "success_rate", "avg_duration_ms", "funnel"] {
                    assert_eq!(a[field], b[field], "{kind} {field}");
                }
            }
            continue;
        }
        assert_eq!(
            got, flat,
            "{kind}: mine --json differs from the flat table's"
        );
        // Compressed (gzip, zstd), the same.
        let gz = format!("{file}.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &std::fs::read(w.path(&file)).unwrap()).unwrap();
        w.write(&gz, enc.finish().unwrap());
        assert_eq!(mine(&gz, &format!("lib-{kind}-gz")), flat, "{kind}.gz");
        let zst = format!("{file}.zst");
        w.write(
            &zst,
            zstd::encode_all(&std::fs::read(w.path(&file)).unwrap()[..], 3).unwrap(),
        );
        assert_eq!(mine(&zst, &format!("lib-{kind}-zst")), flat, "{kind}.zst");
        assert_eq!(
            library(&w.path(&format!("lib-{kind}"))),
            flat_library,
            "{kind}: templates differ from the flat table's"
        );
    }
}

#[test]
fn claude_code_transcripts_pair_calls_and_count_what_they_cannot() {
    let w = Workdir::new();
    let dir = fixture("claude");
    let out =
        run_ok(
            w.patterns()
                .arg("mine")
                .arg(&dir)
                .args(["--min-support", "1", "--library", "lib"]),
        );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Three files: a session, its subagent's (a session of its own) and a resumed session
    // that starts with the first one's history (whose calls count once); the call cut off is
    // kept (and said), the truncated last line skipped with its line.
    assert!(
        stderr.contains(
            "read 3 Claude Code files: 3 sessions (1 of them subagents), 6 calls, 1 unpaired, 1 skipped"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: 2 Claude Code calls found again in a later file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 Claude Code call got no result"),
        "{stderr}"
    );
    assert!(
        stderr.contains("s1.jsonl:10: the line is cut short"),
        "{stderr}"
    );
    let json = json_of(w.patterns().arg("mine").arg(&dir).args([
        "--min-support",
        "1",
        "--json",
        "--no-write",
    ]));
    let formats = &json["input"]["formats"][0];
    assert_eq!(formats["subagent_sessions"], 1);
    assert_eq!(formats["unpaired"], 1);
    assert_eq!(formats["repeated"], 2);
    // The repeated line of a split message is one call; the MCP name is normalised; Bash is
    // refined by its command; the parallel calls of one message are both there. (Every chain,
    // for the calls that the one workflow of the session leaves as an extra.)
    let every = crate::common::chains(&json_of(w.patterns().arg("mine").arg(&dir).args([
        "--min-support",
        "1",
        "--json",
        "--no-write",
        "--keep",
        "all",
    ])));
    assert!(
        every.contains(&"Read → list_issues".to_string()),
        "{every:?}"
    );
    let chains = crate::common::chains(&json);
    assert!(
        chains.contains(&"Read → Bash:cargo test → Edit".to_string()),
        "{chains:?}"
    );
    assert_eq!(json["input"]["calls"], 6);
    // The template calls the real tool, with the command as a constant parameter.
    let t: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.path("lib/read-bash_cargo_test-edit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(t["steps"][1]["tool_name"], "Bash");
    assert_eq!(
        t["steps"][1]["parameters"]["command"],
        "cd /w && cargo test -p app 2>&1 | tail"
    );
    // The failed list_issues (is_error) and its result text.
    let read = json["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"][0] == "Read")
        .unwrap();
    assert_eq!(read["success_rate"], 0.0);
    // Without refinement, Bash is Bash.
    let plain = crate::common::chains(&json_of(w.patterns().arg("mine").arg(&dir).args([
        "--min-support",
        "1",
        "--json",
        "--no-write",
        "--refine",
        "none",
    ])));
    assert!(
        plain.contains(&"Read → Bash → Edit".to_string()),
        "{plain:?}"
    );
}

#[test]
fn codex_success_comes_from_exit_codes_or_is_assumed_and_said() {
    let w = Workdir::new();
    let out = run_ok(w.patterns().arg("mine").arg(fixture("codex")).args([
        "--min-support",
        "1",
        "--json",
        "--no-write",
    ]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 Codex call with no exit code in the output; counted as succeeded"),
        "{stderr}"
    );
    assert_eq!(json["input"]["formats"][0]["assumed_success"], 1);
    // The current rollout and one of the first versions (no wrapper, no times of its own), whose
    // failed build and its repeat with the same arguments are one call that was retried.
    assert_eq!(json["input"]["sessions"], 2);
    assert_eq!(json["input"]["formats"][0]["calls"], 5);
    assert_eq!(json["input"]["calls_after_collapsing"], 4);
    // git status (exit 0), cargo build (exit 101), apply_patch (no exit code: succeeded).
    let p = &json["patterns"][0];
    assert_eq!(
        p["pattern"],
        serde_json::json!(["shell:git status", "shell:cargo build", "apply_patch"])
    );
    assert_eq!(p["success_rate"], 0.0);
    let all = json_of(w.patterns().arg("mine").arg(fixture("codex")).args([
        "--min-support",
        "1",
        "--json",
        "--no-write",
        "--keep",
        "all",
    ]));
    let git = all["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"] == serde_json::json!(["shell:git status", "shell:cargo build"]))
        .expect("git status then cargo build");
    assert_eq!(git["success_rate"], 0.0, "cargo build failed");
}

#[test]
fn otlp_traces_in_end_order_with_base64_ids_are_one_conversation() {
    let w = Workdir::new();
    let json = json_of(
        w.patterns()
            .arg("mine")
            .arg(fixture("trace.otlp.json"))
            .args(["--min-support", "1", "--json", "--library", "lib"]),
    );
    // The agent span (hex) and the tool spans (base64) are one trace, whose conversation id is
    // on the agent span only; the tool spans are in start order, not file order.
    assert_eq!(json["input"]["sessions"], 1);
    assert_eq!(
        json["patterns"][0]["pattern"],
        serde_json::json!(["search", "fetch"])
    );
    assert_eq!(json["patterns"][0]["success_rate"], 0.0, "search failed");
    assert_eq!(json["patterns"][0]["avg_duration_ms"], 2000.0);
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path("lib/search-fetch.json")).unwrap()).unwrap();
    assert_eq!(t["steps"][1]["parameters"], serde_json::json!({"url": "u"}));
    // OpenInference's tool spans, one request per line, are read too.
    let oi = json_of(
        w.patterns()
            .arg("mine")
            .arg(fixture("openinference.jsonl"))
            .args(["--min-support", "1", "--json", "--no-write"]),
    );
    assert_eq!(oi["input"]["sessions"], 1);
    assert_eq!(
        oi["patterns"][0]["pattern"],
        serde_json::json!(["lookup", "answer"])
    );
    // Forcing another format is honoured (and finds no calls).
    w.patterns()
        .arg("mine")
        .arg(fixture("trace.otlp.json"))
        .args(["--format", "codex", "--no-write"])
        .assert()
        .code(2);
}

#[test]
fn a_langfuse_csv_export_reads_as_its_jsonl() {
    let w = Workdir::new();
    run_ok(w.patterns().args([
        "generate",
        "--sessions",
        "200",
        "--seed",
        "9",
        "--as",
        "langfuse",
        "--output",
        "obs.jsonl",
    ]));
    let columns = [
        "id",
        "traceId",
        "sessionId",
        "type",
        "name",
        "startTime",
        "endTime",
        "input",
        "output",
        "level",
        "usageDetails",
    ];
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(columns).unwrap();
    for line in std::fs::read_to_string(w.path("obs.jsonl"))
        .unwrap()
        .lines()
    {
        let o: serde_json::Value = serde_json::from_str(line).unwrap();
        csv.write_record(columns.map(|c| match &o[c] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            v => v.to_string(),
        }))
        .unwrap();
    }
    w.write("obs.csv", csv.into_inner().unwrap());
    let mine = |file: &str| {
        let mut json = json_of(w.patterns().args([
            "mine",
            file,
            "--json",
            "--no-write",
            "--min-support",
            "10",
        ]));
        json["input"]["files"] = serde_json::Value::Null;
        json
    };
    let csv = mine("obs.csv");
    assert_eq!(csv["input"]["formats"][0]["format"], "langfuse");
    assert!(!csv["patterns"].as_array().unwrap().is_empty());
    assert_eq!(csv, mine("obs.jsonl"));
}
