"""`patterns mine` on Apache Spark: the same options, the same output, the same templates.

    python3 src/spark/patterns_spark.py --spark-master 'local[2]' \
        --patterns target/release/patterns data/sample.csv --no-write

Every flag of `patterns mine` is taken as it is (the binary parses them: `patterns spark --plan`);
the job's own flags are:

    --spark-master URL       where to run: local[N], spark://HOST:PORT, yarn, k8s://…
                             (default: the session's, as spark-submit or the defaults set it)
    --patterns PATH          the patterns binary, shipped to the executors (default: `patterns`
                             on the PATH)
    --spark-partitions N     parts to split the log into (default: the cluster's parallelism;
                             at most the task slots: the parts run at once)
    --spark-format F         csv | json | parquet (default: from the first log's extension)
    --spark-keep-parts DIR   also keep each part's calls as DIR/part-N.parquet (local runs)

How: Spark reads the logs, gives every call its position in the input, and repartitions them by
session id, so that each session lies whole in one part, in input order. One barrier stage runs
one task per part, all at once; each writes its calls to a local Parquet file and runs the
`patterns` binary on it. The parts mine in lockstep: whenever the engine has counted something,
it sends its counts to an exchange that this driver runs, which answers with every part's
counts once all have sent theirs, so every part takes the decisions one process holding the
whole log would take (src/exchange.rs). Part 0 returns what `mine` prints and the templates;
the driver prints the one and has the binary write the other into the library.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

OWN_FLAGS = (
    "--patterns",
    "--spark-master",
    "--spark-partitions",
    "--spark-format",
    "--spark-keep-parts",
)


def split_args(argv):
    """The job's own flags, and the rest (the flags of `patterns mine`)."""
    own, rest, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in OWN_FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    sys.exit(f"error: {name} needs a value")
                i += 1
                value = argv[i]
            own[name] = value
        else:
            rest.append(arg)
        i += 1
    return own, rest


def run_binary(binary, args, **kw):
    return subprocess.run([binary, "spark", *args], text=True, **kw)


