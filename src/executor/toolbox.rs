//! Tools: what the tool names of templates are bound to (`tools.toml`), and how they are called.
//!
//! A template can only name tools; which program runs is decided here, by the person who wrote
//! tools.toml. So a template from an untrusted source cannot run arbitrary commands.
//!
//! ```toml
//! [tools.github_list_issues]
//! command = ["python3", "scripts/github.py", "list_issues"]   # argv, never a shell string
//! env = { GITHUB_TOKEN = "${GITHUB_TOKEN}" }                # ${X}: from patterns' environment
//! cwd = "."                                                   # default: the folder of tools.toml
//! read_only = true          # for MCP clients (serve): read_only, destructive, idempotent, open_world
//!
//! [tools.slack_send_message]
//! builtin = "echo"                                            # echo | sleep | fail
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use itertools::Itertools;
use serde::Deserialize;

use super::builtin::Builtin;
use super::command::CommandTool;
use super::mcp::{McpTool, Server, Violation, check_schema};
use super::plan::{Plan, Problem};
use super::tool::{Hints, Masked, Tool};

#[derive(Default, Clone)]
pub struct Toolbox {
    tools: HashMap<String, Arc<dyn Tool>>,
    /// Tools on MCP servers: their server and remote name.
    remote: HashMap<String, (Arc<Server>, String)>,
    servers: Vec<Arc<Server>>,
    /// Servers whose every tool is bound by its own name, until [`Toolbox::expose`] binds them.
    exposed: Vec<Arc<Server>>,
    /// The servers of `exposed` that failed.
    unexposed: Vec<Problem>,
    /// What tools.toml says each tool may do.
    hints: HashMap<String, Hints>,
}

