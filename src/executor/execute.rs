//! Running a plan: level by level, each level's steps at once (bounded), with conditions,
//! retries with backoff, timeouts, `on_error` policies and cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::context::{Context, Outcome};
use super::plan::Plan;
use super::runlog::{CallRow, RunLog};
use super::tool::{Tool, ToolError};
use super::toolbox::Toolbox;
use crate::template::{CompiledStep, Failure, OnError, RetryPolicy, WorkflowStep};

/// What became of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not reached yet.
    Pending,
    Succeeded,
    /// Failed after its last attempt (and its fallback, if any).
    Failed,
    /// Its condition was false. Dependants still run, and see `success = false`.
    Skipped,
    /// Never started: a dependency failed, or the run stopped first.
    NotRun,
    /// Stopped while running (Ctrl-C).
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::NotRun => "not_run",
            Status::Cancelled => "cancelled",
        }
    }
}

/// The record of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub status: Status,
    pub attempts: u32,
    /// RFC 3339 times of the first attempt's start and the last attempt's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub duration_ms: u64,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// The step that ran in this one's place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Taken from the checkpoint of an earlier attempt at this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

impl StepRecord {
    pub(crate) fn new(status: Status, error: Option<String>) -> StepRecord {
        StepRecord {
            status,
            attempts: 0,
            started_at: None,
            finished_at: None,
            duration_ms: 0,
            result: None,
            error,
            fallback: None,
            resumed: false,
        }
    }

    /// Whether a resumed run keeps this record instead of running the step again.
    pub fn is_final(&self) -> bool {
        matches!(self.status, Status::Succeeded | Status::Skipped)
    }
}

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Every step succeeded or was skipped by its condition.
    Succeeded,
    /// Steps with `on_error: continue` failed; everything else succeeded.
    Partial,
    Failed,
    /// Stopped by Ctrl-C.
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// A compensation that ran after a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compensation {
    pub step_id: String,
    pub tool: String,
    pub success: bool,
    pub error: Option<String>,
}

/// The state of a run: what `--json` prints and what a checkpoint keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub workflow: String,
    pub status: RunStatus,
    pub steps: IndexMap<String, StepRecord>,
    /// Steps in the order they finished (compensations run in reverse).
    #[serde(default)]
    pub finished: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compensations: Vec<Compensation>,
    /// Per loop of the template, the rounds begun.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<u32>,
    /// Why the run failed, when no step's error says it (a loop that never got to its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunState {
    /// A run that has not started: every step pending.
    pub fn new(run_id: String, plan: &Plan) -> RunState {
        RunState {
            run_id,
            workflow: plan.template.name.clone(),
            status: RunStatus::Running,
            steps: plan
                .template
                .steps
                .iter()
                .map(|s| (s.step_id.clone(), StepRecord::new(Status::Pending, None)))
                .collect(),
            finished: Vec::new(),
            compensations: Vec::new(),
            rounds: vec![0; plan.loops.len()],
            error: None,
        }
    }

    /// The state of an interrupted run, to run again: finished steps are kept, the rest reset.
    pub fn resume(mut self) -> RunState {
        for record in self.steps.values_mut() {
            if record.is_final() {
                record.resumed = true;
            } else {
                *record = StepRecord::new(Status::Pending, None);
            }
        }
        self.finished.retain(|id| self.steps[id].is_final());
        self.status = RunStatus::Running;
        self.compensations.clear();
        self.error = None;
        self
    }

    fn context(&self, plan: &Plan) -> Context {
        let mut ctx = plan.context();
        for id in self.steps.keys() {
            self.show(&mut ctx, id);
        }
        ctx
    }

    /// Puts what step `id` shows to later steps into `ctx` (nothing while it is pending).
    fn show(&self, ctx: &mut Context, id: &str) {
        let r = &self.steps[id];
        let why_none = match r.status {
            Status::Pending => return,
            Status::Succeeded => String::new(),
            Status::Skipped => "skipped: its condition was false".into(),
            Status::Failed => "it failed".into(),
            Status::NotRun => "it did not run".into(),
            Status::Cancelled => "it was cancelled".into(),
        };
        ctx.set(
            id,
            Outcome {
                success: r.status == Status::Succeeded,
                result: r.result.clone().filter(|_| r.status == Status::Succeeded),
                why_none,
            },
        );
    }
}

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// At most this many steps at once; `None`: a level's width.
    pub max_parallel: Option<usize>,
    pub run_log: Option<Arc<RunLog>>,
    /// Becomes `true` on Ctrl-C: running calls are stopped, nothing new starts.
    pub cancel: watch::Receiver<bool>,
    /// A run served to an agent: the run log says what each call replaced.
    pub served: Option<Served>,
}

