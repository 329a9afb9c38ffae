"""Waiting instead of polling, across processes: two server processes over stdio on one
database, driven by the official Python MCP SDK. A claim that waits returns as soon as the
other process completes the dependency, with progress notifications on the way; a claim that
waits for nothing returns `claimed: false` at its deadline; an inbox read that waits returns
when the other process sends a message; a wait the client cancels ends the call.

Usage: python waiting.py PATH_TO_orchestration-mcp

Prints the wake-up latencies, then "waiting: all checks passed".
"""

import asyncio
import random
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def server(stack, binary, db):
    params = StdioServerParameters(command=binary, args=["--db", str(db)])
    read, write = await stack.enter_async_context(stdio_client(params))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


async def call(session, tool, arguments, **kwargs):
    result = await session.call_tool(tool, arguments, **kwargs)
    text = result.content[0].text if result.content else ""
    check(not result.is_error, f"{tool} {arguments}: {text}")
    return result.structured_content, text


async def main(binary):
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "team.db"
        async with AsyncExitStack() as stack:
            waiter = await server(stack, binary, db)
            worker = await server(stack, binary, db)
            for name in ["wai", "wok"]:
                await call(waiter, "agent_profile", {"action": "upsert", "name": name})

            # A claim that waits wakes when the other process completes the dependency.
            latencies = []
            for round_ in range(5):
                name = f"chain-{round_}"
                await call(worker, "workflow_create", {"name": name, "tasks": [
                    {"key": "a", "title": "first"},
                    {"key": "b", "title": "second", "depends_on": ["a"]},
                ]})
                first, _ = await call(worker, "task_claim", {"agent": "wok", "workflow": name})
                check(first["task"]["task"] == f"{name}/a", first)
                progress = []

                async def on_progress(value, total, message):
                    progress.append((value, total, message))

                woke = {}

                async def wait_for_b():
                    out, text = await call(
                        waiter, "task_claim",
                        {"agent": "wai", "workflow": name, "wait_seconds": 30},
                        progress_callback=on_progress,
                    )
                    woke["at"] = time.monotonic()
                    woke["out"] = out

                async with anyio.create_task_group() as group:
                    group.start_soon(wait_for_b)
                    # A random phase against the server's looks at the log, so that the
                    # latencies measured are typical ones.
                    await anyio.sleep(0.5 + random.random() * 0.2)
                    check("out" not in woke, "the claim waits while `a` runs")
                    await call(worker, "task_update", {
                        "task": f"{name}/a", "agent": "wok", "token": first["token"],
                        "action": "complete", "result": "done"})
                    completed = time.monotonic()
                check(woke["out"]["claimed"] is True, woke["out"])
                check(woke["out"]["task"]["task"] == f"{name}/b", woke["out"])
                latencies.append(woke["at"] - completed)
                check(progress, "a waiting call sends progress when asked")
                check(progress[0][1] == 30.0 and "waiting" in progress[0][2], progress)
                await call(waiter, "task_update", {
                    "task": f"{name}/b", "agent": "wai", "token": woke["out"]["token"],
                    "action": "complete"})
            check(max(latencies) < 1.0, f"wake-ups within a second: {latencies}")
            print("claim wake-up after a completion in another process: "
                  f"median {statistics.median(latencies) * 1000:.0f} ms, "
                  f"max {max(latencies) * 1000:.0f} ms")

            # Nothing to wait for but the deadline: claimed false, and how long it waited.
            started = time.monotonic()
            out, text = await call(waiter, "task_claim", {"agent": "wai", "wait_seconds": 1})
            elapsed = time.monotonic() - started
            check(out["claimed"] is False and out["reason"] == "none_ready", out)
            check(1.0 <= out["waited_seconds"] < 2.5, out)
            check(0.9 <= elapsed < 3.0, f"returned after {elapsed:.2f} s")
            check(text.startswith("nothing claimed after waiting"), text)

            # The inbox waits for a message from the other process.
            got = {}

            async def wait_for_message():
                out, _ = await call(waiter, "agent_collaboration", {
                    "action": "inbox", "agent": "wai", "ack": True, "wait_seconds": 30})
                got["at"] = time.monotonic()
                got["out"] = out

            async with anyio.create_task_group() as group:
                group.start_soon(wait_for_message)
                await anyio.sleep(0.5)
                check("out" not in got, "the inbox waits while it is empty")
                await call(worker, "agent_collaboration", {
                    "action": "message", "agent": "wok", "to": "wai", "note": "b is yours"})
                sent = time.monotonic()
            check([m["body"] for m in got["out"]["messages"]] == ["b is yours"], got["out"])
            print(f"inbox wake-up after a message from another process: "
                  f"{(got['at'] - sent) * 1000:.0f} ms")
            check(got["at"] - sent < 1.0, "the inbox wakes within a second")

            # A wait the client cancels ends: work that becomes ready later is not claimed
            # for a caller that is no longer listening.
            with anyio.move_on_after(0.5):
                await waiter.call_tool("task_claim", {"agent": "wai", "wait_seconds": 60})
            await call(worker, "workflow_create", {"name": "later", "tasks": [
                {"key": "t", "title": "after the cancel"}]})
            await anyio.sleep(0.5)
            held, _ = await call(waiter, "task_get", {"agent": "wai"})
            check(held.get("held", []) == [], f"a cancelled wait claimed nothing: {held}")
            out, _ = await call(waiter, "task_claim", {"agent": "wai"})
            check(out["task"]["task"] == "later/t", out)

            # Out of range: refused, naming the field.
            result = await waiter.call_tool("task_claim", {"agent": "wai", "wait_seconds": 301})
            check(result.is_error, "wait_seconds above 300 is refused")

    print("waiting: all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
