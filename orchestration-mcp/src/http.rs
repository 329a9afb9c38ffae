//! Streamable HTTP: rmcp's service mounted at `/mcp` on axum, with Host and Origin checks and
//! an optional bearer token.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::server::OrchestrationServer;

/// How the HTTP endpoint checks its callers.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values accepted (DNS-rebinding protection); loopback names by default.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted from browsers; loopback origins by default. Requests without an
    /// `Origin` header (every non-browser client) pass.
    pub allowed_origins: Vec<String>,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            allowed_hosts: vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
                "[::1]".into(),
            ],
            allowed_origins: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://[::1]:*".into(),
            ],
            token: None,
        }
    }
}

/// The axum app serving `server` at `/mcp`.
pub fn http_app(server: OrchestrationServer, options: HttpOptions) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts)
        .with_allowed_origins(options.allowed_origins)
        .enforce_origin_validation();
    // The factory runs once per MCP session: cloning the server clones a prebuilt router and
    // a handle on the shared store, nothing more.
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = Router::new().nest_service("/mcp", service);
    match options.token {
        Some(token) => app.layer(middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        )),
        None => app,
    }
}

async fn require_token(State(token): State<Arc<String>>, request: Request, next: Next) -> Response {
    if bearer(request.headers())
        .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token",
        )
            .into_response()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Compares without returning early, so the time taken does not reveal how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
