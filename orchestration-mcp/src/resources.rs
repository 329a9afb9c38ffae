//! Resources: workflows, tasks, sprints and inboxes as `orchestration://` URIs, read as
//! Markdown for people and models or, with `?format=json`, as the JSON the matching tool
//! returns; and subscriptions, which tail the event log so that a change made by any process
//! on the database reaches the subscriber as `notifications/resources/updated`.
//!
//! A read is the matching tool's call (`workflow_status`, `task_get`, `sprint_analytics`, an
//! inbox look that acknowledges nothing), so a resource shows exactly what the tool shows,
//! within the same budget, under the same identity checks.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestration_core::{EventKind, Store, sprint::SprintStatus};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

/// The scheme of every resource.
const SCHEME: &str = "orchestration://";
/// Resources listed in one page of `resources/list`.
pub(crate) const PAGE: usize = 100;
/// How often a subscription looks at the event log.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// Events a subscription reads in one look.
const EVENTS_PER_LOOK: usize = 1_000;

/// What a URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Workflow(String),
    Task { workflow: String, key: String },
    Sprint(String),
    Inbox(String),
}

/// How a resource is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Markdown,
    Json,
}

impl Target {
    /// Parses `orchestration://…`, with an optional `?format=json` or `?format=markdown`.
    pub(crate) fn parse(uri: &str) -> Result<(Target, Format), ErrorData> {
        let unknown = || {
            ErrorData::resource_not_found(
                format!(
                    "no resource `{uri}`: the resources are {}",
                    TEMPLATES.map(|t| t.0).join(", ")
                ),
                None,
            )
        };
        let rest = uri.strip_prefix(SCHEME).ok_or_else(unknown)?;
        let (path, format) = match rest.split_once('?') {
            None => (rest, Format::Markdown),
            Some((path, "format=json")) => (path, Format::Json),
            Some((path, "format=markdown")) => (path, Format::Markdown),
            Some(_) => {
                return Err(ErrorData::invalid_params(
                    format!("`{uri}`: the only query is `?format=json` or `?format=markdown`"),
                    None,
                ));
            }
        };
        let parts: Vec<&str> = path.split('/').collect();
        let target = match parts.as_slice() {
            ["workflow", name] if !name.is_empty() => Target::Workflow((*name).to_owned()),
            ["task", workflow, key] if !workflow.is_empty() && !key.is_empty() => Target::Task {
                workflow: (*workflow).to_owned(),
                key: (*key).to_owned(),
            },
            ["sprint", name] if !name.is_empty() => Target::Sprint((*name).to_owned()),
            ["agent", name, "inbox"] if !name.is_empty() => Target::Inbox((*name).to_owned()),
            _ => return Err(unknown()),
        };
        Ok((target, format))
    }

    /// The resource's URI, in Markdown.
    pub(crate) fn uri(&self) -> String {
        match self {
            Target::Workflow(name) => format!("{SCHEME}workflow/{name}"),
            Target::Task { workflow, key } => format!("{SCHEME}task/{workflow}/{key}"),
            Target::Sprint(name) => format!("{SCHEME}sprint/{name}"),
            Target::Inbox(name) => format!("{SCHEME}agent/{name}/inbox"),
        }
    }

    /// The tool call that reads it.
    fn call(&self) -> CallToolRequestParams {
        let (tool, arguments) = match self {
            Target::Workflow(name) => ("workflow_status", json!({ "workflow": name })),
            Target::Task { workflow, key } => {
                ("task_get", json!({ "task": format!("{workflow}/{key}") }))
            }
            Target::Sprint(name) => ("sprint_analytics", json!({ "name": name })),
            Target::Inbox(agent) => (
                "agent_collaboration",
                json!({ "action": "inbox", "agent": agent }),
            ),
        };
        let Value::Object(arguments) = arguments else {
            unreachable!("the arguments above are objects")
        };
        CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
    }
}

/// The templates: (URI template, name, description).
const TEMPLATES: [(&str, &str, &str); 4] = [
    (
        "orchestration://workflow/{name}",
        "workflow",
        "A workflow's progress, ready, running and blocked tasks, critical path and forecast",
    ),
    (
        "orchestration://task/{workflow}/{key}",
        "task",
        "One task whole: description, dependencies, result, attempts and notes",
    ),
    (
        "orchestration://sprint/{name}",
        "sprint",
        "A sprint's burndown and burnup, scope changes, velocity and forecast",
    ),
    (
        "orchestration://agent/{name}/inbox",
        "inbox",
        "An agent's unread messages (reading acknowledges nothing)",
    ),
];

/// The resource templates, for `resources/templates/list`.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    TEMPLATES
        .iter()
        .map(|(template, name, description)| {
            ResourceTemplate::new(*template, *name)
                .with_description(format!(
                    "{description}. Markdown; add ?format=json for JSON."
                ))
                .with_mime_type("text/markdown")
        })
        .collect()
}

