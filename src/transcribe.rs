//! A flat log written again as agents and observability stacks write theirs: Claude Code
//! transcripts, Codex rollouts, OTLP/JSON traces, Langfuse observations. `generate --as` uses it,
//! so that every reader is tested and benchmarked against the flat table of the same calls.

use std::io::Write;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use crate::load::Kind;

/// One row of the flat log.
struct Row {
    session: String,
    /// Microseconds since the epoch.
    start: i64,
    tool: String,
    ok: bool,
    duration_ms: i64,
    arguments: Value,
    result: Value,
}

fn iso(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .expect("in range")
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// JSON text as the value it spells; anything else (empty included) as null.
fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn rows(csv_text: &[u8]) -> anyhow::Result<Vec<Row>> {
    let mut rdr = csv::Reader::from_reader(csv_text);
    let headers = rdr.headers()?.clone();
    let index = |name: &str| headers.iter().position(|h| h == name);
    let (session, timestamp, tool, success, duration) = (
        index("session_id"),
        index("timestamp"),
        index("tool"),
        index("success"),
        index("duration_ms"),
    );
    let (arguments, result) = (index("arguments"), index("result"));
    let mut out = Vec::new();
    for record in rdr.records() {
        let record = record?;
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
        out.push(Row {
            session: field(session).to_string(),
            start: DateTime::parse_from_rfc3339(field(timestamp))?.timestamp_micros(),
            tool: field(tool).to_string(),
            ok: field(success) == "1",
            duration_ms: field(duration).parse().unwrap_or(0),
            arguments: json_value(field(arguments)),
            result: json_value(field(result)),
        });
    }
    Ok(out)
}

/// Writes the calls of `csv_text` (as `generate` writes it) as `kind` to `out`, one JSON
/// document per line.
pub fn transcribe(csv_text: &[u8], kind: Kind, mut out: impl Write) -> anyhow::Result<()> {
    let rows = rows(csv_text)?;
    let mut last_session = None;
    for (i, r) in rows.iter().enumerate() {
        let end = r.start + r.duration_ms * 1_000;
        let new_session = last_session != Some(&r.session);
        last_session = Some(&r.session);
        let id = format!("call_{i:08}");
        match kind {
            Kind::ClaudeCode => {
                let common = |uuid: String, when: i64| {
                    json!({
                        "parentUuid": null, "isSidechain": false, "userType": "external",
                        "cwd": "/work/app", "sessionId": r.session, "version": "2.0.0",
                        "uuid": uuid, "timestamp": iso(when),
                    })
                };
                let mut call = common(format!("{id}-a"), r.start);
                call["type"] = "assistant".into();
                let (input, written, read, output) = usage(&id);
                call["message"] = json!({
                    "id": format!("msg_{i:08}"), "role": "assistant", "type": "message",
                    "model": "claude-sonnet-4",
                    "content": [{"type": "tool_use", "id": id, "name": r.tool, "input": r.arguments}],
                    "usage": {"input_tokens": input, "cache_creation_input_tokens": written,
                        "cache_read_input_tokens": read, "output_tokens": output},
                });
                line(&mut out, call)?;
                let mut result = common(format!("{id}-u"), end);
                result["type"] = "user".into();
                let content = match &r.result {
                    Value::Null => String::new(),
                    v => v.to_string(),
                };
                result["message"] = json!({
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": id, "content": content, "is_error": !r.ok}],
                });
                if r.result.is_object() {
                    result["toolUseResult"] = r.result.clone();
                }
                line(&mut out, result)?;
            }
            Kind::Codex => {
                if new_session {
                    line(
                        &mut out,
                        json!({"timestamp": iso(r.start), "type": "session_meta",
                        "payload": {"id": r.session, "timestamp": iso(r.start), "cwd": "/work/app",
                            "originator": "codex_cli_rs", "cli_version": "0.50.0"}}),
                    )?;
                }
                line(
                    &mut out,
                    json!({"timestamp": iso(r.start), "type": "response_item",
                    "payload": {"type": "function_call", "name": r.tool,
                        "arguments": r.arguments.to_string(), "call_id": id}}),
                )?;
                // The usage of the response that made the call.
                let (input, written, read, output) = usage(&id);
                let input = input + written + read;
                line(
                    &mut out,
                    json!({"timestamp": iso(r.start), "type": "event_msg",
                    "payload": {"type": "token_count", "info": {"last_token_usage": {
                        "input_tokens": input, "cached_input_tokens": read, "output_tokens": output,
                        "reasoning_output_tokens": 0, "total_tokens": input + output}}}}),
                )?;
                let printed = match &r.result {
                    Value::Null => String::new(),
                    v => v.to_string(),
                };
                let output = json!({"output": printed,
                    "metadata": {"exit_code": if r.ok { 0 } else { 1 }, "duration_seconds": r.duration_ms as f64 / 1000.0}});
                line(
                    &mut out,
                    json!({"timestamp": iso(end), "type": "response_item",
                    "payload": {"type": "function_call_output", "call_id": id, "output": output.to_string()}}),
                )?;
            }
            Kind::Otlp => {
                // One trace per session; the conversation id is on the agent span only, tool
                // span ids in base64 as protobuf's printer writes them, every other session.
                let trace = format!("{:032x}", fnv1a(&r.session));
                let trace_b64 = base64::engine::general_purpose::STANDARD.encode(
                    (0..16)
                        .map(|k| u8::from_str_radix(&trace[2 * k..2 * k + 2], 16).expect("hex"))
                        .collect::<Vec<u8>>(),
                );
                let tool_trace = if fnv1a(&r.session).is_multiple_of(2) {
                    trace_b64
                } else {
                    trace.clone()
                };
                let attr = |k: &str, v: Value| {
                    json!({"key": k, "value": match v {
                        Value::String(s) => json!({"stringValue": s}),
                        Value::Bool(b) => json!({"boolValue": b}),
                        // 64-bit integers are decimal strings in OTLP/JSON.
                        Value::Number(n) => json!({"intValue": n.to_string()}),
                        other => json!({"stringValue": other.to_string()}),
                    }})
                };
                let mut spans = Vec::new();
                if new_session {
                    spans.push(json!({"traceId": trace, "spanId": format!("{:016x}", i), "name": "invoke_agent",
                        "kind": 1, "startTimeUnixNano": (r.start * 1000).to_string(), "endTimeUnixNano": (r.start * 1000).to_string(),
                        "attributes": [attr("gen_ai.operation.name", "invoke_agent".into()),
                            attr("gen_ai.conversation.id", r.session.clone().into())],
                        "status": {}}));
                }
                // The model call that issued the tool call, just before it, with its usage.
                let (input, written, read, output) = usage(&id);
                let chat = (r.start - 1_000) * 1000;
                spans.push(
                    json!({"traceId": trace, "spanId": format!("{:016x}", ((i + 1) << 32) | 1),
                    "name": "chat claude-sonnet-4", "kind": 3,
                    "startTimeUnixNano": chat.to_string(), "endTimeUnixNano": chat.to_string(),
                    "attributes": [attr("gen_ai.operation.name", "chat".into()),
                        attr("gen_ai.usage.input_tokens", (input + written + read).into()),
                        attr("gen_ai.usage.output_tokens", output.into())],
                    "status": {}}),
                );
                let mut attributes = vec![
                    attr("gen_ai.operation.name", "execute_tool".into()),
                    attr("gen_ai.tool.name", r.tool.clone().into()),
                    attr("gen_ai.tool.call.id", id.clone().into()),
                    attr(
                        "gen_ai.tool.call.arguments",
                        Value::String(r.arguments.to_string()),
                    ),
                ];
                if !r.result.is_null() {
                    attributes.push(attr(
                        "gen_ai.tool.call.result",
                        Value::String(r.result.to_string()),
                    ));
                }
                let status = match r.ok {
                    true => json!({"code": 1}),
                    false => json!({"code": "STATUS_CODE_ERROR", "message": "tool failed"}),
                };
                spans.push(json!({"traceId": tool_trace, "spanId": format!("{:016x}", (i + 1) << 32),
                    "name": format!("execute_tool {}", r.tool), "kind": "SPAN_KIND_INTERNAL",
                    "startTimeUnixNano": (r.start * 1000).to_string(), "endTimeUnixNano": (end * 1000).to_string(),
                    "attributes": attributes, "status": status}));
                line(
                    &mut out,
                    json!({"resourceSpans": [{"resource": {"attributes": [attr("service.name", "agent".into())]},
                    "scopeSpans": [{"scope": {"name": "patterns.transcribe"}, "spans": spans}]}]}),
                )?;
            }
            Kind::Langfuse => {
                // The generation that issued the call, just before it, with its usage.
                let (input, written, read, output) = usage(&id);
                line(
                    &mut out,
                    json!({"id": format!("gen_{i:08}"), "traceId": format!("t-{}", r.session),
                    "sessionId": r.session, "type": "GENERATION", "name": "claude-sonnet-4",
                    "startTime": iso(r.start - 1_000), "endTime": iso(r.start - 1_000),
                    "usageDetails": {"input": input + written + read, "output": output,
                        "total": input + written + read + output}}),
                )?;
                line(
                    &mut out,
                    json!({"id": id, "traceId": format!("t-{}", r.session), "sessionId": r.session,
                    "type": "TOOL", "name": r.tool, "startTime": iso(r.start), "endTime": iso(end),
                    "input": r.arguments, "output": r.result,
                    "level": if r.ok { "DEFAULT" } else { "ERROR" }}),
                )?;
            }
            Kind::Xes => {
                if i == 0 {
                    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
                    writeln!(
                        out,
                        r#"<log xes.version="1.0" xmlns="http://www.xes-standard.org/">"#
                    )?;
                }
                if new_session {
                    if i > 0 {
                        writeln!(out, "  </trace>")?;
                    }
                    writeln!(
                        out,
                        "  <trace>\n    <string key=\"concept:name\" value=\"{}\"/>",
                        quick_xml::escape::escape(r.session.as_str())
                    )?;
                }
                // A start and a complete event per call, as process-mining tools log them.
                for (transition, when) in [("start", r.start), ("complete", end)] {
                    writeln!(
                        out,
                        "    <event>\n      <string key=\"concept:name\" value=\"{}\"/>\n      \
                         <date key=\"time:timestamp\" value=\"{}\"/>\n      \
                         <string key=\"lifecycle:transition\" value=\"{transition}\"/>\n      \
                         <boolean key=\"success\" value=\"{}\"/>\n    </event>",
                        quick_xml::escape::escape(r.tool.as_str()),
                        iso(when),
                        r.ok
                    )?;
                }
                if i + 1 == rows.len() {
                    writeln!(out, "  </trace>\n</log>")?;
                }
            }
            Kind::Table => unreachable!("not a transcript format"),
        }
    }
    Ok(())
}

/// Writes `v` as one line of JSON.
/// The usage of the model turn that issued call `id` (input, cache writes, cache reads,
/// output): made up, of the size real turns of a coding agent have.
fn usage(id: &str) -> (u64, u64, u64, u64) {
    let h = fnv1a(id);
    let part = |shift: u32, modulo: u128| ((h >> shift) % modulo) as u64;
    (
        3 + part(0, 5),
        200 + part(8, 800),
        12_000 + part(20, 20_000),
        40 + part(40, 400),
    )
}

fn line(out: &mut impl Write, v: Value) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &v)?;
    out.write_all(b"\n")
}

/// A stable 128-bit id from a session name (FNV-1a, twice), for trace ids.
fn fnv1a(s: &str) -> u128 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    u128::from(h) << 64 | u128::from(h.rotate_left(17))
}
