"""The same calls through the same Python MCP client, in one run: our `task_claim` and
`task_update` against Task Master's `next_task` and `set_task_status`, on a chain of 100 tasks.

Task Master rereads and rewrites a JSON file on every call and has no claim; `next_task` is the
nearest thing to a claim and `set_task_status` to a completion. Both servers run over stdio.

Usage (the Python MCP SDK installed, Task Master 0.43.1 installed with npm):

    python benches/peers/task_master.py target/release/orchestration-mcp \
        node_modules/task-master-ai/dist/mcp-server.js

Prints the p50 of each call and the ratios; the targets are at least 8x for both.
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

TASKS = 100


def p50(samples):
    return statistics.median(samples) * 1e3


async def ours(binary):
    """Claims and completes each task of a chain of TASKS, timing each call."""
    directory = tempfile.mkdtemp()
    params = StdioServerParameters(command=binary, args=["--db", os.path.join(directory, "o.db")])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("agent_profile", {"action": "upsert", "name": "a"})
        tasks = [
            {"key": f"t{i}", "title": f"task {i}", "depends_on": [f"t{i - 1}"] if i else []}
            for i in range(TASKS)
        ]
        created = await session.call_tool("workflow_create", {"name": "chain", "tasks": tasks})
        assert not created.is_error, created
        claims, updates = [], []
        for _ in range(TASKS):
            start = time.perf_counter()
            claim = await session.call_tool("task_claim", {"agent": "a"})
            claims.append(time.perf_counter() - start)
            claimed = claim.structured_content
            assert claimed["claimed"], claimed
            start = time.perf_counter()
            update = await session.call_tool(
                "task_update",
                {
                    "task": claimed["task"]["task"],
                    "agent": "a",
                    "token": claimed["token"],
                    "action": "complete",
                    "result": "ok",
                },
            )
            updates.append(time.perf_counter() - start)
            assert not update.is_error, update
        return claims, updates


async def task_master(server):
    """Asks for the next task and marks it done for each task of a chain of TASKS."""
    root = tempfile.mkdtemp()
    os.makedirs(os.path.join(root, ".taskmaster", "tasks"))
    tasks = [
        {
            "id": i + 1,
            "title": f"task {i}",
            "description": "work",
            "status": "pending",
            "dependencies": [i] if i else [],
            "priority": "medium",
            "details": "",
            "testStrategy": "",
            "subtasks": [],
        }
        for i in range(TASKS)
    ]
    stamp = "2026-01-01T00:00:00.000Z"
    with open(os.path.join(root, ".taskmaster", "tasks", "tasks.json"), "w") as f:
        metadata = {"created": stamp, "updated": stamp, "description": "chain"}
        json.dump({"master": {"tasks": tasks, "metadata": metadata}}, f)
    with open(os.path.join(root, ".taskmaster", "config.json"), "w") as f:
        json.dump({"global": {"logLevel": "silent"}}, f)
    params = StdioServerParameters(
        command="node", args=[server], cwd=root, env={**os.environ, "TASK_MASTER_TOOLS": "core"}
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        nexts, sets = [], []
        for i in range(TASKS):
            start = time.perf_counter()
            found = await session.call_tool("next_task", {"projectRoot": root})
            nexts.append(time.perf_counter() - start)
            assert not found.is_error, found
            # The answer must name the task the chain is at, or the peer is timed failing.
            assert f'"id": {i + 1},' in found.content[0].text, found.content[0].text[:300]
            start = time.perf_counter()
            done = await session.call_tool(
                "set_task_status", {"id": str(i + 1), "status": "done", "projectRoot": root}
            )
            sets.append(time.perf_counter() - start)
            assert not done.is_error, done
        return nexts, sets


async def main():
    claims, updates = await ours(sys.argv[1])
    nexts, sets = await task_master(sys.argv[2])
    print(f"orchestration-mcp: task_claim p50 {p50(claims):.3f} ms, task_update p50 {p50(updates):.3f} ms")
    print(f"Task Master: next_task p50 {p50(nexts):.3f} ms, set_task_status p50 {p50(sets):.3f} ms")
    print(
        f"ratios: next_task / task_claim {p50(nexts) / p50(claims):.1f}x, "
        f"set_task_status / task_update {p50(sets) / p50(updates):.1f}x (targets: at least 8x)"
    )


asyncio.run(main())
