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
//!
//! [tools.slack_send_message]
//! builtin = "echo"                                            # echo | sleep | fail
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::mcp::{McpTool, Server, check_schema};

/// A boxed future, so that tools of different kinds fit behind one trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a call failed, in the tool's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    pub message: String,
    /// The call did not properly reach the tool (an MCP protocol error, parameters that break
    /// its schema, a server that did not start): retried only when `retry_on` asks for it.
    pub protocol: bool,
}

impl From<String> for ToolError {
    /// A failure reported by the tool itself.
    fn from(message: String) -> ToolError {
        ToolError {
            message,
            protocol: false,
        }
    }
}

impl ToolError {
    pub fn protocol(message: String) -> ToolError {
        ToolError {
            message,
            protocol: true,
        }
    }
}

/// Something a step can call. Dropping the future cancels the call: a command tool's process
/// group is killed.
pub trait Tool: Send + Sync {
    /// Calls the tool with the step's parameters (after substitution); the result, or what
    /// went wrong in the tool's own words.
    fn call<'a>(&'a self, params: &'a Value) -> BoxFuture<'a, Result<Value, ToolError>>;

    /// What the tool is bound to, for plans and `tools list` (never the values of `env`).
    fn describe(&self) -> String;
}

/// The tools of a run, by the name templates use.
#[derive(Default, Clone)]
pub struct Toolbox {
    tools: HashMap<String, Arc<dyn Tool>>,
    /// Tools on MCP servers: their server and remote name.
    remote: HashMap<String, (Arc<Server>, String)>,
    servers: Vec<Arc<Server>>,
    /// Servers whose every tool is bound by its own name.
    exposed: Vec<Arc<Server>>,
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
    /// bound in `[tools]` keep their binding); the problems, if any.
    pub async fn expose(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for server in self.exposed.clone() {
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
                Err(e) => problems.push(e),
            }
        }
        problems
    }

    /// Checks the MCP tools of `calls` (step, tool, parameters as far as they are known before
    /// the run) against their servers (starting them): the tool exists, required parameters
    /// are given, known values have the right types.
    pub async fn check(&self, calls: &[(&str, &str, serde_json::Value)]) -> Vec<String> {
        let mut problems = Vec::new();
        for (step, name, params) in calls {
            let Some((server, remote)) = self.remote.get(*name) else {
                continue;
            };
            match server.tools().await {
                Ok(tools) if tools.iter().any(|t| t.name == *remote) => {
                    let tool = tools.iter().find(|t| t.name == *remote).expect("found");
                    // Values still waiting for a step's result are checked when they are known.
                    let known: serde_json::Map<String, serde_json::Value> = params
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(_, v)| !v.as_str().is_some_and(|s| s.contains("{{")))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let mut violations = check_schema(&tool.input_schema, &known.into());
                    // A parameter whose value comes later is given.
                    violations.retain(|v| {
                        !params
                            .as_object()
                            .is_some_and(|p| p.keys().any(|k| *v == format!("'{k}' is required")))
                    });
                    for v in violations {
                        problems.push(format!(
                            "step '{step}', tool '{name}' on server '{}': {v}",
                            server.name()
                        ));
                    }
                }
                Ok(tools) => problems.push(format!(
                    "tool '{name}': server '{}' has no tool '{remote}' (it has: {})",
                    server.name(),
                    tools
                        .iter()
                        .map(|t| t.name.as_ref())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => problems.push(format!("tool '{name}': {e}")),
            }
        }
        problems
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

/// Values of `env` shorter than this are not masked: they are not secrets (`1`, `true`), and
/// masking them would garble every output that holds them.
const MIN_SECRET: usize = 6;

/// The values of a binding's `env` long enough to be secrets (tokens, say), longest first so
/// that a value holding another is masked whole: each is written `<env NAME>` in what a tool
/// returns, fails with or logs, before anything prints, logs or checkpoints it.
#[derive(Debug, Clone, Default)]
pub(super) struct Secrets(Vec<(String, String)>);

impl Secrets {
    pub(super) fn of(env: &[(String, String)]) -> Secrets {
        let mut secrets: Vec<(String, String)> = (env.iter())
            .filter(|(_, v)| v.chars().count() >= MIN_SECRET)
            .cloned()
            .collect();
        secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        Secrets(secrets)
    }

    pub(super) fn text(&self, mut s: String) -> String {
        for (name, value) in &self.0 {
            if s.contains(value.as_str()) {
                s = s.replace(value.as_str(), &format!("<env {name}>"));
            }
        }
        s
    }

    fn value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// A tool whose results and errors are masked by [`Secrets`].
struct Masked {
    inner: Arc<dyn Tool>,
    secrets: Secrets,
}

impl Masked {
    /// `tool`, masking the values of `env` that are long enough to be secrets.
    fn wrap(tool: Arc<dyn Tool>, env: &[(String, String)]) -> Arc<dyn Tool> {
        let secrets = Secrets::of(env);
        match secrets.0.is_empty() {
            true => tool,
            false => Arc::new(Masked {
                inner: tool,
                secrets,
            }),
        }
    }
}

impl Tool for Masked {
    fn call<'a>(&'a self, params: &'a Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            match self.inner.call(params).await {
                Ok(v) => Ok(self.secrets.value(v)),
                Err(e) => Err(ToolError {
                    message: self.secrets.text(e.message),
                    ..e
                }),
            }
        })
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A program run once per call: parameters as JSON on stdin, the result as JSON on stdout.
struct CommandTool {
    program: PathBuf,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

/// How much of a failing command's stderr is kept in its error.
const MAX_STDERR: usize = 4000;
/// The most a command tool may print on stdout: its result is kept in memory, in the checkpoint
/// and in the run log.
const MAX_OUTPUT: usize = 64 << 20;
/// How long the pipes of a tool that exited are still read (a grandchild may hold them open).
const PIPE_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// A pipe read in the background into memory: at most `limit` bytes (then the process group is
/// killed), the last [`MAX_STDERR`] bytes when unlimited.
struct Captured {
    bytes: std::sync::Arc<std::sync::Mutex<(Vec<u8>, bool)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Captured {
    fn start(
        mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        limit: usize,
        group: Option<u32>,
    ) -> Captured {
        use tokio::io::AsyncReadExt;
        let bytes = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), false)));
        let shared = bytes.clone();
        let task = tokio::spawn(async move {
            let mut chunk = vec![0u8; 64 << 10];
            while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                let mut guard = shared.lock().expect("not poisoned");
                let (buf, overflow) = &mut *guard;
                buf.extend_from_slice(&chunk[..n]);
                if limit == usize::MAX && buf.len() > 2 * MAX_STDERR {
                    buf.drain(..buf.len() - MAX_STDERR);
                }
                if buf.len() > limit {
                    *overflow = true;
                    buf.truncate(limit);
                    if let Some(pid) = group {
                        kill_group(pid);
                    }
                    return;
                }
            }
        });
        Captured { bytes, task }
    }

    /// What was read, once the pipe closed or a moment passed; and whether it overflowed.
    async fn finish(self) -> (Vec<u8>, bool) {
        let mut task = self.task;
        if tokio::time::timeout(PIPE_GRACE, &mut task).await.is_err() {
            task.abort();
        }
        std::mem::take(&mut *self.bytes.lock().expect("not poisoned"))
    }
}