/// A run an agent asked for in one call instead of calling each tool itself.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    /// The tokens a run of the workflow saved in the logs it was mined from (their median).
    pub tokens_saved: Option<u64>,
}

/// What every step task shares.
struct Shared {
    run_id: String,
    run_log: Option<Arc<RunLog>>,
    /// The template's name, for the run log.
    workflow: String,
    served: Option<Served>,
    /// Set once the run log has the run's first call.
    logged: AtomicBool,
    cancel: watch::Receiver<bool>,
    /// Set by a failure that stops the run: nothing new starts.
    stop: AtomicBool,
    permits: Arc<Semaphore>,
}

/// Runs `plan` from `state` (new or resumed); `on_step` sees the state after every finished
/// step, with the ids of the steps whose records changed since it last saw it (for checkpoints
/// that grow with what changed).
pub async fn execute(
    plan: &Plan,
    tools: &Toolbox,
    options: &Options,
    mut state: RunState,
    on_step: &mut (dyn FnMut(&RunState, &[String]) + Send),
) -> RunState {
    let mut changed: Vec<String> = Vec::new();
    let widest = plan.levels.iter().map(Vec::len).max().unwrap_or(1);
    let shared = Arc::new(Shared {
        run_id: state.run_id.clone(),
        run_log: options.run_log.clone(),
        workflow: plan.template.name.clone(),
        served: options.served,
        logged: AtomicBool::new(false),
        cancel: options.cancel.clone(),
        stop: AtomicBool::new(false),
        permits: Arc::new(Semaphore::new(
            options.max_parallel.unwrap_or(widest).max(1),
        )),
    });
    let mut compensate = false;
    let steps = &plan.template.steps;
    state.rounds.resize(plan.loops.len(), 0);
    let in_loop: Vec<bool> = (0..steps.len())
        .map(|i| {
            let id = &steps[i].step_id;
            plan.loops.iter().any(|l| l.steps.contains(id))
        })
        .collect();
    // The outcomes later steps read, brought up to date after each level (when the level's tasks,
    // which share it, are done, so that it is updated in place, not copied per level).
    let mut ctx = Arc::new(state.context(plan));
    let mut at = 0;
    while at < plan.levels.len() {
        let level = &plan.levels[at];
        for (k, l) in plan.loops.iter().enumerate() {
            if l.first == at && state.rounds[k] == 0 {
                state.rounds[k] = 1;
            }
        }
        let mut running = JoinSet::new();
        let mut shown: Vec<String> = Vec::new();
        for &i in level {
            let step = &steps[i];
            if state.steps[&step.step_id].is_final() {
                continue;
            }
            // A loop's body runs whatever the round before it (or the step before the loop)
            // left: a failed test is why the loop goes round.
            let blocked = step.depends_on.iter().filter(|_| !in_loop[i]).find(|d| {
                matches!(
                    state.steps[d.as_str()].status,
                    Status::Failed | Status::NotRun | Status::Cancelled
                )
            });
            // Permits are taken here, in template order, so that with fewer permits than steps
            // the steps start in the order they are written. A failure that stops the run is
            // recorded before its permit is released, so a step waiting here sees it.
            let permit = match blocked {
                Some(_) => None,
                None => Some(
                    shared
                        .permits
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the semaphore is never closed"),
                ),
            };
            let not_run = if let Some(d) = blocked {
                Some(format!("not run: dependency '{d}' did not succeed"))
            } else if shared.stop.load(Ordering::SeqCst) || *shared.cancel.borrow() {
                Some("not run: the run stopped before it".to_string())
            } else {
                None
            };
            if let Some(why) = not_run {
                state.steps[&step.step_id] = StepRecord::new(Status::NotRun, Some(why));
                changed.push(step.step_id.clone());
                shown.push(step.step_id.clone());
                continue;
            }
            let mut job = Job::new(i, plan, tools);
            job.in_loop = in_loop[i];
            let permit = permit.expect("taken for a step that runs");
            running.spawn(job.run(ctx.clone(), shared.clone(), permit));
        }
        while let Some(done) = running.join_next().await {
            let done = done.expect("step tasks do not panic");
            if let Some((id, record)) = done.fallback {
                state.steps[&id] = record;
                changed.push(id.clone());
                shown.push(id);
            }
            let failed = done.record.status == Status::Failed;
            if done.record.status == Status::Succeeded {
                state.finished.push(done.step_id.clone());
            }
            state.steps[&done.step_id] = done.record;
            shown.push(done.step_id.clone());
            changed.push(done.step_id);
            if failed && done.stops == Some(Stop::Compensate) {
                compensate = true;
            }
            on_step(&state, &std::mem::take(&mut changed));
        }
        let c = Arc::make_mut(&mut ctx);
        for id in &shown {
            state.show(c, id);
        }
        at = match next_level(plan, at, &mut state, &shared) {
            Some(next) => {
                // The body's steps are pending again: what they showed is gone.
                ctx = Arc::new(state.context(plan));
                changed.extend(
                    plan.loops
                        .iter()
                        .filter(|l| l.first == next)
                        .flat_map(|l| l.steps.iter().cloned()),
                );
                on_step(&state, &std::mem::take(&mut changed));
                next
            }
            None => at + 1,
        };
    }
    if compensate {
        compensate_finished(plan, tools, &shared, &mut state).await;
    }
    let records = || state.steps.values();
    state.status = if *shared.cancel.borrow() {
        RunStatus::Cancelled
    } else if shared.stop.load(Ordering::SeqCst) {
        RunStatus::Failed
    } else if records().any(|r| r.status == Status::Failed) {
        RunStatus::Partial
    } else {
        RunStatus::Succeeded
    };
    on_step(&state, &changed);
    state
}

