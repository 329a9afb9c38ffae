//! The MCP tools, one submodule per group. Each tool decodes its arguments, makes one core call
//! on a blocking thread, and encodes the result.

pub(crate) mod agent;
pub(crate) mod collaboration;
pub(crate) mod sprint;
pub(crate) mod task;
pub(crate) mod workflow;

use std::sync::Arc;

use orchestration_core::Store;

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
    orchestration_core::rfc3339(at)
}

/// A field an action needs, or an error naming it.
pub(crate) fn need<T>(value: Option<T>, field: &str, action: &str) -> Result<T, ToolFailure> {
    value.ok_or_else(|| ToolFailure::invalid(field, format!("{action} needs `{field}`")))
}

/// Two decimals: enough for points and ratios, and fewer bytes in the model's context.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