/// Every workflow, sprint and inbox, in URI order: what `resources/list` pages through.
/// Tasks are many, so they are reached through their template instead.
pub(crate) fn all(store: &Store) -> orchestration_core::Result<Vec<Resource>> {
    let mut resources = Vec::new();
    for w in store.workflows()? {
        let description = format!("workflow `{}`, {}", w.name, w.status);
        resources.push(resource(Target::Workflow(w.name), description));
    }
    for s in store.sprints()? {
        let description = format!(
            "sprint `{}`, {} to {}, {}",
            s.name, s.start, s.end, s.status
        );
        resources.push(resource(Target::Sprint(s.name), description));
    }
    for a in store.agents()? {
        let description = format!("the unread messages of agent `{}`", a.name);
        resources.push(resource(Target::Inbox(a.name), description));
    }
    resources.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(resources)
}

fn resource(target: Target, description: String) -> Resource {
    let name = match &target {
        Target::Workflow(n) | Target::Sprint(n) => n.clone(),
        Target::Task { workflow, key } => format!("{workflow}/{key}"),
        Target::Inbox(n) => format!("{n}/inbox"),
    };
    Resource::new(target.uri(), name)
        .with_description(description)
        .with_mime_type("text/markdown")
}

/// Reads `uri` through `server`'s tools.
pub(crate) async fn read(
    server: &crate::OrchestrationServer,
    uri: &str,
    context: RequestContext<RoleServer>,
) -> Result<ResourceContents, ErrorData> {
    let (target, format) = Target::parse(uri)?;
    let call = rmcp::handler::server::tool::ToolCallContext::new(server, target.call(), context);
    let result = match server.tool_router.call(call).await? {
        CallToolResponse::Complete(result) => result,
        _ => return Err(ErrorData::internal_error("the read did not complete", None)),
    };
    let text = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    if result.is_error == Some(true) {
        // The tool's message names what is unknown and the closest names.
        return Err(ErrorData::resource_not_found(
            format!("`{uri}`: {text}"),
            None,
        ));
    }
    let structured = result.structured_content.unwrap_or(Value::Null);
    Ok(match format {
        Format::Json => {
            ResourceContents::text(structured.to_string(), uri).with_mime_type("application/json")
        }
        Format::Markdown => {
            let summary = text.lines().next().unwrap_or_default();
            ResourceContents::text(markdown(&target, summary, &structured), uri)
                .with_mime_type("text/markdown")
        }
    })
}

/// The tool's answer as Markdown: its summary as the title, then its fields, nested lists as
/// sections of bullets.
fn markdown(target: &Target, summary: &str, value: &Value) -> String {
    let mut out = format!("# {}\n\n{summary}\n", target.uri());
    if let Value::Object(fields) = value {
        let (lists, scalars): (Vec<_>, Vec<_>) = fields.iter().partition(
            |(_, v)| matches!(v, Value::Array(items) if items.iter().any(Value::is_object)),
        );
        if !scalars.is_empty() {
            out.push('\n');
        }
        for (key, v) in scalars {
            match v {
                Value::Object(inner) if !inner.is_empty() => {
                    let _ = writeln!(out, "- **{key}**:");
                    for (k, v) in inner {
                        let _ = writeln!(out, "  - {k}: {}", inline(v));
                    }
                }
                _ => {
                    let _ = writeln!(out, "- **{key}**: {}", inline(v));
                }
            }
        }
        for (key, v) in lists {
            let _ = write!(out, "\n## {key}\n\n");
            if let Value::Array(items) = v {
                for item in items {
                    let _ = writeln!(out, "- {}", inline(item));
                }
            }
        }
    }
    out
}

/// A value on one line: objects as `key: value; …`, arrays joined with commas.
fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => s.replace('\n', " "),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(inline).collect::<Vec<_>>().join(", "),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k}: {}", inline(v)))
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

/// One session's subscriptions, and the task that watches the log for them. A clone of the
/// server serves another session (each HTTP session gets one), so a clone starts with none.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    state: Arc<Mutex<Watched>>,
}

impl Clone for Subscriptions {
    fn clone(&self) -> Subscriptions {
        Subscriptions::default()
    }
}

#[derive(Debug, Default)]
struct Watched {
    uris: BTreeSet<String>,
    watching: bool,
}

impl Subscriptions {
    /// Subscribes to `uri` (which must name a resource), starting the watch if needed.
    pub(crate) async fn subscribe(
        &self,
        store: &Arc<Store>,
        uri: &str,
        peer: Peer<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (target, _) = Target::parse(uri)?;
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.uris.insert(target.uri());
            !std::mem::replace(&mut state.watching, true)
        };
        if start {
            let seen = crate::tools::blocking(store, Store::last_event_seq)
                .await
                .map_err(crate::error::ToolFailure::into_error_data)?;
            let (store, state) = (Arc::clone(store), Arc::clone(&self.state));
            tokio::spawn(watch(store, state, peer, seen));
        }
        Ok(())
    }

    /// Ends the subscription to `uri`; the watch stops when none is left.
    pub(crate) fn unsubscribe(&self, uri: &str) -> Result<(), ErrorData> {
        let (target, _) = Target::parse(uri)?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.uris.remove(&target.uri());
        Ok(())
    }
}

