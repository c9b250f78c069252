//! Criterion benchmarks, one group per stage, in events per second, on a generated log: load,
//! sequences, mine (chains) or summarise (workflows), structure (orderings merged into
//! stages), templates (what each workflow's template keeps: figures, retries, data flow).
//!
//! `PATTERNS_BENCH_SESSIONS` sets the log size (default 100,000 sessions ≈ 1M events).
//! The `load` group also times polars alone reading the same CSV: the floor that loading is
//! compared with in BENCHMARKS.md.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use patterns::exchange::Alone;
use patterns::generate::{GenerateParams, generate};
use patterns::load::{Input, load};
use patterns::mining::summary::{SummaryParams, summarise};
use patterns::mining::{MineParams, Sequences, mine};
use patterns::pipeline::{self, MineOptions};
use patterns::score::{DEFAULT_TOLERANCE, Keep, rank};
use patterns::structure::{ParallelParams, merge_orderings};
use polars::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let sessions = std::env::var("PATTERNS_BENCH_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.csv");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let truth = generate(
        GenerateParams {
            sessions,
            seed: 1,
            payloads: false,
            ..Default::default()
        },
        file,
    )
    .unwrap();
    let inputs = [Input::File(path.clone())];
    let jsonl = dir.path().join("bench.jsonl");
    write_jsonl(&path, &jsonl);
    let jsonl_inputs = [Input::File(jsonl)];
    let events = Throughput::Elements(truth.events as u64);

    let mut group = c.benchmark_group("load");
    group
        .throughput(events.clone())
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("polars_read_csv", |b| {
        b.iter(|| {
            let df = CsvReadOptions::default()
                .try_into_reader_with_file_path(Some(path.clone()))
                .unwrap()
                .finish()
                .unwrap();
            black_box(df.height())
        })
    });
    group.bench_function("load", |b| {
        b.iter(|| black_box(load(&inputs, &Default::default(), &|_| {}).unwrap()))
    });
    group.bench_function("load_jsonl", |b| {
        b.iter(|| black_box(load(&jsonl_inputs, &Default::default(), &|_| {}).unwrap()))
    });
    group.finish();

    let (log, _) = load(&inputs, &Default::default(), &|_| {}).unwrap();
    let seqs = Sequences::new(&log, false);
    let params = MineParams::defaults(log.session_count());
    let mut group = c.benchmark_group("mine");
    group
        .throughput(events.clone())
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("sequences", |b| {
        b.iter(|| black_box(Sequences::new(&log, false)))
    });
    group.bench_function("mine", |b| {
        b.iter(|| black_box(mine(&seqs, &params, &|| {})))
    });
    let mined = mine(&seqs, &params, &|| {});
    group.bench_function("rank_closed", |b| {
        b.iter(|| black_box(rank(mined.clone(), Keep::Closed, DEFAULT_TOLERANCE)))
    });
    let summary = SummaryParams {
        min_support: params.min_support,
        ..SummaryParams::default()
    };
    group.bench_function("summarise", |b| {
        b.iter(|| black_box(summarise(&seqs, &summary, &Alone, &|_| {})))
    });
    let supports: HashMap<Vec<u32>, usize> = mined
        .iter()
        .map(|m| (m.pattern.clone(), m.support))
        .collect();
    let closed = rank(mined.clone(), Keep::Closed, DEFAULT_TOLERANCE);
    group.bench_function("structure", |b| {
        b.iter(|| {
            black_box(merge_orderings(
                &Alone,
                closed.clone(),
                &supports,
                &seqs,
                &log,
                false,
                params.max_gap,
                &ParallelParams::default(),
            ))
        })
    });
    let options = MineOptions::default();
    let report = pipeline::mine(&log, &options, &|_| {}).expect("within the limit");
    group.bench_function("templates", |b| {
        b.iter(|| {
            let stats: Vec<_> = (report.workflows.iter())
                .map(|w| pipeline::template_stats(w, &report, &log, &options))
                .collect();
            black_box(stats)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("end_to_end");
    group
        .throughput(events)
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    for keep in [Keep::Workflows, Keep::Closed] {
        let options = MineOptions {
            keep,
            ..MineOptions::default()
        };
        group.bench_function(format!("load_mine_{keep:?}").to_lowercase(), |b| {
            b.iter(|| {
                let (log, _) = load(&inputs, &Default::default(), &|_| {}).unwrap();
                black_box(pipeline::mine(&log, &options, &|_| {}).expect("within the limit"))
            })
        });
    }
    group.finish();
}

/// The rows of the CSV at `csv` as JSON lines, numbers as numbers: the same calls as flat JSONL.
fn write_jsonl(csv: &std::path::Path, jsonl: &std::path::Path) {
    use std::io::Write;
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let headers = reader.headers().unwrap().clone();
    let mut out = std::io::BufWriter::new(std::fs::File::create(jsonl).unwrap());
    for row in reader.records() {
        let object: serde_json::Map<String, serde_json::Value> =
            (headers.iter().zip(&row.unwrap()))
                .map(|(k, v)| {
                    let value = v.parse::<i64>().map_or_else(|_| v.into(), Into::into);
                    (k.to_string(), value)
                })
                .collect();
        writeln!(out, "{}", serde_json::Value::Object(object)).unwrap();
    }
    out.flush().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
