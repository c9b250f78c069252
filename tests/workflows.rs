//! The issue "Workflows, not windows": `mine` lists the distinct workflows, each whole, with
//! their funnels and variants; no entry repeats another, on generated logs and on real ones.

use serde_json::Value;

use crate::common::{Workdir, data, mine_json};

/// A workflow as stages, each stage's tools sorted (a stage runs them in any order).
type Stages = Vec<Vec<String>>;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|t| t.as_str().expect("string").to_string())
        .collect()
}

fn stages_of(entry: &Value) -> Stages {
    entry["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            let mut s = strings(s);
            s.sort();
            s
        })
        .collect()
}

/// The planted workflows of a truth file as stages.
fn planted(truth: &Value) -> Vec<(String, Stages, &Value)> {
    truth["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let tools = strings(&w["tools"]);
            let blocks: Vec<Vec<String>> = w
                .get("parallel")
                .map(|p| p.as_array().unwrap().iter().map(strings).collect())
                .unwrap_or_default();
            let mut stages: Stages = Vec::new();
            for t in &tools {
                match blocks.iter().find(|b| b.contains(t)) {
                    Some(b) if stages.last().is_some_and(|s| b.contains(&s[0])) => {
                        let last = stages.last_mut().unwrap();
                        last.push(t.clone());
                        last.sort();
                    }
                    _ => stages.push(vec![t.clone()]),
                }
            }
            (w["name"].as_str().unwrap().to_string(), stages, w)
        })
        .collect()
}

fn generate(w: &Workdir, seed: u64, noise: &str) -> (std::path::PathBuf, Value) {
    let seed = seed.to_string();
    let args = [
        "--sessions",
        "3000",
        "--seed",
        &seed,
        "--noise",
        noise,
        "--no-payloads",
    ];
    crate::common::generate(w, &args)
}

#[test]
fn the_top_entries_are_exactly_the_planted_workflows_each_whole() {
    // The last: with no gap limit a run may spread over its whole session.
    for (seed, noise, gap) in [
        (1, "0", "2"),
        (2, "1", "2"),
        (3, "1", "2"),
        (4, "2", "2"),
        (5, "1", "none"),
    ] {
        let w = Workdir::new();
        let (log, truth) = generate(&w, seed, noise);
        let json = mine_json(&[log.to_str().unwrap(), "--top", "0", "--max-gap", gap]);
        let at = format!("seed {seed}, noise {noise}, gap {gap}");
        assert_top_is_planted(&json, &planted(&truth), &at);
    }
}

/// The top entries of `json`, as many as were planted, are the planted workflows.
fn assert_top_is_planted(json: &Value, planted: &[(String, Stages, &Value)], at: &str) {
    let entries = json["patterns"].as_array().unwrap();
    let top: Vec<Stages> = entries.iter().take(planted.len()).map(stages_of).collect();
    for (name, stages, _) in planted {
        assert!(
            top.contains(stages),
            "{at}: {name} {stages:?} is not among the top {}: {top:#?}",
            planted.len()
        );
    }
}