/// Tails the event log from `seen`, and tells the peer of each subscribed resource a batch of
/// events touched. Ends when no subscription is left or the peer is gone.
async fn watch(
    store: Arc<Store>,
    state: Arc<Mutex<Watched>>,
    peer: Peer<RoleServer>,
    mut seen: i64,
) {
    let mut lookout = crate::wait::Lookout::new(&store);
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let subscribed = {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            if state.uris.is_empty() {
                state.watching = false;
                return;
            }
            state.uris.clone()
        };
        if !lookout.due(&store) {
            continue;
        }
        let after = seen;
        let looked = tokio::task::spawn_blocking({
            let store = Arc::clone(&store);
            move || touched(&store, after)
        })
        .await;
        let (head, touched) = match looked {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::warn!(%error, "a subscription could not read the event log");
                continue;
            }
            Err(_) => continue,
        };
        seen = head;
        for uri in touched.intersection(&subscribed) {
            let param = ResourceUpdatedNotificationParam::new(uri.clone());
            if peer.notify_resource_updated(param).await.is_err() {
                // The session ended: nobody is left to tell.
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                state.watching = false;
                state.uris.clear();
                return;
            }
        }
    }
}

/// The resources that events after `after` touched, and the last event's position.
fn touched(store: &Store, after: i64) -> orchestration_core::Result<(i64, BTreeSet<String>)> {
    let events = store.events_since(after, EVENTS_PER_LOOK)?;
    let head = events.last().map_or(after, |e| e.seq);
    let mut uris = BTreeSet::new();
    let mut task_changed = false;
    for event in &events {
        if let Some(workflow) = &event.workflow_name {
            uris.insert(Target::Workflow(workflow.clone()).uri());
            if let Some(key) = &event.task_key {
                uris.insert(
                    Target::Task {
                        workflow: workflow.clone(),
                        key: key.clone(),
                    }
                    .uri(),
                );
            }
        }
        if let Some(sprint) = &event.sprint {
            uris.insert(Target::Sprint(sprint.clone()).uri());
        }
        task_changed |= event.kind == EventKind::TaskState;
        if event.kind == EventKind::Message
            && let Some(recipient) = event
                .detail
                .as_deref()
                .and_then(|d| d.rsplit(" to ").next())
        {
            uris.insert(Target::Inbox(recipient.to_owned()).uri());
        }
    }
    // A task's change moves the burndown of the active sprint that holds it; which one holds
    // it is not in the event, so every active sprint is said to have changed.
    if task_changed {
        for sprint in store.sprints()? {
            if sprint.status == SprintStatus::Active {
                uris.insert(Target::Sprint(sprint.name).uri());
            }
        }
    }
    Ok((head, uris))
}

/// A page of `items` from `cursor` (an offset this server gave), and the next cursor.
pub(crate) fn page<T>(
    items: Vec<T>,
    cursor: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| {
            ErrorData::invalid_params(format!("cursor `{c}` is not one this server gave"), None)
        })?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(PAGE).collect();
    let next = (start + PAGE < total).then(|| (start + PAGE).to_string());
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_to_what_they_name_or_to_a_specific_error() {
        let ok = [
            (
                "orchestration://workflow/web",
                Target::Workflow("web".into()),
                Format::Markdown,
            ),
            (
                "orchestration://task/web/login?format=json",
                Target::Task {
                    workflow: "web".into(),
                    key: "login".into(),
                },
                Format::Json,
            ),
            (
                "orchestration://sprint/s1?format=markdown",
                Target::Sprint("s1".into()),
                Format::Markdown,
            ),
            (
                "orchestration://agent/ana/inbox",
                Target::Inbox("ana".into()),
                Format::Markdown,
            ),
        ];
        for (uri, target, format) in ok {
            let (parsed, f) = Target::parse(uri).unwrap();
            assert_eq!((&parsed, f), (&target, format), "{uri}");
            assert_eq!(parsed.uri(), uri.split('?').next().unwrap());
        }
        let bad = [
            ("http://example.com/workflow/web", "no resource"),
            ("orchestration://workflow/", "no resource"),
            ("orchestration://task/web", "no resource"),
            ("orchestration://agent/ana/outbox", "no resource"),
            (
                "orchestration://workflow/web?format=yaml",
                "the only query is",
            ),
        ];
        for (uri, expected) in bad {
            let error = Target::parse(uri).unwrap_err();
            assert!(error.message.contains(expected), "{uri}: {}", error.message);
        }
    }

    #[test]
    fn markdown_shows_fields_as_bullets_and_lists_as_sections() {
        let value = json!({
            "blocked": [],
            "workflow": {"name": "web", "counts": {"ready": 1}},
            "ready": [{"task": "web/a", "estimate": 1.0}],
        });
        let text = markdown(&Target::Workflow("web".into()), "web: running", &value);
        assert_eq!(
            text,
            "# orchestration://workflow/web\n\nweb: running\n\n- **blocked**: none\n\
             - **workflow**:\n  - counts: ready: 1\n  - name: web\n\n## ready\n\n\
             - estimate: 1.0; task: web/a\n"
        );
    }
}
