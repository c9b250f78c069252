//! `patterns report`: the page shows what `mine --json` says, stands alone, compares with a
//! library, and opens in a real browser (Debian's headless Chromium) without errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Workdir, data, json_of, run_ok};

/// The cards of a page: per workflow its name and its funnel's sessions, in page order.
fn cards(page: &str) -> Vec<(String, Vec<u64>)> {
    page.split("<article class=\"workflow\"")
        .skip(1)
        .map(|card| {
            let card = &card[..card.find("</article>").expect("a closed card")];
            let name = between(card, "data-name=\"", "\"").expect("a name");
            let funnel = card
                .split("data-sessions=\"")
                .skip(1)
                .map(|s| s[..s.find('"').unwrap()].parse().expect("a count"))
                .collect();
            (name.to_string(), funnel)
        })
        .collect()
}

fn between<'a>(s: &'a str, from: &str, to: &str) -> Option<&'a str> {
    let start = s.find(from)? + from.len();
    Some(&s[start..start + s[start..].find(to)?])
}

/// `patterns report LOG --top N` in `w`, returning the page.
fn report(w: &Workdir, args: &[&str]) -> String {
    run_ok(
        w.patterns()
            .arg("report")
            .args(args)
            .args(["-o", "page.html"]),
    );
    std::fs::read_to_string(w.path("page.html")).expect("the page")
}

#[test]
fn each_workflow_card_has_its_drawing_and_the_funnel_of_mine_json() {
    let w = Workdir::new();
    let log = data("sample.csv");
    let log = log.to_str().unwrap();
    let page = report(&w, &[log, "--top", "5"]);
    let mined = json_of(
        w.patterns()
            .args(["mine", log, "--json", "--no-write", "--top", "5"]),
    );
    let patterns = mined["patterns"].as_array().unwrap();
    let cards = cards(&page);
    assert_eq!(cards.len(), 5, "--top 5 gives five cards");
    assert_eq!(page.matches("<svg class=\"dag\"").count(), 5);
    for ((_, funnel), p) in cards.iter().zip(patterns) {
        let expected: Vec<u64> = (p["funnel"].as_array().unwrap().iter())
            .map(|f| f["sessions"].as_u64().unwrap())
            .collect();
        assert_eq!(funnel, &expected, "{}", p["pattern"]);
    }
    // The build → {lint ∥ scan ∥ test} → deploy workflow is drawn with its stage stacked:
    // three boxes in one column.
    assert!(
        page.contains("build_image → {lint_image ∥ scan_image ∥ run_unit_tests} → deploy_service")
    );
    // Self-contained: nothing is fetched.
    for outside in [
        "src=\"http",
        "href=\"http",
        "<script",
        "<link",
        "url(http",
        "@import",
    ] {
        assert!(
            !page.contains(outside),
            "the page refers outside: {outside}"
        );
    }
    // Overview figures are the log's.
    assert!(page.contains("<b>3,000</b><span>sessions</span>"));
    assert!(page.contains("<b>27,618</b><span>calls</span>"));
    // Nothing was written but the page.
    let mut files: Vec<_> = std::fs::read_dir(w.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["page.html"]);
}

#[test]
fn data_flow_is_drawn_with_the_field_it_binds() {
    let w = Workdir::new();
    let log = data("sample.csv");
    let page = report(&w, &[log.to_str().unwrap(), "--top", "0"]);
    let mined = json_of(w.patterns().args([
        "mine",
        log.to_str().unwrap(),
        "--top",
        "0",
        "--library",
        w.path("lib").to_str().unwrap(),
        "--json",
    ]));
    // Every data-flow binding of the written templates is an arc labelled "field → param".
    let mut bindings = 0;
    for e in std::fs::read_dir(w.path("lib")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue; // the lock file
        }
        let t: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for step in t["steps"].as_array().unwrap() {
            for (param, value) in step["parameters"].as_object().unwrap() {
                let Some(text) = value.as_str() else { continue };
                if let Some(inner) = between(text, "{{", "}}")
                    && let Some((root, field)) = inner.split_once('.')
                    && t["steps"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|s| s["step_id"] == root)
                {
                    bindings += 1;
                    let label = format!("{field} → {param}");
                    assert!(page.contains(&label), "no arc labelled {label}");
                }
            }
        }
    }
    assert!(
        bindings >= 8,
        "the sample has data flow in most workflows: {bindings}"
    );
    assert_eq!(
        page.matches("<path class=\"flow\"").count(),
        bindings,
        "one arc per binding"
    );
    assert_eq!(
        cards(&page).len(),
        mined["kept"].as_u64().unwrap() as usize,
        "--top 0: a card per workflow"
    );
}

#[test]
fn a_log_timed_by_positions_says_so_instead_of_drawing_dates() {
    let w = Workdir::new();
    let page = report(&w, &[data("taubench_airline_gpt4o.csv").to_str().unwrap()]);
    assert!(page.contains("order keys, not dates"));
    assert!(!page.contains("Calls per"));
    // The sample has dates: calls per hour over its two days.
    let page = report(&w, &[data("sample.csv").to_str().unwrap()]);
    assert!(page.contains("<h3>Calls per hour"));
}