/// Issue 22: agent-shaped logs (`generate --shape agent`): a trunk with three branches, three
/// coding behaviours that share a start, a middle and a tail, one of them a loop of 1–4 rounds,
/// a stage whose tools are noise too, two tasks interleaved. On several seeds, noise levels and
/// gaps, the top entries are exactly the planted workflows, each whole, the loop with its
/// rounds, and the branches say which others share their trunk.
#[test]
fn agent_shaped_logs_list_every_branch_shared_step_and_loop_whole() {
    for (seed, noise, gap) in [
        (1, "0", "2"),
        (2, "1", "2"),
        (3, "1", "2"),
        (4, "2", "2"),
        (5, "1", "none"),
    ] {
        let w = Workdir::new();
        let args = [
            "--shape",
            "agent",
            "--sessions",
            "3000",
            "--seed",
            &seed.to_string(),
            "--noise",
            noise,
            "--no-payloads",
        ];
        let (log, truth) = crate::common::generate(&w, &args);
        let json = mine_json(&[log.to_str().unwrap(), "--top", "0", "--max-gap", gap]);
        let entries = json["patterns"].as_array().unwrap();
        let planted = planted(&truth);
        let at = format!("seed {seed}, noise {noise}, gap {gap}");
        assert_top_is_planted(&json, &planted, &at);
        let entry = |name: &str| {
            let (_, stages, t) = planted.iter().find(|p| p.0 == name).unwrap();
            (
                entries.iter().find(|e| stages_of(e) == *stages).unwrap(),
                *t,
            )
        };
        // The loop: its body once in the pattern, its rounds as planted (1 to 4, each common).
        let (fix, t) = entry("fix");
        let planted_loop = &t["loops"][0];
        let found = &fix["loops"]
            .as_array()
            .unwrap_or_else(|| panic!("{at}: fix has no loop: {fix:#}"))[0];
        assert_eq!(
            (&found["start"], &found["end"]),
            (&planted_loop["start"], &planted_loop["end"]),
            "{at}"
        );
        assert_eq!(found["rounds"]["most"], 4, "{at}: {found:#}");
        let by_rounds: Vec<u64> = (found["rounds"]["sessions"].as_array().unwrap().iter())
            .map(|r| r["sessions"].as_u64().unwrap())
            .collect();
        let planted_rounds: Vec<u64> = (planted_loop["rounds"].as_array().unwrap().iter())
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(by_rounds.len(), 4, "{at}: {found:#}");
        for (r, (found, planted)) in by_rounds.iter().zip(&planted_rounds).enumerate() {
            // Whole runs only, and a few runs broken by a long gap: at most what was planted, and
            // most of it.
            assert!(
                found <= planted && *found * 10 >= planted * 6,
                "{at}: {} rounds: {found} found, {planted} planted",
                r + 1
            );
        }
        assert_eq!(
            crate::common::chains(&json)
                .iter()
                .find(|c| c.starts_with("run_tests"))
                .map(String::as_str),
            Some("run_tests → edit_file → run_tests → git_commit → open_pr"),
            "{at}"
        );
        // The branches after the two lookups name each other.
        let (cancel, _) = entry("cancel");
        assert_eq!(
            cancel["branch"]["trunk"],
            serde_json::json!(["get_customer", "get_booking"]),
            "{at}: {cancel:#}"
        );
        let siblings: Vec<Vec<String>> = (cancel["branch"]["siblings"].as_array().unwrap().iter())
            .map(|s| strings(&s["pattern"]))
            .collect();
        for other in ["hand_over", "rebook"] {
            let (e, _) = entry(other);
            assert!(
                siblings.contains(&strings(&e["pattern"])),
                "{at}: {other} is not a sibling of cancel: {siblings:?}"
            );
        }
    }
}

#[test]
fn a_loop_is_drawn_with_its_body_once_in_the_table() {
    let w = Workdir::new();
    let log = crate::common::agent_log(&w);
    w.patterns()
        .args(["mine", log.to_str().unwrap(), "--no-write"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "run_tests → (edit_file → run_tests)+ → git_commit → open_pr",
        ))
        .stdout(predicates::str::contains(
            "loop: (edit_file → run_tests)+ median",
        ))
        .stdout(predicates::str::contains(
            "branches: after get_customer → get_booking also",
        ));
}

