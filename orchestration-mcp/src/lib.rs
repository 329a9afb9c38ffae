//! placeholder until the MCP server lands.