impl Toolbox {
    /// Reads a tools.toml; every problem of the file is reported at once.
    pub fn load(path: &Path) -> Result<Toolbox, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        let file: ToolsFile = toml::from_str(&text)
            .map_err(|e| vec![format!("{}: {}", path.display(), e.to_string().trim_end())])?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let mut toolbox = Toolbox::default();
        let mut problems = Vec::new();
        let mut servers: HashMap<String, Arc<Server>> = HashMap::new();
        for (name, binding) in file.servers {
            match process(binding.command, binding.env, binding.cwd, base) {
                Ok((program, argv, env, cwd)) => {
                    let server = Arc::new(Server::new(name.clone(), program, argv, env, cwd));
                    match binding.expose.as_deref() {
                        None => {}
                        Some("all") => toolbox.exposed.push(server.clone()),
                        Some(other) => problems.push(format!(
                            "{}: server '{name}': expose = {other:?}; the only value is \"all\"",
                            path.display()
                        )),
                    }
                    toolbox.servers.push(server.clone());
                    servers.insert(name, server);
                }
                Err(p) => problems.extend(
                    p.into_iter()
                        .map(|p| format!("{}: server '{name}': {p}", path.display())),
                ),
            }
        }
        for (name, binding) in file.tools {
            let declared = Hints {
                read_only: binding.read_only,
                destructive: binding.destructive,
                idempotent: binding.idempotent,
                open_world: binding.open_world,
            };
            let builtin = binding.builtin.is_some();
            toolbox.hints.insert(
                name.clone(),
                match builtin {
                    // echo, sleep and fail change nothing.
                    true => declared.or(Hints {
                        read_only: Some(true),
                        destructive: Some(false),
                        idempotent: Some(true),
                        open_world: Some(false),
                    }),
                    false => declared,
                },
            );
            match binding.build(base, &servers) {
                Ok(Bound::Local(tool)) => {
                    toolbox.tools.insert(name, tool);
                }
                Ok(Bound::Remote(server, remote)) => {
                    let remote = remote.unwrap_or_else(|| name.clone());
                    toolbox.bind_remote(name, server, remote)
                }
                Err(p) => problems.extend(
                    p.into_iter()
                        .map(|p| format!("{}: tool '{name}': {p}", path.display())),
                ),
            }
        }
        if problems.is_empty() {
            Ok(toolbox)
        } else {
            Err(problems)
        }
    }

    fn bind_remote(&mut self, name: String, server: Arc<Server>, remote: String) {
        let tool = McpTool {
            server: server.clone(),
            remote: remote.clone(),
        };
        let tool = Masked::wrap(Arc::new(tool), server.env());
        self.tools.insert(name.clone(), tool);
        self.remote.insert(name, (server, remote));
    }

    /// Binds `name` to `tool` (tests and embedders).
    pub fn insert(&mut self, name: impl Into<String>, tool: Arc<dyn Tool>) {
        self.tools.insert(name.into(), tool);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// The bound names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tools.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The MCP servers of tools.toml.
    pub fn servers(&self) -> &[Arc<Server>] {
        &self.servers
    }

    /// Sends each MCP server's stderr to `dir/SERVER.stderr.log`.
    pub fn log_servers_to(&self, dir: &Path) -> std::io::Result<()> {
        if !self.servers.is_empty() {
            std::fs::create_dir_all(dir)?;
        }
        for s in &self.servers {
            s.log_to(dir.join(format!("{}.stderr.log", s.name())));
        }
        Ok(())
    }

    /// Starts the servers bound with `expose = "all"` and binds every tool they list (names
    /// bound in `[tools]` keep their binding). A server that fails is a problem of every plan
    /// checked with [`Toolbox::check`], and is returned.
    pub async fn expose(&mut self) -> Vec<Problem> {
        for server in std::mem::take(&mut self.exposed) {
            match server.tools().await {
                Ok(tools) => {
                    for t in tools {
                        if !self.tools.contains_key(t.name.as_ref()) {
                            self.bind_remote(
                                t.name.to_string(),
                                server.clone(),
                                t.name.to_string(),
                            );
                        }
                    }
                }
                Err(e) => self.unexposed.push(Problem::Server(e)),
            }
        }
        self.unexposed.clone()
    }

    /// Checks the MCP tools of `plan`'s steps against their servers (starting them): the tool
    /// exists, the parameters known before the run fit its schema and the ones that are not
    /// (they wait for a step) are the only ones missing.
    pub async fn check(&self, plan: &Plan) -> Vec<Problem> {
        let mut problems = self.unexposed.clone();
        let ctx = plan.context();
        for (step, compiled) in plan.template.steps.iter().zip(&plan.steps) {
            let name = &step.tool_name;
            let Some((server, remote)) = self.remote.get(name) else {
                continue;
            };
            let tools = match server.tools().await {
                Ok(tools) => tools,
                Err(e) => {
                    problems.push(Problem::Server(format!("tool '{name}': {e}")));
                    continue;
                }
            };
            let Some(tool) = tools.iter().find(|t| t.name == *remote) else {
                problems.push(Problem::Server(format!(
                    "tool '{name}': server '{}' has no tool '{remote}' (it has: {})",
                    server.name(),
                    tools.iter().map(|t| t.name.as_ref()).join(", ")
                )));
                continue;
            };
            let (known, later) = compiled.parameters.known(&ctx);
            for v in check_schema(&tool.input_schema, &known.into()) {
                if matches!(&v, Violation::Required(p) if later.contains(p)) {
                    continue;
                }
                problems.push(Problem::Server(format!(
                    "step '{}', tool '{name}' on server '{}': {v}",
                    step.step_id,
                    server.name()
                )));
            }
        }
        problems
    }

    /// What tool `name` may do: what tools.toml says, else what its MCP server's annotations say
    /// (starting the server).
    pub async fn hints(&self, name: &str) -> Hints {
        let declared = self.hints.get(name).copied().unwrap_or_default();
        let Some((server, remote)) = self.remote.get(name) else {
            return declared;
        };
        let tools = server.tools().await.unwrap_or_default();
        let annotations = (tools.iter())
            .find(|t| t.name == *remote)
            .and_then(|t| t.annotations.as_ref());
        declared.or(annotations.map_or_else(Hints::default, |a| Hints {
            read_only: a.read_only_hint,
            destructive: a.destructive_hint,
            idempotent: a.idempotent_hint,
            open_world: a.open_world_hint,
        }))
    }

    /// Every bound tool: its name, what it is bound to, its description and required
    /// parameters (known for MCP tools, whose servers are started).
    pub async fn describe_all(&self) -> Vec<ToolInfo> {
        let mut out = Vec::new();
        for name in self.names() {
            let mut info = ToolInfo {
                name: name.to_string(),
                binding: self.tools[name].describe(),
                server: None,
                description: None,
                required: Vec::new(),
            };
            if let Some((server, remote)) = self.remote.get(name) {
                info.server = Some(server.name().to_string());
                match server.tools().await {
                    Ok(tools) => match tools.iter().find(|t| t.name == *remote) {
                        Some(t) => {
                            info.description = t.description.as_ref().map(|d| d.to_string());
                            info.required = t
                                .input_schema
                                .get("required")
                                .and_then(serde_json::Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect();
                        }
                        None => {
                            info.description =
                                Some(format!("error: the server has no tool '{remote}'"))
                        }
                    },
                    Err(e) => info.description = Some(format!("error: {e}")),
                }
            }
            out.push(info);
        }
        out
    }

    /// Stops the MCP servers that were started.
    pub async fn shutdown(&self) {
        for s in &self.servers {
            s.shutdown().await;
        }
    }
}

/// A bound tool, for `patterns tools list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub binding: String,
    pub server: Option<String>,
    pub description: Option<String>,
    pub required: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsFile {
    #[serde(default)]
    servers: IndexMap<String, ServerBinding>,
    #[serde(default)]
    tools: IndexMap<String, Binding>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerBinding {
    command: Option<Vec<String>>,
    #[serde(default)]
    env: IndexMap<String, String>,
    cwd: Option<PathBuf>,
    expose: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Binding {
    command: Option<Vec<String>>,
    builtin: Option<String>,
    server: Option<String>,
    /// The tool's name on the server, when it differs.
    tool: Option<String>,
    #[serde(default)]
    env: IndexMap<String, String>,
    cwd: Option<PathBuf>,
    /// What the tool may do (MCP's tool annotations; a server's own annotations fill the gaps).
    read_only: Option<bool>,
    destructive: Option<bool>,
    idempotent: Option<bool>,
    open_world: Option<bool>,
}

/// What a `[tools.X]` entry binds.
enum Bound {
    Local(Arc<dyn Tool>),
    /// A server, and the tool's name there when it differs.
    Remote(Arc<Server>, Option<String>),
}

/// A program to start: resolved program, argv, expanded env and working folder.
type Process = (PathBuf, Vec<String>, Vec<(String, String)>, PathBuf);

/// Checks and resolves the parts of a process of tools.toml.
fn process(
    command: Option<Vec<String>>,
    env: IndexMap<String, String>,
    cwd: Option<PathBuf>,
    base: &Path,
) -> Result<Process, Vec<String>> {
    let argv = command.unwrap_or_default();
    let cwd = base.join(cwd.unwrap_or_else(|| ".".into()));
    let mut problems = Vec::new();
    if !cwd.is_dir() {
        problems.push(format!("cwd {} is not a folder", cwd.display()));
    }
    let program = match argv.first() {
        Some(p) if !p.is_empty() => resolve_program(p, &cwd),
        _ => Err("command is empty".to_string()),
    };
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter_map(
            |(k, v)| match expand_env(&v, |name| std::env::var(name).ok()) {
                Ok(v) => Some((k, v)),
                Err(unset) => {
                    problems.push(format!("env {k} uses ${{{unset}}}, which is not set"));
                    None
                }
            },
        )
        .collect();
    match program {
        Ok(program) if problems.is_empty() => Ok((program, argv, env, cwd)),
        Ok(_) => Err(problems),
        Err(p) => {
            problems.insert(0, p);
            Err(problems)
        }
    }
}

impl Binding {
    fn build(
        self,
        base: &Path,
        servers: &HashMap<String, Arc<Server>>,
    ) -> Result<Bound, Vec<String>> {
        let local = self.cwd.is_some() || !self.env.is_empty();
        match (self.command, self.builtin, self.server) {
            (Some(argv), None, None) => {
                let (program, argv, env, cwd) = process(Some(argv), self.env, self.cwd, base)?;
                let secrets = env.clone();
                let tool = CommandTool {
                    program,
                    argv,
                    env,
                    cwd,
                };
                Ok(Bound::Local(Masked::wrap(Arc::new(tool), &secrets)))
            }
            (None, Some(name), None) => {
                let builtin = match name.as_str() {
                    "echo" => Builtin::Echo,
                    "sleep" => Builtin::Sleep,
                    "fail" => Builtin::Fail,
                    other => {
                        return Err(vec![format!(
                            "unknown builtin '{other}' (echo, sleep, fail)"
                        )]);
                    }
                };
                if local {
                    return Err(vec!["a builtin takes no cwd or env".into()]);
                }
                Ok(Bound::Local(Arc::new(builtin)))
            }
            (None, None, Some(server)) => {
                if local {
                    return Err(vec!["a server tool takes no cwd or env (give them to the server)".into()]);
                }
                match servers.get(&server) {
                    Some(s) => Ok(Bound::Remote(s.clone(), self.tool)),
                    None => Err(vec![format!("no server '{server}' in [servers]")]),
                }
            }
            (None, None, None) => Err(vec![
                "nothing to run: give command = [\"prog\", \"arg\"], builtin = \"echo\" or server = \"NAME\"".into(),
            ]),
            _ => Err(vec!["give one of command, builtin or server".into()]),
        }
    }
}

/// The program of a command: a path with a `/` is taken from the tool's folder, a bare name is
/// looked up in `PATH`.
fn resolve_program(program: &str, cwd: &Path) -> Result<PathBuf, String> {
    if program.contains('/') {
        let path = cwd.join(program);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("program {} not found", path.display()))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("program '{program}' not found in PATH"))
}

/// Replaces every `${NAME}` with patterns' own environment variable; the name of an unset one
/// is the error.
fn expand_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        out.push_str(&lookup(name).ok_or_else(|| name.to_string())?);
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::executor::ToolError;

    /// The tools of `toml`, written into a temp folder (the tools' working directory, removed
    /// when the returned guard is dropped).
    fn load(toml: &str) -> (tempfile::TempDir, Result<Toolbox, Vec<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tools.toml");
        std::fs::write(&path, toml).unwrap();
        let tools = Toolbox::load(&path).map_err(|p| {
            p.into_iter()
                .map(|p| p.replace(&path.display().to_string(), "tools.toml"))
                .collect()
        });
        (dir, tools)
    }

    #[test]
    fn every_bad_binding_is_reported() {
        let (_dir, problems) = load(
            r#"
            [tools.a]
            command = []
            [tools.b]
            builtin = "nope"
            [tools.c]
            command = ["./missing.sh"]
            [tools.d]
            command = ["sh"]
            builtin = "echo"
            [tools.e]
            [tools.f]
            command = ["no-such-program-here"]
            env = { TOKEN = "${PATTERNS_TEST_SURELY_UNSET}" }
            "#,
        );
        let problems = problems.err().unwrap();
        assert_eq!(problems.len(), 7, "{problems:#?}");
        assert_eq!(problems[0], "tools.toml: tool 'a': command is empty");
        assert_eq!(
            problems[1],
            "tools.toml: tool 'b': unknown builtin 'nope' (echo, sleep, fail)"
        );
        assert!(
            problems[2].starts_with("tools.toml: tool 'c': program ")
                && problems[2].ends_with("missing.sh not found")
        );
        assert_eq!(
            problems[3],
            "tools.toml: tool 'd': give one of command, builtin or server"
        );
        assert!(problems[4].starts_with("tools.toml: tool 'e': nothing to run"));
        assert_eq!(
            problems[5],
            "tools.toml: tool 'f': program 'no-such-program-here' not found in PATH"
        );
        assert_eq!(
            problems[6],
            "tools.toml: tool 'f': env TOKEN uses ${PATTERNS_TEST_SURELY_UNSET}, which is not set"
        );
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let problems = load("[tools.a]\ncommand = [\"sh\"\n").1.err().unwrap();
        assert!(
            problems[0].starts_with("tools.toml: TOML parse error at line 2"),
            "{problems:?}"
        );
        let problems = load("[tools.a]\nbuiltin = \"echo\"\nshell = \"rm -rf /\"\n")
            .1
            .err()
            .unwrap();
        assert!(
            problems[0].contains("unknown field `shell`"),
            "{problems:?}"
        );
    }

    #[test]
    fn env_expansion() {
        let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            expand_env("Bearer ${TOKEN}!", env).unwrap(),
            "Bearer s3cret!"
        );
        assert_eq!(expand_env("${NOPE}", env).unwrap_err(), "NOPE");
        assert_eq!(expand_env("no ${ end", env).unwrap(), "no ${ end");
    }

    #[tokio::test]
    async fn commands_take_json_and_give_json() {
        let (_dir, tools) = load(
            r#"
            [tools.json]
            command = ["sh", "-c", "cat; printf ''"]
            [tools.text]
            command = ["sh", "-c", "echo hello; echo world"]
            [tools.bad]
            command = ["sh", "-c", "echo oops >&2; exit 3"]
            [tools.env]
            command = ["sh", "-c", "printf '{\"v\": \"%s\"}' \"$X\""]
            env = { X = "from-toml" }
            "#,
        );
        let tools = tools.unwrap();
        let params = json!({"a": [1, 2], "b": "x"});
        let call = |name: &'static str| {
            let tool = tools.get(name).unwrap().clone();
            let params = params.clone();
            async move { tool.call(&params).await }
        };
        assert_eq!(call("json").await.unwrap(), params);
        assert_eq!(
            call("text").await.unwrap(),
            json!({"output": "hello\nworld"})
        );
        assert_eq!(
            call("bad").await.unwrap_err(),
            ToolError::from("exit status 3: oops".to_string())
        );
        // The value reached the command (it printed it back), and is masked in what it returns.
        assert_eq!(call("env").await.unwrap(), json!({"v": "<env X>"}));
        assert!(
            !tools.get("env").unwrap().describe().contains("from-toml"),
            "env values are secret"
        );
    }
}
