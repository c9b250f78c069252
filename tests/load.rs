//! Loading: formats, column detection, ordering, and every kind of bad input.

use predicates::prelude::*;
use predicates::str::contains;
use proptest::prelude::*;

use crate::common::{Workdir, chains, json_of};

const GOOD: &str = "\
session_id,timestamp,tool,success
s1,2026-01-01T10:00:02Z,b,true
s1,2026-01-01T10:00:01Z,a,true
s2,2026-01-01T11:00:00Z,a,1
s2,2026-01-01T11:00:05Z,b,0
";

fn mine_json(w: &Workdir, args: &[&str]) -> serde_json::Value {
    json_of(
        w.patterns()
            .arg("mine")
            .args(args)
            .args(["--json", "--min-support", "1"]),
    )
}

#[test]
fn calls_are_ordered_by_timestamp_within_sessions() {
    let w = Workdir::new();
    w.write("log.csv", GOOD);
    let json = mine_json(&w, &["log.csv"]);
    assert_eq!(chains(&json), ["a → b"]);
    assert_eq!(json["patterns"][0]["support"], 2);
    assert_eq!(json["patterns"][0]["success_rate"], 0.5);
    assert_eq!(json["input"]["sessions"], 2);
    assert_eq!(json["input"]["rows"], 4);
}

#[test]
fn equal_timestamps_keep_input_order() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session,ts,tool\nx,5,c\nx,5,a\nx,5,b\ny,1,c\ny,1,a\ny,1,b\n",
    );
    let json = mine_json(&w, &["log.csv", "--min-len", "3"]);
    assert_eq!(chains(&json), ["c → a → b"]);
}

#[test]
fn jsonl_parquet_stdin_and_aliases_give_the_same_result() {
    let w = Workdir::new();
    w.write(
        "log.jsonl",
        concat!(
            r#"{"trace_id": 1, "time": 1767261602, "tool_name": "b", "ok": true}"#,
            "\n",
            r#"{"trace_id": 1, "time": 1767261601, "tool_name": "a", "ok": true}"#,
            "\n",
            "\n",
            r#"{"trace_id": 2, "time": 1767265200, "tool_name": "a", "ok": true}"#,
            "\n",
            r#"{"trace_id": 2, "time": 1767265205, "tool_name": "b", "ok": false}"#,
            "\n",
        ),
    );
    let jsonl = mine_json(&w, &["log.jsonl"]);
    assert_eq!(chains(&jsonl), ["a → b"]);
    assert_eq!(jsonl["patterns"][0]["success_rate"], 0.5);

    let stdin = json_of(
        w.patterns()
            .args(["mine", "-", "--json", "--min-support", "1"])
            .write_stdin(GOOD),
    );
    assert_eq!(stdin["patterns"], jsonl["patterns"]);
}

#[test]
fn several_files_and_globs_are_one_log() {
    let w = Workdir::new();
    w.write("a-1.csv", "session_id,timestamp,tool\ns1,1,a\ns1,2,b\n");
    w.write(
        "a-2.csv",
        "session_id,timestamp,tool\ns1,3,c\ns2,1,a\ns2,2,b\n",
    );
    let json = mine_json(&w, &["a-*.csv", "--keep", "all"]);
    assert_eq!(json["input"]["files"].as_array().unwrap().len(), 2);
    assert_eq!(json["input"]["sessions"], 2);
    // s1 spans both files: a → b → c is one session's chain.
    assert!(chains(&json).contains(&"a → b → c".to_string()), "{json}");
}

#[test]
fn missing_success_column_warns_and_counts_all_as_succeeded() {
    let w = Workdir::new();
    w.write("log.csv", "session_id,timestamp,tool\ns1,1,a\ns1,2,b\n");
    w.patterns()
        .args(["mine", "log.csv", "--min-support", "1"])
        .assert()
        .success()
        .stderr(contains(
            "log.csv has no success column; every call in it counts as succeeded",
        ))
        .stdout(contains("100.0%"));
}

#[test]
fn error_column_means_empty_is_success() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool,error\ns1,1,a,\ns1,2,b,timeout\ns2,1,a,\ns2,2,b,\n",
    );
    let json = mine_json(&w, &["log.csv"]);
    assert_eq!(json["patterns"][0]["success_rate"], 0.5);
}

