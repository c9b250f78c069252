//! `patterns library`: list, show, validate, export and initialise the workflow library.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use itertools::Itertools;

use super::table::{Table, count, printable};
use crate::UsageError;
use crate::template::{
    Library, Source, WorkflowTemplate, builtins, data_edges, read_template, skill, skill_name,
    write_atomic,
};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  patterns library list
  patterns library show github_pr_workflow
  patterns library validate workflows/*.json
  patterns library export github_pr_workflow --format mermaid
  patterns library init")]
pub struct Args {
    /// Library folder
    #[arg(
        long,
        env = "PATTERNS_LIBRARY",
        default_value = "workflows",
        value_name = "DIR",
        global = true
    )]
    library: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the library's templates and the built-ins
    #[command(after_help = "\
Lists every template of the library folder (mined, hand-written) and the built-ins, with their
steps, score and when they were last seen in a log; mined ones no longer frequent are marked
stale.

Examples:
  patterns library list
  patterns library list --json | jq -r '.[].name'
  patterns library --library /srv/workflows list")]
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print one template (as a step list, or its JSON)
    #[command(after_help = "\
Shows a template's description and its steps in order: tool, dependencies, and parameters
with their {{...}} bindings.

Examples:
  patterns library show github_pr_workflow
  patterns library show list_issues-create_pr-slack_send_message --json > flow.json")]
    Show {
        /// The template's name (a file of the library, or a built-in)
        name: String,
        /// Print the template's JSON
        #[arg(long)]
        json: bool,
    },
    /// Check template files (default: every file of the library); exit 1 listing every problem
    #[command(after_help = "\
Checks each file: unique step ids, a tool per step, dependencies and fallbacks that exist and
form no cycle, {{...}} expressions and conditions that parse, retry policies, parallel groups of
known steps. Every problem of every file is listed; exit code 1 when there is one.

Examples:
  patterns library validate
  patterns library validate workflows/*.json my_flow.json")]
    Validate {
        /// Template files (default: every file of the library folder)
        files: Vec<PathBuf>,
    },
    /// Draw a template's steps and dependencies, or write it as an Agent Skill
    #[command(after_help = "\
Writes the template as a graph: steps as boxes, parallel steps side by side, dependencies as
arrows and data flow ({{step.field}}) as labelled dashed arrows. With --format skill, writes an
Agent Skills folder (NAME/SKILL.md: when to use it, its steps, the `patterns run` command with its
arguments) into --output, where Claude Code (.claude/skills) or Codex (.agents/skills) load it;
--all writes one per template of the library.

Examples:
  patterns library export github_pr_workflow > flow.mmd
  patterns library export github_pr_workflow --format dot | dot -Tsvg > flow.svg
  patterns library export --all --format skill --output .claude/skills")]
    Export {
        /// The template's name (a file of the library, or a built-in)
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Mermaid (renders on GitHub and GitLab), Graphviz dot, or an Agent Skill folder
        #[arg(long, value_parser = ["mermaid", "dot", "skill"], default_value = "mermaid")]
        format: String,
        /// Every template of the library folder (with --format skill)
        #[arg(long)]
        all: bool,
        /// Where skill folders are written
        #[arg(long, value_name = "DIR", default_value = ".claude/skills")]
        output: PathBuf,
    },
    /// Write the built-in templates into the library folder (existing files are kept)
    #[command(after_help = "\
Examples:
  patterns library init
  patterns library --library /srv/workflows init")]
    Init,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let library = Library::new(&args.library);
    let read = || super::read_catalog(&args.library);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.command {
        Command::List { json } => {
            let templates = read()?;
            if json {
                serde_json::to_writer_pretty(&mut out, &templates)?;
                writeln!(out)?;
            } else {
                let mut table = Table::new(&[
                    ("name", false),
                    ("source", false),
                    ("steps", true),
                    ("score", true),
                    ("last_seen", false),
                ]);
                for t in &templates {
                    let m = &t.metadata;
                    let source = match (m.source, m.stale) {
                        (Source::Mined, true) => "mined (stale)",
                        (Source::Mined, false) => "mined",
                        (Source::User, _) => "user",
                        (Source::Builtin, _) => "builtin",
                    };
                    table.push(vec![
                        t.name.clone(),
                        source.into(),
                        t.steps.len().to_string(),
                        m.score.map_or("-".into(), |s| count(s.round() as u64)),
                        m.last_seen.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                out.write_all(table.render().as_bytes())?;
            }
        }
        Command::Show { name, json } => {
            let t = super::find_template(read()?, &name)?;
            if json {
                out.write_all(t.to_json().as_bytes())?;
            } else {
                // Names come from logs: control characters are shown, not obeyed.
                writeln!(out, "{} — {}", t.name, printable(&t.description))?;
                for s in &t.steps {
                    let after = match s.depends_on.is_empty() {
                        true => String::new(),
                        false => format!(" (after {})", s.depends_on.join(", ")),
                    };
                    writeln!(out, "  {}: {}{after}", s.step_id, printable(&s.tool_name))?;
                    for (k, v) in &s.parameters {
                        writeln!(out, "      {} = {v}", printable(k))?;
                    }
                }
            }
        }
        Command::Validate { files } => {
            let files = match files.is_empty() {
                true => library.entries()?.into_iter().map(|e| e.path).collect(),
                false => files,
            };
            let mut bad = 0;
            for path in &files {
                if let Err(problems) = read_template(path) {
                    bad += 1;
                    for p in problems {
                        eprintln!("{}: {p}", path.display());
                    }
                }
            }
            writeln!(out, "{} of {} files valid", files.len() - bad, files.len())?;
            out.flush()?;
            if bad > 0 {
                anyhow::bail!(
                    "{bad} invalid template file{}",
                    if bad == 1 { "" } else { "s" }
                );
            }
        }
        Command::Export {
            name,
            format,
            all,
            output,
        } => {
            let templates = match name {
                Some(name) => vec![super::find_template(read()?, &name)?],
                None => (read()?.into_iter())
                    .filter(|t| t.metadata.source != Source::Builtin)
                    .collect(),
            };
            if format == "skill" {
                for path in write_skills(&templates, &args.library, &output)? {
                    writeln!(out, "wrote {}", path.display())?;
                }
            } else if all {
                return Err(UsageError("--all writes skills: give --format skill".into()).into());
            } else {
                let t = &templates[0];
                let drawing = if format == "dot" { dot(t) } else { mermaid(t) };
                out.write_all(drawing.as_bytes())?;
            }
        }
        Command::Init => {
            for t in builtins() {
                let written = library.add(&t)?;
                writeln!(
                    out,
                    "{} {}",
                    if written { "wrote" } else { "kept existing" },
                    library.path_of(&t.name).display()
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes each template as a skill folder under `dir` (names made unique), returning the files.
fn write_skills(
    templates: &[WorkflowTemplate],
    library: &Path,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut taken = std::collections::HashSet::new();
    let mut written = Vec::new();
    for t in templates {
        let base = skill_name(&t.name);
        let name = (1..)
            .map(|n| match n {
                1 => base.clone(),
                n => format!("{}-{n}", base[..base.len().min(60)].trim_end_matches('-')),
            })
            .find(|n| taken.insert(n.clone()))
            .expect("a free name");
        let folder = dir.join(&name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("could not create {}", folder.display()))?;
        let path = folder.join("SKILL.md");
        let mut text = skill(t, &name);
        // The command finds the template where this export found it.
        if library != Path::new("workflows") {
            text = text.replace(
                &format!("patterns run {} ", t.name),
                &format!("patterns run {} --library {} ", t.name, library.display()),
            );
        }
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Text for a quoted Mermaid label: every character that could end the label, start a line or
/// mean markup (quotes, `<>`, `#`, `&`, backticks, line breaks and other control characters) as
/// an entity code.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c if matches!(c, '\'' | '#' | '&' | '`') || c.is_control() => {
                out.push_str(&format!("#{};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid flowchart: one node per step (id and tool), an arrow per dependency, a subgraph per
/// parallel group. Node ids get a prefix so that a step called `end` cannot end the chart.
pub fn mermaid(t: &WorkflowTemplate) -> String {
    let node = |id: &str| format!("s_{id}");
    let mut out = String::from("flowchart TD\n");
    for s in &t.steps {
        let label = format!("{}<br/><i>{}</i>", escape(&s.step_id), escape(&s.tool_name));
        out += &format!("  {}[\"{label}\"]\n", node(&s.step_id));
    }
    for s in &t.steps {
        for d in &s.depends_on {
            out += &format!("  {} --> {}\n", node(d), node(&s.step_id));
        }
    }
    // Data flow: a dotted edge from the step whose result a parameter reads.
    for e in data_edges(t) {
        out += &format!(
            "  {} -.->|\"{} → {}\"| {}\n",
            node(&e.from),
            escape(&e.field),
            escape(&e.param),
            node(&e.to)
        );
    }
    // A loop: a thick edge back from its last step to its first, with its rounds.
    for l in &t.loops {
        if let (Some(first), Some(last)) = (l.steps.first(), l.steps.last()) {
            out += &format!(
                "  {} ==>|\"again until {} (≤ {} rounds)\"| {}\n",
                node(last),
                escape(&l.until),
                l.max_rounds,
                node(first)
            );
        }
    }
    for (i, group) in t.parallel_groups.iter().enumerate() {
        let members = group.iter().map(|id| node(id)).join(" & ");
        out += &format!(
            "  subgraph parallel_{}[\"parallel\"]\n    {members}\n  end\n",
            i + 1
        );
    }
    out
}

/// `s` as a DOT string: quotes and backslashes escaped, a line break `\n`, other control
/// characters shown by their code (`\u{1b}`).
fn dot_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Graphviz digraph, parallel groups as clusters, data flow as dashed labelled edges.
pub fn dot(t: &WorkflowTemplate) -> String {
    let q = dot_string;
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
        q(&t.name)
    );
    for s in &t.steps {
        out += &format!(
            "  {} [label={}];\n",
            q(&s.step_id),
            q(&format!("{}\n{}", s.step_id, s.tool_name))
        );
    }
    for s in &t.steps {
        for d in &s.depends_on {
            out += &format!("  {} -> {};\n", q(d), q(&s.step_id));
        }
    }
    for e in data_edges(t) {
        out += &format!(
            "  {} -> {} [style=dashed, label={}];\n",
            q(&e.from),
            q(&e.to),
            q(&format!("{} → {}", e.field, e.param))
        );
    }
    for l in &t.loops {
        if let (Some(first), Some(last)) = (l.steps.first(), l.steps.last()) {
            out += &format!(
                "  {} -> {} [style=bold, constraint=false, label={}];\n",
                q(last),
                q(first),
                q(&format!(
                    "again until {} (≤ {} rounds)",
                    l.until, l.max_rounds
                ))
            );
        }
    }
    for (i, group) in t.parallel_groups.iter().enumerate() {
        out += &format!(
            "  subgraph cluster_{i} {{ label=\"parallel\"; style=dashed; {} }}\n",
            group.iter().map(|s| q(s)).join("; ")
        );
    }
    out += "}\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_drawn_as_an_edge_back_with_its_condition() {
        let t: WorkflowTemplate = serde_json::from_str(
            r#"{"name": "fix", "steps": [
                {"step_id": "edit", "tool_name": "edit_file"},
                {"step_id": "test", "tool_name": "run_tests", "depends_on": ["edit"]}],
               "loops": [{"steps": ["edit", "test"], "until": "{{test.success}} == true", "max_rounds": 4}]}"#,
        )
        .unwrap();
        let m = mermaid(&t);
        assert!(
            m.contains(
                "  s_test ==>|\"again until {{test.success}} == true (≤ 4 rounds)\"| s_edit\n"
            ),
            "{m}"
        );
        let d = dot(&t);
        assert!(
            d.contains("  \"test\" -> \"edit\" [style=bold, constraint=false, label=\"again until {{test.success}} == true (≤ 4 rounds)\"];\n"),
            "{d}"
        );
    }

    #[test]
    fn parallel_groups_are_visible_in_both_drawings() {
        let t: WorkflowTemplate = serde_json::from_str(
            r#"{"name": "fan", "steps": [
                {"step_id": "fetch", "tool_name": "fetch_data"},
                {"step_id": "a", "tool_name": "transform \"a\"", "depends_on": ["fetch"],
                 "parameters": {"rows": "{{fetch.out.rows}}"}},
                {"step_id": "b", "tool_name": "transform_b", "depends_on": ["fetch"]},
                {"step_id": "end", "tool_name": "store", "depends_on": ["a", "b"]}
            ], "parallel_groups": [["a", "b"]]}"#,
        )
        .unwrap();
        let m = mermaid(&t);
        assert!(
            m.contains("  subgraph parallel_1[\"parallel\"]\n    s_a & s_b\n  end\n"),
            "{m}"
        );
        assert!(m.contains("  s_a --> s_end\n  s_b --> s_end\n"), "{m}");
        assert!(m.contains("transform #quot;a#quot;"), "{m}");
        let d = dot(&t);
        assert!(
            d.contains("subgraph cluster_0 { label=\"parallel\"; style=dashed; \"a\"; \"b\" }"),
            "{d}"
        );
        assert!(d.contains("[label=\"a\\ntransform \\\"a\\\"\"]"), "{d}");
        // The data flow, in both.
        assert!(
            m.contains("  s_fetch -.->|\"out.rows → rows\"| s_a\n"),
            "{m}"
        );
        assert!(
            d.contains("  \"fetch\" -> \"a\" [style=dashed, label=\"out.rows → rows\"];\n"),
            "{d}"
        );
    }
}
