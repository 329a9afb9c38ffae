//! Streamable HTTP: rmcp's service mounted at `/mcp` on axum, with Host and Origin checks, a
//! request size limit, an optional shared bearer token and optional per-agent tokens, and a
//! session's end answered with 204.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::auth::{AgentTokens, AuthenticatedAgent, bearer_token, constant_time_eq};
use crate::server::OrchestrationServer;

/// The largest request body accepted, in bytes: room for a workflow of the largest allowed
/// size with short titles, and a bound on what one request can make the server hold.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// How the HTTP endpoint checks its callers.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values accepted (DNS-rebinding protection); loopback names by default.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted from browsers; loopback origins by default. Requests without an
    /// `Origin` header (every non-browser client) pass.
    pub allowed_origins: Vec<String>,
    /// When set, every request must carry `Authorization: Bearer <token>` (or an agent's
    /// token; the scheme in any case). Its holder may act for any agent.
    pub token: Option<String>,
    /// Per-agent tokens: a request carrying one is authenticated as that agent, and may act
    /// only as that agent.
    pub agent_tokens: AgentTokens,
    /// The largest request body accepted; [`MAX_REQUEST_BYTES`] by default.
    pub max_request_bytes: usize,
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
            agent_tokens: AgentTokens::default(),
            max_request_bytes: MAX_REQUEST_BYTES,
        }
    }
}

/// The axum app serving `server` at `/mcp`.
pub fn http_app(server: OrchestrationServer, options: HttpOptions) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts)
        .with_allowed_origins(options.allowed_origins)
        .with_max_request_body_bytes(options.max_request_bytes)
        .enforce_origin_validation();
    // The factory runs once per MCP session: cloning the server clones a prebuilt router and
    // a handle on the shared store, nothing more.
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(session_deleted));
    if options.token.is_none() && options.agent_tokens.is_empty() {
        return app;
    }
    let credentials = Arc::new(Credentials {
        shared: options.token,
        agents: options.agent_tokens,
    });
    app.layer(middleware::from_fn_with_state(credentials, authenticate))
}

/// The tokens a request may carry.
#[derive(Debug)]
struct Credentials {
    shared: Option<String>,
    agents: AgentTokens,
}

/// Lets through a request with the shared token, or with an agent's token after noting which
/// agent it is in the request's extensions, where the tools read it.
async fn authenticate(
    State(credentials): State<Arc<Credentials>>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = bearer(request.headers()).map(str::to_owned);
    let Some(given) = given else {
        return unauthorised();
    };
    let shared = credentials
        .shared
        .as_deref()
        .is_some_and(|token| constant_time_eq(given.as_bytes(), token.as_bytes()));
    if shared {
        return next.run(request).await;
    }
    match credentials.agents.agent_of(&given) {
        Some(agent) => {
            let agent = AuthenticatedAgent(agent.to_owned());
            request.extensions_mut().insert(agent);
            next.run(request).await
        }
        None => unauthorised(),
    }
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong bearer token",
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// Answers a successful DELETE of a session with 204 No Content instead of rmcp's 202
/// Accepted. rmcp has closed the session before it answers, so 202 ("accepted, not yet acted
/// on") says less than what happened, and the Python SDK, which accepts only 200 or 204,
/// logs "Session termination failed: 202" at every session's end. Other statuses, and 202 to
/// other methods (a POSTed notification), pass unchanged.
async fn session_deleted(request: Request, next: Next) -> Response {
    let delete = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}
