"""The reference for classic sequential pattern mining: prefixspan-py (PyPI `prefixspan`) on a
log of the input schema with numeric timestamps (FIFA's), every chain of at most MAXLEN tools in
at least MINSUP sessions.

    python benches/prefixspan_py.py fifa.csv 4000 4 > prefixspan-4000.json

Prints the chains as JSON, `[[tool, ...], support]`, sorted, so that they compare with
`patterns mine --keep all --max-gap none --keep-repeats --json` (BENCHMARKS.md).
"""

import csv
import json
import sys

from prefixspan import PrefixSpan


def main(path, minsup, maxlen):
    sessions = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            sessions.setdefault(row["session_id"], []).append((float(row["timestamp"]), row["tool"]))
    db = [[tool for _, tool in sorted(calls, key=lambda c: c[0])] for calls in sessions.values()]
    ps = PrefixSpan(db)
    ps.maxlen = maxlen
    found = sorted([pattern, support] for support, pattern in ps.frequent(minsup))
    json.dump(found, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