#[test]
fn funnels_and_variants_match_the_truth() {
    let w = Workdir::new();
    let (log, truth) = generate(&w, 5, "1");
    let json = mine_json(&[log.to_str().unwrap(), "--top", "0"]);
    for (name, stages, t) in planted(&truth) {
        let entry = json["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| stages_of(e) == stages)
            .unwrap_or_else(|| panic!("{name} not found"));
        // Per stage, the sessions that got that far: planted (at the stage's last step) against
        // found. A run is seen from its second stage on, and a run broken by a gap longer than
        // --max-gap looks abandoned: found is at most what was planted, and within 10 % of it.
        let planted_funnel: Vec<u64> = {
            let steps = t["funnel"].as_array().unwrap();
            let mut at = 0;
            stages
                .iter()
                .map(|s| {
                    at += s.len();
                    steps[at - 1].as_u64().unwrap()
                })
                .collect()
        };
        let found: Vec<u64> = entry["funnel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["sessions"].as_u64().unwrap())
            .collect();
        assert_eq!(found.len(), stages.len(), "{name}");
        // A session that got to a stage went past the ones before it: a funnel never rises.
        assert!(found.windows(2).all(|p| p[1] <= p[0]), "{name}: {found:?}");
        for k in 1..stages.len() {
            let (p, f) = (planted_funnel[k] as f64, found[k] as f64);
            assert!(
                f <= p * 1.02 && f >= p * 0.9,
                "{name}: stage {k} reached by {f} sessions, planted {p}: {found:?} vs {planted_funnel:?}"
            );
        }
        // The share of sessions it covers, and its time (the generator writes durations).
        let sessions = entry["sessions"].as_f64().unwrap();
        let coverage = entry["coverage"].as_f64().unwrap();
        assert!(
            (coverage - sessions / 3000.0).abs() < 1e-4,
            "{name}: {coverage}"
        );
        assert!(entry["avg_duration_ms"].as_f64().unwrap() > 0.0, "{name}");
        // Abandoned runs show as a falling funnel where they were planted.
        if t["abandon"].as_f64().unwrap() >= 0.1 && stages.len() >= 3 {
            assert!(found[stages.len() - 1] < found[1], "{name}: {found:?}");
        }
        // The support is the sessions that ran it whole: they reached the last stage, and did
        // not skip a step on the way.
        let support = entry["support"].as_u64().unwrap();
        assert!(
            support <= found[stages.len() - 1],
            "{name}: {support} {found:?}"
        );
        let variants = entry["variants"].as_array().unwrap();
        for v in t
            .get("variants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let planted_sessions = v["sessions"].as_f64().unwrap();
            let step = v["step"].as_str().unwrap();
            let hit = variants.iter().find(|f| {
                f["kind"] == v["kind"]
                    && match v["kind"].as_str().unwrap() {
                        "extra" => f["tool"] == v["tool"] && f["after"] == step,
                        _ => f["step"] == step,
                    }
            });
            let hit =
                hit.unwrap_or_else(|| panic!("{name}: variant {v} not found in {variants:#?}"));
            let found = hit["sessions"].as_f64().unwrap();
            assert!(
                found <= planted_sessions * 1.02 && found >= planted_sessions * 0.75,
                "{name}: variant {v} found in {found} sessions"
            );
        }
    }
}

#[test]
fn a_parallel_stage_of_three_tools_lists_its_orderings() {
    let w = Workdir::new();
    let (log, _) = generate(&w, 6, "1");
    let json = mine_json(&[log.to_str().unwrap(), "--top", "0"]);
    let deploy = json["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pattern"][0] == "build_image")
        .expect("deploy");
    let stages = stages_of(deploy);
    assert_eq!(stages[1], ["lint_image", "run_unit_tests", "scan_image"]);
    // All six orders of the stage were seen, and each is one ordering of the one entry; the
    // sessions that took them add up to its support, about a sixth each.
    assert_eq!(deploy["orderings"].as_array().unwrap().len(), 6, "{deploy}");
    let took: Vec<u64> = deploy["ordering_sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(
        took.iter().sum::<u64>(),
        deploy["support"].as_u64().unwrap()
    );
    let sixth = deploy["support"].as_f64().unwrap() / 6.0;
    assert!(took.iter().all(|&n| (n as f64) > 0.6 * sixth), "{took:?}");
}

/// Whether `a` repeats `b` as `../shared/tools/redundancy.py` counts it: one is a subsequence of
/// the other, or (3+ steps) all steps but one are in common.
fn repeats(a: &[String], b: &[String]) -> bool {
    fn subsequence(small: &[String], big: &[String]) -> bool {
        let mut rest = big.iter();
        small.iter().all(|t| rest.any(|b| b == t))
    }
    fn lcs(a: &[String], b: &[String]) -> usize {
        let mut m = vec![vec![0; b.len() + 1]; a.len() + 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                m[i + 1][j + 1] = if x == y {
                    m[i][j] + 1
                } else {
                    m[i][j + 1].max(m[i + 1][j])
                };
            }
        }
        m[a.len()][b.len()]
    }
    let k = a.len().min(b.len());
    subsequence(a, b) || subsequence(b, a) || (k >= 3 && lcs(a, b) + 1 >= k)
}

