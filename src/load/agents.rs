//! Agent transcripts and traces as their agents and observability stacks write them: Claude Code
//! transcripts, OpenAI Codex CLI rollouts, OpenTelemetry GenAI traces (OTLP/JSON) and Langfuse
//! observation exports. Each call is paired with its result; what cannot be paired is counted.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::calls::{BAD_TIME, Calls, Row};
use super::columns::Field;
use super::columns::Mapping;
use super::input::{FileSummary, Kind, McpNames};
use super::json::{lookup, number, payload, text, time};
use crate::events::SAME_TURN;

/// The kind of a JSON input, from its first records.
pub(super) fn kind_of(sample: &[&Map<String, Value>]) -> Kind {
    for m in sample.iter().take(100) {
        if m.contains_key("resourceSpans") {
            return Kind::Otlp;
        }
        let kind = str_at(m, "type").unwrap_or("");
        if m.contains_key("payload")
            && matches!(
                kind,
                "session_meta" | "response_item" | "turn_context" | "event_msg" | "compacted"
            )
        {
            return Kind::Codex;
        }
        let legacy_codex = m.contains_key("call_id")
            && matches!(
                kind,
                "function_call" | "function_call_output" | "local_shell_call"
            );
        if legacy_codex {
            return Kind::Codex;
        }
        let claude = (m.contains_key("sessionId")
            && (m.contains_key("uuid") || m.contains_key("parentUuid")))
            || (kind == "summary" && m.contains_key("leafUuid"))
            || (kind == "file-history-snapshot" && m.contains_key("messageId"));
        if claude {
            return Kind::ClaudeCode;
        }
        let langfuse = (m.contains_key("traceId") || m.contains_key("trace_id"))
            && (m.contains_key("startTime") || m.contains_key("start_time"))
            && matches!(
                kind,
                "TOOL"
                    | "SPAN"
                    | "GENERATION"
                    | "EVENT"
                    | "AGENT"
                    | "CHAIN"
                    | "RETRIEVER"
                    | "EMBEDDING"
                    | "GUARDRAIL"
                    | "EVALUATOR"
            );
        if langfuse {
            return Kind::Langfuse;
        }
    }
    Kind::Table
}

/// A tool call read from a transcript or a trace.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub session: String,
    pub tool: String,
    /// Microseconds; `BAD_TIME` when the record had no usable time.
    pub start: i64,
    /// The time as the record wrote it, when it does not parse (for the message).
    pub bad_time: Option<String>,
    pub end: Option<i64>,
    /// `None` when no result was found for the call.
    pub success: Option<bool>,
    pub arguments: Option<Box<str>>,
    pub result: Option<Box<str>>,
    /// The line (or element) the call was read from.
    pub at: usize,
    /// An id unique across files, when the format has one: a call found again in another file
    /// (a resumed session copies its history) is the same call.
    pub id: Option<String>,
    /// The model turn that issued the call, when the format says.
    pub turn: Option<Turn>,
}

/// A model turn: its id (unique in its session) and its tokens (input, cache reads and writes,
/// output), when known.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Turn {
    pub id: String,
    pub tokens: Option<u64>,
}

/// The calls of one file, and what could not be read as the format says.
#[derive(Debug, Default)]
pub(super) struct Assembled {
    pub calls: Vec<Call>,
    /// Calls that got no result.
    pub unpaired: usize,
    /// Sessions that are a subagent's (Claude Code sidechains).
    pub subagent_sessions: usize,
    /// Calls whose success the log does not say (counted as succeeded).
    pub assumed_success: usize,
}

/// The text of a time that did not parse (`at` is `BAD_TIME`), for the message that says so.
fn bad_time(v: Option<&Value>, at: i64) -> Option<String> {
    (at == BAD_TIME).then(|| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    })
}

