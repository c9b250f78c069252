//! The Spark job (`src/spark/patterns_spark.py`) on a real Spark: `pyspark` from PyPI in local
//! mode, in a virtual environment the tests make once per machine (Java 17 must be installed).
//! Its answer must be `patterns mine`'s, byte for byte, templates included.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{Workdir, cache_dir, data, patterns, python_venv, run_ok};

/// Spark and what its Python tasks need, pinned.
const PACKAGES: [&str; 3] = ["pyspark==4.3.0", "pyarrow==26.0.1", "pandas==2.3.3"];

fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = std::env::var_os("PATTERNS_SPARK_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache_dir("patterns-spark-venv"));
        python_venv(dir, &PACKAGES)
    })
}

/// `patterns_spark.py --spark-master local[N] --patterns BIN ARGS` in `w`: its stdout, which
/// must succeed.
fn spark(w: &Workdir, slots: usize, args: &[&str]) -> Vec<u8> {
    let out = spark_job(w, slots, args);
    assert!(
        out.status.success(),
        "the Spark job failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The Spark job's whole output, whatever its exit code.
fn spark_job(w: &Workdir, slots: usize, args: &[&str]) -> std::process::Output {
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/spark/patterns_spark.py");
    let binary = assert_cmd::cargo::cargo_bin("patterns");
    std::process::Command::new(venv().join("bin/python"))
        .current_dir(w.path(""))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env_remove("PATTERNS_LIBRARY")
        .env_remove("RAYON_NUM_THREADS")
        // Spark's scratch space and the tasks' temp files stay in the test's folder.
        .env("TMPDIR", w.path(""))
        .env("SPARK_LOCAL_DIRS", w.path(""))
        .arg(&job)
        .args(["--spark-master", &format!("local[{slots}]")])
        .arg("--patterns")
        .arg(&binary)
        .args(args)
        .output()
        .expect("the Spark job runs")
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: not JSON: {}", String::from_utf8_lossy(bytes)))
}

/// Every template file of a library folder, by name, with its text.
fn library(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("library written")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn spark_mines_the_sample_as_one_machine_does_templates_included() {
    let w = Workdir::new();
    let log = data("sample.csv");
    let log = log.to_str().unwrap();
    let alone = run_ok(
        w.patterns()
            .args(["mine", log, "--json", "--library", "alone"]),
    )
    .stdout;
    let on_spark = spark(
        &w,
        2,
        &[
            log,
            "--json",
            "--library",
            "spark",
            "--spark-partitions",
            "2",
        ],
    );
    assert_eq!(json(&on_spark), json(&alone));
    let (alone, on_spark) = (library(&w.path("alone")), library(&w.path("spark")));
    assert_eq!(on_spark.len(), 8, "the eight planted workflows");
    assert_eq!(on_spark, alone, "the same templates, byte for byte");
}

/// A log in which one workflow runs whole in exactly the least support's number of sessions,
/// spread over the parts so that no part has that many of them.
#[test]
fn a_workflow_frequent_overall_but_rare_in_every_part_is_found() {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool,success\n");
    let mut row = |s: &str, tools: &[&str]| {
        for (i, t) in tools.iter().enumerate() {
            csv.push_str(&format!("{s},{},{t},true\n", i + 1));
        }
    };
    for i in 0..12 {
        row(
            &format!("rare-{i}"),
            &["file_report", "review", "approve", "publish"],
        );
    }
    for i in 0..60 {
        row(&format!("busy-{i}"), &["search", "read_doc", "answer"]);
    }
    let log = w.write("log.csv", csv);
    let log = log.to_str().unwrap();
    let args = ["--min-support", "12", "--json", "--no-write"];
    let alone = json(&run_ok(w.patterns().arg("mine").arg(log).args(args)).stdout);
    let parts = w.path("parts");
    let on_spark = json(&spark(
        &w,
        3,
        &[
            &[log][..],
            &args,
            &["--spark-partitions", "3", "--spark-keep-parts"],
            &[parts.to_str().unwrap()],
        ]
        .concat(),
    ));
    assert_eq!(on_spark, alone);
    let found = |j: &Value| -> Vec<String> {
        (j["patterns"].as_array().unwrap().iter())
            .map(|p| p["pattern"].to_string())
            .collect()
    };
    let escalation = r#"["file_report","review","approve","publish"]"#;
    assert!(found(&on_spark).contains(&escalation.to_string()));
    // Each part alone, at the same least support, does not hold it.
    let mut kept = 0;
    for part in std::fs::read_dir(&parts).unwrap() {
        let part = part.unwrap().path();
        let alone = json(&run_ok(patterns().arg("mine").arg(&part).args(args)).stdout);
        let sessions = alone["input"]["sessions"].as_u64().unwrap();
        assert!(
            sessions > 0 && sessions < 72,
            "{sessions} sessions in a part"
        );
        assert!(!found(&alone).contains(&escalation.to_string()), "{part:?}");
        kept += 1;
    }
    assert_eq!(kept, 3, "three parts, each with some sessions");
}

#[test]
fn spark_mines_a_generated_log_in_four_parts_as_one_machine_does() {
    let w = Workdir::new();
    let (log, _) = crate::common::generate(&w, &["--sessions", "4000", "--seed", "11"]);
    let log = log.to_str().unwrap();
    let args = ["--json", "--no-write", "--top", "0"];
    let alone = json(&run_ok(w.patterns().arg("mine").arg(log).args(args)).stdout);
    let on_spark = json(&spark(
        &w,
        4,
        &[&[log][..], &args, &["--spark-partitions", "4"]].concat(),
    ));
    assert!(alone["kept"].as_u64().unwrap() >= 5);
    assert_eq!(on_spark, alone);
}

/// `--keep all` and `--keep closed` on Spark mine chains by SON: each part at its share of the
/// least support, then every candidate counted exactly in every part.
#[test]
fn spark_mines_every_frequent_chain_by_son_as_one_machine_does() {
    let w = Workdir::new();
    let log = data("sample.csv");
    let log = log.to_str().unwrap();
    for keep in [
        &[
            "--keep",
            "all",
            "--max-gap",
            "none",
            "--keep-repeats",
            "--min-len",
            "1",
        ][..],
        &["--keep", "closed"][..],
    ] {
        let args = [&[log][..], keep, &["--json", "--no-write", "--top", "0"]].concat();
        let alone = json(&run_ok(w.patterns().arg("mine").args(&args)).stdout);
        let on_spark = json(&spark(
            &w,
            3,
            &[&args[..], &["--spark-partitions", "3"]].concat(),
        ));
        assert!(alone["frequent"].as_u64().unwrap() > 100, "{keep:?}");
        assert_eq!(on_spark, alone, "{keep:?}");
    }
}

/// Bad rows are skipped and counted as one machine does, named by the logs and the part they
/// were in; with --strict the first one is fatal (exit 2), named the same way; more parts than
/// slots is bad usage.
#[test]
fn bad_rows_on_spark_are_counted_and_named_by_log_and_part() {
    let w = Workdir::new();
    let log = w.write(
        "bad.csv",
        "session_id,timestamp,tool,success\ns1,1,a,1\ns1,yesterday,b,1\ns2,1,a,1\ns2,2,b,1\n",
    );
    let log = log.to_str().unwrap();
    let args = [log, "--min-support", "1", "--json", "--no-write"];
    let alone = json(&run_ok(w.patterns().arg("mine").args(args)).stdout);
    let out = spark_job(&w, 2, &args);
    assert!(out.status.success());
    assert_eq!(json(&out.stdout), alone);
    assert_eq!(alone["input"]["skipped"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{log} (Spark part ")) && stderr.contains("\"yesterday\""),
        "{stderr}"
    );
    let strict = spark_job(&w, 2, &[log, "--strict", "--no-write"]);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(strict.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {log} (Spark part ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("part.parquet") && !stderr.contains("Traceback"),
        "{stderr}"
    );
    // More parts than task slots would wait for slots that never come: refused at once.
    let crowded = spark_job(&w, 2, &[log, "--no-write", "--spark-partitions", "3"]);
    let stderr = String::from_utf8_lossy(&crowded.stderr);
    assert_eq!(crowded.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: --spark-partitions 3: give 1 to 2"),
        "{stderr}"
    );
}

/// Parquet and JSON lines (arguments and results as objects, which Spark would take for structs)
/// give what `patterns mine` gives on the same files, templates included.
#[test]
fn spark_reads_parquet_and_json_lines_as_one_machine_does() {
    let w = Workdir::new();
    let convert = r#"
import csv, json, sys
import pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
text = {c: pa.string() for c in ("session_id", "timestamp", "arguments", "result")}
table = pc.read_csv(sys.argv[1], convert_options=pc.ConvertOptions(column_types=text))
pq.write_table(table, "sample.parquet")
with open(sys.argv[1]) as f, open("sample.jsonl", "w") as out:
    for row in csv.DictReader(f):
        for k in ("arguments", "result"):
            row[k] = json.loads(row[k]) if row[k] else None
        out.write(json.dumps(row) + "\n")
"#;
    let made = std::process::Command::new(venv().join("bin/python"))
        .current_dir(w.path(""))
        .args(["-c", convert])
        .arg(data("sample.csv"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for log in ["sample.parquet", "sample.jsonl"] {
        let args = |library| [log, "--json", "--library", library];
        let alone = json(&run_ok(w.patterns().arg("mine").args(args("alone"))).stdout);
        assert_eq!(alone["kept"], 8, "{log}");
        assert_eq!(json(&spark(&w, 2, &args("spark"))), alone, "{log}");
        let (alone, on_spark) = (library(&w.path("alone")), library(&w.path("spark")));
        assert!(
            alone.iter().any(|(_, t)| t.contains("{{")),
            "data flow in {log}"
        );
        assert_eq!(on_spark, alone, "{log}");
        std::fs::remove_dir_all(w.path("alone")).unwrap();
        std::fs::remove_dir_all(w.path("spark")).unwrap();
    }
}

/// Task outcomes, from a column carried into each part and from a results file every part
/// reads: the outcome figures and the paths to failure are the whole log's, as one machine's.
#[test]
fn spark_weighs_task_outcomes_as_one_machine_does() {
    let w = Workdir::new();
    let generate = [
        "generate",
        "--shape",
        "agent",
        "--sessions",
        "2000",
        "--seed",
        "5",
        "--no-payloads",
    ];
    run_ok(
        w.patterns()
            .args(generate)
            .args(["--with-outcomes", "--output", "column.csv"]),
    );
    run_ok(
        w.patterns()
            .args(generate)
            .args(["--output", "runs.csv", "--outcomes", "results.csv"]),
    );
    let args = ["--json", "--no-write", "--top", "0"];
    for (log, flags) in [
        ("column.csv", &[][..]),
        ("runs.csv", &["--outcomes", "results.csv"][..]),
    ] {
        let alone = json(&run_ok(w.patterns().arg("mine").arg(log).args(flags).args(args)).stdout);
        let on_spark = json(&spark(
            &w,
            2,
            &[&[log][..], flags, &args, &["--spark-partitions", "2"]].concat(),
        ));
        assert_eq!(alone["input"]["outcomes"]["known"], 2000, "{log}");
        assert!(!alone["paths_to_failure"].as_array().unwrap().is_empty());
        assert_eq!(on_spark, alone, "{log}");
    }
}