#[test]
fn no_entry_repeats_another_on_real_logs() {
    let mut logs = vec![
        data("helpdesk.csv"),
        data("taubench_airline_gpt4o.csv"),
        data("sample.csv"),
    ];
    // The shared folder of real logs, where the checkout has it beside it.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if let Ok(dir) = std::fs::read_dir(&shared) {
        let mut more: Vec<_> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        more.sort();
        logs.extend(more);
    }
    for log in logs {
        let json = mine_json(&[log.to_str().unwrap(), "--top", "0"]);
        let patterns = json["patterns"].as_array().unwrap();
        let entries: Vec<Vec<String>> = patterns.iter().map(|e| strings(&e["pattern"])).collect();
        assert!(!entries.is_empty(), "{}: nothing found", log.display());
        // Real runs skip steps, stop early and loop: their funnels still never rise.
        for e in patterns {
            let funnel: Vec<u64> = (e["funnel"].as_array().unwrap().iter())
                .map(|f| f["sessions"].as_u64().unwrap())
                .collect();
            assert!(
                funnel.windows(2).all(|p| p[1] <= p[0]),
                "{}: {}: {funnel:?}",
                log.display(),
                e["pattern"]
            );
        }
        // Branches after a shared start (or before a shared end) are different workflows when
        // each says so: the same trunk, the other among its siblings.
        let siblings = |i: usize, j: usize| {
            let (a, b) = (&patterns[i]["branch"], &patterns[j]["branch"]);
            let lists = |x: &Value, other: &[String]| {
                (x["siblings"].as_array().into_iter().flatten())
                    .any(|s| strings(&s["pattern"]) == other)
            };
            !a.is_null()
                && a["trunk"] == b["trunk"]
                && lists(a, &entries[j])
                && lists(b, &entries[i])
        };
        for i in 0..entries.len() {
            for j in i + 1..entries.len() {
                assert!(
                    siblings(i, j) || !repeats(&entries[i], &entries[j]),
                    "{}: entry {} {:?} repeats entry {} {:?}",
                    log.display(),
                    j + 1,
                    entries[j],
                    i + 1,
                    entries[i]
                );
            }
        }
    }
}

#[test]
fn a_long_process_comes_out_whole_with_no_length_cap() {
    // A 12-step process in 60 sessions with a call between some steps, a few runs stopping
    // early, and a stray call now and then.
    let steps: Vec<String> = (1..=12).map(|i| format!("step_{i:02}")).collect();
    let mut csv = String::from("session_id,timestamp,tool\n");
    for s in 0..60 {
        let mut t = 0;
        let mut push = |tool: &str| {
            t += 1;
            csv.push_str(&format!("s{s},{t},{tool}\n"));
        };
        push("open_case");
        for (i, step) in steps.iter().enumerate() {
            if (s + i) % 5 == 0 {
                push("note");
            }
            push(step);
            if s % 10 == 9 && i == 7 {
                break;
            }
        }
    }
    let w = Workdir::new();
    let log = w.write("long.csv", csv);
    let json = mine_json(&[log.to_str().unwrap(), "--top", "0"]);
    let first = &json["patterns"][0];
    let mut whole = vec!["open_case".to_string()];
    whole.extend(steps.iter().cloned());
    assert_eq!(strings(&first["pattern"]), whole);
    assert_eq!(first["support"], 54);
    assert_eq!(first["sessions"], 60);
    // Six sessions stopped after step 8: the funnel says so.
    let funnel: Vec<u64> = first["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["sessions"].as_u64().unwrap())
        .collect();
    assert_eq!(funnel[8], 60);
    assert_eq!(funnel[9], 54);
    assert_eq!(json["patterns"].as_array().unwrap().len(), 1, "{json:#}");
}

#[test]
fn keep_all_still_lists_every_window() {
    let sample = data("sample.csv");
    let all = mine_json(&[sample.to_str().unwrap(), "--top", "0", "--keep", "all"]);
    let chains = crate::common::chains(&all);
    // The whole pipeline and its pieces are all frequent chains.
    for c in [
        "fetch_data → transform_data",
        "transform_data → store_data",
        "fetch_data → transform_data → store_data → send_notification",
    ] {
        assert!(chains.contains(&c.to_string()), "{c}");
    }
    assert!(all["frequent"].as_u64().unwrap() >= chains.len() as u64);
}
