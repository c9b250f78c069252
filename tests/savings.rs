//! The turns and tokens a workflow would save, measured from the usage transcripts and traces
//! record, against figures computed by hand; unknown (never 0) where a log has no usage.

use serde_json::{Value, json};

use crate::common::{Workdir, data, json_of};

fn mine(w: &Workdir, file: &str) -> Value {
    json_of(
        w.patterns()
            .args(["mine", file, "--json", "--no-write", "--min-support", "2"]),
    )
}

/// The workflow `a → b → c` of a mine output.
fn abc(json: &Value) -> &Value {
    (json["patterns"].as_array().unwrap().iter())
        .find(|p| p["pattern"] == json!(["a", "b", "c"]))
        .unwrap_or_else(|| panic!("a → b → c not found: {json}"))
}

/// Claude Code records: an assistant message with tool calls (written once per tool call, each
/// record with the message's usage, as Claude Code does), then their results.
fn claude(session: &str, message: &str, usage: [u64; 4], calls: &[(&str, &str)], t: u32) -> String {
    let mut lines = Vec::new();
    for (id, tool) in calls {
        lines.push(json!({
            "type": "assistant", "sessionId": session, "uuid": format!("{id}-a"),
            "timestamp": format!("2026-01-01T00:00:{t:02}Z"),
            "message": {"id": message, "role": "assistant", "content": [
                {"type": "tool_use", "id": id, "name": tool, "input": {}}],
                "usage": {"input_tokens": usage[0], "cache_creation_input_tokens": usage[1],
                    "cache_read_input_tokens": usage[2], "output_tokens": usage[3]}},
        }));
    }
    for (id, _) in calls {
        lines.push(json!({
            "type": "user", "sessionId": session, "uuid": format!("{id}-u"),
            "timestamp": format!("2026-01-01T00:00:{:02}Z", t + 1),
            "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": id, "content": "ok"}]},
        }));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// What every fixture of two sessions gives (`a`; `b` and `c` from one turn of 107 tokens, then
/// `a`, `b` (209), `c` (56)): one turn saved in the first run, two in the second.
fn the_savings_of_the_fixture(json: &Value) -> &Value {
    let p = abc(json);
    assert_eq!(
        p["turns_saved"],
        json!({"runs": 2, "total": 3, "median": 1.5})
    );
    assert_eq!(p["tokens_saved"]["total"], 107 + 209 + 56);
    p
}

#[test]
fn claude_code_usage_gives_the_turns_and_tokens_saved_computed_by_hand() {
    let w = Workdir::new();
    // Session 1: a, then b and c from one message (one turn, 100 + 7 tokens).
    // Session 2: a, b, c from three messages (b: 200 + 9, c: 50 + 1 + 2 + 3).
    let transcript = [
        claude("s1", "m1", [10, 20, 30, 5], &[("t1", "a")], 0),
        claude("s1", "m2", [100, 0, 0, 7], &[("t2", "b"), ("t3", "c")], 10),
        claude("s2", "n1", [1, 2, 3, 4], &[("u1", "a")], 0),
        claude("s2", "n2", [200, 0, 0, 9], &[("u2", "b")], 10),
        claude("s2", "n3", [50, 1, 2, 3], &[("u3", "c")], 20),
    ]
    .concat();
    w.write("t.jsonl", transcript);
    let json = mine(&w, "t.jsonl");
    // Run 1 saves one turn (b and c share it): 107 tokens; run 2 two turns: 209 + 56.
    let p = the_savings_of_the_fixture(&json);
    let all = 65 + 107 + 10 + 209 + 56;
    let saved = 107 + 209 + 56;
    assert_eq!(p["tokens_saved"]["median"], (107.0 + 265.0) / 2.0);
    let share = (saved as f64 / all as f64 * 1e4).round() / 1e4;
    assert_eq!(p["tokens_saved"]["share_of_all_tokens"], share);
    assert_eq!(p["round_trips_saved"], 4, "two per run, by the step count");
    // The report's savings: turns 3, median 186 tokens per run, 372 in all.
    let report = ["report", "t.jsonl", "--min-support", "2", "-o", "r.html"];
    crate::common::run_ok(w.patterns().args(report));
    let page = std::fs::read_to_string(w.path("r.html")).unwrap();
    let row = (page.lines())
        .find(|l| l.starts_with("<tr><td><a href=\"#wf-a-b-c\">"))
        .expect("a savings row");
    let cells: Vec<&str> = (row.split("<td class=\"num\">").skip(1))
        .map(|c| c.split('<').next().unwrap())
        .collect();
    assert_eq!(cells[..6], ["2", "3", "4", "3", "186", "372"], "{row}");
}

/// A trace's model call: its trace, start (s), input and output tokens, and the tool calls it
/// issued with their starts (s).
type Turn<'a> = (&'a str, u64, u64, u64, &'a [(&'a str, u64)]);

