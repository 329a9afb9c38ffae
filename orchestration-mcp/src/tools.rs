//! The MCP tools, one submodule per group. Each tool decodes its arguments, makes one core call
//! on a blocking thread, and encodes the result; this module holds what they share.

pub(crate) mod agent;
pub(crate) mod collaboration;
pub(crate) mod sprint;
pub(crate) mod task;
pub(crate) mod workflow;

use std::sync::Arc;

use orchestration_core::{Store, TaskId, TaskRef, WorkflowRef};

use crate::error::{ToolFailure, to_mcp};

/// Runs a store call on tokio's blocking pool: the store is synchronous and a large create can
/// take a while, so it must not hold up the threads that serve other requests.
pub(crate) async fn blocking<T, F>(store: &Arc<Store>, call: F) -> Result<T, ToolFailure>
where
    F: FnOnce(&Store) -> orchestration_core::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || call(&store)).await {
        Ok(result) => result.map_err(to_mcp),
        Err(error) => {
            tracing::error!(%error, "a store call panicked");
            Err(ToolFailure::Protocol(rmcp::ErrorData::internal_error(
                "the server failed while handling this call; see the server log",
                None,
            )))
        }
    }
}

/// RFC 3339 with milliseconds, the format of every timestamp in tool results.
pub(crate) fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    orchestration_core::text::rfc3339(at)
}

/// `workflow/key`: how every task is named in results.
pub(crate) fn task_name(workflow: &str, key: &str) -> String {
    format!("{workflow}/{key}")
}

/// When a held task's lease ends, or that it lapsed: `, lease ends …` or `, lease lapsed at …`.
pub(crate) fn lease_note(held: &orchestration_core::store::HeldTask) -> String {
    match (held.lease_expires_at, held.lapsed) {
        (Some(at), true) => format!(", lease lapsed at {}", time(at)),
        (Some(at), false) => format!(", lease ends {}", time(at)),
        (None, _) => String::new(),
    }
}

/// One held task as a line for the agent holding it: name, title, token and the lease's end,
/// or that it lapsed and what that means.
pub(crate) fn held_line(held: &orchestration_core::store::HeldTask) -> String {
    let advice = if held.lapsed {
        ": a report is refused now, so drop it and claim again"
    } else {
        ""
    };
    format!(
        "`{}` ({}), token {}{}{advice}",
        task_name(&held.task.workflow_name, &held.task.key),
        held.task.title,
        held.token,
        lease_note(held)
    )
}

/// A field an action needs, or an error naming it.
pub(crate) fn need<T>(value: Option<T>, field: &str, action: &str) -> Result<T, ToolFailure> {
    value.ok_or_else(|| ToolFailure::invalid(field, format!("{action} needs `{field}`")))
}

/// Refuses the arguments in `given` that are set although `action` does not use them: a
/// caller that passes one expects an effect it would not get.
pub(crate) fn unused(action: &str, given: &[(&str, bool)]) -> Result<(), ToolFailure> {
    let set: Vec<String> = given
        .iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| format!("`{field}`"))
        .collect();
    if set.is_empty() {
        return Ok(());
    }
    let (them, does) = if set.len() == 1 {
        ("it", "does")
    } else {
        ("them", "do")
    };
    Err(ToolFailure::invalid(
        "arguments",
        format!(
            "{} {does} not apply to {action}; leave {them} out",
            set.join(", ")
        ),
    ))
}

/// A task argument: `workflow/key`, a task id, or, where the tool is given the workflow, the
/// bare key. A `workflow/key` naming another workflow than the one given is refused.
pub(crate) fn task_arg(
    field: &str,
    text: &str,
    workflow: Option<&str>,
) -> Result<TaskRef, ToolFailure> {
    if let Ok(id) = text.parse::<TaskId>() {
        return Ok(TaskRef::Id(id));
    }
    match (text.split_once('/'), workflow) {
        (Some((own, _)), Some(given)) if own != given => Err(ToolFailure::invalid(
            field,
            format!(
                "`{text}` is a task of workflow `{own}`, not of `{given}`; give the key alone or the task of `{given}`"
            ),
        )),
        (Some((own, key)), _) => Ok(TaskRef::key(WorkflowRef::from(own), key)),
        (None, Some(given)) => Ok(TaskRef::key(WorkflowRef::from(given), text)),
        (None, None) => Err(ToolFailure::invalid(
            field,
            format!("`{text}` is neither `workflow/key` nor a task id"),
        )),
    }
}

/// `x` to `places` decimals, the one rounding of numbers in results: two for points and
/// ratios (fewer bytes in the model's context), three for shares of a limit, four for scores
/// whose small differences decide a ranking.
pub(crate) fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}
