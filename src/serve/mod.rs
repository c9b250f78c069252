//! `patterns serve`: the library's workflows as the tools of an MCP server, so that an agent runs
//! a learned workflow in one call instead of steering each tool through a model round-trip.
//!
//! [`offer`] decides which workflows are tools and describes them; [`Workflows`] answers
//! `tools/list` and `tools/call`, runs a called workflow with the executor ([`prepare`] and
//! [`execute_checkpointed`], as `patterns run` does), reports progress as steps finish, stops on
//! the client's cancellation, and follows the library folder (`notifications/tools/list_changed`).

pub mod http;
pub mod offer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

use crate::executor::mcp::Server;
use crate::executor::runlog::{CallRow, RunLog};
use crate::executor::state::{self, RunLock, execute_checkpointed};
use crate::executor::tool::Secrets;
use crate::executor::{Options, RunState, RunStatus, Served, Status, Toolbox, prepare};
use crate::template::{Library, Source, WorkflowTemplate};
use offer::{LeftOut, Offered, SUGGEST};

/// How a server is set up.
pub struct Settings {
    pub library: PathBuf,
    pub state_dir: PathBuf,
    pub run_log: Option<Arc<RunLog>>,
    /// Also serve the tools of the MCP servers of tools.toml as they are, and log every call the
    /// client makes to them (in the run log, the session being this server's).
    pub proxy: bool,
}

/// A tool of an MCP server of tools.toml, served as it is.
struct Proxied {
    server: Arc<Server>,
    tool: rmcp::model::Tool,
}

/// What the server offers now, and the library state it was made from.
#[derive(Default)]
struct Offer {
    tools: IndexMap<String, Offered>,
    /// Every template of the library (served or not), for `suggest_workflow`.
    templates: Vec<WorkflowTemplate>,
    left_out: Vec<LeftOut>,
    /// The library files' names, sizes and times: a change means a new offer.
    /// None until the library was read once.
    stamp: Option<Vec<(PathBuf, u64, Option<SystemTime>)>>,
}

/// What the calls served so far did: for the line at exit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Calls of workflows, refused ones (bad arguments) included.
    pub calls: u64,
    pub succeeded: u64,
    /// Tool calls the workflows made.
    pub tool_calls: u64,
    /// Model round-trips the calls replaced: each step's tool call would have been one.
    pub round_trips_saved: u64,
    /// Tokens the calls replaced, by the median their workflow saved per run in the logs it was
    /// mined from, and how many calls that figure was known for.
    pub tokens_saved: u64,
    pub calls_with_tokens: u64,
}

/// The MCP server of a library's workflows.
#[derive(Clone)]
pub struct Workflows {
    settings: Arc<Settings>,
    tools: Arc<Toolbox>,
    offer: Arc<RwLock<Offer>>,
    /// The client, once it is initialised: told when the tool list changes.
    peer: Arc<Mutex<Option<Peer<RoleServer>>>>,
    figures: Arc<Mutex<Figures>>,
    /// With `--proxy`: the servers' tools by name.
    proxied: Arc<IndexMap<String, Proxied>>,
    /// The session id of the proxied calls in the run log: one per server process (one MCP
    /// session over stdio).
    session: String,
}

