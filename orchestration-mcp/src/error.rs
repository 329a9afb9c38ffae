//! The one mapping from core errors to MCP results.
//!
//! Domain and validation errors become tool results with `isError: true` and a message that
//! says what was wrong and what to do, so the model can correct its call. Storage and other
//! infrastructure failures become JSON-RPC internal errors; their detail goes to the log only.

use orchestration_core::Error;
use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};

/// Why a tool call failed.
#[derive(Debug)]
pub(crate) enum ToolFailure {
    /// The call was wrong; the message tells the model how.
    Tool(String),
    /// The server failed; the client gets a generic JSON-RPC error.
    Protocol(ErrorData),
}

impl IntoCallToolResult for ToolFailure {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        match self {
            ToolFailure::Tool(message) => {
                Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into())
            }
            ToolFailure::Protocol(error) => Err(error),
        }
    }
}

impl ToolFailure {
    /// A bad argument that the adapter itself caught.
    pub(crate) fn invalid(field: &str, reason: impl std::fmt::Display) -> ToolFailure {
        ToolFailure::Tool(format!("invalid {field}: {reason}"))
    }
}

/// Maps a core error. The match is exhaustive on purpose: a new variant must be mapped here.
pub(crate) fn to_mcp(error: Error) -> ToolFailure {
    let hint = match &error {
        Error::InvalidSpec(_) => "fix the spec and call workflow_create again",
        Error::Cycle(_) => "remove one of these dependencies",
        Error::InvalidArgument { .. } => "fix the argument and retry",
        Error::UnknownWorkflow { .. } => "workflow_status without `workflow` lists the workflows",
        Error::UnknownTask { .. } => "name tasks as `workflow/key`; workflow_status lists them",
        Error::UnknownAgent { .. } => {
            "only registered agents act: a new agent registers with agent_profile action=upsert"
        }
        Error::WorkflowExists(_) | Error::IdempotencyConflict(_) => "",
        Error::IllegalTransition { .. } => "workflow_status shows each task's state",
        Error::IllegalWorkflowAction { .. } => "workflow_status shows the workflow's status",
        Error::WorkflowNotRunning { .. } => "workflow_execute starts or resumes it",
        Error::StaleLease { .. } | Error::LeaseExpired { .. } | Error::NotLeaseHolder { .. } => {
            "do not report on this task any more; task_claim for new work"
        }
        Error::DependencyLocked { .. } => "",
        Error::NotQualified { .. } | Error::Deadlock { .. } => "",
        Error::LockNotHeld { .. } => "agent_collaboration action=locks lists the locks",
        Error::UnknownMessage { .. } => "agent_collaboration action=inbox lists your messages",
        Error::UnknownSprint { .. } => "sprint_analytics without `name` lists the sprints",
        Error::IllegalSprintAction { .. } => "sprint_analytics shows the sprint's status",
        Error::TaskInSprint { .. } => "",
        Error::SprintOverlap { .. } => "change the dates or the members",
        Error::IncompatibleSchema { .. }
        | Error::ReadOnly
        | Error::DiskFull
        | Error::Io(_)
        | Error::Storage(_) => {
            tracing::error!(%error, "storage failure");
            // The operator can fix these; their messages name the cause without exposing
            // anything about the server. Other storage errors stay in the log.
            let message = match error {
                Error::IncompatibleSchema { .. } | Error::ReadOnly | Error::DiskFull => {
                    error.to_string()
                }
                _ => "the server could not read or write its database; see the server log".into(),
            };
            return ToolFailure::Protocol(ErrorData::internal_error(message, None));
        }
    };
    if hint.is_empty() {
        ToolFailure::Tool(error.to_string())
    } else {
        ToolFailure::Tool(format!("{error} ({hint})"))
    }
}