impl Tool for CommandTool {
    fn call<'a>(&'a self, params: &'a Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let mut command = tokio::process::Command::new(&self.program);
            command
                .args(&self.argv[1..])
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&self.cwd)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Its own process group, so that a timeout or Ctrl-C can kill what it started.
                .process_group(0)
                .kill_on_drop(true);
            // Killed with patterns, however patterns ends (SIGKILL included): never an orphan that
            // a `--resume` would run a second time beside.
            let parent = std::process::id();
            // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid).
            unsafe {
                command.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    match libc::getppid() as u32 == parent {
                        true => Ok(()),
                        false => Err(std::io::Error::other("patterns ended")),
                    }
                })
            };
            let mut child = command
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", self.argv[0]))?;
            let _group = ProcessGroup(child.id());
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let input = params.to_string();
            let feed = async move {
                // A tool that ignores its input may exit before reading it: not an error.
                stdin.write_all(input.as_bytes()).await.ok();
            };
            let stdout = Captured::start(
                child.stdout.take().expect("stdout is piped"),
                MAX_OUTPUT,
                child.id(),
            );
            let stderr = Captured::start(
                child.stderr.take().expect("stderr is piped"),
                usize::MAX,
                None,
            );
            let (_, status) = tokio::join!(feed, child.wait());
            let status = status.map_err(|e| format!("waiting for {}: {e}", self.argv[0]))?;
            // The pipes close when every process holding them has closed them: a grandchild
            // left running in the background keeps them open. What came by a moment after the
            // tool exited is its output.
            let (stdout, overflow) = stdout.finish().await;
            let (stderr, _) = stderr.finish().await;
            if overflow {
                return Err(format!(
                    "{} printed more than {} MB on stdout; it was stopped",
                    self.argv[0],
                    MAX_OUTPUT >> 20
                )
                .into());
            }
            let output = std::process::Output {
                status,
                stdout,
                stderr,
            };
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let stderr = stderr.trim();
                let tail =
                    &stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(MAX_STDERR))..];
                let status = match output.status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => "killed by a signal".to_string(),
                };
                return Err(if tail.is_empty() {
                    status
                } else {
                    format!("{status}: {tail}")
                }
                .into());
            }
            let stdout = String::from_utf8_lossy(&output.stdout);
            Ok(serde_json::from_str(stdout.trim())
                .unwrap_or_else(|_| json!({ "output": stdout.trim_end() })))
        })
    }

    fn describe(&self) -> String {
        let mut s = format!("command {:?}", self.argv);
        if !self.env.is_empty() {
            let keys: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
            s.push_str(&format!(" env {}", keys.join(",")));
        }
        s
    }
}