/// Appends assembled calls to `calls` as rows, and their counts to `summary`.
pub(super) fn push(assembled: Assembled, calls: &mut Calls, summary: &mut FileSummary) {
    summary.mapping = Mapping::of_calls();
    summary.has_success = true;
    let lines = summary.lines.get_or_insert_with(Vec::new);
    // The turns whose tokens a call of theirs carries already.
    let mut counted: std::collections::HashSet<(String, String)> = Default::default();
    for call in assembled.calls {
        if let Some(id) = &call.id
            && !calls.call_ids.insert(id.as_str().into())
        {
            summary.repeated += 1;
            continue;
        }
        if let Some(text) = call.bad_time
            && summary.raw.len() < super::REPORTED_BAD_ROWS
        {
            summary.raw.push((lines.len(), Field::Timestamp, text));
        }
        lines.push(call.at as u32);
        calls.push(Row {
            session: Some(&call.session),
            tool: Some(&call.tool),
            time: call.start,
            // A call that got no result did not complete.
            success: call.success.map_or(0, u8::from),
            duration: call
                .end
                .filter(|_| call.start != BAD_TIME)
                .map(|end| (end - call.start).max(0) as f64 / 1000.0),
            usage: call.turn.map(
                |turn| match counted.insert((call.session.clone(), turn.id)) {
                    true => super::calls::tokens(turn.tokens.map(|t| t as f64)),
                    false => SAME_TURN,
                },
            ),
            arguments: call.arguments.as_deref(),
            result: call.result.as_deref(),
            outcome: None,
        });
    }
    summary.unpaired = assembled.unpaired;
    summary.subagent_sessions = assembled.subagent_sessions;
    summary.assumed_success = assembled.assumed_success;
}

/// Turns the records of one file into calls.
pub(super) trait Assembler {
    fn record(&mut self, at: usize, map: Map<String, Value>);
    fn finish(self: Box<Self>) -> Assembled;
}

/// The assembler of `kind`; `file` is the file's name (subagent sessions are named after it).
pub(super) fn assembler(kind: Kind, file: &str, mcp: Option<McpNames>) -> Box<dyn Assembler> {
    match kind {
        Kind::ClaudeCode => Box::new(Claude {
            mcp,
            file_stem: std::path::Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ..Claude::default()
        }),
        Kind::Codex => Box::new(Codex {
            start: BAD_TIME,
            session: String::new(),
            pending: Pending::default(),
            assumed: 0,
            turns: 0,
            unturned: 0,
        }),
        Kind::Otlp => Box::new(Otlp::default()),
        Kind::Langfuse => Box::new(Langfuse::default()),
        Kind::Table | Kind::Xes => unreachable!("{kind:?} is not read from JSON records"),
    }
}

fn str_at<'a>(m: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    lookup(m, path).and_then(Value::as_str)
}

/// Calls by id, in the order they were made, waiting for their results.
#[derive(Default)]
struct Pending {
    calls: Vec<Call>,
    by_id: HashMap<String, usize>,
}

impl Pending {
    /// Adds a call unless one with this id is there already (a message split over lines).
    fn call(&mut self, id: &str, call: Call) {
        if id.is_empty() || !self.by_id.contains_key(id) {
            if !id.is_empty() {
                self.by_id.insert(id.to_string(), self.calls.len());
            }
            self.calls.push(call);
        }
    }

    fn get(&mut self, id: &str) -> Option<&mut Call> {
        self.by_id.get(id).map(|&i| &mut self.calls[i])
    }

    fn finish(self) -> Assembled {
        let unpaired = self.calls.iter().filter(|c| c.success.is_none()).count();
        Assembled {
            calls: self.calls,
            unpaired,
            ..Assembled::default()
        }
    }
}

// ---- Claude Code -----------------------------------------------------------------------------

#[derive(Default)]
struct Claude {
    mcp: Option<McpNames>,
    file_stem: String,
    pending: Pending,
    subagents: std::collections::HashSet<String>,
}

