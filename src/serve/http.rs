//! `serve --http`: the server over MCP's streamable HTTP transport (rmcp's service under hyper),
//! on loopback by default. Beyond loopback every request must carry the bearer token; browsers'
//! `Origin`s are checked as the spec asks (only the loopback ones, or the ones allowed), and so
//! is `Host` (against DNS rebinding).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::Workflows;

/// Who may talk to the server.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Every request must carry `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Browser origins allowed besides the loopback ones (`https://app.example.com:443`).
    pub origins: Vec<String>,
    /// `Host` names allowed besides the loopback ones and the address listened on.
    pub hosts: Vec<String>,
}

/// Serves `workflows` on `listener` until `stop` completes; each MCP session gets its own session
/// id in the run log.
pub async fn serve(
    workflows: Workflows,
    listener: tokio::net::TcpListener,
    access: Access,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let loopback = ["localhost", "127.0.0.1", "::1"];
    let mut hosts: Vec<String> = loopback.iter().map(|h| h.to_string()).collect();
    hosts.push(addr.ip().to_string());
    hosts.extend(access.hosts.iter().cloned());
    let mut origins: Vec<String> = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .iter()
        .map(|o| o.to_string())
        .collect();
    origins.extend(access.origins.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation();
    // Cancelled at the end: every session's stream ends.
    let sessions = config.cancellation_token.clone();
    let service = StreamableHttpService::new(
        move || Ok(workflows.for_new_session()),
        LocalSessionManager::default().into(),
        config,
    );
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            _ = &mut stop => {
                sessions.cancel();
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A client that went away before it was accepted: not the server's end.
                Err(_) => continue,
            },
        };
        let service = service.clone();
        let token = access.token.clone();
        tokio::spawn(async move {
            let handle = hyper::service::service_fn(move |request: Request<Incoming>| {
                let service = service.clone();
                let token = token.clone();
                async move {
                    if let Some(token) = &token
                        && !authorised(&request, token)
                    {
                        return Ok::<_, Infallible>(unauthorised());
                    }
                    Ok(service.handle(request).await)
                }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handle)
                .await
                .ok();
        });
    }
}

/// Whether `request` carries `Authorization: Bearer TOKEN` (compared in constant time).
fn authorised(request: &Request<Incoming>, token: &str) -> bool {
    let Some(given) = (request.headers().get(hyper::header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

fn unauthorised() -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(hyper::header::WWW_AUTHENTICATE, "Bearer")
        .header(hyper::header::CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from_static(b"a bearer token is required\n")).boxed())
        .expect("a valid response")
}

/// Whether `addr` is reachable from this machine only.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
