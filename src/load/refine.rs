//! Generic tools refined by what they were asked to do. Agents do most of their work through a
//! shell tool, so their logs mine as `Bash → Bash → Read`; with `Bash=command` a call becomes
//! `Bash:cargo test`, `Bash:git commit` or `Bash:sed -i`: the program, plus its subcommand (for
//! programs that have them) or its first flag, after `cd … &&` prefixes, variable assignments
//! and `sudo`, and before pipes.

use serde_json::Value;

/// The tools refined unless `--refine none`: the shell tools of Claude Code and Codex.
pub const DEFAULT_RULES: [(&str, &str); 5] = [
    ("Bash", "command"),
    ("shell", "command"),
    ("exec_command", "cmd"),
    ("local_shell_call", "command"),
    ("container.exec", "command"),
];

/// Programs whose first word is a subcommand (`git commit`, `cargo test`).
const SUBCOMMANDS: [&str; 34] = [
    "apt",
    "apt-get",
    "brew",
    "bun",
    "bundle",
    "cargo",
    "conda",
    "deno",
    "docker",
    "dotnet",
    "gh",
    "git",
    "go",
    "gradle",
    "helm",
    "hg",
    "kubectl",
    "make",
    "mvn",
    "nix",
    "npm",
    "npx",
    "pip",
    "pip3",
    "pnpm",
    "poetry",
    "rustup",
    "svn",
    "systemctl",
    "terraform",
    "uv",
    "yarn",
    "just",
    "bazel",
];

/// Which argument of which tool refines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refine {
    pub rules: Vec<(String, String)>,
}

impl Default for Refine {
    fn default() -> Refine {
        Refine {
            rules: DEFAULT_RULES
                .iter()
                .map(|(t, a)| (t.to_string(), a.to_string()))
                .collect(),
        }
    }
}

impl Refine {
    /// The rules of `--refine` flags: `TOOL=ARG` each, added to the defaults (replacing a default
    /// for the same tool); with `none` among them, to no defaults.
    pub fn from_flags(flags: &[String]) -> Result<Refine, String> {
        let mut refine = match flags.iter().any(|f| f == "none") {
            true => Refine { rules: Vec::new() },
            false => Refine::default(),
        };
        for flag in flags.iter().filter(|f| *f != "none") {
            let Some((tool, arg)) = flag
                .split_once('=')
                .filter(|(t, a)| !t.is_empty() && !a.is_empty())
            else {
                return Err(format!(
                    "--refine '{flag}': give TOOL=ARG (e.g. Bash=command) or none"
                ));
            };
            refine.rules.retain(|(t, _)| t != tool);
            refine.rules.push((tool.to_string(), arg.to_string()));
        }
        Ok(refine)
    }

    /// The argument that refines `tool`, if any.
    pub fn argument(&self, tool: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|(t, _)| t == tool)
            .map(|(_, a)| a.as_str())
    }
}

/// The action of a command: `cd /w && cargo test -p app | tail` → `cargo test`. A command given
/// as a list (`["bash", "-lc", "git status"]`) is the script the shell runs, or the words.
pub fn action(command: &Value) -> Option<String> {
    let script = match command {
        Value::String(s) => s.clone(),
        Value::Array(words) => {
            let words: Vec<&str> = words.iter().filter_map(Value::as_str).collect();
            let shell = |w: &str| {
                matches!(
                    w.rsplit('/').next(),
                    Some("bash" | "sh" | "zsh" | "dash" | "fish")
                )
            };
            match words.as_slice() {
                [sh, flag, script, ..]
                    if shell(sh) && flag.starts_with('-') && flag.contains('c') =>
                {
                    script.to_string()
                }
                _ => shlex::try_join(words.iter().copied()).ok()?,
            }
        }
        _ => return None,
    };
    script
        .split(['\n', ';', '|', '&'])
        .filter_map(segment_action)
        .next()
}