impl Workflows {
    /// A server of the library in `settings` with `tools` (their servers exposed already); the
    /// first offer is made here, and what it leaves out is returned with the reasons.
    pub async fn new(
        settings: Settings,
        tools: Toolbox,
    ) -> Result<(Workflows, Vec<LeftOut>), String> {
        let mut proxied = IndexMap::new();
        if settings.proxy {
            for server in tools.servers() {
                for tool in server.tools().await? {
                    let name = tool.name.to_string();
                    if name == SUGGEST || proxied.contains_key(&name) {
                        say!(
                            "serve: not proxied: {name} of server '{}' (the name is taken)",
                            server.name()
                        );
                        continue;
                    }
                    let server = server.clone();
                    proxied.insert(name, Proxied { server, tool });
                }
            }
        }
        let server = Workflows {
            settings: Arc::new(settings),
            tools: Arc::new(tools),
            offer: Arc::default(),
            peer: Arc::default(),
            figures: Arc::default(),
            proxied: Arc::new(proxied),
            session: state::new_run_id("proxy"),
        };
        server.refresh().await?;
        let left_out = server.read().left_out.clone();
        Ok((server, left_out))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Offer> {
        self.offer.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The same server for another MCP session: its proxied calls get a session id of their own.
    pub fn for_new_session(&self) -> Workflows {
        Workflows {
            session: state::new_run_id("proxy"),
            ..self.clone()
        }
    }

    /// The names of the workflows offered now.
    pub fn offered(&self) -> Vec<String> {
        self.read().tools.keys().cloned().collect()
    }

    /// The names of the servers' tools served as they are (`--proxy`).
    pub fn proxied(&self) -> Vec<String> {
        self.proxied.keys().cloned().collect()
    }

    /// Forwards a call of a server's tool and logs it: what the agent did, for tonight's `mine`.
    async fn forward(&self, name: &str, args: Map<String, Value>) -> CallToolResult {
        let p = &self.proxied[name];
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let started = Instant::now();
        let arguments = Value::Object(args.clone()).to_string();
        let outcome = p.server.call(name, Some(args)).await;
        if let Some(log) = &self.settings.run_log {
            let secrets = Secrets::of(p.server.env());
            let (success, result, error) = match &outcome {
                Ok(r) => {
                    let text: Vec<&str> = (r.content.iter())
                        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
                        .collect();
                    let result = match &r.structured_content {
                        Some(v) => v.to_string(),
                        None => text.join("\n"),
                    };
                    match r.is_error == Some(true) {
                        true => (false, String::new(), text.join("\n")),
                        false => (true, result, String::new()),
                    }
                }
                Err(e) => (false, String::new(), e.message.clone()),
            };
            let row = CallRow {
                run_id: &self.session,
                timestamp,
                tool: name,
                success,
                duration_ms: started.elapsed().as_millis() as u64,
                arguments: secrets.text(arguments),
                result: secrets.text(result),
                error: secrets.text(error),
                step_id: "",
                attempt: 1,
                workflow: "",
                round_trips_saved: None,
                tokens_saved: None,
            };
            if let Err(e) = log.append(&row) {
                say!("serve: cannot write to {}: {e}", log.path().display());
            }
        }
        outcome.unwrap_or_else(|e| text_error(e.message))
    }

    pub fn figures(&self) -> Figures {
        *self.figures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The library files' names, sizes and modification times.
    fn stamp(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let Ok(dir) = std::fs::read_dir(&self.settings.library) else {
            return Vec::new();
        };
        let mut out: Vec<_> = dir
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((e.path(), m.len(), m.modified().ok()))
            })
            .collect();
        out.sort();
        out
    }

    /// Reads the library again if its files changed; whether the tools offered changed.
    pub async fn refresh(&self) -> Result<bool, String> {
        let stamp = self.stamp();
        if self.read().stamp.as_ref() == Some(&stamp) {
            return Ok(false);
        }
        let library = Library::new(&self.settings.library);
        let mut catalog = library.catalog().map_err(|e| e.to_string())?;
        // The built-ins are demos, not what the agent's own logs taught.
        (catalog.templates).retain(|t| t.metadata.source != Source::Builtin);
        for (path, problems) in &catalog.broken {
            say!("serve: skipped {}: {}", path.display(), problems.join("; "));
        }
        let (offered, left_out) = offer::offer(catalog.templates.clone(), &self.tools).await;
        let tools: IndexMap<String, Offered> = (offered.into_iter())
            .map(|o| (o.template.name.clone(), o))
            .collect();
        let mut offer = self.offer.write().unwrap_or_else(|e| e.into_inner());
        let changed = offer.tools.len() != tools.len()
            || (offer.tools.iter().zip(&tools)).any(|((a, x), (b, y))| a != b || x.tool != y.tool);
        *offer = Offer {
            tools,
            templates: catalog.templates,
            left_out,
            stamp: Some(stamp),
        };
        Ok(changed)
    }

    /// Follows the library: every `every`, reads it again if its files changed, and tells the
    /// client when the tools changed. Runs until the server ends.
    pub async fn watch(self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.refresh().await {
                Ok(true) => {
                    say!(
                        "serve: the library changed; offering {}",
                        self.offered().join(", ")
                    );
                    let peer = self.peer.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    if let Some(peer) = peer {
                        peer.notify_tool_list_changed().await.ok();
                    }
                }
                Ok(false) => {}
                Err(e) => say!("serve: cannot read the library: {e}"),
            }
        }
    }

