//! Tools on MCP servers, behind the executor's [`Tool`] trait: the rest of the executor does not
//! know MCP exists.
//!
//! A server is one child process per run speaking MCP over stdio (the official SDK, rmcp),
//! started on first use; its stderr goes to a log file, not the terminal.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use itertools::Itertools;
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool as RemoteTool};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::tool::{BoxFuture, Secrets, Tool, ToolError};

/// An MCP server of tools.toml (`[servers.NAME]`).
pub struct Server {
    name: String,
    program: PathBuf,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    /// Where the server's stderr goes (none: discarded).
    log: Mutex<Option<PathBuf>>,
    client: OnceCell<Result<Connection, String>>,
}

/// A started server and the tools it lists.
struct Connection {
    service: RunningService<RoleClient, ()>,
    tools: Vec<RemoteTool>,
    pid: Option<u32>,
}

impl Server {
    pub fn new(
        name: String,
        program: PathBuf,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: PathBuf,
    ) -> Server {
        Server {
            name,
            program,
            argv,
            env,
            cwd,
            log: Mutex::new(None),
            client: OnceCell::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's `env` (for masking its values in what its tools return).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Sends the server's stderr to `path` (set before the server starts).
    pub fn log_to(&self, path: PathBuf) {
        *self.log.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
    }

    async fn connection(&self) -> Result<&Connection, String> {
        self.client
            .get_or_init(|| self.start())
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn start(&self) -> Result<Connection, String> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd);
        // Its stderr goes to its log (its owner's alone), line by line with its env values masked.
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let log = match log {
            Some(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let file = (std::fs::File::options())
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| {
                        format!(
                            "server '{}': cannot create {}: {e}",
                            self.name,
                            path.display()
                        )
                    })?;
                Some(file)
            }
            None => None,
        };
        let stderr = match log {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        };
        let (process, pipe) = TokioChildProcess::builder(cmd)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("server '{}': cannot start {}: {e}", self.name, self.argv[0]))?;
        if let (Some(pipe), Some(file)) = (pipe, log) {
            let secrets = Secrets::of(&self.env);
            // Read to the end whatever happens to the file, so that the server never blocks on a
            // full pipe.
            tokio::spawn(async move {
                use std::io::Write;
                use tokio::io::AsyncBufReadExt;
                let mut pipe = tokio::io::BufReader::new(pipe);
                let mut file = std::io::LineWriter::new(file);
                let mut line = Vec::new();
                while pipe.read_until(b'\n', &mut line).await.is_ok_and(|n| n > 0) {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    file.write_all(secrets.text(text).as_bytes()).ok();
                    line.clear();
                }
            });
        }
        let pid = process.id();
        let service = ()
            .serve(process)
            .await
            .map_err(|e| format!("server '{}': initialization failed: {e}", self.name))?;
        let tools = service
            .list_all_tools()
            .await
            .map_err(|e| format!("server '{}': tools/list failed: {e}", self.name))?;
        Ok(Connection {
            service,
            tools,
            pid,
        })
    }

    /// The tools the server lists (starting it).
    pub async fn tools(&self) -> Result<Vec<RemoteTool>, String> {
        Ok(self.connection().await?.tools.clone())
    }

    /// Calls tool `name` of the server (starting it) with `args`: the result as the server gave
    /// it; a call that did not properly reach the tool is a protocol error.
    pub async fn call(
        &self,
        name: &str,
        args: Option<serde_json::Map<String, Value>>,
    ) -> Result<CallToolResult, ToolError> {
        let c = self.connection().await.map_err(ToolError::protocol)?;
        let mut request = CallToolRequestParams::new(name.to_string());
        if let Some(args) = args {
            request = request.with_arguments(args);
        }
        let server = &self.name;
        c.service
            .call_tool(request)
            .await
            .map_err(|e| match e {
                rmcp::ServiceError::TransportClosed => {
                    let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let hint = log
                        .map(|l| format!("; its stderr is in {}", l.display()))
                        .unwrap_or_default();
                    format!("server '{server}' is not running any more (tool '{name}'){hint}")
                }
                e => format!("server '{server}', tool '{name}': {e}"),
            })
            .map_err(ToolError::protocol)
    }

    /// Stops the server if it was started: the connection is closed, which ends a well-behaved
    /// server; one still running after 3 s is killed.
    pub async fn shutdown(&self) {
        let Some(Ok(c)) = self.client.get() else {
            return;
        };
        c.service.cancellation_token().cancel();
        let Some(pid) = c.pid.and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        for _ in 0..60 {
            if exited(pid) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // SAFETY: kill(2) on our own child's pid, which is not reaped (so not reused) while it runs.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped). Linux only.
pub fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// A tool of an MCP server, under the name a template uses.
pub struct McpTool {
    pub server: Arc<Server>,
    /// The tool's name on the server.
    pub remote: String,
}

impl Tool for McpTool {
    fn call<'a>(&'a self, params: &'a Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let server = &self.server.name;
            let c = self
                .server
                .connection()
                .await
                .map_err(ToolError::protocol)?;
            let remote = c
                .tools
                .iter()
                .find(|t| t.name == self.remote)
                .ok_or_else(|| {
                    ToolError::protocol(format!("server '{server}' has no tool '{}'", self.remote))
                })?;
            let problems = check_schema(&remote.input_schema, params);
            if !problems.is_empty() {
                return Err(ToolError::protocol(format!(
                    "server '{server}', tool '{}': parameters do not fit its schema: {}",
                    self.remote,
                    problems.iter().join("; ")
                )));
            }
            let args = params.as_object().cloned();
            let result = self.server.call(&self.remote, args).await?;
            outcome(result).map_err(ToolError::from)
        })
    }

    fn describe(&self) -> String {
        format!("mcp server '{}' tool '{}'", self.server.name, self.remote)
    }
}