/// After level `at`: where a loop that ends there goes on. Its `until` holds: on after it
/// (`None`). It does not, and rounds are left: its body again, reset (the level it starts at).
/// None are left: the run stops, with the reason in `state.error`.
fn next_level(plan: &Plan, at: usize, state: &mut RunState, shared: &Shared) -> Option<usize> {
    let (k, l) = plan.loops.iter().enumerate().find(|(_, l)| l.last == at)?;
    let ctx = state.context(plan);
    let done = l.until.holds(&ctx);
    if matches!(done, Ok(true)) || shared.stop.load(Ordering::SeqCst) || *shared.cancel.borrow() {
        return None;
    }
    let body = l.steps.join(" → ");
    if state.rounds[k] >= l.max_rounds || done.is_err() {
        state.error = Some(match done {
            Err(e) => format!("loop ({body}): its until condition failed: {e}"),
            Ok(_) => format!(
                "loop ({body}) did not get to its end in {} round{}: until {} never held",
                l.max_rounds,
                if l.max_rounds == 1 { "" } else { "s" },
                plan.template.loops[k].until
            ),
        });
        shared.stop.store(true, Ordering::SeqCst);
        return None;
    }
    state.rounds[k] += 1;
    for id in &l.steps {
        state.steps[id.as_str()] = StepRecord::new(Status::Pending, None);
    }
    state.finished.retain(|id| !l.steps.contains(id));
    Some(l.first)
}

/// Runs the compensations of the steps that succeeded, last finished first.
async fn compensate_finished(plan: &Plan, tools: &Toolbox, shared: &Shared, state: &mut RunState) {
    let ctx = state.context(plan);
    for id in state.finished.clone().iter().rev() {
        let i = (plan.template.steps.iter())
            .position(|s| &s.step_id == id)
            .expect("finished steps are steps");
        let step = &plan.template.steps[i];
        let (Some(action), Some(parameters)) = (&step.compensate, &plan.steps[i].compensate) else {
            continue;
        };
        let tool = tools
            .get(&action.tool_name)
            .expect("the plan checked every tool");
        let outcome = match parameters.render(&ctx) {
            Ok(params) => {
                let call = Call {
                    step_id: id,
                    tool_name: &action.tool_name,
                    tool: tool.as_ref(),
                    timeout: step.timeout_seconds,
                };
                call.attempt(&params, 1, shared).await.map(|_| ())
            }
            Err(e) => Err(CallFailure::Error(format!("compensation: {e}"))),
        };
        state.compensations.push(Compensation {
            step_id: id.clone(),
            tool: action.tool_name.clone(),
            success: outcome.is_ok(),
            error: outcome.err().map(|e| e.to_string()),
        });
    }
}

/// A failure that stops the run, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Abort,
    Compensate,
}

/// A step ready to run, with its parsed texts, its tool, its retry policy and its fallback.
struct Job {
    step: WorkflowStep,
    compiled: CompiledStep,
    tool: Arc<dyn Tool>,
    retry: RetryPolicy,
    fallback: Option<Box<Job>>,
    /// A step of a loop's body: its failure does not stop the run (the loop decides).
    in_loop: bool,
}

