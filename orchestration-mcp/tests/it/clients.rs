//! Real clients over real stdio: the official Python MCP SDK drives the built binary.
//!
//! The SDK is found in `ORCHESTRATION_PYTHON` (a Python with `mcp` installed) or in the
//! workspace's `.venv` (`python3 -m venv .venv && .venv/bin/pip install -r
//! orchestration-mcp/tests/python/requirements.txt`). Without either, the test says so and
//! passes on a developer's machine, and fails under CI, which must run it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORCHESTRATION_PYTHON") {
        return Some(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

#[test]
fn the_python_sdk_drives_the_server_over_stdio() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Python SDK test: create .venv with orchestration-mcp/tests/python/requirements.txt"
        );
        eprintln!(
            "skipping the Python SDK test: no .venv with the `mcp` package (see this file's docs)"
        );
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/smoke.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python SDK checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("python sdk: all checks passed"), "{stdout}");
}
