//! The operator console: server-rendered pages over the same [`Store`] the tools use, so a
//! person sees exactly what the agents see. Every page reads without JavaScript; a small
//! embedded script follows the event log (server-sent events) and refreshes the page, and
//! operators (holders of the shared token) can act on workflows, leases and gates through
//! forms that carry a single-use CSRF token.
//!
//! Served beside `/mcp` by `--http`, or alone by `orchestration-mcp console`. The trust model
//! is the MCP endpoint's: Host and Origin checks, and when tokens are configured, a token on
//! every request, as a bearer header or the HttpOnly cookie the login form sets.

mod actions;
mod auth;
mod live;
mod page;
mod views;
mod workflow;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use orchestration_core::Store;

use crate::auth::AgentTokens;
use crate::telemetry::Telemetry;

pub(crate) use crate::console::auth::Nonces;

/// Who may see and steer the console.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleAccess {
    /// The shared token: its holder is an operator, who may act.
    pub(crate) token: Option<String>,
    /// Agents' tokens: their holders may look, not act.
    pub(crate) agent_tokens: AgentTokens,
    /// `Host` values accepted.
    pub(crate) allowed_hosts: Vec<String>,
    /// `Origin` values accepted, besides the page's own.
    pub(crate) allowed_origins: Vec<String>,
}

/// Counts the open MCP sessions, for the metrics.
#[derive(Clone)]
pub(crate) struct SessionCount(pub(crate) Arc<dyn Fn() -> usize + Send + Sync>);

impl std::fmt::Debug for SessionCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionCount({})", (self.0)())
    }
}

/// What the metrics are drawn from besides the store.
#[derive(Debug, Clone, Default)]
pub(crate) struct MetricsSource {
    /// This process's tool calls.
    pub(crate) telemetry: Arc<Telemetry>,
    /// The open MCP sessions, when MCP is served over HTTP.
    pub(crate) sessions: Option<SessionCount>,
}

/// What every console handler shares.
#[derive(Debug)]
pub(crate) struct Console {
    store: Arc<Store>,
    access: ConsoleAccess,
    nonces: Nonces,
    metrics: MetricsSource,
}

/// The console's routes over `store`, checked as `access` says, with `/metrics` drawn from
/// `metrics` and the store.
pub(crate) fn router(store: Arc<Store>, access: ConsoleAccess, metrics: MetricsSource) -> Router {
    let console = Arc::new(Console {
        store,
        access,
        nonces: Nonces::default(),
        metrics,
    });
    Router::new()
        .route("/", get(views::overview))
        .route("/workflows/{name}", get(workflow::workflow))
        .route("/workflows/{name}/tasks/{key}", get(workflow::task))
        .route("/workflows/{name}/action", post(actions::workflow_action))
        .route(
            "/workflows/{name}/tasks/{key}/release",
            post(actions::release),
        )
        .route("/workflows/{name}/tasks/{key}/gate", post(actions::gate))
        .route("/agents", get(views::agents))
        .route("/agents/{name}", get(views::agent))
        .route("/collaboration", get(views::collaboration))
        .route("/sprints", get(views::sprints))
        .route("/sprints/{name}", get(views::sprint))
        .route("/events", get(views::events))
        .route("/live", get(live::live))
        .route("/metrics", get(serve_metrics))
        .route("/login", get(actions::login_form).post(actions::login))
        .route("/logout", post(actions::logout))
        .route("/assets/console.css", get(page::stylesheet))
        .route("/assets/console.js", get(page::script))
        .fallback(not_found_route)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&console),
            auth::check,
        ))
        .with_state(console)
}

/// Why a page could not be shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The URL names nothing that exists.
    NotFound(String),
    /// The request was refused: a missing token, a forged or replayed form.
    Forbidden(String),
    /// The request is malformed.
    BadRequest(String),
    /// The store failed.
    Internal,
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<orchestration_core::Error> for PageError {
    fn from(error: orchestration_core::Error) -> PageError {
        use orchestration_core::Error as E;
        match error {
            E::UnknownWorkflow { .. }
            | E::UnknownTask { .. }
            | E::UnknownAgent { .. }
            | E::UnknownSprint { .. } => PageError::NotFound(error.to_string()),
            E::Storage(_) | E::Io(_) | E::DiskFull | E::IncompatibleSchema { .. } => {
                tracing::warn!(%error, "the console could not read the store");
                PageError::Internal
            }
            other => PageError::BadRequest(other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            PageError::NotFound(m) | PageError::Forbidden(m) | PageError::BadRequest(m) => {
                m.clone()
            }
            PageError::Internal => "the store could not be read; see the server log".to_owned(),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = page::error_page(title, &message);
        (status, Html(body.into_string())).into_response()
    }
}

/// A rendered page.
pub(crate) type PageResult = Result<Html<String>, PageError>;

fn html(markup: Markup) -> Html<String> {
    Html(markup.into_string())
}

/// `/metrics`: the Prometheus text format.
async fn serve_metrics(State(console): State<Arc<Console>>) -> Result<Response, PageError> {
    let telemetry = Arc::clone(&console.metrics.telemetry);
    let sessions = console.metrics.sessions.as_ref().map(|count| (count.0)());
    let text = read(
        &console,
        move |store| Ok(telemetry.render(store, sessions)?),
    )
    .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn not_found_route(request: Request) -> PageError {
    PageError::NotFound(format!("nothing is at {}", request.uri().path()))
}

/// Runs a store read on the blocking pool, as the tools do: the store is synchronous.
pub(crate) async fn read<T, F>(console: &Arc<Console>, call: F) -> Result<T, PageError>
where
    F: FnOnce(&Store) -> Result<T, PageError> + Send + 'static,
    T: Send + 'static,
{
    let store = Arc::clone(&console.store);
    match tokio::task::spawn_blocking(move || call(&store)).await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%error, "a console store call panicked");
            Err(PageError::Internal)
        }
    }
}