/// The tokens of a Claude message's `usage`: input, cache writes and reads, and output.
fn claude_tokens(usage: &Value) -> Option<u64> {
    let usage = usage.as_object()?;
    let keys = [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    ];
    let counts: Vec<u64> = (keys.iter())
        .filter_map(|k| usage.get(*k)?.as_u64())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// The text of a `tool_result` block's content: a string, or its text blocks joined.
fn content_text(v: &Value) -> Option<Box<str>> {
    match v {
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n").into_boxed_str())
        }
        other => payload(other),
    }
}

impl Assembler for Claude {
    fn record(&mut self, at: usize, m: Map<String, Value>) {
        let kind = str_at(&m, "type").unwrap_or("");
        if kind != "assistant" && kind != "user" {
            return;
        }
        let Some(blocks) = lookup(&m, "message.content").and_then(Value::as_array) else {
            return;
        };
        let when = time(m.get("timestamp"));
        // One API response may be written as several records, each with the response's usage.
        let turn = lookup(&m, "message.id")
            .or_else(|| m.get("requestId"))
            .and_then(Value::as_str)
            .map(|id| Turn {
                id: id.to_string(),
                tokens: lookup(&m, "message.usage").and_then(claude_tokens),
            });
        let mut session = str_at(&m, "sessionId").unwrap_or("").to_string();
        // A subagent's transcript is a session of its own.
        if m.get("isSidechain").and_then(Value::as_bool) == Some(true) {
            let agent = str_at(&m, "agentId").unwrap_or(&self.file_stem);
            session = format!("{session}/{agent}");
            self.subagents.insert(session.clone());
        }
        for block in blocks {
            match block.get("type").and_then(Value::as_str) {
                Some("tool_use") if kind == "assistant" => {
                    let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                    let tool = self.mcp.unwrap_or(McpNames::Tool).apply(name).into_owned();
                    let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                    self.pending.call(
                        id,
                        Call {
                            session: session.clone(),
                            tool,
                            start: when,
                            bad_time: bad_time(m.get("timestamp"), when),
                            end: None,
                            success: None,
                            arguments: block.get("input").and_then(payload),
                            result: None,
                            at,
                            id: Some(id.to_string()).filter(|id| !id.is_empty()),
                            turn: turn.clone(),
                        },
                    );
                }
                Some("tool_result") if kind == "user" => {
                    let id = block
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let Some(call) = self.pending.get(id) else {
                        continue;
                    };
                    let failed = block.get("is_error").and_then(Value::as_bool) == Some(true);
                    call.success = Some(!failed);
                    call.end = Some(when).filter(|&t| t != BAD_TIME);
                    // The structured result when there is one, else the text the model saw.
                    call.result = match m.get("toolUseResult") {
                        Some(r @ Value::Object(_)) if blocks.len() == 1 => payload(r),
                        _ => block.get("content").and_then(content_text),
                    };
                }
                _ => {}
            }
        }
    }

    fn finish(self: Box<Self>) -> Assembled {
        Assembled {
            subagent_sessions: self.subagents.len(),
            ..self.pending.finish()
        }
    }
}

// ---- Codex -----------------------------------------------------------------------------------

struct Codex {
    /// When the session started (legacy rollouts time their items by it).
    start: i64,
    session: String,
    pending: Pending,
    assumed: usize,
    /// Model turns counted so far, and the first call not yet given its turn: a `token_count`
    /// event follows each model response and counts the calls it made.
    turns: usize,
    unturned: usize,
}

/// What a command printed and the exit code its output reports. Shell outputs come wrapped as
/// JSON (`{"output": "...", "metadata": {"exit_code": N}}`), or as text with a line
/// `Exit code: N` / `Process exited with code N`.
fn printed_and_exit_code(output: String) -> (String, Option<i64>) {
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&output) {
        let code = lookup(&m, "metadata.exit_code")
            .or_else(|| m.get("exit_code"))
            .and_then(Value::as_i64);
        if let Some(Value::String(printed)) = m.get("output") {
            return (printed.clone(), code);
        }
        if code.is_some() {
            return (output, code);
        }
    }
    let code = output.lines().take(5).find_map(|line| {
        let line = line.trim();
        ["Exit code:", "Process exited with code"]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    });
    (output, code)
}

