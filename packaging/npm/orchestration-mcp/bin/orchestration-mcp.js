#!/usr/bin/env node
// Runs the orchestration-mcp binary that the platform package for this machine carries. npm
// installs only the platform package whose `os`, `cpu` and `libc` match (they are optional
// dependencies of this one), the way esbuild and biome ship their binaries, so nothing is
// downloaded at install or run time. The child inherits stdin, stdout and stderr: stdio is the
// MCP transport, and this launcher writes nothing to stdout.
"use strict";

const { spawn } = require("node:child_process");

const PLATFORMS = {
  "linux x64": "@orchestration-mcp/linux-x64",
};

function fail(message) {
  process.stderr.write(`orchestration-mcp: ${message}\n`);
  process.exit(1);
}

function binary() {
  const platform = `${process.platform} ${process.arch}`;
  const name = PLATFORMS[platform];
  if (name === undefined) {
    fail(
      `no prebuilt binary for ${platform}; install it with a Rust toolchain instead: ` +
        "cargo install orchestration-mcp",
    );
  }
  try {
    return require.resolve(`${name}/bin/orchestration-mcp`);
  } catch {
    fail(
      `the package ${name}, which carries the binary for ${platform}, is not installed; ` +
        "reinstall without --omit=optional (or --no-optional)",
    );
  }
}

const child = spawn(binary(), process.argv.slice(2), { stdio: "inherit" });
// A client stops the server by closing its stdin or by a signal to this process: pass the signal
// on, and end as the server ended.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (error) => fail(`cannot start ${error.path}: ${error.message}`));
child.on("exit", (code, signal) => {
  if (signal !== null) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code);
  }
});
