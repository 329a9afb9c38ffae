//! orchestration: coordinate many AI agents working on one project.
//!
//! This facade re-exports [`orchestration_core`] (workflows, the SQLite store, the in-process
//! runner) and, with the default `mcp` feature, the MCP server as [`mcp`].
//!
//! ```
//! use orchestration::{CreateOptions, Mode, Store, TaskSpec, WorkflowSpec};
//!
//! let store = Store::open_in_memory()?;
//! let spec = WorkflowSpec::new("docs", Mode::Sequential)
//!     .task(TaskSpec::new("draft", "Write the draft"))
//!     .task(TaskSpec::new("review", "Review it"));
//! let created = store.create_workflow(spec, &CreateOptions::default())?;
//! assert_eq!(created.analysis.critical_path.keys, ["draft", "review"]);
//! # Ok::<(), orchestration::Error>(())
//! ```

pub use orchestration_core::*;

#[cfg(feature = "mcp")]
pub use orchestration_mcp as mcp;