#[test]
fn bad_rows_are_skipped_and_reported_with_file_line_and_value() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool,success\n\
         s1,1,a,1\n\
         s1,yesterday,b,1\n\
         ,3,c,1\n\
         s1,4,,1\n\
         s1,\"5\",d,maybe\n\
         s1,6,b,1\n",
    );
    w.patterns()
        .args(["mine", "log.csv", "--min-support", "1"])
        .assert()
        .success()
        .stderr(contains("skipped 4 bad rows of 6"))
        .stderr(contains(
            "log.csv:3: timestamp does not parse in column 'timestamp': \"yesterday\"",
        ))
        .stderr(contains("log.csv:4: no session id in column 'session_id'"))
        .stderr(contains("log.csv:5: no tool name in column 'tool'"))
        .stderr(contains(
            "log.csv:6: success value does not parse in column 'success': \"maybe\"",
        ))
        .stdout(contains("a → b"));
}

#[test]
fn line_numbers_count_quoted_newlines() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool,args\ns1,1,a,\"{\n\n}\"\ns1,never,b,{}\n",
    );
    w.patterns()
        .args(["mine", "log.csv", "--min-support", "1"])
        .assert()
        .success()
        .stderr(contains("log.csv:5: timestamp does not parse"));
}

#[test]
fn only_the_first_bad_rows_are_listed() {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool\ngood,1,a\n");
    for i in 0..12 {
        csv.push_str(&format!("s{i},bad{i},a\n"));
    }
    w.write("log.csv", csv);
    let out = w.patterns().args(["mine", "log.csv"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("timestamp does not parse").count(),
        5,
        "{stderr}"
    );
    assert!(stderr.contains("… and 7 more"), "{stderr}");
}

#[test]
fn strict_stops_at_the_first_bad_row_with_exit_code_2() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool\ns1,1,a\ns1,2,b\ns1,x,c\ns1,y,d\n",
    );
    w.patterns()
        .args(["mine", "log.csv", "--strict"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(contains(
            "log.csv:4: timestamp does not parse in column 'timestamp': \"x\"",
        ))
        .stderr(contains("y").not());
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let w = Workdir::new();
    w.patterns()
        .args(["mine", "nope.csv"])
        .assert()
        .code(2)
        .stderr("error: nope.csv: no such file\n");
}

#[test]
fn a_glob_that_matches_nothing_is_an_error() {
    let w = Workdir::new();
    w.patterns()
        .args(["mine", "logs/*.csv"])
        .assert()
        .code(2)
        .stderr("error: 'logs/*.csv' matches no file\n");
}

#[test]
fn an_empty_file_is_a_one_line_error() {
    let w = Workdir::new();
    w.write("empty.csv", "");
    w.patterns()
        .args(["mine", "empty.csv"])
        .assert()
        .code(2)
        .stderr(contains("empty.csv: the file is empty"));
}

#[test]
fn a_file_without_the_needed_columns_names_what_it_has() {
    let w = Workdir::new();
    w.write("log.csv", "user,when,what\nu,1,x\n");
    w.patterns()
        .args(["mine", "log.csv"])
        .assert()
        .code(2)
        .stderr(contains("log.csv: no session_id column"))
        .stderr(contains(
            "the file has: user, when, what; name it with --session-col",
        ));
}

#[test]
fn column_flags_override_detection() {
    let w = Workdir::new();
    w.write("log.csv", "user,when,what\nu,1,x\nu,2,y\nv,1,x\nv,2,y\n");
    let json = mine_json(
        &w,
        &[
            "log.csv",
            "--session-col",
            "user",
            "--timestamp-col",
            "when",
            "--tool-col",
            "what",
        ],
    );
    assert_eq!(chains(&json), ["x → y"]);
}

#[test]
fn a_binary_file_is_rejected() {
    let w = Workdir::new();
    w.write(
        "blob.csv",
        [0x7f, b'E', b'L', b'F', 0, 1, 2, 3, 0, 0, 0xff, 0xfe],
    );
    w.patterns()
        .args(["mine", "blob.csv"])
        .assert()
        .code(2)
        .stderr(contains("blob.csv: this looks like a binary file"));
}

#[test]
fn a_ragged_csv_row_is_named() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool\ns1,1,a\ns1,2,b,extra,fields\ns1,3,c\n",
    );
    w.patterns()
        .args(["mine", "log.csv"])
        .assert()
        .code(2)
        .stderr(contains(
            "log.csv:3: this row has 5 fields but the header has 3",
        ));
}

#[test]
fn not_parquet_despite_the_name() {
    let w = Workdir::new();
    w.write("log.parquet", "session_id,timestamp,tool\n");
    w.patterns()
        .args(["mine", "log.parquet"])
        .assert()
        .code(2)
        .stderr(contains("log.parquet: cannot read as Parquet"));
}