impl Assembler for Codex {
    fn record(&mut self, at: usize, m: Map<String, Value>) {
        // Rollouts of 2025's first versions: a first line with the session's id and time, then
        // items without a wrapper or times of their own (timed by line after the session's).
        let legacy;
        let (kind, p, when) = match m.get("payload").and_then(Value::as_object) {
            Some(p) => (str_at(&m, "type"), p, time(m.get("timestamp"))),
            None if m.contains_key("instructions")
                || (m.contains_key("id")
                    && m.contains_key("timestamp")
                    && !m.contains_key("type")) =>
            {
                legacy = m.clone();
                self.start = time(m.get("timestamp"));
                (Some("session_meta"), &legacy, self.start)
            }
            None => {
                let when = match self.start {
                    BAD_TIME => BAD_TIME,
                    start => start + at as i64,
                };
                (Some("response_item"), &m, when)
            }
        };
        match kind {
            Some("session_meta") => {
                if let Some(id) = str_at(p, "id") {
                    self.session = id.to_string();
                }
            }
            Some("response_item") => {
                let kind = str_at(p, "type").unwrap_or("");
                let id = str_at(p, "call_id")
                    .or_else(|| str_at(p, "id"))
                    .unwrap_or("");
                let call = |tool: &str, arguments: Option<Box<str>>| Call {
                    session: self.session.clone(),
                    tool: tool.to_string(),
                    start: when,
                    bad_time: bad_time(m.get("timestamp"), when),
                    end: None,
                    success: None,
                    arguments,
                    result: None,
                    at,
                    id: None,
                    turn: None,
                };
                match kind {
                    "function_call" | "custom_tool_call" => {
                        let name = str_at(p, "name").unwrap_or("");
                        let args = p.get("arguments").or_else(|| p.get("input"));
                        // Arguments are JSON text; kept as the object they spell.
                        let arguments = match args {
                            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                                Ok(v @ Value::Object(_)) => payload(&v),
                                _ => payload(&Value::String(s.clone())),
                            },
                            Some(v) => payload(v),
                            None => None,
                        };
                        let c = call(name, arguments);
                        self.pending.call(id, c);
                    }
                    "local_shell_call" => {
                        let c = call("local_shell_call", p.get("action").and_then(payload));
                        self.pending.call(id, c);
                    }
                    "function_call_output"
                    | "custom_tool_call_output"
                    | "local_shell_call_output" => {
                        let Some(c) = self.pending.get(id) else {
                            return;
                        };
                        let output = match p.get("output") {
                            // Some versions wrap it: {"content": "...", "success": bool}.
                            Some(Value::Object(o)) => {
                                if let Some(ok) = o.get("success").and_then(Value::as_bool) {
                                    c.success = Some(ok);
                                }
                                o.get("content").and_then(text).map(|s| s.into_owned())
                            }
                            Some(v) => text(v).map(|s| s.into_owned()),
                            None => None,
                        };
                        let (output, code) = printed_and_exit_code(output.unwrap_or_default());
                        if c.success.is_none() {
                            c.success = match code {
                                Some(code) => Some(code == 0),
                                None => {
                                    self.assumed += 1;
                                    Some(true)
                                }
                            };
                        }
                        c.end = Some(when).filter(|&t| t != BAD_TIME);
                        c.result = payload(&Value::String(output));
                    }
                    _ => {}
                }
            }
            Some("event_msg") if str_at(p, "type") == Some("token_count") => {
                // The usage of the response that made the calls since the last count.
                let Some(usage) = lookup(p, "info.last_token_usage") else {
                    return;
                };
                self.turns += 1;
                let turn = Turn {
                    id: format!("{}#{}", self.session, self.turns),
                    tokens: usage.get("total_tokens").and_then(Value::as_u64),
                };
                for call in &mut self.pending.calls[self.unturned..] {
                    call.turn = Some(turn.clone());
                }
                self.unturned = self.pending.calls.len();
            }
            _ => {}
        }
    }

    fn finish(self: Box<Self>) -> Assembled {
        Assembled {
            assumed_success: self.assumed,
            ..self.pending.finish()
        }
    }
}

