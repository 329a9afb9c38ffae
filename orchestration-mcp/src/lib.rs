//! The MCP server of orchestration: the core's workflows, tasks and agents as MCP tools, over
//! stdio or streamable HTTP.
//!
//! The adapter is thin: each tool decodes its arguments, makes one call on the core's
//! [`Store`](orchestration_core::Store), and encodes the result as structured content with a
//! one-line summary. It never writes to stdout, which is the stdio transport's channel.
#![deny(clippy::print_stdout)]

mod args;
mod auth;
mod console;
mod error;
pub mod hook;
mod http;
mod output;
mod prompts;
mod resources;
mod server;
mod telemetry;
mod tools;
mod wait;

pub use crate::auth::{AgentTokens, AuthenticatedAgent};
pub use crate::http::{
    ConnectionLimits, DEFAULT_MAX_CONNECTIONS, HttpOptions, MAX_REQUEST_BYTES, RESERVED_FILES,
    RateLimit, SessionLimits, connection_room, serve_console, serve_http,
};
pub use crate::output::MAX_RESULT_BYTES;
pub use crate::server::{INSTRUCTIONS, OrchestrationServer, Toolset};