#[test]
fn bad_flags_are_usage_errors() {
    let w = Workdir::new();
    w.write("log.csv", GOOD);
    for args in [
        &["--min-support", "0"][..],
        &["--min-support", "1.5"],
        &["--max-gap", "-1"],
        &["--keep", "some"],
        &["--min-len", "4", "--max-len", "3"],
    ] {
        w.patterns()
            .arg("mine")
            .arg("log.csv")
            .args(args)
            .assert()
            .code(2);
    }
}

#[test]
fn a_short_csv_row_is_named_too() {
    let w = Workdir::new();
    w.write(
        "log.csv",
        "session_id,timestamp,tool,success\ns1,1,a,1\ns1,2\ns1,3,c,1\n",
    );
    w.patterns()
        .args(["mine", "log.csv"])
        .assert()
        .code(2)
        .stderr(contains(
            "log.csv:3: this row has 2 fields but the header has 4",
        ));
}

#[test]
fn jsonl_bad_rows_have_their_line_numbers() {
    let w = Workdir::new();
    w.write(
        "log.jsonl",
        "{\"session\": \"a\", \"ts\": 1, \"tool\": \"x\"}\n\n{\"session\": \"a\", \"ts\": 2, \"tool\": null}\n",
    );
    w.patterns()
        .args(["mine", "log.jsonl", "--strict"])
        .assert()
        .code(2)
        .stderr(contains("log.jsonl:3: no tool name in column 'tool'"));
}

