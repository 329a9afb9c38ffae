// The operator console in a real browser: Debian's Chromium, driven by playwright-core.
//
// Two server processes share one database file: `orchestration-mcp console` serves the pages
// (with an operator token), and `orchestration-mcp --http` serves MCP, which this script
// calls as an agent would. So a change that the page shows was made by another process.
//
// Environment: ORCHESTRATION_BIN (the server binary), BROWSER_TOOLS (the folder whose
// node_modules holds playwright-core), CHROMIUM (default /usr/bin/chromium), SCREENSHOT (a
// PNG path to write the workflow view to, optional).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const require = createRequire(resolve(process.env.BROWSER_TOOLS ?? ".", "package.json"));
const { chromium } = require("playwright-core");

const BIN = process.env.ORCHESTRATION_BIN ?? "target/debug/orchestration-mcp";
const TOKEN = "browser-test-operator-token-42";
const dir = mkdtempSync(join(tmpdir(), "orchestration-browser-"));
const db = join(dir, "orchestration.db");
const children = [];
let browser;
let consoleUrl;
let mcp;

/// Starts the binary with `args` and resolves with the first http:// address it names on
/// the stream `from` ("stdout" or "stderr").
function start(args, from) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      env: { ...process.env, RUST_LOG: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)));
    const other = from === "stdout" ? child.stderr : child.stdout;
    other.resume();
    const lines = createInterface({ input: child[from] });
    lines.on("line", (line) => {
      const found = line.match(/http:\/\/(127\.0\.0\.1:\d+)/);
      if (found) {
        lines.removeAllListeners("line");
        child[from].resume();
        resolve(`http://${found[1]}`);
      }
    });
  });
}

/// A minimal MCP client over streamable HTTP: initialize once, then tools/call.
class Mcp {
  constructor(url) {
    this.url = `${url}/mcp`;
    this.next = 1;
    this.session = null;
  }

  async send(message) {
    const headers = {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "Mcp-Protocol-Version": "2025-11-25",
    };
    if (this.session) headers["Mcp-Session-Id"] = this.session;
    const response = await fetch(this.url, { method: "POST", headers, body: JSON.stringify(message) });
    if (!this.session) this.session = response.headers.get("mcp-session-id");
    const text = await response.text();
    if (message.id === undefined) return null;
    const replies = text
      .split("\n")
      .filter((l) => l.startsWith("data:") && l.slice(5).trim() !== "")
      .map((l) => JSON.parse(l.slice(5)));
    const reply = replies.find((r) => r.id === message.id) ?? JSON.parse(text);
    return reply;
  }

  async open() {
    await this.send({
      jsonrpc: "2.0", id: this.next++, method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "browser-test", version: "0" } },
    });
    await this.send({ jsonrpc: "2.0", method: "notifications/initialized" });
  }

  async call(name, args) {
    const reply = await this.send({ jsonrpc: "2.0", id: this.next++, method: "tools/call", params: { name, arguments: args } });
    assert.ok(!reply.error, `${name}: ${JSON.stringify(reply.error)}`);
    assert.notEqual(reply.result.isError, true, `${name}: ${JSON.stringify(reply.result.content)}`);
    return reply.result.structuredContent;
  }
}

async function completeNext(agent) {
  const claim = await mcp.call("task_claim", { agent });
  assert.equal(claim.claimed, true, JSON.stringify(claim));
  await mcp.call("task_update", { task: claim.task.task, agent, token: claim.token, action: "complete" });
  return claim;
}

/// A page that records console errors and uncaught exceptions.
async function watched(context) {
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") page.errors.push(message.text());
  });
  page.on("pageerror", (error) => page.errors.push(error.message));
  return page;
}

