//! `notebooks/tour.ipynb` is executed as a user would run it (a kernel in the tests' venv, the
//! binary under test), its cells' assertions hold, and the outputs committed with it are the
//! ones it prints now.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{Workdir, cache_dir, python_venv};

/// What the notebook imports and what executes it, pinned.
const PACKAGES: [&str; 5] = [
    "polars==2.1.0",
    "matplotlib==3.11.2",
    "nbclient==0.11.0",
    "ipykernel==7.4.0",
    "nbformat==5.11.1",
];

fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| python_venv(cache_dir("patterns-notebook-venv"), &PACKAGES))
}

/// The text a notebook's code cells printed, cell by cell (pictures left out).
fn printed(nb: &Value) -> Vec<String> {
    (nb["cells"].as_array().unwrap().iter())
        .filter(|c| c["cell_type"] == "code")
        .map(|c| {
            (c["outputs"].as_array().unwrap().iter())
                .filter_map(|o| match o["output_type"].as_str() {
                    Some("stream") => Some(text(&o["text"])),
                    Some("execute_result" | "display_data") => {
                        o["data"].get("text/plain").map(text)
                    }
                    _ => Some(format!("{}: {}", o["ename"], o["evalue"])),
                })
                .collect::<Vec<_>>()
                .join("")
        })
        .collect()
}

/// A notebook string: text, or lines.
fn text(v: &Value) -> String {
    match v {
        Value::Array(lines) => lines.iter().map(|l| l.as_str().unwrap()).collect(),
        v => v.as_str().unwrap().to_string(),
    }
}

#[test]
fn the_tour_notebook_runs_and_prints_what_is_committed() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = repo.join("notebooks/tour.ipynb");
    let w = Workdir::new();
    let executed = w.path("tour.ipynb");
    // The notebook works in a folder of its own under TMPDIR: here, in the test's.
    std::fs::create_dir(w.path("tmp")).unwrap();
    let out = std::process::Command::new(venv().join("bin/python"))
        .arg(repo.join("notebooks/execute.py"))
        .arg(&committed)
        .arg(&executed)
        .env("PATTERNS_BIN", assert_cmd::cargo::cargo_bin("patterns"))
        .env("PATTERNS_REPO", repo)
        .env_remove("PATTERNS_LIBRARY")
        .env_remove("PATTERNS_TOOLS")
        .env("TMPDIR", w.path("tmp"))
        .env("MPLCONFIGDIR", w.path("mpl"))
        .env("JUPYTER_RUNTIME_DIR", w.path("jupyter"))
        .env("IPYTHONDIR", w.path("ipython"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the notebook failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(p).expect("notebook")).expect("JSON")
    };
    let (now, before) = (read(&executed), read(&committed));
    let (now, before) = (printed(&now), printed(&before));
    assert!(
        before.iter().all(|t| !t.is_empty()),
        "the committed notebook has a code cell without output: commit it executed (see notebooks/execute.py)"
    );
    assert_eq!(
        now, before,
        "the notebook prints other things than what is committed: refresh it (see notebooks/execute.py)"
    );
    // The plots were drawn.
    let pictures = std::fs::read_to_string(&executed)
        .unwrap()
        .matches("\"image/png\"")
        .count();
    assert_eq!(pictures, 2);
}