// ---- Model calls of traces (OpenTelemetry, Langfuse) -----------------------------------------

/// Per trace, its model calls: start, id and tokens (sorted by start before use).
type Chats = HashMap<String, Vec<(i64, String, Option<u64>)>>;

/// The model call that issued a tool call starting at `start` in `trace`: the last one of the
/// trace that started before it.
fn turn_before(chats: &Chats, trace: &str, start: i64) -> Option<Turn> {
    let chats = chats.get(trace).map_or(&[][..], |c| &c[..]);
    let before = chats.partition_point(|c| c.0 <= start);
    before.checked_sub(1).map(|i| Turn {
        id: chats[i].1.clone(),
        tokens: chats[i].2,
    })
}

// ---- OpenTelemetry ---------------------------------------------------------------------------

#[derive(Default)]
struct Otlp {
    /// Tool spans with their trace id; the session is known only once every span was seen.
    spans: Vec<(String, Call)>,
    chats: Chats,
    /// `gen_ai.conversation.id` by trace id, from any span of the trace.
    conversations: HashMap<String, String>,
}

/// An OTLP `AnyValue` as JSON: `{"stringValue": "x"}` → `"x"`, `kvlistValue` → an object, …
fn any_value(v: &Value) -> Value {
    let Some(m) = v.as_object() else {
        return v.clone();
    };
    let Some((k, inner)) = m.iter().next() else {
        return Value::Null;
    };
    match k.as_str() {
        "stringValue" | "boolValue" | "doubleValue" | "bytesValue" => inner.clone(),
        // 64-bit integers are decimal strings in OTLP/JSON.
        "intValue" => match inner {
            Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or(inner.clone()),
            other => other.clone(),
        },
        "arrayValue" => Value::Array(
            inner
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().map(any_value).collect())
                .unwrap_or_default(),
        ),
        "kvlistValue" => Value::Object(attributes(inner.get("values"))),
        _ => inner.clone(),
    }
}

/// OTLP attributes (`[{"key", "value": AnyValue}]`) as a JSON object.
fn attributes(list: Option<&Value>) -> Map<String, Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?;
            Some((
                key.to_string(),
                kv.get("value").map_or(Value::Null, any_value),
            ))
        })
        .collect()
}

/// A trace or span id as lowercase hex, from hex or base64 (protobuf's JSON printer writes bytes
/// as base64).
pub(super) fn hex_id(id: &str) -> String {
    let is_hex =
        !id.is_empty() && id.len().is_multiple_of(2) && id.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        return id.to_ascii_lowercase();
    }
    match base64::engine::general_purpose::STANDARD.decode(id) {
        Ok(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => id.to_string(),
    }
}

/// Nanoseconds (a decimal string or a number) as microseconds.
fn nanos(v: Option<&Value>) -> Option<i64> {
    let n = match v? {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    (n > 0).then_some(n / 1_000)
}

/// A payload attribute: JSON text is kept as the value it spells.
fn json_payload(v: Option<&Value>) -> Option<Box<str>> {
    match v? {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(parsed @ (Value::Object(_) | Value::Array(_))) => payload(&parsed),
            _ => payload(&Value::String(s.clone())),
        },
        other => payload(other),
    }
}

