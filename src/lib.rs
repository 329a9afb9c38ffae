//! orchestration: coordinate many AI agents working on one project.
//!
//! This facade re-exports [`orchestration_core`] (workflows, the SQLite store, the in-process
//! runner) and, with the default `mcp` feature, the MCP server as `mcp`. The rest of this page
//! is the project's README; its example runs as a test.
#![doc = include_str!("../README.md")]

pub use orchestration_core::*;

#[cfg(feature = "mcp")]
pub use orchestration_mcp as mcp;
