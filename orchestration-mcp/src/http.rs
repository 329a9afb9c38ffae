//! Streamable HTTP: rmcp's service mounted at `/mcp` on axum, with Host and Origin checks, a
//! request size limit, an optional shared bearer token and optional per-agent tokens, and a
//! session's end answered with 204; and the limits that keep one client from taking the
//! server from the others: sessions that expire and a cap on them, connections with
//! timeouts and a cap on them, and a rate limit per caller.

mod connections;
mod rate;
mod sessions;

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

pub use crate::http::connections::{
    ConnectionLimits, DEFAULT_MAX_CONNECTIONS, RESERVED_FILES, connection_room,
};
pub use crate::http::rate::RateLimit;
pub use crate::http::sessions::SessionLimits;

use crate::auth::{AgentTokens, AuthenticatedAgent, bearer_token, constant_time_eq};
use crate::http::connections::{Listener, Peer, Slot};
use crate::http::rate::{Buckets, Caller};
use crate::http::sessions::{Sessions, SharedSessions};
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
    /// How long idle sessions live, and how many may be open.
    pub sessions: SessionLimits,
    /// Connection timeouts and caps; by default [`DEFAULT_MAX_CONNECTIONS`], which the
    /// binary lowers to what the open-file limit leaves room for ([`connection_room`]).
    pub connections: ConnectionLimits,
    /// Requests per caller; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
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
            sessions: SessionLimits::default(),
            connections: ConnectionLimits::with_max(DEFAULT_MAX_CONNECTIONS),
            rate_limit: Some(RateLimit::default()),
        }
    }
}

/// Serves `server` at `/mcp` on `listener` under `options` until `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    server: OrchestrationServer,
    options: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = Listener::new(listener, options.connections);
    let app = http_app(server, options).into_make_service_with_connect_info::<Peer>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The axum app serving `server` at `/mcp` and the console at `/`.
fn http_app(server: OrchestrationServer, options: HttpOptions) -> Router {
    let access = console_access(&options);
    let store = Arc::clone(server.store());
    let telemetry = Arc::clone(server.telemetry());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts)
        .with_allowed_origins(options.allowed_origins)
        .with_max_request_body_bytes(options.max_request_bytes)
        .enforce_origin_validation();
    // The factory runs once per MCP session: cloning the server clones a prebuilt router and
    // a handle on the shared store, nothing more.
    let sessions = Sessions::start(options.sessions);
    let counted = Arc::clone(&sessions);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(SharedSessions(Arc::clone(&sessions))),
        config,
    );
    let cap = Arc::new(SessionCap {
        sessions,
        max_request_bytes: options.max_request_bytes,
    });
    let mut mcp = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(session_deleted))
        .layer(middleware::from_fn_with_state(
            cap,
            refuse_sessions_over_cap,
        ));
    let metrics = crate::console::MetricsSource {
        telemetry,
        sessions: Some(crate::console::SessionCount(Arc::new(move || {
            counted.len()
        }))),
    };
    let mut console = crate::console::router(store, access, metrics);
    // Layers run outermost last added: the connection's bookkeeping, then authentication,
    // then the rate limit, which counts against the agent authentication found. The console
    // checks its callers itself (it also takes the login cookie), and shares the buckets.
    if let Some(limit) = options.rate_limit {
        let buckets = Buckets::start(limit);
        mcp = mcp.layer(middleware::from_fn_with_state(
            Arc::clone(&buckets),
            limit_rate,
        ));
        console = console.layer(middleware::from_fn_with_state(buckets, limit_rate));
    }
    if options.token.is_some() || !options.agent_tokens.is_empty() {
        let credentials = Arc::new(Credentials {
            shared: options.token,
            agents: options.agent_tokens,
        });
        mcp = mcp.layer(middleware::from_fn_with_state(credentials, authenticate));
    }
    mcp.merge(console).layer(middleware::from_fn(track_request))
}

/// Who may use the console, from the options of the HTTP server.
fn console_access(options: &HttpOptions) -> crate::console::ConsoleAccess {
    crate::console::ConsoleAccess {
        token: options.token.clone(),
        agent_tokens: options.agent_tokens.clone(),
        allowed_hosts: options.allowed_hosts.clone(),
        allowed_origins: options.allowed_origins.clone(),
    }
}

