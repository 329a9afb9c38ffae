//! What an operator does from the console, each a core call that appends to the event log:
//! a workflow's start, pause, resume, cancel and retry, the release of a lease, a decision on
//! a gate; and the
//! login form that sets the token cookie. Every POST spends a single-use CSRF token.

use std::sync::Arc;

use axum::Extension;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use orchestration_core::workflow::GateDecision;
use orchestration_core::{TaskRef, TaskUpdate, WorkflowAction, WorkflowRef};
use serde::Deserialize;

use super::auth::{COOKIE, Viewer};
use super::page::{Section, layout, task_href, workflow_href};
use super::{Console, PageError, read};
use crate::auth::constant_time_eq;

/// Refuses an action from a caller who is not an operator.
fn operator(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.is_operator() {
        Ok(())
    } else if viewer.operators_exist {
        Err(PageError::Forbidden(
            "only an operator may act: log in with the server's token".into(),
        ))
    } else {
        Err(PageError::Forbidden(
            "this server has no operator token, so the console is read-only: start it with \
             --token to act from here"
                .into(),
        ))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    csrf: String,
    action: String,
}

pub(crate) async fn workflow_action(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, PageError> {
    operator(&viewer)?;
    let action = [
        WorkflowAction::Start,
        WorkflowAction::Pause,
        WorkflowAction::Resume,
        WorkflowAction::Cancel,
        WorkflowAction::RetryFailed,
    ]
    .into_iter()
    .find(|a| a.as_str() == form.action)
    .ok_or_else(|| {
        PageError::BadRequest(format!(
            "`{}` is not an action: start, pause, resume, cancel or retry_failed",
            form.action
        ))
    })?;
    console.spend(&form.csrf)?;
    let target = workflow_href(&name);
    read(&console, move |store| {
        store.execute(&WorkflowRef::from(name.as_str()), action)?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&target))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Csrf {
    csrf: String,
}

/// Releases a task's lease for its holder: the task goes back in line and the attempt does
/// not count, as when the agent gives it back itself.
pub(crate) async fn release(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path((name, key)): Path<(String, String)>,
    Form(form): Form<Csrf>,
) -> Result<Redirect, PageError> {
    operator(&viewer)?;
    console.spend(&form.csrf)?;
    let target = task_href(&name, &key);
    read(&console, move |store| {
        let task = TaskRef::key(WorkflowRef::from(name.as_str()), key);
        let detail = store.task_detail(&task)?;
        let (Some(agent), Some(token)) = (detail.task.agent.as_deref(), detail.token) else {
            return Err(PageError::BadRequest(format!(
                "`{}/{}` is {}, not leased: there is no lease to release",
                detail.task.workflow_name,
                detail.task.key,
                detail.task.state.as_str()
            )));
        };
        store.update_task(
            &detail.task.id.into(),
            agent,
            token,
            &TaskUpdate::Release,
            None,
        )?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&target))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GateForm {
    csrf: String,
    decision: String,
    note: Option<String>,
}

/// Approves or rejects a gate waiting for approval.
pub(crate) async fn gate(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path((name, key)): Path<(String, String)>,
    Form(form): Form<GateForm>,
) -> Result<Redirect, PageError> {
    operator(&viewer)?;
    let decision = match form.decision.as_str() {
        "approve" => GateDecision::Approve,
        "reject" => GateDecision::Reject,
        other => {
            return Err(PageError::BadRequest(format!(
                "`{other}` is not a decision: approve or reject"
            )));
        }
    };
    console.spend(&form.csrf)?;
    let target = task_href(&name, &key);
    let note = form.note.filter(|n| !n.trim().is_empty());
    read(&console, move |store| {
        let task = TaskRef::key(WorkflowRef::from(name.as_str()), key);
        store.decide_gate(&task, decision, note.as_deref())?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&target))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Where to go after logging in: a path of this console only, never another site.
fn local(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub(crate) async fn login_form(
    State(console): State<Arc<Console>>,
    Query(next): Query<Next>,
) -> impl IntoResponse {
    let can = console.access.token.is_some() || !console.access.agent_tokens.is_empty();
    let next = local(next.next.as_deref());
    super::html(layout(
        "Log in",
        Section::None,
        None,
        None,
        html! {
            @if can {
                p { "Give the server's token (the operator's, to act) or an agent's token (to look)." }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "Token" input type="password" name="token" autocomplete="current-password" required; }
                    button type="submit" { "Log in" }
                }
            } @else {
                p { "This server has no token: the console is open to read from this machine, and read-only. Start it with --token to act from here." }
                p { a href="/" { "Back to the overview" } }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Login {
    token: String,
    next: Option<String>,
}

/// Checks the token and sets it as an HttpOnly, same-site cookie.
pub(crate) async fn login(
    State(console): State<Arc<Console>>,
    Form(form): Form<Login>,
) -> Result<Response, PageError> {
    let access = &console.access;
    let shared = access
        .token
        .as_deref()
        .is_some_and(|t| constant_time_eq(t.as_bytes(), form.token.as_bytes()));
    let agent = access.agent_tokens.agent_of(&form.token).is_some();
    if !shared && !agent {
        return Err(PageError::Forbidden("that token is not valid here".into()));
    }
    if !form
        .token
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    {
        return Err(PageError::BadRequest(
            "this token cannot be kept in a cookie; send it as Authorization: Bearer instead"
                .into(),
        ));
    }
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", form.token);
    let mut response = Redirect::to(&local(form.next.as_deref())).into_response();
    let value = HeaderValue::from_str(&cookie).map_err(|_| PageError::Internal)?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

/// Forgets the cookie.
pub(crate) async fn logout(
    State(console): State<Arc<Console>>,
    Form(form): Form<Csrf>,
) -> Result<Response, PageError> {
    console.spend(&form.csrf)?;
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "orchestration_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}