/// Commands that run the command after their options, and which of their options take a value.
const WRAPPERS: [(&str, &[&str]); 5] = [
    (
        "sudo",
        &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"],
    ),
    ("env", &["-u", "-C", "-S"]),
    ("nice", &["-n"]),
    ("nohup", &[]),
    ("time", &["-f", "-o"]),
];

/// `words` from the program on: assignments (`FOO=1`) and wrappers (`sudo -u root`, `env -i`)
/// with their options passed over.
fn program_words(words: &[String]) -> &[String] {
    let mut i = 0;
    // The value-taking options of the wrapper whose options are being read.
    let mut options: Option<&[&str]> = None;
    while let Some(w) = words.get(i) {
        let w = w.as_str();
        if w.contains('=') && !w.starts_with('-') {
            i += 1;
        } else if let Some(takes) = options.filter(|_| w.starts_with('-')) {
            if w == "--" {
                options = None;
            }
            i += if takes.contains(&w) { 2 } else { 1 };
        } else if let Some((_, takes)) = WRAPPERS.iter().find(|(name, _)| *name == w) {
            options = Some(takes);
            i += 1;
        } else {
            break;
        }
    }
    &words[i.min(words.len())..]
}

/// The action of one simple command, `None` for one that only sets up (`cd`, `export`, an
/// assignment).
fn segment_action(segment: &str) -> Option<String> {
    let words = shlex::split(segment.trim())
        .unwrap_or_else(|| segment.split_whitespace().map(String::from).collect());
    let mut words = program_words(&words).iter();
    let program = words.next()?;
    let program = program.rsplit('/').next().unwrap_or(program);
    if matches!(
        program,
        "cd" | "pushd" | "popd" | "export" | "source" | "." | "set" | "true"
    ) || program.is_empty()
    {
        return None;
    }
    let next = words.next();
    let word = |w: &str| {
        !w.is_empty()
            && w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let flag = |w: &str| {
        w.starts_with('-') && w.len() > 1 && !w.contains('=') && word(w.trim_start_matches('-'))
    };
    Some(match next {
        Some(w) if SUBCOMMANDS.contains(&program) && word(w) => format!("{program} {w}"),
        Some(w) if flag(w) => format!("{program} {w}"),
        _ => program.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_of_commands() {
        for (command, want) in [
            (json!("cargo test -p app"), "cargo test"),
            (json!("cd /w && git commit -m 'x y'"), "git commit"),
            (json!("sed -i 's/a/b/' f.txt"), "sed -i"),
            (json!("RUST_LOG=debug cargo run --release"), "cargo run"),
            (json!("cat README.md | head -5"), "cat"),
            (json!("ls"), "ls"),
            (json!("/usr/bin/python3 -m pytest"), "python3 -m"),
            (json!(["bash", "-lc", "cd /w; npm install"]), "npm install"),
            (json!(["rg", "--files"]), "rg --files"),
            (json!("sudo apt-get install -y chromium"), "apt-get install"),
            (json!("sudo -u root FOO=1 cargo build"), "cargo build"),
            (json!("env -i PATH=/bin -- make all"), "make all"),
            (json!("nice -n 10 nohup ./train.sh"), "train.sh"),
        ] {
            assert_eq!(action(&command).as_deref(), Some(want), "{command}");
        }
        assert_eq!(action(&json!("cd /w")), None);
        assert_eq!(action(&json!(7)), None);
    }

    #[test]
    fn flags_add_replace_or_turn_off() {
        let r = Refine::from_flags(&["Bash=cmd".into(), "run=script".into()]).unwrap();
        assert_eq!(r.argument("Bash"), Some("cmd"));
        assert_eq!(r.argument("run"), Some("script"));
        assert_eq!(r.argument("shell"), Some("command"));
        assert_eq!(Refine::from_flags(&["none".into()]).unwrap().rules, vec![]);
        assert!(Refine::from_flags(&["Bash".into()]).is_err());
        let only = Refine::from_flags(&["none".into(), "a=b".into()]).unwrap();
        assert_eq!(only.rules, vec![("a".to_string(), "b".to_string())]);
    }
}
