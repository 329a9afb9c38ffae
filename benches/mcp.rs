//! MCP benchmarks (filled in below).
fn main() {}
