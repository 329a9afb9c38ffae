//! Integration tests of the MCP server: every tool through an in-process client, the
//! `tools/list` snapshot, the built binary driven by real clients over stdio and HTTP, its
//! command line, servers side by side, many servers on one PostgreSQL database, `migrate`, and
//! the versions the Python and npm packages carry.

mod cli;
mod clients;
mod console;
mod crash;
mod faults;
mod hook;
mod hostile;
mod http;
mod http_client;
mod http_load;
mod limits;
mod migrate;
mod packaging;
mod postgres;
mod processes;
mod seat;
mod side_by_side;
mod sprint;
mod support;
mod tools;
mod waiting;