/// Serves the console alone, without `/mcp`, for `store` on `listener` until `shutdown`
/// resolves: what `orchestration-mcp console` runs beside agents that use stdio.
pub async fn serve_console(
    listener: TcpListener,
    store: Arc<orchestration_core::Store>,
    options: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = Listener::new(listener, options.connections);
    let metrics = crate::console::MetricsSource::default();
    let mut app = crate::console::router(store, console_access(&options), metrics);
    if let Some(limit) = options.rate_limit {
        app = app.layer(middleware::from_fn_with_state(
            Buckets::start(limit),
            limit_rate,
        ));
    }
    let app = app
        .layer(middleware::from_fn(track_request))
        .into_make_service_with_connect_info::<Peer>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Marks the request's connection busy until its response has been sent whole (or dropped),
/// so that neither its timeouts nor the making of room for others cut a call or a stream.
async fn track_request(request: Request, next: Next) -> Response {
    let slot = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .and_then(|ConnectInfo(peer)| peer.slot().cloned());
    let Some(slot) = slot else {
        return next.run(request).await;
    };
    slot.begin_request();
    let guard = RequestGuard(slot);
    let response = next.run(request).await;
    response.map(|body| {
        Body::new(Tracked {
            body,
            _guard: guard,
        })
    })
}

/// Ends its request on its connection when dropped.
struct RequestGuard(Arc<Slot>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// A response body that ends its request when it is dropped.
struct Tracked {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Takes the request from its caller's bucket, or answers 429.
async fn limit_rate(State(buckets): State<Arc<Buckets>>, request: Request, next: Next) -> Response {
    let caller = match request.extensions().get::<AuthenticatedAgent>() {
        Some(agent) => Caller::Agent(agent.0.clone()),
        None => match request.extensions().get::<ConnectInfo<Peer>>() {
            Some(ConnectInfo(peer)) => Caller::Address(peer.addr.ip()),
            None => return next.run(request).await,
        },
    };
    let per = match caller {
        Caller::Agent(_) => "agent",
        Caller::Address(_) => "address",
    };
    match buckets.take(caller) {
        Ok(()) => next.run(request).await,
        Err(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after(wait))],
            format!(
                "too many requests: at most {} a second per {per}; retry after the \
                 Retry-After seconds",
                buckets.limit().per_second
            ),
        )
            .into_response(),
    }
}

/// `wait` in whole seconds, rounded up, at least one, as `Retry-After` wants it.
fn retry_after(wait: Duration) -> String {
    wait.as_secs_f64().ceil().max(1.0).to_string()
}

/// The session table and what the check of its cap needs.
#[derive(Debug)]
struct SessionCap {
    sessions: Arc<Sessions>,
    max_request_bytes: usize,
}

/// How long a client refused a session is asked to wait: sessions free up as their clients
/// end them or as they expire, neither of which is worth polling for every second.
const SESSIONS_FULL_RETRY: Duration = Duration::from_secs(60);

/// Refuses `initialize` with 503 and `Retry-After` while the sessions are at their cap. Only
/// then is the body read here, to tell an `initialize` from a stateless request, which
/// needs no session and still passes.
async fn refuse_sessions_over_cap(
    State(cap): State<Arc<SessionCap>>,
    request: Request,
    next: Next,
) -> Response {
    let opens_session =
        request.method() == Method::POST && !request.headers().contains_key("mcp-session-id");
    if !opens_session || !cap.sessions.is_full() {
        let response = next.run(request).await;
        // The cap may have been reached between the check and the session's creation, which
        // the session table then refused.
        if opens_session
            && response.status() == StatusCode::INTERNAL_SERVER_ERROR
            && cap.sessions.is_full()
        {
            return sessions_full(&cap);
        }
        return response;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, cap.max_request_bytes).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is over {} bytes, or was cut short",
                cap.max_request_bytes
            ),
        )
            .into_response();
    };
    if is_initialize(&bytes) {
        return sessions_full(&cap);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn sessions_full(cap: &SessionCap) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, retry_after(SESSIONS_FULL_RETRY))],
        format!(
            "the server holds its maximum of {} open MCP sessions; end unused ones with DELETE, \
             or retry after the Retry-After seconds, when idle ones may have expired",
            cap.sessions.max()
        ),
    )
        .into_response()
}

/// Whether `body` is a JSON-RPC `initialize` request.
fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        method: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Message<'_>>(body)
        .ok()
        .and_then(|message| message.method)
        .is_some_and(|method| method == "initialize")
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
