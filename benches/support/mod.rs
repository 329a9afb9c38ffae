//! What the benchmarks that drive the `orchestration-mcp` binary share: its release build, and
//! the percentile of latency samples.

use std::path::PathBuf;
use std::process::Command;
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
