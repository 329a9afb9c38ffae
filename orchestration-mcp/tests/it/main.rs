//! Integration tests of the MCP server: every tool through an in-process client, the
//! `tools/list` snapshot, the built binary driven by real clients over stdio and HTTP, and
//! servers side by side.

mod clients;
mod http;
mod side_by_side;
mod sprint;
mod support;
mod tools;
