"""The agent's seat, as agents use the server: three agents (backend, frontend, QA), each with
its own server process over stdio on one database, work an 18-task feature workflow with the
official Python MCP SDK, making the mistakes agents make on the way. Every answer is held to
the result budget, and the checks are the bugs an earlier run of this session showed.

Usage: python agent_seat.py PATH_TO_orchestration-mcp

Prints each tool's largest answer in bytes, then "agent seat: all checks passed".
"""

import asyncio
import json
import re
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

MAX_RESULT = 64 * 1024
TYPICAL = 4 * 1024
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
sizes: dict[str, int] = {}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Agent:
    """One agent and the server process it talks to."""

    def __init__(self, name, session):
        self.name = name
        self.session = session

    async def call(self, tool, arguments, *, error=False, typical=True):
        result = await self.session.call_tool(tool, arguments)
        size = len(result.model_dump_json(by_alias=True, exclude_none=True))
        sizes[tool] = max(sizes.get(tool, 0), size)
        check(size <= MAX_RESULT, f"{tool} answered {size} bytes")
        if typical:
            check(size <= TYPICAL, f"{tool} {arguments}: a typical answer of {size} bytes")
        text = result.content[0].text if result.content else ""
        check(result.is_error == error, f"{tool} {arguments}: isError={result.is_error}: {text}")
        if not error:
            formats(result.structured_content, "")
        return text if error else result.structured_content, text


def formats(value, key):
    """Tasks are `workflow/key`; times are RFC 3339 UTC with milliseconds."""
    if isinstance(value, dict):
        for k, v in value.items():
            formats(v, k)
    elif isinstance(value, list):
        for item in value:
            formats(item, key)
    elif isinstance(value, str):
        if key in ("task", "tasks", "ready", "unblocked", "depends_on"):
            check("/" in value, f"`{key}` holds {value!r}, not workflow/key")
        if key.endswith("_at") or key in ("at", "since"):
            check(TIME.match(value), f"`{key}` holds {value!r}")


def feature_tasks():
    skills = {"backend": {"rust": 3}, "frontend": {"css": 3}, "qa": {"testing": 3}}
    tasks = []
    for i in range(18):
        role = ["backend", "frontend", "qa"][i % 3]
        tasks.append(
            {
                "key": f"step-{i}",
                "title": f"{role} step {i}",
                "description": "As in the design document, section %d." % i,
                "estimate": 1 + i % 3,
                "skills": skills[role],
                "depends_on": [f"step-{i - 3}"] if i >= 3 else [],
            }
        )
    return tasks