impl Assembler for Otlp {
    fn record(&mut self, at: usize, m: Map<String, Value>) {
        let resources = m.get("resourceSpans").and_then(Value::as_array);
        for rs in resources.into_iter().flatten() {
            let scopes = rs
                .get("scopeSpans")
                .or_else(|| rs.get("instrumentationLibrarySpans"))
                .and_then(Value::as_array);
            for span in scopes
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("spans")?.as_array())
                .flatten()
            {
                let attrs = attributes(span.get("attributes"));
                let trace = hex_id(span.get("traceId").and_then(Value::as_str).unwrap_or(""));
                // The GenAI conventions' conversation id; OpenInference's session id.
                let conversation = ["gen_ai.conversation.id", "session.id"]
                    .iter()
                    .find_map(|k| attrs.get(*k).and_then(text));
                if let Some(conversation) = conversation {
                    self.conversations
                        .entry(trace.clone())
                        .or_insert_with(|| conversation.into_owned());
                }
                let operation = attrs.get("gen_ai.operation.name").and_then(Value::as_str);
                if matches!(
                    operation,
                    Some("chat" | "text_completion" | "generate_content")
                ) {
                    let tokens: Vec<u64> =
                        ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"]
                            .iter()
                            .filter_map(|k| number(attrs.get(*k)).map(|n| n as u64))
                            .collect();
                    let id = span.get("spanId").and_then(Value::as_str).unwrap_or("");
                    self.chats.entry(trace.clone()).or_default().push((
                        nanos(span.get("startTimeUnixNano")).unwrap_or(BAD_TIME),
                        hex_id(id),
                        (!tokens.is_empty()).then(|| tokens.iter().sum()),
                    ));
                    continue;
                }
                // OpenInference (Phoenix, Arize) marks tool spans by kind, with its own names.
                let open_inference =
                    attrs.get("openinference.span.kind").and_then(Value::as_str) == Some("TOOL");
                if operation != Some("execute_tool") && !open_inference {
                    continue;
                }
                let attr = |genai: &str, oi: &str| attrs.get(genai).or_else(|| attrs.get(oi));
                let code = span.get("status").and_then(|s| s.get("code"));
                let error_status = matches!(code, Some(Value::Number(n)) if n.as_i64() == Some(2))
                    || matches!(code, Some(Value::String(s)) if s == "STATUS_CODE_ERROR" || s == "2");
                let failed = error_status || attrs.get("error.type").is_some_and(|v| !v.is_null());
                let start = nanos(span.get("startTimeUnixNano")).unwrap_or(BAD_TIME);
                let call = Call {
                    session: String::new(),
                    tool: attr("gen_ai.tool.name", "tool.name")
                        .and_then(text)
                        .map(|s| s.into_owned())
                        .unwrap_or_default(),
                    start,
                    bad_time: bad_time(span.get("startTimeUnixNano"), start),
                    end: nanos(span.get("endTimeUnixNano")),
                    success: Some(!failed),
                    arguments: json_payload(attr("gen_ai.tool.call.arguments", "input.value")),
                    result: json_payload(attr("gen_ai.tool.call.result", "output.value")),
                    at,
                    id: None,
                    turn: None,
                };
                self.spans.push((trace, call));
            }
        }
    }

    fn finish(mut self: Box<Self>) -> Assembled {
        for chats in self.chats.values_mut() {
            chats.sort_by_key(|c| c.0);
        }
        let mut calls: Vec<Call> = self
            .spans
            .into_iter()
            .map(|(trace, mut call)| {
                call.turn = turn_before(&self.chats, &trace, call.start);
                call.session = self.conversations.get(&trace).cloned().unwrap_or(trace);
                call
            })
            .collect();
        // Spans arrive in end order; calls are listed in start order.
        calls.sort_by_key(|c| c.start);
        Assembled {
            calls,
            ..Assembled::default()
        }
    }
}

// ---- Langfuse --------------------------------------------------------------------------------

#[derive(Default)]
struct Langfuse {
    /// Tool observations with their trace id.
    calls: Vec<(String, Call)>,
    /// Per trace, its generations.
    generations: Chats,
}

