//! Tools built into patterns: `echo`, `sleep`, `fail`.

use std::time::Duration;

use serde_json::Value;

use super::tool::{BoxFuture, Tool, ToolError};

/// Tools built into patterns, for demos and tests.
#[derive(Debug, Clone, Copy)]
pub enum Builtin {
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
