"""Spark MLlib's own PrefixSpan on a patterns log, for BENCHMARKS.md: the frequent sequences of
tools per session with the classic settings (no gap limit, repeated calls kept), to set beside
`patterns mine --keep all --max-gap none --keep-repeats --min-len 1 --no-parallel` with the same
least support and longest chain.

    python3 benches/spark_prefixspan.py LOG.csv MIN_SUPPORT MAX_LEN [MASTER]

Prints one JSON object: the patterns found, how many of each length, and the seconds taken
from reading the log to the last pattern counted (Spark's start not included).
"""

import json
import os
import sys
import time

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from pyspark.ml.fpm import PrefixSpan  # noqa: E402
from pyspark.sql import SparkSession, functions as F  # noqa: E402


def main(log, min_support, max_len, master="local[2]"):
    spark = (
        SparkSession.builder.master(master)
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
        .getOrCreate()
    )
    started = time.time()
    calls = (
        spark.read.option("header", True)
        .option("escape", '"')
        .csv(log)
        .withColumn("row", F.monotonically_increasing_id())
    )
    # A session's calls by time, ties in input order (as `patterns` orders them); the generated
    # logs' timestamps are ISO 8601 text of one width, so text order is time order.
    sequences = calls.groupBy("session_id").agg(
        F.sort_array(F.collect_list(F.struct("timestamp", "row", "tool"))).alias("calls")
    ).select(F.expr("transform(calls, c -> array(c.tool))").alias("sequence"))
    found = PrefixSpan(
        minSupport=min_support,
        maxPatternLength=max_len,
        maxLocalProjDBSize=2**31 - 1,
        sequenceCol="sequence",
    ).findFrequentSequentialPatterns(sequences)
    by_length = (
        found.select(F.size("sequence").alias("length"))
        .groupBy("length")
        .count()
        .collect()
    )
    seconds = time.time() - started
    by_length = {str(r["length"]): r["count"] for r in sorted(by_length)}
    print(
        json.dumps(
            {
                "patterns": sum(by_length.values()),
                "by_length": by_length,
                "seconds": round(seconds, 1),
            }
        )
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:])
