//! Tests of the console's routes through the router itself: status codes, the 404 page, the
//! Host, token and CSRF checks, the actions' effects, and the live stream's content.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use orchestration_core::{
    AgentUpdate, ClaimRequest, CreateOptions, Mode, Store, TaskSpec, TaskState, TaskUpdate,
    WorkflowRef, WorkflowSpec, WorkflowStatus,
};
use tower::ServiceExt;

use super::{ConsoleAccess, router};
use crate::auth::AgentTokens;

const TOKEN: &str = "operator-token-0123456789";
const AGENT_TOKEN: &str = "agent-token-abcdefghijkl";

/// A store with one running workflow `release` (build, then test and docs), a registered
/// agent `a1`, and the console over it; with `token`, the operator's token is required.
fn setup(token: Option<&str>) -> (Router, Arc<Store>) {
    let store = Arc::new(Store::open_in_memory().unwrap());
    store.upsert_agent("a1", &AgentUpdate::default()).unwrap();
    let spec = WorkflowSpec::new("release", Mode::Dag)
        .task(TaskSpec::new("build", "Build <the> binaries").estimate(3.0))
        .task(TaskSpec::new("test", "Run the tests").after(["build"]))
        .task(TaskSpec::new("docs", "Write the docs").after(["build"]));
    store
        .create_workflow(
            spec,
            &CreateOptions {
                start: true,
                ..CreateOptions::default()
            },
        )
        .unwrap();
    let agent_tokens = AgentTokens::parse(&format!("a1={AGENT_TOKEN}")).unwrap();
    let access = ConsoleAccess {
        token: token.map(str::to_owned),
        agent_tokens: if token.is_some() {
            agent_tokens
        } else {
            AgentTokens::default()
        },
        allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        allowed_origins: vec!["http://127.0.0.1:*".into()],
    };
    (
        router(Arc::clone(&store), access, super::MetricsSource::default()),
        store,
    )
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn get_request(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(path).header(header::HOST, "127.0.0.1:8377");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

async fn get(app: &Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(app, get_request(path, headers)).await
}

async fn post(app: &Router, path: &str, headers: &[(&str, &str)], form: &str) -> Answer {
    let mut request = Request::post(path)
        .header(header::HOST, "127.0.0.1:8377")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::from(form.to_owned())).unwrap()).await
}

