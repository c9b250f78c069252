//! Workflow structure learned from generated logs: parallel blocks and data flow, checked
//! against the generator's ground truth.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::{Workdir, run_ok};
use crate::mine::generated;

/// The strings of a JSON array; none for a field that is absent.
fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_parallel_stage_is_one_workflow_and_a_loop_is_not_parallel() {
    for seed in [1, 2, 3] {
        let w = Workdir::new();
        let (log, truth) = generated(&w, 3000, seed);
        let out =
            run_ok(
                w.patterns()
                    .arg("mine")
                    .arg(&log)
                    .args(["--json", "--top", "8", "--no-write"]),
            );
        let mined: Value = serde_json::from_slice(&out.stdout).unwrap();
        let top = mined["patterns"].as_array().unwrap();
        for planted in truth["workflows"].as_array().unwrap() {
            let tools: BTreeSet<String> = names(&planted["tools"]).into_iter().collect();
            // Every planted workflow is one entry of the top, whatever order it ran in.
            let entries: Vec<&Value> = top
                .iter()
                .filter(|p| names(&p["pattern"]).into_iter().collect::<BTreeSet<_>>() == tools)
                .collect();
            assert_eq!(entries.len(), 1, "seed {seed}: {planted} in {mined:#}");
            let entry = entries[0];
            match planted.get("parallel") {
                Some(groups) => {
                    let group: BTreeSet<String> = names(&groups[0]).into_iter().collect();
                    let found: BTreeSet<String> =
                        names(&entry["parallel"][0]).into_iter().collect();
                    assert_eq!(found, group, "seed {seed}: {entry}");
                    // Three tools in any order: six orderings, all of them one entry.
                    assert_eq!(entry["orderings"].as_array().unwrap().len(), 6);
                    assert!(
                        entry["overlap"].as_f64().unwrap() > 0.9,
                        "the block's calls overlap: {entry}"
                    );
                    // Support counts every ordering: the sessions whose run got past the
                    // stage (the generator's funnel at the last step), about.
                    let whole = planted["funnel"]
                        .as_array()
                        .unwrap()
                        .last()
                        .unwrap()
                        .as_f64()
                        .unwrap();
                    let support = entry["support"].as_f64().unwrap();
                    assert!(
                        support > 0.9 * whole && support <= whole * 1.02,
                        "{support} vs {whole}"
                    );
                }
                None => assert!(entry.get("parallel").is_none(), "seed {seed}: {entry}"),
            }
        }
        if seed == 1 {
            let out = run_ok(w.patterns().arg("mine").arg(&log).args([
                "--json",
                "--top",
                "8",
                "--no-write",
                "--no-parallel",
            ]));
            let plain: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(
                plain["patterns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p.get("parallel").is_none())
            );
            assert_eq!(plain["settings"]["parallel"], false);
        }
        // The fix loop (run_pytest → apply_patch → run_pytest) runs both orders of its steps in
        // the same sessions: no entry makes them a parallel block.
        for p in top {
            for group in p
                .get("parallel")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                assert!(!names(group).contains(&"apply_patch".to_string()), "{p}");
            }
        }
    }
}

/// `(step's tool.parameter, source)` of every parameter of a mined template; the source is the
/// template text with step ids replaced by their tools.
fn parameters(t: &Value) -> Vec<(String, String)> {
    let steps = t["steps"].as_array().unwrap();
    let tool_of = |id: &str| {
        steps
            .iter()
            .find(|s| s["step_id"] == id)
            .map(|s| s["tool_name"].as_str().unwrap().to_string())
    };
    let mut out = Vec::new();
    for s in steps {
        for (k, v) in s["parameters"].as_object().unwrap() {
            let key = format!("{}.{k}", s["tool_name"].as_str().unwrap());
            let source = match v
                .as_str()
                .and_then(|v| v.strip_prefix("{{")?.strip_suffix("}}"))
            {
                Some(inner) => match inner.split_once('.') {
                    Some((id, path)) if tool_of(id).is_some() => {
                        format!("{}.{path}", tool_of(id).unwrap())
                    }
                    _ => format!("var {inner}"),
                },
                None => format!("constant {v}"),
            };
            out.push((key, source));
        }
    }
    out
}