#[test]
fn otel_chat_spans_give_the_same_figures() {
    let w = Workdir::new();
    let attr = |k: &str, v: Value| match v {
        Value::Number(n) => json!({"key": k, "value": {"intValue": n.to_string()}}),
        v => json!({"key": k, "value": {"stringValue": v}}),
    };
    let mut lines = Vec::new();
    let turns: [Turn; 5] = [
        ("01", 0, 60, 5, &[("a", 1)]),
        ("01", 10, 100, 7, &[("b", 11), ("c", 12)]),
        ("02", 0, 6, 4, &[("a", 1)]),
        ("02", 10, 200, 9, &[("b", 11)]),
        ("02", 20, 53, 3, &[("c", 21)]),
    ];
    for (k, (trace, start, input, output, tools)) in turns.iter().enumerate() {
        let trace = format!("{trace:0>32}");
        let ns = |s: u64| (s * 1_000_000_000 + 1_700_000_000_000_000_000).to_string();
        let mut spans = vec![json!({
            "traceId": trace, "spanId": format!("{k:016x}"), "name": "chat",
            "startTimeUnixNano": ns(*start), "endTimeUnixNano": ns(*start),
            "attributes": [attr("gen_ai.operation.name", "chat".into()),
                attr("gen_ai.usage.input_tokens", (*input).into()),
                attr("gen_ai.usage.output_tokens", (*output).into())],
        })];
        for (j, (tool, at)) in tools.iter().enumerate() {
            spans.push(json!({
                "traceId": trace, "spanId": format!("{:016x}", 100 + 10 * k + j), "name": "tool",
                "startTimeUnixNano": ns(*at), "endTimeUnixNano": ns(*at),
                "attributes": [attr("gen_ai.operation.name", "execute_tool".into()),
                    attr("gen_ai.tool.name", (*tool).into())],
                "status": {"code": 1},
            }));
        }
        lines.push(json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).to_string());
    }
    w.write("t.jsonl", lines.join("\n"));
    let json = mine(&w, "t.jsonl");
    the_savings_of_the_fixture(&json);
}

#[test]
fn a_table_with_a_tokens_column_counts_each_call_as_a_turn_and_one_without_says_unknown() {
    let w = Workdir::new();
    let mut log = String::from("session_id,timestamp,tool,tokens\n");
    for (s, tokens) in [("s1", [5, 10, 20]), ("s2", [5, 30, 40]), ("s3", [5, 1, 0])] {
        for (i, (tool, n)) in ["a", "b", "c"].iter().zip(tokens).enumerate() {
            log += &format!("{s},{i},{tool},{n}\n");
        }
    }
    // A run with a call of unknown usage is left out of the figures, not counted as 0.
    log += "s4,0,a,5\ns4,1,b,\ns4,2,c,7\n";
    w.write("log.csv", log);
    let p = abc(&mine(&w, "log.csv")).clone();
    assert_eq!(
        p["turns_saved"],
        json!({"runs": 3, "total": 6, "median": 2.0})
    );
    assert_eq!(p["tokens_saved"]["total"], 30 + 70 + 1);
    assert_eq!(p["tokens_saved"]["median"], 30.0);
    // The sample has no usage: unknown.
    let json = mine(&w, data("sample.csv").to_str().unwrap());
    assert!(json["patterns"][0]["tokens_saved"].is_null());
    assert!(json["patterns"][0]["turns_saved"].is_null());
    assert!(json["patterns"][0]["round_trips_saved"].as_u64().unwrap() > 0);
    let sample = data("sample.csv");
    let report = [
        "report",
        sample.to_str().unwrap(),
        "--top",
        "1",
        "-o",
        "r.html",
    ];
    crate::common::run_ok(w.patterns().args(report));
    let page = std::fs::read_to_string(w.path("r.html")).unwrap();
    assert!(
        page.contains("<td class=\"num\">unknown</td>"),
        "unknown, never 0"
    );
}

/// A model response of a rollout: its tokens and the tools it called.
type Response<'a> = (u64, &'a [&'a str]);

#[test]
fn codex_token_counts_give_the_same_figures() {
    let w = Workdir::new();
    let mut lines = Vec::new();
    let mut at = 0;
    let sessions: [(&str, &[Response]); 2] = [
        ("s1", &[(65, &["a"]), (107, &["b", "c"])]),
        ("s2", &[(10, &["a"]), (209, &["b"]), (56, &["c"])]),
    ];
    for (session, turns) in sessions {
        let time = |at: u32| format!("2026-01-01T00:{:02}:{:02}Z", at / 60, at % 60);
        lines.push(json!({"timestamp": time(at), "type": "session_meta",
            "payload": {"id": session, "timestamp": time(at)}}));
        for (tokens, tools) in turns {
            for tool in *tools {
                at += 1;
                let id = format!("{session}-{at}");
                lines.push(json!({"timestamp": time(at), "type": "response_item",
                    "payload": {"type": "function_call", "name": tool, "arguments": "{}", "call_id": id}}));
                lines.push(json!({"timestamp": time(at), "type": "response_item",
                    "payload": {"type": "function_call_output", "call_id": id,
                        "output": "{\"output\":\"\",\"metadata\":{\"exit_code\":0}}"}}));
            }
            lines.push(json!({"timestamp": time(at), "type": "event_msg",
                "payload": {"type": "token_count", "info": {"last_token_usage": {"total_tokens": tokens}}}}));
        }
    }
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    w.write("rollout.jsonl", text.join("\n"));
    let json = mine(&w, "rollout.jsonl");
    the_savings_of_the_fixture(&json);
}

/// The generator gives every call's turn the same usage in each kind: every reader must find
/// the same savings, workflow by workflow.
#[test]
fn every_reader_of_usage_finds_the_same_savings() {
    let w = Workdir::new();
    let savings = |kind: &str| -> Vec<(Value, Value, Value)> {
        let file = format!("{kind}.jsonl");
        let generate = ["generate", "--sessions", "120", "--seed", "8", "--as", kind];
        crate::common::run_ok(w.patterns().args(generate).args(["--output", &file]));
        let json = mine(&w, &file);
        (json["patterns"].as_array().unwrap().iter())
            .map(|p| {
                (
                    p["pattern"].clone(),
                    p["turns_saved"].clone(),
                    p["tokens_saved"].clone(),
                )
            })
            .collect()
    };
    let claude = savings("claude-code");
    assert!(
        claude.len() >= 5 && claude.iter().all(|s| !s.2.is_null()),
        "{claude:?}"
    );
    for kind in ["codex", "otlp", "langfuse"] {
        assert_eq!(savings(kind), claude, "{kind}");
    }
}
