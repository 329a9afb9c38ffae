//! What the benchmarks that drive the `orchestration-mcp` binary share: its release build, its
//! start over HTTP, and the percentile of latency samples.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Builds the release binary once and returns its path, next to the running bench's
/// executable (`target/release/deps/<bench>-<hash>` -> `target/release/orchestration-mcp`).
pub(crate) fn binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "orchestration-mcp",
            "--bin",
            "orchestration-mcp",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the server failed");
    let exe = std::env::current_exe().expect("the bench knows where it is");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/release")
        .join("orchestration-mcp")
}

/// The `q` quantile of `samples` (nearest rank), sorting them in place.
pub(crate) fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

/// Starts the server over HTTP on an ephemeral loopback port for the database `db`, without a
/// rate limit (sessions calling as fast as they can from one address are far past an agent's
/// pace, and what is measured is the server, not the limit), and returns it with its port, read
/// from its log. The rest of its log is drained so that it never blocks on a full pipe.
#[allow(
    dead_code,
    reason = "each bench compiles this module; not all serve HTTP"
)]
pub(crate) fn spawn_http(binary: &Path, db: &str) -> (Child, u16) {
    let mut child = Command::new(binary)
        .args(["--db", db, "--http", "127.0.0.1:0", "--rate-limit", "off"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}
