//! The WorkflowTemplate JSON of DESIGN.md, with serde.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A reusable workflow: steps with dependencies, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub steps: Vec<WorkflowStep>,
    /// Step ids that may run at the same time.
    #[serde(default)]
    pub parallel_groups: Vec<Vec<String>>,
    /// How steps without a `retry` of their own wait between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Steps that run again, round after round, until a condition holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loops: Vec<LoopBlock>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// Steps repeated until `until` holds (checked after each round), at most `max_rounds` times:
/// edit → test until the tests pass. A failed step of the body does not stop the run, and the
/// body's steps run whatever failed before them (a failed test is why the loop goes round); a
/// loop that never gets to `until` fails the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopBlock {
    /// The body: steps that depend on each other in this order, and on nothing later.
    pub steps: Vec<String>,
    /// A condition over the steps' results, e.g. `{{run_tests.success}} == true`.
    pub until: String,
    /// The most rounds; a loop is never unbounded.
    pub max_rounds: u32,
}

/// The most rounds a loop may have.
pub const MAX_ROUNDS: u32 = 1000;

/// One call of a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStep {
    pub step_id: String,
    pub tool_name: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub retry_count: u32,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    #[serde(default)]
    pub on_error: OnError,
    /// How to wait between attempts; the template's, or the default, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// What undoes the step when a later failure has `on_error: compensate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensate: Option<Action>,
}

/// A tool call that is not a step of its own (a compensation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub tool_name: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

/// Exponential backoff between the attempts of a step: the n-th retry waits
/// `min(initial_delay_seconds × factor^n, max_delay_seconds)`, scaled by a random factor in
/// `1 ± jitter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "RetryPolicy::default_initial")]
    pub initial_delay_seconds: f64,
    #[serde(default = "RetryPolicy::default_factor")]
    pub factor: f64,
    #[serde(default = "RetryPolicy::default_max")]
    pub max_delay_seconds: f64,
    #[serde(default)]
    pub jitter: f64,
    /// Which failures are retried.
    #[serde(default = "RetryPolicy::default_on")]
    pub retry_on: Vec<Failure>,
}

/// A kind of failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The tool reported an error (a non-zero exit, an error result).
    Error,
    /// The call ran past `timeout_seconds`.
    Timeout,
    /// The call did not properly reach the tool (an MCP protocol error, parameters that break
    /// the tool's schema): not retried unless asked.
    Protocol,
}

impl RetryPolicy {
    fn default_initial() -> f64 {
        2.0
    }
    fn default_factor() -> f64 {
        2.0
    }
    fn default_max() -> f64 {
        60.0
    }
    fn default_on() -> Vec<Failure> {
        vec![Failure::Error, Failure::Timeout]
    }

    /// What is wrong with the numbers, if anything.
    pub fn problem(&self) -> Option<String> {
        let finite = [
            self.initial_delay_seconds,
            self.factor,
            self.max_delay_seconds,
            self.jitter,
        ]
        .iter()
        .all(|x| x.is_finite());
        if !finite || self.initial_delay_seconds < 0.0 || self.max_delay_seconds < 0.0 {
            Some("delays must be numbers ≥ 0".into())
        } else if self.factor < 1.0 {
            Some(format!("factor {} is below 1", self.factor))
        } else if !(0.0..=1.0).contains(&self.jitter) {
            Some(format!("jitter {} is not between 0 and 1", self.jitter))
        } else {
            None
        }
    }
}

impl Default for RetryPolicy {
    /// The seed's backoff: 2 s, 4 s, 8 s … up to a minute, on errors and timeouts.
    fn default() -> RetryPolicy {
        RetryPolicy {
            initial_delay_seconds: RetryPolicy::default_initial(),
            factor: RetryPolicy::default_factor(),
            max_delay_seconds: RetryPolicy::default_max(),
            jitter: 0.0,
            retry_on: RetryPolicy::default_on(),
        }
    }
}

/// What a failed step does to the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum OnError {
    /// Nothing new starts; the run fails.
    #[default]
    Abort,
    /// The step is marked failed, its dependants are skipped, the rest go on.
    Continue,
    /// Another step runs in its place.
    Fallback(String),
    /// Completed steps are compensated in reverse order; the run fails.
    Compensate,
    /// A policy this version does not know: kept as written, reported by validation.
    Unknown(String),
}

impl From<String> for OnError {
    fn from(s: String) -> OnError {
        match s.as_str() {
            "abort" => OnError::Abort,
            "continue" => OnError::Continue,
            "compensate" => OnError::Compensate,
            _ => match s.strip_prefix("fallback:") {
                Some(step) if !step.is_empty() => OnError::Fallback(step.to_string()),
                _ => OnError::Unknown(s),
            },
        }
    }
}

impl From<OnError> for String {
    fn from(p: OnError) -> String {
        match p {
            OnError::Abort => "abort".into(),
            OnError::Continue => "continue".into(),
            OnError::Fallback(step) => format!("fallback:{step}"),
            OnError::Compensate => "compensate".into(),
            OnError::Unknown(s) => s,
        }
    }
}

/// Where a template came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Written by `patterns mine`, updated by later runs.
    Mined,
    /// Written or edited by a person: never touched by `patterns mine`.
    #[default]
    User,
    /// Compiled into the binary.
    Builtin,
}

/// What is known about a template. Keys that this version does not know are kept as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub source: Source,
    /// The mined chain of tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pattern: Vec<String>,
    /// Sessions in which the chain occurred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// RFC 3339 time of the earliest and latest occurrence, when the log has times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_duration_ms: Option<f64>,
    /// A mined template whose chain fell below the threshold in the latest run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Metadata {
    /// A number `mine` measured and kept among the other fields: `extra[key]`, or with a
    /// `field`, `extra[key][field]` (`outcome_rate`; `tokens_saved.median`).
    pub fn measured(&self, key: &str, field: Option<&str>) -> Option<f64> {
        let v = self.extra.get(key)?;
        match field {
            Some(f) => v.get(f)?.as_f64(),
            None => v.as_f64(),
        }
    }
}

impl WorkflowTemplate {
    /// The JSON written to a library file: pretty, stable key order, trailing newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("templates serialise");
        json.push('\n');
        json
    }

    /// The tools of the steps, in step order.
    pub fn tools(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| s.tool_name.as_str())
    }
}