#[test]
fn parquet_with_native_types_loads() {
    use polars::prelude::*;
    let w = Workdir::new();
    let micros = |s: i64| s * 1_000_000;
    let mut df = df!(
        "session_id" => [7i64, 7, 8, 8],
        "tool" => ["b", "a", "a", "b"],
        "success" => [true, true, true, false],
    )
    .unwrap();
    let ts = Series::new(
        "timestamp".into(),
        [
            micros(1_767_261_602),
            micros(1_767_261_601),
            micros(1_767_265_200),
            micros(1_767_265_205),
        ],
    )
    .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
    .unwrap();
    df.with_column(ts.into()).unwrap();
    let path = w.path("log.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let json = mine_json(&w, &["log.parquet"]);
    assert_eq!(chains(&json), ["a → b"]);
    assert_eq!(json["patterns"][0]["success_rate"], 0.5);
    assert_eq!(json["input"]["sessions"], 2);
}

#[test]
fn mcp_tool_names_are_normalised_on_request() {
    let w = Workdir::new();
    // Two agents: one logs MCP tools as mcp__server__tool, the other by their bare names.
    let log = w.write(
        "mcp.csv",
        "session_id,timestamp,tool\n\
         a,1,mcp__git__git_status\na,2,mcp__git__git_diff_unstaged\na,3,mcp__time__get_current_time\n\
         b,1,git_status\nb,2,git_diff_unstaged\nb,3,mcp__time__get_current_time\n",
    );
    let chains_with = |extra: &[&str]| {
        let out = crate::common::run_ok(
            w.patterns()
                .arg("mine")
                .arg(&log)
                .args([
                    "--min-support",
                    "2",
                    "--json",
                    "--no-write",
                    "--keep",
                    "all",
                ])
                .args(extra),
        );
        crate::common::chains(&serde_json::from_slice(&out.stdout).unwrap())
    };
    assert!(
        chains_with(&[]).is_empty(),
        "without it the two spellings differ"
    );
    let mut merged = chains_with(&["--normalize-mcp"]);
    merged.sort();
    assert_eq!(
        merged,
        [
            "git_diff_unstaged → get_current_time",
            "git_status → get_current_time",
            "git_status → git_diff_unstaged",
            "git_status → git_diff_unstaged → get_current_time",
        ]
    );
    assert_eq!(
        chains_with(&["--normalize-mcp", "server.tool"]),
        Vec::<String>::new(),
        "server.tool keeps the bare names apart from the MCP ones"
    );
}

#[test]
fn durations_are_found_by_their_usual_names_or_given_by_flag() {
    let w = Workdir::new();
    let log = |col: &str| {
        format!(
            "session_id,timestamp,tool,{col}\n{}",
            (0..6)
                .map(|s| format!("s{s},1,a,100\ns{s},2,b,250\n"))
                .collect::<String>()
        )
    };
    for col in ["duration_ms", "duration", "latency_ms"] {
        w.write("log.csv", log(col));
        let json = mine_json(&w, &["log.csv"]);
        assert_eq!(
            json["patterns"][0]["avg_duration_ms"], 350.0,
            "column {col}"
        );
    }
    // Another name: only with --duration-col.
    w.write("log.csv", log("took"));
    let json = mine_json(&w, &["log.csv"]);
    assert!(
        json["patterns"][0].get("avg_duration_ms").is_none(),
        "{json}"
    );
    let json = mine_json(&w, &["log.csv", "--duration-col", "took"]);
    assert_eq!(json["patterns"][0]["avg_duration_ms"], 350.0);
}

#[test]
fn parquet_and_tsv_are_detected_by_content_whatever_the_name() {
    let w = Workdir::new();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dictionary.parquet");
    let named = mine_json(&w, &[fixture.to_str().unwrap()]);
    assert!(chains(&named).contains(&"a → b → c".to_string()), "{named}");
    std::fs::copy(&fixture, w.path("export.dat")).unwrap();
    let unnamed = mine_json(&w, &["export.dat"]);
    assert_eq!(unnamed["patterns"], named["patterns"]);

    w.write("good.csv", GOOD);
    w.write("good.txt", GOOD.replace(',', "\t"));
    let csv = mine_json(&w, &["good.csv"]);
    let tsv = mine_json(&w, &["good.txt"]);
    assert!(!csv["patterns"].as_array().unwrap().is_empty());
    assert_eq!(tsv["patterns"], csv["patterns"]);
}

/// Per session (by key), its calls as loaded: tool, success, time, duration, arguments, result.
type Loaded = std::collections::BTreeMap<
    u64,
    Vec<(
        String,
        bool,
        i64,
        Option<u32>,
        Option<String>,
        Option<String>,
    )>,
>;

fn sessions_of(path: &std::path::Path) -> Loaded {
    let input = patterns::load::Input::File(path.to_path_buf());
    let (log, _) = patterns::load::load(&[input], &Default::default(), &|_| {}).expect("loads");
    let payloads = log.payloads.as_ref().expect("the log has payloads");
    (0..log.session_count())
        .map(|s| {
            let calls = log.range(s).map(|i| {
                (
                    log.tool_names[log.tools[i] as usize].clone(),
                    log.success[i],
                    log.timestamps[i],
                    log.durations.as_ref().map(|d| d[i]),
                    payloads.arguments(i).map(str::to_string),
                    payloads.result(i).map(str::to_string),
                )
            });
            (log.session_keys[s], calls.collect())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// A log written session by session in time order keeps its rows where they are; the same
    /// rows backwards in time, shuffled, or with a bad row among them, are grouped and sorted. Every session gets
    /// the same calls either way, each with its own arguments and result.
    #[test]
    fn rows_in_any_order_load_as_the_same_sessions(
        (rows, shuffled) in prop::collection::vec((0..4usize, "[a-c]", any::<bool>(), 0..3usize), 1..30)
            .prop_flat_map(|rows| {
                let shuffled = Just((0..rows.len()).collect::<Vec<_>>()).prop_shuffle();
                (Just(rows), shuffled)
            }),
    ) {
        // Row i of session s is at second i: times are distinct within a session.
        let line = |i: usize| {
            let (s, tool, ok, payload) = &rows[i];
            let arguments = ["", r#""{""n"":1}""#, r#""[ ""x"" ]""#][*payload];
            format!(
                "s{s},2026-01-01T10:{:02}:{:02}Z,{tool},{},{},{arguments},r{i}\n",
                i / 60, i % 60, u8::from(*ok), 100 + i,
            )
        };
        let header = "session_id,timestamp,tool,success,duration_ms,arguments,result\n";
        let mut grouped: Vec<usize> = (0..rows.len()).collect();
        grouped.sort_by_key(|&i| rows[i].0);
        let w = Workdir::new();
        let write = |name: &str, order: &[usize], bad: &str| {
            let text: String = order.iter().map(|&i| line(i)).collect();
            w.write(name, format!("{header}{bad}{text}"))
        };
        let in_place = sessions_of(&write("grouped.csv", &grouped, ""));
        let mut backwards = grouped.clone();
        backwards.sort_by_key(|&i| (rows[i].0, std::cmp::Reverse(i)));
        prop_assert_eq!(&sessions_of(&write("backwards.csv", &backwards, "")), &in_place);
        let bad = "s0,not a time,a,1,1,,\n";
        prop_assert_eq!(&sessions_of(&write("shuffled.csv", &shuffled, "")), &in_place);
        prop_assert_eq!(&sessions_of(&write("bad.csv", &grouped, bad)), &in_place);
    }
}
