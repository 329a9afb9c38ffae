//! The one mapping from core errors to MCP results.
//!
//! Domain and validation errors become tool results with `isError: true` and a message that
//! says what was wrong and what to do, so the model can correct its call; so does a change
//! refused because the database is read-only. Storage and other infrastructure failures become
//! JSON-RPC internal errors; their detail goes to the log only.

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
    /// The failure as the JSON-RPC error of a request that is not a tool call (a prompt, a
    /// resource, a completion): what the caller got wrong becomes invalid params.
    pub(crate) fn into_error_data(self) -> ErrorData {
        match self {
            ToolFailure::Tool(message) => ErrorData::invalid_params(message, None),
            ToolFailure::Protocol(error) => error,
        }
    }

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
        // A token never issued is a typo of the agent that still holds the task: the message
        // already says where the right token is, and the task is still its own to finish.
        Error::StaleLease {
            presented, current, ..
        } if presented > current => "",
        Error::StaleLease { .. } | Error::LeaseExpired { .. } | Error::NotLeaseHolder { .. } => {
            "do not report on this task any more; task_claim for new work"
        }
        Error::DependencyLocked { .. } | Error::TargetNotEmpty { .. } => "",
        Error::NotQualified { .. } | Error::Deadlock { .. } => "",
        Error::LockNotHeld { .. } => "agent_collaboration action=locks lists the locks",
        Error::UnknownMessage { .. } => "agent_collaboration action=inbox lists your messages",
        Error::UnknownSprint { .. } => "sprint_analytics without `name` lists the sprints",
        Error::IllegalSprintAction { .. } => "sprint_analytics shows the sprint's status",
        Error::TaskInSprint { .. } => "",
        Error::SprintOverlap { .. } => "change the dates or the members",
        // A change asked of a database opened read-only, or whose file the server cannot
        // write: nothing is broken, the request cannot be served here. So it is a tool error
        // the model can act on (read instead, do not retry), and only an info line for the
        // operator, who chose or set up the read-only database.
        Error::ReadOnly => {
            tracing::info!("refused a change: the database is read-only");
            "do not retry: changes need a server with write access to the database"
        }
        // The operator can fix these, so the messages name the cause and nothing else about
        // the server: a schema newer than this build, a full disk, a database directory that
        // cannot be created (which happens only at start).
        Error::IncompatibleSchema { .. } | Error::DiskFull | Error::Io(_) => {
            tracing::error!(%error, "storage failure");
            return ToolFailure::Protocol(ErrorData::internal_error(error.to_string(), None));
        }
        // Anything else from SQLite may quote SQL or paths: the detail stays in the log.
        Error::Storage(_) => {
            tracing::error!(%error, "storage failure");
            return ToolFailure::Protocol(ErrorData::internal_error(
                "the server could not read or write its database; see the server log",
                None,
            ));
        }
    };
    if hint.is_empty() {
        ToolFailure::Tool(error.to_string())
    } else {
        ToolFailure::Tool(format!("{error} ({hint})"))
    }
}
