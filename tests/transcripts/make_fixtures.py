"""Writes the hand-made transcript and trace fixtures of tests/agents.rs, in the shapes the
agents document (no third-party transcripts). Run from this folder: python3 make_fixtures.py"""
import base64
import json
import os


def w(path, lines, tail=""):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
        f.write(tail)


# Claude Code: a summary line, one API message split over lines sharing message.id (two parallel
# tool_use blocks, one line repeated), results of both in one user message, an MCP tool, a Bash
# call with a structured toolUseResult, a call cut off without result, a truncated last line, and
# a subagent's transcript.
base = {"parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/w",
        "sessionId": "s1", "version": "2.0.0"}


def line(uuid, ts, typ, msg, **kw):
    d = dict(base)
    d.update(uuid=uuid, timestamp=ts, type=typ, message=msg)
    d.update(kw)
    return d


split = {"id": "t2", "type": "tool_use", "name": "mcp__github__list_issues", "input": {"repo": "acme/app"}}
w("claude/proj/s1.jsonl", [
    {"type": "summary", "summary": "Fix the build", "leafUuid": "u9"},
    line("u1", "2026-01-05T09:00:00.000Z", "user", {"role": "user", "content": "fix the build"}),
    line("u2", "2026-01-05T09:00:01.000Z", "assistant", {"id": "msg_1", "role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/w/a.rs"}}]}),
    line("u3", "2026-01-05T09:00:01.000Z", "assistant", {"id": "msg_1", "role": "assistant", "content": [split]}),
    line("u3b", "2026-01-05T09:00:01.000Z", "assistant", {"id": "msg_1", "role": "assistant", "content": [split]}),
    line("u4", "2026-01-05T09:00:02.500Z", "user", {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "fn main() {}"},
        {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "[]"}], "is_error": True}]}),
    line("u5", "2026-01-05T09:00:03.000Z", "assistant", {"id": "msg_2", "role": "assistant", "content": [
        {"type": "text", "text": "Running the tests"},
        {"type": "tool_use", "id": "t3", "name": "Bash",
         "input": {"command": "cd /w && cargo test -p app 2>&1 | tail", "description": "tests"}}]}),
    line("u6", "2026-01-05T09:00:07.000Z", "user", {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t3", "content": "ok"}]},
        toolUseResult={"stdout": "ok", "stderr": "", "interrupted": False}),
    line("u7", "2026-01-05T09:00:08.000Z", "assistant", {"id": "msg_3", "role": "assistant", "content": [
        {"type": "tool_use", "id": "t4", "name": "Edit", "input": {"file_path": "/w/a.rs"}}]}),
], tail='{"parentUuid":"u7","type":"user","message":{"role":"user","content":[{"type":"tool_res')
# A resumed session: its file starts with the history of s1 (the same tool_use ids), then goes on.
history = [json.loads(l) for l in open("claude/proj/s1.jsonl").readlines()[2:6]]
for h in history:
    h["sessionId"] = "s2"
w("claude/proj/s2.jsonl", history + [
    line("w1", "2026-01-06T10:00:00.000Z", "assistant", {"id": "msg_9", "role": "assistant", "content": [
        {"type": "tool_use", "id": "t9", "name": "Write", "input": {"file_path": "/w/b.rs"}}]}, sessionId="s2"),
    line("w2", "2026-01-06T10:00:00.500Z", "user", {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t9", "content": "written"}]}, sessionId="s2"),
])
base.update(isSidechain=True, agentId="a7")
w("claude/proj/s1/subagents/agent-a7.jsonl", [
    line("v1", "2026-01-05T09:00:04.000Z", "assistant", {"id": "m", "role": "assistant", "content": [
        {"type": "tool_use", "id": "x1", "name": "Grep", "input": {"pattern": "fn"}}]}),
    line("v2", "2026-01-05T09:00:04.200Z", "user", {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "x1", "content": "a.rs"}]}),
])