async function operator() {
  const context = await browser.newContext();
  const page = await watched(context);
  await page.goto(`${consoleUrl}/`);
  // Without the token the console sends the browser to its login form.
  assert.match(page.url(), /\/login\?next=/);
  await page.fill('input[name="token"]', TOKEN);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${consoleUrl}/`);
  return { context, page };
}

before(async () => {
  // The MCP server creates the database; the console opens it after.
  const mcpUrl = await start(["--db", db, "--http", "127.0.0.1:0"], "stderr");
  mcp = new Mcp(mcpUrl);
  await mcp.open();
  await mcp.call("agent_profile", { action: "upsert", name: "a1" });
  await mcp.call("workflow_create", {
    name: "release",
    description: "Build, review by a person, then ship",
    tasks: [
      { key: "build", title: "Build the binaries", estimate: 3 },
      { key: "test", title: "Run the tests", depends_on: ["build"], estimate: 2 },
      { key: "docs", title: "Write the docs", depends_on: ["build"] },
      { key: "review", title: "Review the release", depends_on: ["test", "docs"], gate: true },
      { key: "ship", title: "Ship it", depends_on: ["review"] },
    ],
  });
  await mcp.call("sprint_planning", {
    action: "start", name: "s1", start: "2026-11-30", end: "2026-12-11", commit: 6, members: [{ agent: "a1" }],
  });
  consoleUrl = await start(["--db", db, "console", "--listen", "127.0.0.1:0", "--token", TOKEN], "stdout");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  for (const child of children) {
    child.removeAllListeners("exit");
    child.kill();
  }
  rmSync(dir, { recursive: true, force: true });
});

test("each view loads without a console error", async () => {
  const { context, page } = await operator();
  const views = [
    ["/", "Overview"],
    ["/workflows/release", "Workflow release"],
    ["/workflows/release/tasks/build", "Task release/build"],
    ["/agents", "Agents"],
    ["/agents/a1", "Agent a1"],
    ["/collaboration", "Collaboration"],
    ["/sprints", "Sprints"],
    ["/sprints/s1", "Sprint s1"],
    ["/events", "Events"],
    ["/events?kind=task_state&workflow=release", "Events"],
  ];
  for (const [path, heading] of views) {
    const response = await page.goto(`${consoleUrl}${path}`);
    assert.equal(response.status(), 200, path);
    assert.equal(await page.textContent("h1"), heading, path);
    assert.equal(await page.locator("main#main").count(), 1, path);
    // The live script connects on every page.
    await page.waitForFunction(() => document.getElementById("live-status").textContent.startsWith("Live"), null, { timeout: 5000 });
  }
  const missing = await page.goto(`${consoleUrl}/workflows/nope`);
  assert.equal(missing.status(), 404);
  assert.equal(await page.locator('a[href="/"]', { hasText: "Back to the overview" }).count(), 1);
  assert.deepEqual(page.errors.filter((e) => !e.includes("404")), []);
  await context.close();
});

test("a task completed through MCP by another process appears in the open page within 2 s", async () => {
  const { context, page } = await operator();
  await page.goto(`${consoleUrl}/workflows/release`);
  await page.waitForFunction(() => document.getElementById("live-status").textContent.startsWith("Live"));
  const build = page.locator('a[href="/workflows/release?task=build#panel-h"] g');
  assert.equal(await build.getAttribute("class"), "s-ready critical");
  await completeNext("a1");
  await page.waitForSelector('a[href="/workflows/release?task=build#panel-h"] g.s-succeeded', { timeout: 2000 });
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("an approval clicked in the page moves the workflow", async () => {
  await completeNext("a1");
  await completeNext("a1");
  const { context, page } = await operator();
  if (process.env.SCREENSHOT) {
    // The workflow view mid-flight, with the gate's panel open: what the README shows.
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.goto(`${consoleUrl}/workflows/release?task=review`);
    await page.screenshot({ path: process.env.SCREENSHOT });
  }
  await page.goto(`${consoleUrl}/workflows/release/tasks/review`);
  assert.match(await page.textContent("main"), /awaiting_approval/);
  await page.fill('input[name="note"]', "looks good");
  await page.click('button[value="approve"]');
  await page.waitForURL(`${consoleUrl}/workflows/release/tasks/review`);
  assert.match(await page.textContent("main dl"), /succeeded/);
  // The gate's dependent is work for an agent now.
  const ship = await mcp.call("task_claim", { agent: "a1" });
  assert.equal(ship.claimed, true);
  assert.match(JSON.stringify(ship.task), /ship/);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("an action without the operator's token is refused", async () => {
  const context = await browser.newContext();
  const page = await watched(context);
  await page.goto(`${consoleUrl}/login`);
  const status = await page.evaluate(async () => {
    const response = await fetch("/workflows/release/action", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "csrf=0&action=cancel",
      redirect: "manual",
    });
    return response.status;
  });
  assert.equal(status, 401);
  // And a logged-in operator's form replayed is refused too.
  const { context: logged, page: operatorPage } = await operator();
  await operatorPage.goto(`${consoleUrl}/workflows/release`);
  const form = operatorPage.locator('form:has(input[name="action"][value="pause"])');
  const csrf = await form.locator('input[name="csrf"]').getAttribute("value");
  const send = () => operatorPage.evaluate(async (csrf) => {
    const response = await fetch("/workflows/release/action", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `csrf=${csrf}&action=pause`,
      redirect: "manual",
    });
    return response.status;
  }, csrf);
  assert.equal(await send(), 0, "the first is accepted and redirects (opaque to fetch)");
  assert.equal(await send(), 403, "the replay is refused");
  await logged.close();
  await context.close();
});