/// What a step task hands back.
struct Done {
    step_id: String,
    record: StepRecord,
    /// The fallback step's own record, when it ran.
    fallback: Option<(String, StepRecord)>,
    /// How the failure of this step stops the run.
    stops: Option<Stop>,
}

impl Job {
    /// The job of `plan`'s step `i`.
    fn new(i: usize, plan: &Plan, tools: &Toolbox) -> Job {
        let step = &plan.template.steps[i];
        let retry = step
            .retry
            .clone()
            .or_else(|| plan.template.retry.clone())
            .unwrap_or_default();
        let fallback = match &step.on_error {
            OnError::Fallback(f) => (plan.template.steps.iter())
                .position(|s| &s.step_id == f)
                .map(|f| Box::new(Job::new(f, plan, tools))),
            _ => None,
        };
        Job {
            tool: tools
                .get(&step.tool_name)
                .expect("the plan checked every tool")
                .clone(),
            step: step.clone(),
            compiled: plan.steps[i].clone(),
            retry,
            fallback,
            in_loop: false,
        }
    }

    /// Runs the step (and its fallback) holding `_permit`, one of the `--max-parallel` slots.
    async fn run(
        self,
        ctx: Arc<Context>,
        shared: Arc<Shared>,
        _permit: OwnedSemaphorePermit,
    ) -> Done {
        let mut done = Done {
            step_id: self.step.step_id.clone(),
            record: self.attempts(&ctx, &shared).await,
            fallback: None,
            stops: None,
        };
        if done.record.status == Status::Failed
            && let Some(fallback) = &self.fallback
        {
            let record = fallback.attempts(&ctx, &shared).await;
            done.record = StepRecord {
                status: record.status,
                result: record.result.clone(),
                error: match &record.error {
                    Some(e) => Some(format!(
                        "{} (fallback '{}': {e})",
                        done.record.error.unwrap_or_default(),
                        fallback.step.step_id
                    )),
                    None => done.record.error,
                },
                fallback: Some(fallback.step.step_id.clone()),
                finished_at: record.finished_at.clone(),
                duration_ms: done.record.duration_ms + record.duration_ms,
                ..done.record
            };
            done.fallback = Some((fallback.step.step_id.clone(), record));
        }
        // A failed step of a loop's body does not stop the run: the loop decides.
        if done.record.status == Status::Failed && !self.in_loop {
            let policy = match (&self.step.on_error, &self.fallback) {
                (OnError::Fallback(_), Some(f)) => &f.step.on_error,
                (policy, _) => policy,
            };
            done.stops = match policy {
                OnError::Continue => None,
                OnError::Compensate => Some(Stop::Compensate),
                _ => Some(Stop::Abort),
            };
            // Set before the permit is released, so that no waiting step starts after it.
            if done.stops.is_some() {
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
        if done.record.status == Status::Cancelled {
            shared.stop.store(true, Ordering::SeqCst);
        }
        done
    }

    /// The step's condition, parameters and attempts.
    async fn attempts(&self, ctx: &Context, shared: &Shared) -> StepRecord {
        let step = &self.step;
        if let Some(condition) = &self.compiled.condition {
            match condition.holds(ctx) {
                Ok(true) => {}
                Ok(false) => return StepRecord::new(Status::Skipped, None),
                Err(e) => return StepRecord::new(Status::Failed, Some(format!("condition: {e}"))),
            }
        }
        let params = match self.compiled.parameters.render(ctx) {
            Ok(p) => p,
            Err(e) => return StepRecord::new(Status::Failed, Some(e)),
        };
        let call = Call {
            step_id: &step.step_id,
            tool_name: &step.tool_name,
            tool: self.tool.as_ref(),
            timeout: step.timeout_seconds,
        };
        let started = Instant::now();
        let mut record = StepRecord::new(Status::Failed, None);
        record.started_at = Some(now());
        let tries = step.retry_count + 1;
        for attempt in 1..=tries {
            record.attempts = attempt;
            let outcome = call.attempt(&params, attempt, shared).await;
            match outcome {
                Ok(result) => {
                    record.status = Status::Succeeded;
                    record.result = Some(result);
                    record.error = None;
                    break;
                }
                Err(failure) => {
                    record.error = Some(failure.to_string());
                    if matches!(failure, CallFailure::Cancelled) {
                        record.status = Status::Cancelled;
                        break;
                    }
                    let retried = failure
                        .kind()
                        .is_some_and(|k| self.retry.retry_on.contains(&k));
                    if attempt == tries || !retried {
                        break;
                    }
                    let wait = backoff(&self.retry, attempt - 1);
                    let mut cancel = shared.cancel.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = cancel.wait_for(|c| *c) => {
                            record.status = Status::Cancelled;
                            record.error = Some("cancelled while waiting to retry".into());
                            break;
                        }
                    }
                }
            }
        }
        record.finished_at = Some(now());
        record.duration_ms = started.elapsed().as_millis() as u64;
        record
    }
}

/// The delay before retry `n` (0 for the first retry).
fn backoff(policy: &RetryPolicy, n: u32) -> Duration {
    let base =
        (policy.initial_delay_seconds * policy.factor.powi(n as i32)).min(policy.max_delay_seconds);
    let jitter = if policy.jitter > 0.0 {
        // Jitter only spreads retries apart; it needs no strong randomness.
        let seed = Utc::now().timestamp_subsec_nanos() as u64 ^ u64::from(n);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        1.0 + policy.jitter * rng.random_range(-1.0..=1.0)
    } else {
        1.0
    };
    Duration::try_from_secs_f64((base * jitter).max(0.0)).unwrap_or(Duration::MAX)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Why one call failed.
#[derive(Debug, thiserror::Error)]
enum CallFailure {
    #[error("{0}")]
    Error(String),
    #[error("{0}")]
    Protocol(String),
    #[error("timed out after {0} s")]
    Timeout(f64),
    #[error("cancelled")]
    Cancelled,
}

impl From<ToolError> for CallFailure {
    fn from(e: ToolError) -> CallFailure {
        if e.protocol {
            CallFailure::Protocol(e.message)
        } else {
            CallFailure::Error(e.message)
        }
    }
}

impl CallFailure {
    fn kind(&self) -> Option<Failure> {
        match self {
            CallFailure::Error(_) => Some(Failure::Error),
            CallFailure::Protocol(_) => Some(Failure::Protocol),
            CallFailure::Timeout(_) => Some(Failure::Timeout),
            CallFailure::Cancelled => None,
        }
    }
}

/// One tool call of a step, logged.
struct Call<'a> {
    step_id: &'a str,
    tool_name: &'a str,
    tool: &'a dyn Tool,
    timeout: Option<f64>,
}

impl Call<'_> {
    async fn attempt(
        &self,
        params: &Value,
        attempt: u32,
        shared: &Shared,
    ) -> Result<Value, CallFailure> {
        let timestamp = now();
        let started = Instant::now();
        let call = self.tool.call(params);
        let timed = async {
            match self
                .timeout
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
            {
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(r) => r.map_err(CallFailure::from),
                    Err(_) => Err(CallFailure::Timeout(limit.as_secs_f64())),
                },
                None => call.await.map_err(CallFailure::from),
            }
        };
        let mut cancel = shared.cancel.clone();
        // Dropping the losing future stops the call (a command's process group is killed).
        let outcome = tokio::select! {
            r = timed => r,
            _ = cancel.wait_for(|c| *c) => Err(CallFailure::Cancelled),
        };
        if let Some(log) = &shared.run_log {
            let first = !shared.logged.swap(true, Ordering::SeqCst);
            let row = CallRow {
                run_id: &shared.run_id,
                timestamp,
                tool: self.tool_name,
                success: outcome.is_ok(),
                duration_ms: started.elapsed().as_millis() as u64,
                arguments: params.to_string(),
                result: outcome.as_ref().map(Value::to_string).unwrap_or_default(),
                error: outcome
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                step_id: self.step_id,
                attempt,
                workflow: &shared.workflow,
                round_trips_saved: shared.served.map(|_| u64::from(!first && attempt == 1)),
                tokens_saved: shared.served.and_then(|s| s.tokens_saved).filter(|_| first),
            };
            if let Err(e) = log.append(&row) {
                say!(
                    "warning: cannot write to run log {}: {e}",
                    log.path().display()
                );
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stops_at_the_maximum() {
        let p = RetryPolicy {
            initial_delay_seconds: 2.0,
            factor: 2.0,
            max_delay_seconds: 10.0,
            ..RetryPolicy::default()
        };
        let secs: Vec<f64> = (0..5).map(|n| backoff(&p, n).as_secs_f64()).collect();
        assert_eq!(secs, [2.0, 4.0, 8.0, 10.0, 10.0]);
        let jittered = RetryPolicy { jitter: 0.5, ..p };
        for n in 0..5 {
            let s = backoff(&jittered, n).as_secs_f64();
            let base = secs[n as usize];
            assert!(s >= base * 0.5 && s <= base * 1.5, "{s} for {base}");
        }
    }
}
