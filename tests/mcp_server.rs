//! A small MCP server for the tests, for what real servers do not do on demand: a slow tool
//! (timeouts, and whether the server is told), a tool that fails a given number of times
//! (retries), and a tool that makes the server exit mid-run.
//!
//! Built as an example (`cargo test` builds it); records what it sees in `$MCP_TEST_RECORD`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Slow {
    /// How long to take, in seconds.
    seconds: f64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Flaky {
    /// How many calls fail before one succeeds.
    failures: u32,
}

#[derive(Debug, Clone)]
struct TestServer {
    #[allow(dead_code, reason = "read by the tool_handler macro")]
    tool_router: ToolRouter<Self>,
    calls: Arc<AtomicU32>,
    /// Calls of `slow` cancelled by the client so far.
    cancelled: Arc<AtomicU32>,
}

/// Appends a line to `$MCP_TEST_RECORD`.
fn record(line: &str) {
    if let Some(path) = std::env::var_os("MCP_TEST_RECORD") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

#[tool_router]
impl TestServer {
    #[tool(description = "Takes `seconds`, then answers")]
    async fn slow(
        &self,
        Parameters(Slow { seconds }): Parameters<Slow>,
        context: RequestContext<RoleServer>,
    ) -> String {
        record("slow started");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {
                record("slow finished");
                format!("{{\"slept\": {seconds}}}")
            }
            // The client's notifications/cancelled.
            _ = context.ct.cancelled() => {
                // Recorded before it is counted: `cancellations`, on another task, records its
                // answer once it sees the count, so the record keeps this order.
                record("slow cancelled");
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                "cancelled".to_string()
            }
        }
    }

    #[tool(description = "Fails the first `failures` calls, then succeeds")]
    async fn flaky(
        &self,
        Parameters(Flaky { failures }): Parameters<Flaky>,
    ) -> Result<String, String> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        record(&format!("flaky call {n}"));
        if n <= failures {
            Err(format!("flaky failure {n}"))
        } else {
            Ok(format!("{{\"attempt\": {n}}}"))
        }
    }

    #[tool(
        description = "How many calls of `slow` were cancelled so far (waits up to 2 s for one)"
    )]
    async fn cancellations(&self) -> String {
        // The cancelled call notices its cancellation on its own task: give it a moment.
        for _ in 0..200 {
            if self.cancelled.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = self.cancelled.load(Ordering::SeqCst);
        record(&format!("cancellations {n}"));
        format!("{{\"cancelled\": {n}}}")
    }

    #[tool(description = "Exits the server")]
    async fn die(&self) -> String {
        record("dying");
        std::process::exit(3)
    }
}

#[tool_handler]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() {
    record(&format!("pid {}", std::process::id()));
    // What a server with a token in its env may well print: patterns masks it in its log.
    if let Some(path) = std::env::var_os("MCP_TEST_RECORD") {
        eprintln!("recording to {}", path.to_string_lossy());
    }
    let server = TestServer {
        tool_router: TestServer::tool_router(),
        calls: Arc::new(AtomicU32::new(0)),
        cancelled: Arc::new(AtomicU32::new(0)),
    };
    let service = server
        .serve(rmcp::transport::stdio())
        .await
        .expect("serves on stdio");
    service.waiting().await.ok();
}