/// Kills a tool's process group when its call ends: a cancelled call's (timeout, abort,
/// Ctrl-C) while it runs, and after a tool exits, what it left running in the background, so
/// that nothing of a step outlives it (a daemon a tool means to leave must leave its group:
/// `setsid`).
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid);
        }
    }
}

/// Kills the process group that `pid` leads.
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the group the child leads; it has no
        // memory effects. The group exists until its last member is reaped.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// Tools built into patterns, for demos and tests.
#[derive(Debug, Clone, Copy)]
enum Builtin {
    /// Returns its parameters.
    Echo,
    /// Waits `seconds` (default 1), then returns its parameters.
    Sleep,
    /// Fails with `message`.
    Fail,
}

impl Tool for Builtin {
    fn call<'a>(&'a self, params: &'a Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            match self {
                Builtin::Echo => Ok(params.clone()),
                Builtin::Sleep => {
                    let seconds = match params.get("seconds") {
                        None => 1.0,
                        Some(v) => (v.as_f64())
                            .or_else(|| v.as_str()?.trim().parse().ok())
                            .ok_or_else(|| format!("sleep: seconds must be a number, not {v}"))?,
                    };
                    let wait = Duration::try_from_secs_f64(seconds)
                        .map_err(|_| format!("sleep: bad seconds {seconds}"))?;
                    tokio::time::sleep(wait).await;
                    Ok(params.clone())
                }
                Builtin::Fail => Err(params
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("failed (builtin fail)")
                    .to_string()
                    .into()),
            }
        })
    }

    fn describe(&self) -> String {
        format!("builtin {}", format!("{self:?}").to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