#[test]
fn planted_data_flow_is_recovered() {
    let (mut found, mut right, mut planted_bindings) = (0usize, 0usize, 0usize);
    for seed in [1, 2, 3] {
        let w = Workdir::new();
        let (log, truth) = generated(&w, 3000, seed);
        run_ok(
            w.patterns()
                .arg("mine")
                .arg(&log)
                .args(["--library", "lib", "--top", "8"]),
        );
        for planted in truth["workflows"].as_array().unwrap() {
            let Some(bindings) = planted.get("bindings") else {
                continue;
            };
            let tools: BTreeSet<String> = names(&planted["tools"]).into_iter().collect();
            let template = std::fs::read_dir(w.path("lib"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).unwrap())
                .find(|t| {
                    names(&t["metadata"]["pattern"])
                        .into_iter()
                        .collect::<BTreeSet<_>>()
                        == tools
                })
                .unwrap_or_else(|| panic!("no template for {planted}"));
            let params = parameters(&template);
            let truth_bindings: BTreeSet<(String, String)> = bindings
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b[0].as_str().unwrap().to_string(),
                        b[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let recovered: BTreeSet<(String, String)> = params
                .iter()
                .filter(|(_, s)| !s.starts_with("var ") && !s.starts_with("constant "))
                .cloned()
                .collect();
            found += recovered.len();
            right += recovered.intersection(&truth_bindings).count();
            planted_bindings += truth_bindings.len();
            // Constants and shared variables are told apart from bindings and from each other.
            for c in names(&planted["constants"]) {
                let (_, source) = params
                    .iter()
                    .find(|(k, _)| *k == c)
                    .unwrap_or_else(|| panic!("{c} missing"));
                assert!(source.starts_with("constant "), "{c}: {source}");
            }
            for v in names(&planted["variables"]) {
                let users = params
                    .iter()
                    .filter(|(_, s)| *s == format!("var {v}"))
                    .count();
                assert!(users >= 2, "variable {v} is shared: {params:?}");
            }
            assert!(
                template["description"]
                    .as_str()
                    .unwrap()
                    .contains("; give --var "),
                "{template}"
            );
        }
    }
    let precision = right as f64 / found as f64;
    let recall = right as f64 / planted_bindings as f64;
    println!(
        "data flow on 3 generated logs: {right} of {found} bindings right (precision {precision:.3}), {right} of {planted_bindings} planted found (recall {recall:.3})"
    );
    assert_eq!((precision, recall), (1.0, 1.0));
}

/// A log of 20 sessions of `fetch → store`: fetch returns `{"id": …}`; store gets `id` equal to
/// it in `bound` sessions (else another value), and `mode` "fast" in `constant` sessions (else a
/// value of its own). Written with the given argument and result column names.
fn flow_log(w: &Workdir, bound: usize, constant: usize, args: &str, result: &str) -> String {
    let mut csv = format!("session_id,timestamp,tool,success,{args},{result}\n");
    let q = |v: serde_json::Value| format!("\"{}\"", v.to_string().replace('"', "\"\""));
    for s in 0..20 {
        let id = format!("r-{s}");
        csv += &format!(
            "s{s},1,fetch,1,{},{}\n",
            q(serde_json::json!({"query": format!("q{s}")})),
            q(serde_json::json!({"id": id}))
        );
        let store_id = if s < bound { id } else { format!("other-{s}") };
        let mode = if s < constant {
            "fast".to_string()
        } else {
            format!("m{s}")
        };
        csv += &format!(
            "s{s},2,store,1,{},{}\n",
            q(serde_json::json!({"id": store_id, "mode": mode})),
            q(serde_json::json!({"ok": true}))
        );
    }
    let name = format!("flow-{bound}-{constant}-{args}-{result}.csv");
    w.write(&name, csv);
    name
}

/// The parameters of the `store` step of the template mined from `log`.
fn store_parameters(w: &Workdir, log: &str) -> Value {
    let lib = w.path(&format!("lib-{log}"));
    run_ok(w.patterns().args(["mine", log, "--library"]).arg(&lib));
    let file = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a template");
    let t: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    t["steps"][1]["parameters"].clone()
}

#[test]
fn a_binding_needs_four_runs_in_five_and_a_constant_nineteen_in_twenty() {
    let w = Workdir::new();
    // Just above both thresholds (0.8 and 0.95): a binding and a constant.
    let p = store_parameters(&w, &flow_log(&w, 16, 19, "arguments", "result"));
    assert_eq!(p["id"], "{{fetch.id}}");
    assert_eq!(p["mode"], "fast");
    // Just below: a value the user gives.
    let p = store_parameters(&w, &flow_log(&w, 15, 18, "arguments", "result"));
    assert_eq!(p["id"], "{{store_id}}");
    assert_eq!(p["mode"], "{{store_mode}}");
}

#[test]
fn argument_and_result_columns_are_found_by_their_usual_names() {
    let w = Workdir::new();
    let expected = serde_json::json!({"id": "{{fetch.id}}", "mode": "fast"});
    for (args, result) in [
        ("arguments", "result"),
        ("args", "output"),
        ("params", "result"),
        ("input", "output"),
    ] {
        let p = store_parameters(&w, &flow_log(&w, 20, 20, args, result));
        assert_eq!(p, expected, "columns {args} and {result}");
    }
}