/// A generation's tokens: `usageDetails` or `usage` (`total`, else `input` + `output`; an object
/// or, in a CSV export, its JSON text), or the older `totalTokens`.
fn langfuse_tokens(m: &Map<String, Value>) -> Option<u64> {
    let usage = ["usageDetails", "usage_details", "usage"]
        .iter()
        .find_map(|k| match m.get(*k)? {
            Value::Object(o) => Some(o.clone()),
            Value::String(s) => serde_json::from_str::<Map<String, Value>>(s).ok(),
            _ => None,
        });
    let count = |v: Option<&Value>| number(v).map(|n| n as u64);
    match usage {
        Some(u) => count(u.get("total")).or_else(|| {
            let parts: Vec<u64> = ["input", "output"]
                .iter()
                .filter_map(|k| count(u.get(*k)))
                .collect();
            (!parts.is_empty()).then(|| parts.iter().sum())
        }),
        None => count(m.get("totalTokens")),
    }
}

impl Assembler for Langfuse {
    fn record(&mut self, at: usize, m: Map<String, Value>) {
        let first = |keys: &[&str]| keys.iter().find_map(|k| m.get(*k).filter(|v| !v.is_null()));
        let trace = first(&["traceId", "trace_id"])
            .and_then(text)
            .map(|s| s.into_owned())
            .unwrap_or_default();
        let start = time(first(&["startTime", "start_time"]));
        match first(&["type"]).and_then(Value::as_str) {
            Some("TOOL") => {}
            Some("GENERATION") => {
                let id = first(&["id"]).and_then(text).map(|s| s.into_owned());
                self.generations.entry(trace).or_default().push((
                    start,
                    id.unwrap_or_else(|| format!("line {at}")),
                    langfuse_tokens(&m),
                ));
                return;
            }
            _ => return,
        }
        let session = first(&["sessionId", "session_id", "traceId", "trace_id"])
            .and_then(text)
            .map(|s| s.into_owned())
            .unwrap_or_default();
        let level = first(&["level"]).and_then(Value::as_str).unwrap_or("");
        let end = time(first(&["endTime", "end_time"]));
        let call = Call {
            session,
            tool: first(&["name"])
                .and_then(text)
                .map(|s| s.into_owned())
                .unwrap_or_default(),
            start,
            bad_time: bad_time(first(&["startTime", "start_time"]), start),
            end: (end != BAD_TIME).then_some(end),
            success: Some(!level.eq_ignore_ascii_case("ERROR")),
            arguments: json_payload(first(&["input"])),
            result: json_payload(first(&["output"])),
            at,
            id: None,
            turn: None,
        };
        self.calls.push((trace, call));
    }

    fn finish(mut self: Box<Self>) -> Assembled {
        for generations in self.generations.values_mut() {
            generations.sort_by_key(|g| g.0);
        }
        let calls = (self.calls.into_iter())
            .map(|(trace, mut call)| {
                call.turn = turn_before(&self.generations, &trace, call.start);
                call
            })
            .collect();
        Assembled {
            calls,
            ..Assembled::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_hex_and_base64_agree() {
        let hex = "5b8efff798038103d269b633813fc60c";
        assert_eq!(hex_id(hex), hex);
        assert_eq!(hex_id("5B8EFFF798038103D269B633813FC60C"), hex);
        assert_eq!(hex_id("W47/95gDgQPSabYzgT/GDA=="), hex);
    }

    #[test]
    fn exit_codes_in_outputs() {
        let code = |s: &str| printed_and_exit_code(s.to_string());
        assert_eq!(
            code(r#"{"output":"x","metadata":{"exit_code":1}}"#),
            ("x".to_string(), Some(1))
        );
        assert_eq!(code("Exit code: 0\nWall time: 1s\nOutput:\nok").1, Some(0));
        assert_eq!(code("Process exited with code 127\n").1, Some(127));
        assert_eq!(code("all good"), ("all good".to_string(), None));
    }

    #[test]
    fn otlp_values_become_json() {
        let v: Value = serde_json::json!({"kvlistValue": {"values": [
            {"key": "n", "value": {"intValue": "7"}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}
        ]}});
        assert_eq!(any_value(&v), serde_json::json!({"n": 7, "tags": ["a"]}));
    }
}
