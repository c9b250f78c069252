//! What a step calls: the [`Tool`] trait, its errors, and the masking of secrets every kind of
//! tool shares. A leaf: the kinds of tools ([`super::command`], [`super::builtin`],
//! [`super::mcp`]) and the [`super::toolbox`] that binds them build on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

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

/// What a tool may do to the world, as MCP's tool annotations say it: `None` is not known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hints {
    /// It changes nothing.
    pub read_only: Option<bool>,
    /// It may delete or overwrite (meaningful when not read-only).
    pub destructive: Option<bool>,
    /// Calling it again with the same parameters changes nothing more.
    pub idempotent: Option<bool>,
    /// It reaches outside the machine (the web, other people's systems).
    pub open_world: Option<bool>,
}

impl Hints {
    /// Each hint of `self`, else `other`'s.
    pub fn or(self, other: Hints) -> Hints {
        Hints {
            read_only: self.read_only.or(other.read_only),
            destructive: self.destructive.or(other.destructive),
            idempotent: self.idempotent.or(other.idempotent),
            open_world: self.open_world.or(other.open_world),
        }
    }

    /// What a run of tools with `hints` may do, each unknown hint taken at MCP's cautious
    /// default (not read-only, destructive, not idempotent, open world): read-only when every
    /// tool is, destructive when one may be, idempotent when every tool is, open when one is.
    pub fn all(hints: &[Hints]) -> Hints {
        let read_only = hints.iter().all(|h| h.read_only == Some(true));
        Hints {
            read_only: Some(read_only),
            destructive: Some(
                !read_only
                    && (hints.iter())
                        .any(|h| h.read_only != Some(true) && h.destructive != Some(false)),
            ),
            idempotent: Some(
                (hints.iter()).all(|h| h.read_only == Some(true) || h.idempotent == Some(true)),
            ),
            open_world: Some(hints.iter().any(|h| h.open_world != Some(false))),
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

/// Values of `env` shorter than this are not masked: they are not secrets (`1`, `true`), and
/// masking them would garble every output that holds them.
const MIN_SECRET: usize = 6;

/// The values of a binding's `env` long enough to be secrets (tokens, say), longest first so
/// that a value holding another is masked whole: each is written `<env NAME>` in what a tool
/// returns, fails with or logs, before anything prints, logs or checkpoints it.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Vec<(String, String)>);

impl Secrets {
    pub fn of(env: &[(String, String)]) -> Secrets {
        let mut secrets: Vec<(String, String)> = (env.iter())
            .filter(|(_, v)| v.chars().count() >= MIN_SECRET)
            .cloned()
            .collect();
        secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        Secrets(secrets)
    }

    pub fn text(&self, mut s: String) -> String {
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
pub struct Masked {
    inner: Arc<dyn Tool>,
    secrets: Secrets,
}

impl Masked {
    /// `tool`, masking the values of `env` that are long enough to be secrets.
    pub fn wrap(tool: Arc<dyn Tool>, env: &[(String, String)]) -> Arc<dyn Tool> {
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