/// A call's result: `structuredContent`, else the text parsed as JSON, else `{"text": …}`;
/// `isError` makes it a failure with the text as its message.
fn outcome(result: CallToolResult) -> Result<Value, String> {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    let text = text.join("\n");
    if result.is_error == Some(true) {
        return Err(if text.is_empty() {
            "the tool reported an error".into()
        } else {
            text
        });
    }
    Ok(match result.structured_content {
        Some(v) => v,
        None => serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })),
    })
}

/// How parameters break a tool's input schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("parameters are not an object")]
    NotAnObject,
    #[error("'{0}' is required")]
    Required(String),
    #[error("'{name}' should be {} but is {found}", .types.join(" or "))]
    WrongType {
        name: String,
        types: Vec<String>,
        found: &'static str,
    },
    #[error("'{0}' is not a parameter of the tool")]
    Unknown(String),
}

/// What in `params` breaks the object schema `schema`: missing required properties and
/// properties of the wrong JSON type (the parts of JSON Schema that tool schemas use).
pub fn check_schema(schema: &serde_json::Map<String, Value>, params: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(params) = params.as_object() else {
        return vec![Violation::NotAnObject];
    };
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !params.contains_key(name) {
            out.push(Violation::Required(name.to_string()));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, value) in params {
        let Some(property) = properties.and_then(|p| p.get(name)) else {
            if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                out.push(Violation::Unknown(name.clone()));
            }
            continue;
        };
        let types: Vec<&str> = match property.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let fits = types.iter().any(|t| match *t {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => true,
        });
        if !fits {
            out.push(Violation::WrongType {
                name: name.clone(),
                types: types.into_iter().map(String::from).collect(),
                found: crate::template::expr::kind(value),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_violations_are_all_listed() {
        let schema = json!({"type": "object", "required": ["timezone", "time"],
            "properties": {"timezone": {"type": "string"}, "time": {"type": "string"},
                           "count": {"type": ["integer", "null"]}},
            "additionalProperties": false});
        let schema = schema.as_object().unwrap();
        let found = check_schema(schema, &json!({"time": 12, "count": 1.5, "extra": true}));
        assert_eq!(
            found.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "'timezone' is required",
                "'time' should be string but is a number",
                "'count' should be integer or null but is a number",
                "'extra' is not a parameter of the tool"
            ]
        );
        assert!(
            check_schema(
                schema,
                &json!({"timezone": "UTC", "time": "12:00", "count": null})
            )
            .is_empty()
        );
    }
}