async def run(binary, db):
    async with AsyncExitStack() as stack:
        agents = {}
        for name in ["backend", "frontend", "qa"]:
            params = StdioServerParameters(command=binary, args=["--db", db])
            read, write = await stack.enter_async_context(stdio_client(params))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            agents[name] = Agent(name, session)
        backend, frontend, qa = agents["backend"], agents["frontend"], agents["qa"]

        # Bug 3: a name nobody registered acts as nobody, and the typo is pointed out.
        text, _ = await backend.call("task_claim", {"agent": "backend"}, error=True)
        check(text.startswith("unknown agent `backend`"), text)
        for name, skill in [("backend", "rust"), ("frontend", "css"), ("qa", "testing")]:
            await agents[name].call(
                "agent_profile", {"action": "upsert", "name": name, "capabilities": {skill: 4}}
            )
        text, _ = await backend.call("task_claim", {"agent": "bakend"}, error=True)
        check("did you mean `backend`?" in text, text)

        # Bug 10: the naming rule, stated whole.
        text, _ = await backend.call(
            "workflow_create", {"name": "結帳-v3", "tasks": [{"key": "a", "title": "A"}]}, error=True
        )
        check("contains `結`" in text and "ASCII" in text, text)
        created, _ = await backend.call(
            "workflow_create", {"name": "checkout-v2", "tasks": feature_tasks()}
        )
        check(created["ready"][0].startswith("checkout-v2/"), created)

        # Bug 6: task_dependency takes the refs every other tool prints.
        await backend.call(
            "task_dependency",
            {"workflow": "checkout-v2", "action": "add", "task": "checkout-v2/step-17",
             "depends_on": "checkout-v2/step-0"},
        )

        # Bug 9: contradictions are refused.
        await frontend.call(
            "task_claim", {"agent": "frontend", "task": "checkout-v2/step-1", "workflow": "nope"},
            error=True,
        )

        # Each agent works its share, from its own process.
        done = 0
        idle_rounds = 0
        while done < 18 and idle_rounds < 30:
            progressed = False
            for agent in agents.values():
                claim, text = await agent.call("task_claim", {"agent": agent.name})
                if not claim["claimed"]:
                    check(claim["reason"] in (
                        "none_ready", "unqualified", "at_wip_limit"), claim)
                    continue
                task, token = claim["task"]["task"], claim["token"]
                # Bug 9: a heartbeat with a result is refused, and nothing changes.
                await agent.call(
                    "task_update",
                    {"task": task, "agent": agent.name, "token": token,
                     "action": "heartbeat", "result": "x"},
                    error=True,
                )
                await agent.call(
                    "task_update",
                    {"task": task, "agent": agent.name, "token": token,
                     "action": "progress", "note": "halfway"},
                )
                update, _ = await agent.call(
                    "task_update",
                    {"task": task, "agent": agent.name, "token": token,
                     "action": "complete", "result": f"{task} done"},
                )
                check(update["task"]["state"] == "succeeded", update)
                done += 1
                progressed = True
            idle_rounds = 0 if progressed else idle_rounds + 1
        check(done == 18, f"{done} of 18 tasks done")
        status, text = await qa.call("workflow_status", {"workflow": "checkout-v2"})
        check(status["workflow"]["status"] == "succeeded", status)
        check("18 of 18 tasks done" in text, text)

        # Bug 8: no self-handoff, no message to oneself.
        await qa.call(
            "agent_collaboration",
            {"action": "message", "agent": "qa", "to": "qa", "note": "me"}, error=True,
        )
        sent, _ = await qa.call(
            "agent_collaboration",
            {"action": "message", "agent": "qa", "to": "backend", "note": "all green"},
        )
        check(sent["sent"] == 1, sent)
        inbox, _ = await backend.call(
            "agent_collaboration", {"action": "inbox", "agent": "backend", "ack": True}
        )
        check(inbox["messages"][0]["body"] == "all green", inbox)

        # Contract 4: after losing its context, an agent finds what it holds.
        await backend.call(
            "workflow_create",
            {"name": "hotfix", "tasks": [{"key": "patch", "title": "Patch", "skills": {"rust": 2}}]},
        )
        claim, _ = await backend.call("task_claim", {"agent": "backend"})
        held, _ = await backend.call("task_get", {"agent": "backend"})
        check(held["held"][0]["token"] == claim["token"], held)
        whole, _ = await qa.call("task_get", {"task": "checkout-v2/step-4"})
        check(whole["done_by"] == "backend" or whole["done_by"], whole)

        # Bug 7: a paused workflow and a full WIP limit are reasons, not errors.
        await backend.call("workflow_execute", {"workflow": "hotfix", "action": "pause"})
        idle, _ = await frontend.call("task_claim", {"agent": "frontend", "workflow": "hotfix"})
        check(idle["reason"] == "workflow_not_running" and "paused" in idle["detail"], idle)

        # Bug 1: 60 dependencies with 20 KB results each still make a claim that fits.
        wide = [{"key": f"d{i}", "title": "part"} for i in range(60)]
        wide.append({"key": "join", "title": "join", "depends_on": [f"d{i}" for i in range(60)]})
        await qa.call("workflow_create", {"name": "wide", "tasks": wide})
        for i in range(60):
            claim, _ = await qa.call("task_claim", {"agent": "qa", "task": f"wide/d{i}"})
            await qa.call(
                "task_update",
                {"task": f"wide/d{i}", "agent": "qa", "token": claim["token"],
                 "action": "complete", "result": "r" * 20_000},
                typical=False,
            )
        claim, text = await qa.call(
            "task_claim", {"agent": "qa", "task": "wide/join", "max_result_bytes": 16000},
            typical=False,
        )
        check(claim["claimed"] and "cut to fit" in text, text)
        part, _ = await qa.call(
            "task_get", {"task": "wide/d3", "part": "result"}, typical=False
        )
        check(part["bytes"] == 20_000 and part.get("next_offset") is None, part["bytes"])

        # A 600-task workflow: every list is cut and says so.
        many = [{"key": f"t{i}", "title": "step"} for i in range(600)]
        created, _ = await qa.call("workflow_create", {"name": "big", "mode": "parallel", "tasks": many})
        check(created["truncated"]["ready"] == 600, created["truncated"])
        status, _ = await qa.call(
            "workflow_status", {"workflow": "big", "diagram": True, "detail": "full", "limit": 500},
            typical=False,
        )
        check(status["truncated"]["tasks"] == 600 and status["next_cursor"], status["truncated"])
        check(status["mermaid"].count("\n") < 80, "the diagram is bounded")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(binary, str(Path(directory) / "seat.db")))
    print(json.dumps(sizes, sort_keys=True))
    print("agent seat: all checks passed")


if __name__ == "__main__":
    main()