# Codex: exit codes in text and in JSON output, an event line between, a custom tool whose output
# says no exit code.
w("codex/rollout-2026-01-05T09-00-00-c1.jsonl", [
    {"timestamp": "2026-01-05T09:00:00.000Z", "type": "session_meta", "payload": {"id": "c1", "cwd": "/w"}},
    {"timestamp": "2026-01-05T09:00:01.000Z", "type": "response_item", "payload": {
        "type": "function_call", "name": "shell",
        "arguments": json.dumps({"command": ["bash", "-lc", "git status"]}), "call_id": "k1"}},
    {"timestamp": "2026-01-05T09:00:01.300Z", "type": "response_item", "payload": {
        "type": "function_call_output", "call_id": "k1",
        "output": "Exit code: 0\nWall time: 0.3 seconds\nOutput:\nclean"}},
    {"timestamp": "2026-01-05T09:00:02.000Z", "type": "event_msg", "payload": {"type": "token_count"}},
    {"timestamp": "2026-01-05T09:00:02.000Z", "type": "response_item", "payload": {
        "type": "function_call", "name": "shell",
        "arguments": json.dumps({"command": ["bash", "-lc", "cargo build"]}), "call_id": "k2"}},
    {"timestamp": "2026-01-05T09:00:09.000Z", "type": "response_item", "payload": {
        "type": "function_call_output", "call_id": "k2",
        "output": json.dumps({"output": "error[E0432]", "metadata": {"exit_code": 101, "duration_seconds": 7.0}})}},
    {"timestamp": "2026-01-05T09:00:10.000Z", "type": "response_item", "payload": {
        "type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin Patch", "call_id": "k3",
        "status": "completed"}},
    {"timestamp": "2026-01-05T09:00:10.100Z", "type": "response_item", "payload": {
        "type": "custom_tool_call_output", "call_id": "k3", "output": "Done!"}},
])

# A rollout of Codex's first versions: no wrapper, no times of their own.
w("codex/rollout-2025-05-01T10-00-00-legacy.jsonl", [
    {"id": "c0", "timestamp": "2025-05-01T10:00:00.000Z", "instructions": ""},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "build it"}]},
    {"type": "function_call", "name": "shell", "arguments": json.dumps({"command": ["bash", "-lc", "cargo build"]}),
     "call_id": "l1"},
    {"type": "function_call_output", "call_id": "l1",
     "output": json.dumps({"output": "error", "metadata": {"exit_code": 101, "duration_seconds": 2.0}})},
    {"type": "function_call", "name": "shell", "arguments": json.dumps({"command": ["bash", "-lc", "cargo build"]}),
     "call_id": "l2"},
    {"type": "function_call_output", "call_id": "l2",
     "output": json.dumps({"output": "ok", "metadata": {"exit_code": 0, "duration_seconds": 2.0}})},
])

# OTLP/JSON, one pretty-printed document: spans in end order, tool spans' ids in base64, the
# agent span's in upper-case hex with the conversation id, arguments as a kvlist, a failure by
# status code and error.type.
def b64(h):
    return base64.b64encode(bytes.fromhex(h)).decode()


def attr(k, v):
    return {"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"intValue": str(v)}}


trace = "0af7651916cd43dd8448eb211c80319c"


def tool(span, name, start, end, err=False, args=None, result=None):
    a = [attr("gen_ai.operation.name", "execute_tool"), attr("gen_ai.tool.name", name)]
    if args is not None:
        a.append({"key": "gen_ai.tool.call.arguments", "value": {"kvlistValue": {"values": [
            {"key": k, "value": {"stringValue": v}} for k, v in args.items()]}}})
    if result is not None:
        a.append(attr("gen_ai.tool.call.result", json.dumps(result)))
    if err:
        a.append(attr("error.type", "timeout"))
    return {"traceId": b64(trace), "spanId": b64(span), "name": "execute_tool " + name,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "attributes": a,
            "status": {"code": "STATUS_CODE_ERROR"} if err else {}}


t0 = 1767603600 * 10**9
spans = [
    tool("c7ad6b7169203331", "search", t0 + 1 * 10**9, t0 + 2 * 10**9, err=True),
    tool("b7ad6b7169203331", "fetch", t0 + 3 * 10**9, t0 + 4 * 10**9, args={"url": "u"}, result={"id": 7}),
    {"traceId": trace.upper(), "spanId": "d7ad6b7169203331", "name": "invoke_agent",
     "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 5 * 10**9),
     "attributes": [attr("gen_ai.operation.name", "invoke_agent"), attr("gen_ai.conversation.id", "conv-1")],
     "status": {}},
]
spans[0], spans[1] = spans[1], spans[0]  # fetch ended after search but is listed first
doc = {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "agent")]},
                          "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}]}]}
with open("trace.otlp.json", "w") as f:
    f.write(json.dumps(doc, indent=2) + "\n")

# OpenInference (Phoenix, Arize): tool spans by kind, session.id, input.value / output.value; one
# request per line as a collector's file exporter writes them.
oi = lambda span, name, start: {"traceId": "1" * 32, "spanId": span, "name": name,
    "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10**8),
    "attributes": [attr("openinference.span.kind", "TOOL"), attr("tool.name", name),
                   attr("input.value", json.dumps({"q": "x"})), attr("session.id", "oi-1")]}
w("openinference.jsonl", [
    {"resourceSpans": [{"scopeSpans": [{"spans": [oi("a" * 16, "lookup", t0)]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [oi("b" * 16, "answer", t0 + 10**9)]}]}]},
])
