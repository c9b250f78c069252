#!/usr/bin/env python3
"""Stand-in tools for the executor tests: GitHub, Slack, and tools that sleep, fail or hang.

Usage: stand_in.py KIND [ARG]. Reads the parameters as JSON on stdin, appends
{"tool": KIND, "params": ..., "start": t, "end": t} to calls.jsonl in the working directory,
and prints a JSON result (or fails) the way KIND does.
"""
import json
import os
import subprocess
import sys
import time


def record(kind, params, start):
    with open("calls.jsonl", "a") as f:
        f.write(json.dumps({"tool": kind, "params": params, "start": start, "end": time.time()}) + "\n")


def main():
    kind = sys.argv[1]
    arg = sys.argv[2] if len(sys.argv) > 2 else None
    raw = sys.stdin.read()
    params = json.loads(raw) if raw.strip() else {}
    start = time.time()
    result = None
    if kind == "list_issues":
        repo = params.get("repo", "?")
        result = {"repo": repo, "issues": [
            {"number": 42, "title": "Crash on start", "labels": ["bug"]},
            {"number": 43, "title": "Typo in README", "labels": ["docs"]},
        ]}
    elif kind == "create_pr":
        result = {"url": "https://github.com/%s/pull/101" % params.get("repo", "?"), "number": 101}
    elif kind == "slack":
        result = {"ok": True, "ts": "1732270000.000100", "channel": params.get("channel")}
    elif kind == "echo":
        result = params
    elif kind == "data":
        result = {"items": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}], "count": 2, "ok": False}
    elif kind == "sleep":
        time.sleep(float(arg))
        result = {"slept": float(arg)}
    elif kind == "flaky":
        # Fails the first ARG times it is called (counted in flaky.count), then succeeds.
        count = int(open("flaky.count").read()) + 1 if os.path.exists("flaky.count") else 1
        open("flaky.count", "w").write(str(count))
        if count <= int(arg):
            record(kind, params, start)
            print("flaky failure %d" % count, file=sys.stderr)
            sys.exit(1)
        result = {"attempt": count}
    elif kind == "edit":
        # An edit: counted in edits.count.
        count = int(open("edits.count").read()) + 1 if os.path.exists("edits.count") else 1
        open("edits.count", "w").write(str(count))
        result = {"edits": count}
    elif kind == "tests_after":
        # Tests that pass once ARG edits were made, and fail before.
        edits = int(open("edits.count").read()) if os.path.exists("edits.count") else 0
        if edits < int(arg):
            record(kind, params, start)
            print("%d tests failed" % (int(arg) - edits), file=sys.stderr)
            sys.exit(1)
        result = {"passed": 12, "edits": edits}
    elif kind == "fail":
        record(kind, params, start)
        print("the service said no", file=sys.stderr)
        sys.exit(2)
    elif kind == "hang":
        # Starts a grandchild, writes both pids, and never answers.
        child = subprocess.Popen(["sleep", "300"])
        with open("hang.pids", "w") as f:
            f.write("%d %d\n" % (os.getpid(), child.pid))
        time.sleep(300)
    elif kind == "hold":
        # Waits while the file ARG exists (a step that is running when the test kills patterns);
        # its pid in hold.pid.
        with open("hold.pid", "w") as f:
            f.write("%d\n" % os.getpid())
        while os.path.exists(arg):
            time.sleep(0.05)
        result = {"held": True}
    elif kind == "background":
        # Leaves a child running in the background and answers at once; its pid in background.pid.
        child = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open("background.pid", "w") as f:
            f.write("%d\n" % child.pid)
        result = {"started": child.pid}
    elif kind == "token":
        # Says the TOKEN it was given: in its result, or (ARG "fail") in its error.
        token = os.environ.get("TOKEN", "")
        if arg == "fail":
            record(kind, params, start)
            print("auth failed with token %s" % token, file=sys.stderr)
            sys.exit(1)
        result = {"token": token, "note": "used " + token}
    else:
        print("unknown stand-in %r" % kind, file=sys.stderr)
        sys.exit(64)
    record(kind, params, start)
    print(json.dumps(result))


main()
