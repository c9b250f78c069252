#!/usr/bin/env python3
"""A real MCP client (the official Python SDK) driving `patterns serve` over stdio for the tests.

Usage: serve_client.py SCENARIO PATTERNS [SERVE ARGS...]. Runs `PATTERNS serve SERVE ARGS` in the
working directory, plays SCENARIO and prints what the client saw as one JSON object on stdout.
Usage: serve_client.py SCENARIO http://HOST:PORT/ [--library DIR]: the same over streamable HTTP
against a running server ($TOKEN, when set, sent as the bearer token).

Scenarios:
  session  tools/list; each workflow in calls.json called (with progress); suggest_workflow;
           then new.json copied into the library and the list_changed notification awaited
  cancel   the workflow `hanging` called and abandoned once hang.pids exists (the SDK sends
           notifications/cancelled), then a tools/list to show the server still answers
  calls    tools/list, then each call of calls.json
  time     (through --proxy) get_current_time in $ZONE, then convert_time of its result
"""
import json
import os
import shutil
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def tool_json(t):
    return {
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "input_schema": t.input_schema,
        "output_schema": t.output_schema,
        "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None,
    }


def result_json(r):
    return {
        "is_error": bool(r.is_error),
        "text": [c.text for c in r.content if getattr(c, "text", None) is not None],
        "structured": r.structured_content,
    }


async def main():
    scenario, binary, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    out = {}
    changed = anyio.Event()

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            changed.set()

    if binary.startswith("http"):
        token = os.environ.get("TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        transport = streamable_http_client(binary, http_client=create_mcp_http_client(headers=headers))
    else:
        params = StdioServerParameters(command=binary, args=["serve", *args], cwd=os.getcwd())
        transport = stdio_client(params)
    async with transport as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write, message_handler=on_message) as s:
            await s.initialize()
            out["tools"] = [tool_json(t) for t in (await s.list_tools()).tools]
            if scenario in ("session", "calls"):
                calls = json.load(open("calls.json")) if os.path.exists("calls.json") else []
                out["calls"] = []
                for name, arguments in calls:
                    progress = []

                    async def on_progress(done, total, message, progress=progress):
                        progress.append([done, total, message])

                    r = await s.call_tool(name, arguments, progress_callback=on_progress)
                    out["calls"].append({"name": name, **result_json(r), "progress": progress})
            if scenario == "session":
                r = await s.call_tool("suggest_workflow", {"tools": ["list_issues"]})
                out["suggest"] = result_json(r)
                library = args[args.index("--library") + 1]
                shutil.copy("new.json", os.path.join(library, "new.json"))
                with anyio.fail_after(20):
                    await changed.wait()
                out["tools_after"] = [t.name for t in (await s.list_tools()).tools]
            elif scenario == "time":
                now = await s.call_tool("get_current_time", {"timezone": os.environ["ZONE"]})
                zone = now.structured_content["timezone"]
                converted = await s.call_tool("convert_time", {
                    "source_timezone": zone, "time": "12:30", "target_timezone": "Asia/Tokyo"})
                out["calls"] = [result_json(now), result_json(converted)]
            elif scenario == "cancel":
                async with anyio.create_task_group() as tg:
                    scope = anyio.CancelScope()

                    async def call():
                        with scope:
                            await s.call_tool("hanging", {})

                    tg.start_soon(call)
                    with anyio.fail_after(20):
                        while not os.path.exists("hang.pids"):
                            await anyio.sleep(0.05)
                    scope.cancel()
                out["after_cancel"] = [t.name for t in (await s.list_tools()).tools]
    print(json.dumps(out))


anyio.run(main)