/// The CSRF token of the first form on the page whose hidden `action` is `action` (or the
/// first form at all when `action` is `None`).
fn csrf(page: &str, action: Option<&str>) -> String {
    let start = match action {
        Some(action) => {
            let marker = format!(r#"name="action" value="{action}""#);
            let at = page.find(&marker).expect("the page offers the action");
            page[..at].rfind(r#"name="csrf""#).unwrap()
        }
        None => page.find(r#"name="csrf""#).expect("the page has a form"),
    };
    let rest = &page[start..];
    let value = rest.find(r#"value=""#).unwrap() + 7;
    let end = rest[value..].find('"').unwrap();
    rest[value..value + end].to_owned()
}

fn status(store: &Store) -> WorkflowStatus {
    store
        .workflow_summary(&WorkflowRef::from("release"))
        .unwrap()
        .status
}

const BEARER: (&str, &str) = ("authorization", "Bearer operator-token-0123456789");

#[tokio::test]
async fn every_view_renders_what_the_store_holds() {
    let (app, store) = setup(None);
    let overview = get(&app, "/", &[]).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains(r#"href="/workflows/release""#));
    assert!(overview.body.contains("2 pending, 1 ready"));
    let workflow = get(&app, "/workflows/release", &[]).await;
    assert_eq!(workflow.status, StatusCode::OK);
    assert!(workflow.body.contains("<svg"));
    // The critical path runs through build (3 points) and one of its dependents.
    assert!(workflow.body.contains(r#"class="s-ready critical""#));
    assert!(workflow.body.contains("Build &lt;the&gt; binaries"));
    let task = get(&app, "/workflows/release/tasks/test", &[]).await;
    assert_eq!(task.status, StatusCode::OK);
    assert!(
        task.body
            .contains(r#"href="/workflows/release/tasks/build""#)
    );
    // The score breakdown of every agent for the task; ranking assigns nothing.
    assert!(task.body.contains("Who fits"));
    assert!(
        task.body
            .contains(r#"<th scope="row"><a href="/agents/a1">a1</a></th>"#)
    );
    let events = store.last_event_seq().unwrap();
    get(&app, "/workflows/release/tasks/build", &[]).await;
    assert_eq!(store.last_event_seq().unwrap(), events);
    for (path, expected) in [
        ("/agents", r#"href="/agents/a1""#),
        ("/agents/a1", "It holds no task."),
        ("/collaboration", "No lock is held."),
        ("/sprints", "No sprint yet."),
        ("/events", "workflow_created"),
        ("/events?kind=task_state&workflow=release", "task_state"),
    ] {
        let answer = get(&app, path, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(answer.body.contains(expected), "{path}: {}", answer.body);
    }
    let css = get(&app, "/assets/console.css", &[]).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("prefers-color-scheme: dark"));
}

#[tokio::test]
async fn unknown_names_get_a_404_page_that_links_back() {
    let (app, _store) = setup(None);
    for path in [
        "/workflows/nope",
        "/workflows/release/tasks/nope",
        "/agents/nobody",
        "/sprints/none",
        "/no/such/page",
    ] {
        let answer = get(&app, path, &[]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            answer
                .body
                .contains(r#"<a href="/">Back to the overview</a>"#)
        );
    }
    let bad = get(&app, "/events?kind=bogus", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused() {
    let (app, _store) = setup(None);
    let request = Request::get("/")
        .header(header::HOST, "evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::FORBIDDEN);
    let answer = get(&app, "/", &[("origin", "http://evil.example")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let own = get(&app, "/", &[("origin", "http://127.0.0.1:8377")]).await;
    assert_eq!(own.status, StatusCode::OK);
}

#[tokio::test]
async fn with_a_token_pages_need_it_by_header_or_by_the_login_cookie() {
    let (app, _store) = setup(Some(TOKEN));
    let anonymous = get(&app, "/workflows/release", &[]).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers[header::LOCATION],
        "/login?next=/workflows/release"
    );
    let live = get(&app, "/live", &[]).await;
    assert_eq!(live.status, StatusCode::UNAUTHORIZED);
    let wrong = get(
        &app,
        "/",
        &[("authorization", "Bearer wrong-token-000000000")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&app, "/", &[BEARER]).await.status, StatusCode::OK);
    assert_eq!(get(&app, "/login", &[]).await.status, StatusCode::OK);

    let refused = post(&app, "/login", &[], "token=guess&next=/agents").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.headers.contains_key(header::SET_COOKIE));
    let login = post(
        &app,
        "/login",
        &[],
        &format!("token={TOKEN}&next=%2F%2Fevil.example"),
    )
    .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    // Only a path of this console is followed after logging in.
    assert_eq!(login.headers[header::LOCATION], "/");
    let cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap();
    let page = get(&app, "/", &[("cookie", pair)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Operator"));
}

#[tokio::test]
async fn an_action_needs_the_operator_and_a_fresh_csrf_token() {
    let (app, store) = setup(Some(TOKEN));
    // Without a token: refused, nothing changes.
    let anonymous = post(
        &app,
        "/workflows/release/action",
        &[],
        "csrf=x&action=pause",
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    // An agent's token lets one look, not act; its pages offer no action.
    let agent = ("authorization", "Bearer agent-token-abcdefghijkl");
    let page = get(&app, "/workflows/release", &[agent]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(r#"name="action""#));
    let as_agent = post(
        &app,
        "/workflows/release/action",
        &[agent],
        "csrf=x&action=pause",
    )
    .await;
    assert_eq!(as_agent.status, StatusCode::FORBIDDEN);
    // The operator without a CSRF token that the console issued: refused.
    let forged = post(
        &app,
        "/workflows/release/action",
        &[BEARER],
        "csrf=00000000000000000000000000000000&action=pause",
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(status(&store), WorkflowStatus::Running);

    let page = get(&app, "/workflows/release", &[BEARER]).await;
    let nonce = csrf(&page.body, Some("pause"));
    let form = format!("csrf={nonce}&action=pause");
    let paused = post(&app, "/workflows/release/action", &[BEARER], &form).await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    assert_eq!(status(&store), WorkflowStatus::Paused);
    // The same form again is a replay: refused, even though resuming would be legal.
    let page = get(&app, "/workflows/release", &[BEARER]).await;
    let resume = csrf(&page.body, Some("resume"));
    store
        .execute(
            &WorkflowRef::from("release"),
            orchestration_core::WorkflowAction::Resume,
        )
        .unwrap();
    let replay = post(&app, "/workflows/release/action", &[BEARER], &form).await;
    assert_eq!(replay.status, StatusCode::FORBIDDEN);
    assert_eq!(status(&store), WorkflowStatus::Running);
    // An action the workflow's status does not allow is refused by the core.
    let illegal = post(
        &app,
        "/workflows/release/action",
        &[BEARER],
        &format!("csrf={resume}&action=resume"),
    )
    .await;
    assert_eq!(illegal.status, StatusCode::BAD_REQUEST);
    assert_eq!(status(&store), WorkflowStatus::Running);
}

#[tokio::test]
async fn without_an_operator_token_the_console_is_read_only() {
    let (app, store) = setup(None);
    let page = get(&app, "/workflows/release", &[]).await;
    assert!(!page.body.contains(r#"name="action""#));
    let answer = post(
        &app,
        "/workflows/release/action",
        &[],
        "csrf=x&action=cancel",
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.body.contains("--token"));
    assert_eq!(status(&store), WorkflowStatus::Running);
}

#[tokio::test]
async fn an_operator_releases_a_lease_and_the_task_is_ready_again() {
    let (app, store) = setup(Some(TOKEN));
    let claim = store
        .claim(&ClaimRequest::new("a1"))
        .unwrap()
        .claimed()
        .unwrap();
    assert_eq!(claim.task.key, "build");
    let page = get(&app, "/workflows/release/tasks/build", &[BEARER]).await;
    assert!(page.body.contains("Release the lease"));
    let nonce = csrf(&page.body, None);
    // The first form on the task page is the header's logout form only with a cookie, so
    // with the header this is the release form's token.
    let released = post(
        &app,
        "/workflows/release/tasks/build/release",
        &[BEARER],
        &format!("csrf={nonce}"),
    )
    .await;
    assert_eq!(released.status, StatusCode::SEE_OTHER);
    let task = store
        .task(&orchestration_core::TaskRef::key(
            WorkflowRef::from("release"),
            "build",
        ))
        .unwrap();
    assert_eq!(task.state, TaskState::Ready);
    assert_eq!(task.agent, None);
}

#[tokio::test]
async fn the_live_stream_sends_the_log_from_the_given_position() {
    let (app, store) = setup(None);
    let head = store.last_event_seq().unwrap();
    let response = app
        .clone()
        .oneshot(get_request("/live?after=0", &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    while !text.contains(&format!("id: {head}\n")) {
        let chunk = body.next().await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("event: change\n"));
    assert!(text.contains("id: 1\n"));
    assert!(text.contains(r#""kind":"workflow_created""#));
    assert!(text.contains(r#""workflow":"release""#));
    // A change made after the stream caught up arrives on it too.
    store.upsert_agent("a2", &AgentUpdate::default()).unwrap();
    let next = head + 1;
    while !text.contains(&format!("id: {next}\n")) {
        let chunk = body.next().await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains(r#""agent":"a2""#));
    let bad = get(&app, "/live?after=-1", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_thousand_task_workflow_is_drawn_by_stages_and_its_tasks_paged() {
    let (app, store) = setup(None);
    let mut spec = WorkflowSpec::new("big", Mode::Dag);
    for i in 0..1_000 {
        let task = TaskSpec::new(format!("t{i}"), format!("Task {i}"));
        spec = if i == 0 {
            spec.task(task)
        } else {
            spec.task(task.after([format!("t{}", (i - 1) / 2)]))
        };
    }
    store
        .create_workflow(spec, &CreateOptions::default())
        .unwrap();
    let page = get(&app, "/workflows/big", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("drawn as each stage"));
    assert!(page.body.contains("Page 1 of 10 (1000)"));
    assert_eq!(page.body.matches("<tr>").count(), 101);
    let last = get(&app, "/workflows/big?page=10", &[]).await;
    assert!(last.body.contains(r#"?task=t999#panel-h""#));
    assert!(!last.body.contains(r#"?task=t0#panel-h""#));
}

#[tokio::test]
async fn an_operator_approves_a_gate_and_its_dependents_move() {
    let (app, store) = setup(Some(TOKEN));
    let spec = WorkflowSpec::new("gated", Mode::Dag)
        .task(TaskSpec::new("check", "Look at it").gate())
        .task(TaskSpec::new("after", "Then this").after(["check"]));
    store
        .create_workflow(
            spec,
            &CreateOptions {
                start: true,
                ..CreateOptions::default()
            },
        )
        .unwrap();
    let overview = get(&app, "/", &[BEARER]).await;
    assert!(
        overview
            .body
            .contains(r#"href="/workflows/gated/tasks/check""#)
    );
    let page = get(&app, "/workflows/gated/tasks/check", &[BEARER]).await;
    assert!(page.body.contains("awaiting_approval"));
    assert!(page.body.contains(r#"value="approve""#));
    let nonce = csrf(&page.body, None);
    let bogus = post(
        &app,
        "/workflows/gated/tasks/check/gate",
        &[BEARER],
        &format!("csrf={nonce}&decision=maybe"),
    )
    .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
    // The refused decision did not spend the form's token.
    let approved = post(
        &app,
        "/workflows/gated/tasks/check/gate",
        &[BEARER],
        &format!("csrf={nonce}&decision=approve&note=fine"),
    )
    .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    let gate = orchestration_core::TaskRef::key(WorkflowRef::from("gated"), "check");
    assert_eq!(store.task(&gate).unwrap().state, TaskState::Succeeded);
    let after = orchestration_core::TaskRef::key(WorkflowRef::from("gated"), "after");
    assert_eq!(store.task(&after).unwrap().state, TaskState::Ready);
}

#[tokio::test]
async fn metrics_count_what_the_event_log_and_the_store_say() {
    let (app, store) = setup(Some(TOKEN));
    let claim = store
        .claim(&ClaimRequest::new("a1"))
        .unwrap()
        .claimed()
        .unwrap();
    let done = orchestration_core::TaskUpdate::Complete {
        result: None,
        actual: None,
    };
    store
        .update_task(&claim.task.id.into(), "a1", claim.token, &done, None)
        .unwrap();
    assert_eq!(
        get(&app, "/metrics", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let metrics = get(&app, "/metrics", &[BEARER]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = metrics.body;
    for line in [
        "orchestration_claims_total 1",
        "orchestration_reports_total{outcome=\"complete\"} 1",
        "orchestration_reports_total{outcome=\"fail\"} 0",
        "orchestration_lease_expiries_total 0",
        "orchestration_workflow_tasks{workflow=\"release\",state=\"succeeded\"} 1",
        "orchestration_workflow_tasks{workflow=\"release\",state=\"ready\"} 2",
        "orchestration_gates_waiting 0",
        "# TYPE orchestration_tool_call_duration_seconds histogram",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    // A second scrape counts only what is new: nothing is counted twice.
    let again = get(&app, "/metrics", &[BEARER]).await.body;
    assert!(again.lines().any(|l| l == "orchestration_claims_total 1"));
}

#[tokio::test]
async fn the_workflow_page_draws_each_attempt_on_its_agents_row() {
    let (app, store) = setup(None);
    let before = get(&app, "/workflows/release", &[]).await;
    assert!(before.body.contains("No attempt has started yet."));
    let claim = store
        .claim(&ClaimRequest::new("a1"))
        .unwrap()
        .claimed()
        .unwrap();
    let done = TaskUpdate::Complete {
        result: None,
        actual: None,
    };
    store
        .update_task(&claim.task.id.into(), "a1", claim.token, &done, None)
        .unwrap();
    store
        .claim(&ClaimRequest::new("a1"))
        .unwrap()
        .claimed()
        .unwrap();
    let page = get(&app, "/workflows/release", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Attempts by agent"));
    assert!(page.body.contains("2 attempts by 1 agents"));
    // The finished attempt is drawn as succeeded, the one under way as running.
    assert!(
        page.body
            .contains(r#"<g class="s-succeeded"><title>build, attempt 1: succeeded"#)
    );
    assert!(page.body.contains(r#"<g class="s-running"><title>"#));
    assert!(page.body.contains("attempt 1: running"));
}