class Exchange:
    """All-gather for the parts of one job: each part connects, says who it is, then sends one
    JSON line per exchange; once every part has sent its line, each gets the list of all lines
    in part order. A part that goes away ends the round for all (they then fail together)."""

    def __init__(self, parts):
        self.parts = parts
        self.token = secrets.token_hex(16)
        self.server = socket.create_server(("0.0.0.0", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        # One generation of parts per stage attempt (Spark retries a failed barrier stage).
        while True:
            links = {}
            while len(links) < self.parts:
                conn, _ = self.server.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                f = conn.makefile("rwb")
                try:
                    hello = json.loads(f.readline())
                except ValueError:
                    conn.close()
                    continue
                if not isinstance(hello, dict):
                    conn.close()
                    continue
                part = hello.get("part")
                if (
                    hello.get("token") != self.token
                    or hello.get("parts") != self.parts
                    or part not in range(self.parts)
                ):
                    conn.close()
                    continue
                old = links.pop(part, None)
                if old:
                    old[0].close()
                links[part] = (conn, f)
            self.rounds([links[p] for p in range(self.parts)])

    def rounds(self, links):
        try:
            while True:
                lines = [f.readline() for _, f in links]
                if not all(lines):
                    return
                answer = (json.dumps([l.decode()[:-1] for l in lines]) + "\n").encode()
                for _, f in links:
                    f.write(answer)
                    f.flush()
        except OSError:
            return
        finally:
            for conn, _ in links:
                conn.close()


def read_logs(spark, logs, fmt):
    if fmt is None:
        name = logs[0].lower()
        for ext in (".gz", ".zst", ".bz2"):
            name = name.removesuffix(ext)
        if name.endswith((".csv", ".tsv")):
            fmt = "csv"
        elif name.endswith((".jsonl", ".ndjson", ".json")):
            fmt = "json"
        else:
            fmt = "parquet"
    if fmt == "csv":
        sep = "\t" if ".tsv" in logs[0].lower() else ","
        # Every column as text: the binary reads values as `patterns mine` does. Quotes are
        # escaped by doubling them (RFC 4180, as JSON text in a cell has them), and a quoted
        # cell may hold line breaks.
        return (
            spark.read.option("header", True)
            .option("sep", sep)
            .option("quote", '"')
            .option("escape", '"')
            .option("multiLine", True)
            .csv(logs)
        )
    if fmt == "json":
        return spark.read.json(logs)
    if fmt == "parquet":
        return spark.read.parquet(*logs)
    sys.exit(f"error: --spark-format {fmt}: give csv, json or parquet")


def main(argv):
    own, mine_args = split_args(argv)
    binary = own.get("--patterns") or shutil.which("patterns") or "patterns"
    plan = run_binary(binary, ["--plan", "[]", *mine_args], capture_output=True)
    if plan.returncode != 0:
        sys.stderr.write(plan.stderr)
        return plan.returncode

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark import BarrierTaskContext, SparkFiles
    from pyspark.errors import AnalysisException
    from pyspark.sql import SparkSession, functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    builder = (
        SparkSession.builder.appName("patterns mine")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
    )
    master = own.get("--spark-master")
    if master:
        builder = builder.master(master)
    if not (master or "local").startswith("local"):
        # The executors run the binary from their own copy.
        builder = builder.config("spark.files", os.path.abspath(binary))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    logs = json.loads(plan.stdout)["logs"]
    try:
        df = read_logs(spark, logs, own.get("--spark-format"))
    except AnalysisException as e:
        # A path that does not exist, a folder with nothing Spark can read: the input's fault.
        sys.stderr.write(f"error: Spark cannot read {', '.join(logs)}: {e.getMessage()}\n")
        return 2
    plan = run_binary(binary, ["--plan", json.dumps(df.columns), *mine_args], capture_output=True)
    if plan.returncode != 0:
        sys.stderr.write(plan.stderr)
        return plan.returncode
    plan = json.loads(plan.stdout)
    payloads = {plan["arguments"], plan["result"]} - {None}
    if any(not isinstance(df.schema[c].dataType, StringType) for c in payloads):
        # JSON objects that Spark took for structs are read again as their text, as the log
        # has it (a struct would sort their keys, and the templates' parameters with them).
        schema = StructType(
            [
                StructField(f.name, StringType()) if f.name in payloads else f
                for f in df.schema.fields
            ]
        )
        df = spark.read.schema(schema).json(logs)

    slots = spark.sparkContext.defaultParallelism
    try:
        parts = int(own.get("--spark-partitions") or slots)
    except ValueError:
        sys.stderr.write(f"error: --spark-partitions {own['--spark-partitions']}: not a number\n")
        return 2
    local_master = spark.sparkContext.master.startswith("local")
    if parts < 1 or (local_master and parts > slots):
        # The parts run at once (a barrier stage): with fewer slots, Spark would wait for them
        # for minutes before it gave up.
        sys.stderr.write(
            f"error: --spark-partitions {parts}: give 1 to {slots}, the task slots of "
            f"{spark.sparkContext.master} (every part runs at once)\n"
        )
        return 2
    exchange = Exchange(parts)
    address = f"{spark.conf.get('spark.driver.host')}:{exchange.port}"
    token = exchange.token
    keep = own.get("--spark-keep-parts")
    shipped = os.path.basename(binary)
    # Each session whole in one part; its calls in input order (ties of time keep it).
    row = "_patterns_row"
    df = (
        df.withColumn(row, F.monotonically_increasing_id())
        .repartition(parts, F.col(plan["session"]))
        .sortWithinPartitions(F.col(plan["session"]), F.col(row))
        .drop(row)
    )

    def task(batches):
        import pyarrow as pa
        import pyarrow.parquet as pq

        part = BarrierTaskContext.get().partitionId()
        local = SparkFiles.get(shipped)
        exe = local if os.path.exists(local) else binary
        if not os.access(exe, os.X_OK):
            os.chmod(exe, 0o755)
        with tempfile.TemporaryDirectory(prefix="patterns-part-") as tmp:
            path = os.path.join(tmp, "part.parquet")
            writer, rows = None, 0
            for batch in batches:
                if writer is None:
                    writer = pq.ParquetWriter(path, batch.schema)
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is not None:
                writer.close()
            if keep and rows:
                os.makedirs(keep, exist_ok=True)
                shutil.copy(path, os.path.join(keep, f"part-{part}.parquet"))
            args = ["--part", str(part), "--parts", str(parts), "--exchange", address]
            if rows:
                args += ["--part-file", path]
            env = dict(os.environ, PATTERNS_EXCHANGE_TOKEN=token)
            done = run_binary(exe, [*args, *mine_args], capture_output=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"patterns failed in part {part}: {done.stderr}")
        if part == 0:
            yield pa.RecordBatch.from_pydict({"result": [done.stdout]})

    results = df.mapInArrow(task, "result string", barrier=True).collect()
    result = json.loads(results[0]["result"])
    if "error" in result:
        sys.stderr.write(f"error: {result['error']}\n")
        return result["code"]
    sys.stderr.write(result["stderr"])
    if not plan["no_write"]:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as chains:
            json.dump(result["chains"], chains)
            chains.flush()
            saved = run_binary(binary, ["--save", chains.name, *mine_args])
        if saved.returncode != 0:
            return saved.returncode
    sys.stdout.write(result["stdout"])
    sys.stdout.flush()
    if result["note"]:
        sys.stderr.write(result["note"] + "\n")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