    /// `suggest_workflow`: the workflows that continue `tools`, and the next tools.
    fn suggest(&self, args: &Map<String, Value>) -> CallToolResult {
        let Some(chain) = args.get("tools").and_then(Value::as_array) else {
            return text_error("'tools' must be an array of tool names".into());
        };
        let chain: Vec<String> = chain
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(5) as usize;
        let offer = self.read();
        let workflows: Vec<Value> = crate::suggest::rank(&offer.templates, &chain)
            .into_iter()
            .take(limit)
            .map(|s| {
                json!({
                    "name": s.template.name,
                    "match": s.kind,
                    "then": s.remaining,
                    "served": offer.tools.contains_key(&s.template.name),
                    "usage_count": s.template.metadata.usage_count,
                })
            })
            .collect();
        let next: Vec<Value> = crate::suggest::next_tools(&offer.templates, &chain)
            .into_iter()
            .map(|(tool, share)| json!({"tool": tool, "share": share}))
            .collect();
        CallToolResult::structured(json!({"workflows": workflows, "next_tools": next}))
    }

    /// Runs workflow `name` with `args` as its variables.
    async fn run(
        &self,
        name: &str,
        args: Map<String, Value>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let started = Instant::now();
        self.figures.lock().unwrap_or_else(|e| e.into_inner()).calls += 1;
        let Some(offered) = self.read().tools.get(name).cloned() else {
            return text_error(format!("no workflow named '{name}'"));
        };
        let not_started = |error: String| {
            let structured =
                json!({"workflow": name, "status": "not_started", "error": error, "steps": {}});
            structured_error(error, structured)
        };
        let accepted = offered
            .tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object);
        if let Some(unknown) = args
            .keys()
            .find(|k| !accepted.is_some_and(|p| p.contains_key(*k)))
        {
            let names: Vec<&String> = accepted.into_iter().flat_map(|p| p.keys()).collect();
            return not_started(format!(
                "'{unknown}' is not an argument of {name} (its arguments: {})",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let plan = match prepare(offered.template.clone(), args, &self.tools).await {
            Ok(plan) => plan,
            Err(e) => return not_started(e.to_string()),
        };
        let run_id = state::new_run_id(name);
        let dir = &self.settings.state_dir;
        let _lock = match RunLock::take(dir, &run_id) {
            Ok(lock) => lock,
            Err(e) => return not_started(e),
        };
        let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
        let ct = context.ct.clone();
        let stop = tokio::spawn(async move {
            ct.cancelled().await;
            cancel_tx.send(true).ok();
        });
        // Progress goes out from a task of its own: the executor's callback does not wait.
        let (progress_tx, mut progress_rx) =
            tokio::sync::mpsc::unbounded_channel::<(f64, String)>();
        let forward = context.meta.get_progress_token().map(|token| {
            let peer = context.peer.clone();
            let total = plan.template.steps.len() as f64;
            tokio::spawn(async move {
                while let Some((done, message)) = progress_rx.recv().await {
                    let param = ProgressNotificationParam::new(token.clone(), done)
                        .with_total(total)
                        .with_message(message);
                    peer.notify_progress(param).await.ok();
                }
            })
        });
        let mut on_step = |state: &RunState, changed: &[String]| {
            let done = (state.steps.values())
                .filter(|r| r.status != Status::Pending)
                .count() as f64;
            for id in changed {
                if let Some(r) = state.steps.get(id).filter(|r| r.status != Status::Pending) {
                    progress_tx
                        .send((done, format!("{id}: {}", r.status.as_str())))
                        .ok();
                }
            }
        };
        // What a run of this workflow saved in the logs it was mined from (median tokens).
        let tokens = (plan.template.metadata)
            .measured("tokens_saved", Some("median"))
            .map(|t| t.round() as u64);
        let options = Options {
            max_parallel: None,
            run_log: self.settings.run_log.clone(),
            cancel,
            served: Some(Served {
                tokens_saved: tokens,
            }),
        };
        let state = RunState::new(run_id, &plan);
        let end =
            execute_checkpointed(&plan, &self.tools, &options, state, dir, 0, &mut on_step).await;
        stop.abort();
        drop(progress_tx);
        if let Some(forward) = forward {
            forward.await.ok();
        }
        let ran = (end.steps.values()).filter(|r| r.attempts > 0).count() as u64;
        {
            let mut f = self.figures.lock().unwrap_or_else(|e| e.into_inner());
            f.succeeded += u64::from(matches!(
                end.status,
                RunStatus::Succeeded | RunStatus::Partial
            ));
            f.tool_calls += ran;
            f.round_trips_saved += ran.saturating_sub(1);
            if let Some(t) = tokens {
                f.tokens_saved += t;
                f.calls_with_tokens += 1;
            }
        }
        say!(
            "serve: {name} {}: {ran} tool calls in {:.1} s ({} model round-trips saved, {}), run {}",
            end.status.as_str(),
            started.elapsed().as_secs_f64(),
            ran.saturating_sub(1),
            match tokens {
                Some(t) => format!("~{} tokens by the mined median", crate::numbers::count(t)),
                None => "tokens unknown".into(),
            },
            end.run_id
        );
        result_of(&plan.template, &end)
    }
}

/// A failed call with a message and no structured content.
fn text_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// What a run gives back: each step that ran with its status and result or error, the final step
/// first, and the final step's result on top; a failed or cancelled run is an error that says
/// which step failed and why.
fn result_of(t: &WorkflowTemplate, end: &RunState) -> CallToolResult {
    let ran: Vec<&str> = (t.steps.iter())
        .map(|s| s.step_id.as_str())
        .filter(|id| end.steps[*id].status != Status::Pending)
        .collect();
    let mut steps = Map::new();
    for id in ran
        .iter()
        .rev()
        .take(1)
        .chain(ran.iter().rev().skip(1).rev())
    {
        let r = &end.steps[*id];
        let tool = &t
            .steps
            .iter()
            .find(|s| s.step_id == *id)
            .expect("a step")
            .tool_name;
        let mut step = json!({"tool": tool, "status": r.status.as_str(), "attempts": r.attempts, "duration_ms": r.duration_ms});
        if let Some(result) = &r.result {
            step["result"] = result.clone();
        }
        if let Some(error) = &r.error {
            step["error"] = json!(error);
        }
        steps.insert(id.to_string(), step);
    }
    // The final step's result, when it has one (a failed run's final step has none).
    let last = (t.steps.last()).filter(|s| end.steps[&s.step_id].status == Status::Succeeded);
    let mut structured = json!({
        "workflow": t.name,
        "run_id": end.run_id,
        "status": end.status.as_str(),
        "steps": steps,
    });
    if let Some(result) = last.and_then(|s| end.steps[&s.step_id].result.clone()) {
        structured["result"] = result;
    }
    let failed = matches!(end.status, RunStatus::Failed | RunStatus::Cancelled);
    if !failed {
        return CallToolResult::structured(structured);
    }
    let culprit = (t.steps.iter()).find(|s| {
        matches!(
            end.steps[&s.step_id].status,
            Status::Failed | Status::Cancelled
        )
    });
    let mut message = match culprit {
        Some(s) => format!(
            "workflow {} {} at step '{}' (tool {}): {}",
            t.name,
            end.status.as_str(),
            s.step_id,
            s.tool_name,
            end.steps[&s.step_id]
                .error
                .as_deref()
                .unwrap_or("no error given")
        ),
        None => format!("workflow {} {}", t.name, end.status.as_str()),
    };
    if let Some(e) = &end.error {
        message.push_str(&format!("; {e}"));
    }
    let ran_text: Vec<String> = (ran.iter())
        .map(|id| format!("{id} {}", end.steps[*id].status.as_str()))
        .collect();
    message.push_str(&format!(". Ran: {}", ran_text.join(", ")));
    structured["error"] = json!(message);
    structured_error(message, structured)
}

/// A failed call: the message for a reader first, then the structured content and its text copy.
fn structured_error(message: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::structured_error(structured);
    result.content.insert(0, ContentBlock::text(message));
    result
}

impl ServerHandler for Workflows {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("patterns", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Each tool but suggest_workflow is a workflow learned from tool-usage logs: one call \
             runs its steps (tool calls) in order and returns every step's result. Call \
             suggest_workflow with the tools you have called so far to find one that continues \
             your work.",
        )
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        *self.peer.lock().unwrap_or_else(|e| e.into_inner()) = Some(context.peer);
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools: Vec<_> = self.read().tools.values().map(|o| o.tool.clone()).collect();
        tools.push(offer::suggest_tool());
        // A workflow of the same name as a server's tool wins.
        let proxied = (self.proxied.iter())
            .filter(|(name, _)| !tools.iter().any(|t| t.name == name.as_str()))
            .map(|(_, p)| p.tool.clone())
            .collect::<Vec<_>>();
        tools.extend(proxied);
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let name = request.name.to_string();
        if name == SUGGEST {
            return Ok(self.suggest(&args).into());
        }
        if !self.read().tools.contains_key(&name) {
            if self.proxied.contains_key(&name) {
                return Ok(self.forward(&name, args).await.into());
            }
            return Err(ErrorData::invalid_params(
                format!("no tool named '{name}'"),
                None,
            ));
        }
        Ok(self.run(&name, args, context).await.into())
    }
}