#[test]
fn since_the_last_mine_counts_new_changed_and_stale_templates() {
    let w = Workdir::new();
    let sample = data("sample.csv");
    let helpdesk = data("helpdesk.csv");
    let lib = w.path("lib");
    let lib = lib.to_str().unwrap();
    run_ok(
        w.patterns()
            .args(["mine", sample.to_str().unwrap(), "--library", lib]),
    );
    let contents = || -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = (std::fs::read_dir(lib).unwrap())
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = contents();
    // The same log: every workflow unchanged, nothing stale.
    let page = report(&w, &[sample.to_str().unwrap(), "--library", lib]);
    assert!(
        page.contains(
            "<b>0</b> new, <b>0</b> changed, <b>8</b> unchanged, <b>0</b> no longer found"
        ),
        "{}",
        between(&page, "<section id=\"since\">", "</section>").unwrap_or("no section")
    );
    // Another log: its workflows are new and the sample's are no longer found.
    let page = report(&w, &[helpdesk.to_str().unwrap(), "--library", lib]);
    let since = between(&page, "<section id=\"since\">", "</section>").unwrap();
    assert!(
        since.contains("<b>0</b> changed, <b>0</b> unchanged, <b>8</b> no longer found"),
        "{since}"
    );
    assert_eq!(since.matches("<tr><td><code>").count(), 8);
    assert!(page.contains("<span class=\"badge new\">new</span>"));
    // The library was only read.
    assert!(contents() == before);
}

#[test]
fn loops_are_found_in_a_log_with_a_stuck_agent() {
    let w = Workdir::new();
    let mut csv = String::from("session_id,timestamp,tool,success\n");
    for s in 0..6 {
        let mut t = 0;
        let mut call = |tool: &str, ok: bool| {
            t += 1;
            csv += &format!("s{s},{t},{tool},{}\n", ok as u8);
        };
        call("read_file", true);
        // Sessions 0..4 are stuck: edit → test five rounds, the tests failing.
        for _ in 0..if s < 4 { 5 } else { 1 } {
            call("edit_file", true);
            call("run_tests", false);
        }
        call("run_tests", true);
    }
    w.write("stuck.csv", csv);
    let page = report(&w, &["stuck.csv"]);
    let loops = between(&page, "<table class=\"loops\">", "</table>").expect("a loops table");
    assert!(
        loops.contains(
            "<tr><td>edit_file → run_tests → …</td><td class=\"num\">4</td><td class=\"num\">4</td>\
             <td class=\"num\">5</td><td class=\"num\">5</td><td class=\"num\">50.0 %</td></tr>"
        ),
        "{loops}"
    );
}

/// Debian's Chromium, installed when missing (the tests run as root on CI machines; elsewhere
/// install it first: `apt-get install -y chromium`).
fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    if !path.exists() {
        let install = Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
            ])
            .output()
            .expect("sh");
        assert!(
            install.status.success() && path.exists(),
            "Chromium is needed for the browser test and could not be installed \
             (run `apt-get install -y chromium` as root): {}",
            String::from_utf8_lossy(&install.stderr)
        );
    }
    path
}

/// Runs headless Chromium on `page` with `flags`, its profile in `w`; returns stdout and the
/// page's console messages.
fn browse(w: &Workdir, page: &Path, flags: &[&str]) -> (String, Vec<String>) {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", w.path("profile").display()))
        .args(flags)
        .arg(format!("file://{}", page.display()))
        .env("HOME", w.path(""))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn the_report_opens_in_a_real_browser_without_errors() {
    let w = Workdir::new();
    // The console is watched: a page that logs an error is caught.
    let probe = w.write(
        "probe.html",
        "<!doctype html><title>p</title><script>console.error('probe-error')</script>",
    );
    let (_, console) = browse(&w, &probe, &["--dump-dom"]);
    assert!(
        console.iter().any(|l| l.contains("probe-error")),
        "console messages are not seen: {console:?}"
    );

    let log = data("helpdesk.csv");
    let page = report(&w, &[log.to_str().unwrap()]);
    let mined = json_of(
        w.patterns()
            .args(["mine", log.to_str().unwrap(), "--json", "--no-write"]),
    );
    let (dom, console) = browse(&w, &w.path("page.html"), &["--dump-dom"]);
    assert!(console.is_empty(), "console: {console:?}");
    // What the browser built: one drawing per workflow, the funnels of mine --json.
    let shown = mined["patterns"].as_array().unwrap();
    assert_eq!(dom.matches("<svg class=\"dag\"").count(), shown.len());
    let drawn = cards(&dom);
    assert_eq!(drawn.len(), shown.len());
    for ((_, funnel), p) in drawn.iter().zip(shown) {
        let expected: Vec<u64> = (p["funnel"].as_array().unwrap().iter())
            .map(|f| f["sessions"].as_u64().unwrap())
            .collect();
        assert_eq!(funnel, &expected);
    }
    assert_eq!(cards(&page), drawn);

    // The first screen, kept as an artifact of the test run.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-first-screen.png");
    std::fs::remove_file(&shot).ok();
    browse(
        &w,
        &w.path("page.html"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // 1280 × 900, as asked (width and height in the IHDR chunk).
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1280);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 900);
}

/// Issue 22: a card titles a loop with its body once and says its rounds, and a branch names
/// the others that share its trunk.
#[test]
fn cards_show_loops_with_their_rounds_and_the_branches_of_a_trunk() {
    let w = Workdir::new();
    let log = crate::common::agent_log(&w);
    let page = report(&w, &[log.to_str().unwrap()]);
    assert!(
        page.contains(". run_tests → (edit_file → run_tests)+ → git_commit → open_pr</h3>"),
        "no loop in the titles"
    );
    assert!(page.contains("<p class=\"loop\">loop: (edit_file → run_tests)+ median "));
    assert!(
        page.contains("<p class=\"branches\">branches: after get_customer → get_booking also ")
    );
}
