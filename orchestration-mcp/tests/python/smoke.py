"""Drives the orchestration MCP server over stdio with the official Python SDK.

Usage: python smoke.py COMMAND [ARG ...]

COMMAND is the server's binary, or a launcher with its arguments (`npx orchestration-mcp`,
`uvx --from WHEEL orchestration-mcp`); `--db FILE` is appended to it.

The SDK validates every structuredContent against the tool's outputSchema, so a call that
succeeds here also proves that our schemas describe our results. Exits non-zero on the first
failed check.
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

EXPECTED_TOOLS = {
    "workflow_create",
    "workflow_execute",
    "task_dependency",
    "workflow_status",
    "task_claim",
    "task_update",
    "task_get",
    "agent_profile",
    "agent_delegation",
    "agent_workload",
    "agent_performance",
    "agent_collaboration",
    "sprint_planning",
    "sprint_analytics",
    "sprint_retrospective",
}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def legacy_session(command: list[str], db: str) -> None:
    params = StdioServerParameters(command=command[0], args=[*command[1:], "--db", db])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as client:
            init = await client.initialize()
            check(init.server_info.name == "orchestration", f"server name {init.server_info.name}")
            check("task_claim" in (init.instructions or ""), "instructions explain the loop")

            tools = (await client.list_tools()).tools
            names = {tool.name for tool in tools}
            check(names == EXPECTED_TOOLS, f"tools: {sorted(names)}")
            for tool in tools:
                check(tool.output_schema is not None, f"{tool.name} has an output schema")

            created = await client.call_tool(
                "workflow_create",
                {
                    "name": "py-smoke",
                    "tasks": [
                        {"key": "build", "title": "Build", "estimate": 2},
                        {"key": "test", "title": "Test", "depends_on": ["build"]},
                    ],
                },
            )
            check(not created.is_error, f"create: {created.content}")
            check(created.structured_content["ready"] == ["py-smoke/build"], f"{created.structured_content}")
            check(
                created.structured_content["critical_path"]["tasks"] == ["py-smoke/build", "py-smoke/test"],
                "critical path",
            )

            unknown = await client.call_tool("task_claim", {"agent": "py-agent"})
            check(unknown.is_error, "an unregistered agent claims nothing")
            check("unknown agent `py-agent`" in unknown.content[0].text, unknown.content[0].text)
            await client.call_tool("agent_profile", {"action": "upsert", "name": "py-agent"})
            claim = await client.call_tool("task_claim", {"agent": "py-agent"})
            data = claim.structured_content
            check(data["claimed"] and data["task"]["task"] == "py-smoke/build", f"claim: {data}")
            token = data["token"]

            beat = await client.call_tool(
                "task_update",
                {"task": "py-smoke/build", "agent": "py-agent", "token": token, "action": "heartbeat"},
            )
            check(beat.structured_content["task"]["state"] == "running", f"heartbeat: {beat.structured_content}")

            done = await client.call_tool(
                "task_update",
                {
                    "task": "py-smoke/build",
                    "agent": "py-agent",
                    "token": token,
                    "action": "complete",
                    "result": "binary at target/",
                },
            )
            check(done.structured_content["unblocked"] == ["py-smoke/test"], f"complete: {done.structured_content}")

            stale = await client.call_tool(
                "task_update",
                {"task": "py-smoke/build", "agent": "py-agent", "token": token, "action": "complete"},
            )
            check(stale.is_error, "a second completion is rejected")
            check("succeeded" in stale.content[0].text, f"stale: {stale.content[0].text}")

            await client.call_tool(
                "workflow_create",
                {
                    "name": "py-cycle",
                    "start": False,
                    "tasks": [{"key": "a", "title": "A"}, {"key": "b", "title": "B", "depends_on": ["a"]}],
                },
            )
            cycle = await client.call_tool(
                "task_dependency",
                {"workflow": "py-cycle", "action": "add", "task": "a", "depends_on": "b"},
            )
            check(cycle.is_error, "a cycle is rejected")
            check("dependency cycle: a -> b -> a" in cycle.content[0].text, cycle.content[0].text)

            status = await client.call_tool("workflow_status", {"workflow": "py-smoke", "diagram": True})
            check(status.structured_content["progress"] == "moving", f"{status.structured_content}")
            check(status.structured_content["mermaid"].startswith("flowchart LR"), "mermaid diagram")

            await client.call_tool(
                "agent_profile", {"action": "upsert", "name": "py-lead", "points_per_day": 2}
            )
            sprint = await client.call_tool(
                "sprint_planning",
                {
                    "action": "start",
                    "name": "py-sprint",
                    "start": "2026-03-02",
                    "end": "2026-03-06",
                    "focus_factor": 1,
                    "workflows": ["py-smoke"],
                    "members": [{"agent": "py-lead"}],
                },
            )
            plan = sprint.structured_content["plan"]
            check(not sprint.is_error and plan["capacity"] == 10.0, f"sprint: {sprint.content}")
            check(plan["selected"] == ["py-smoke/test"], f"sprint plan: {plan}")
            analytics = await client.call_tool("sprint_analytics", {"name": "py-sprint"})
            check(analytics.structured_content["totals"]["committed"] == 1.0, f"{analytics.structured_content}")
            check("burndown" in analytics.content[0].text, "a text chart in the summary")

            bad = await client.call_tool("task_claim", {"agent": "py-agent", "lease_seconds": "soon"})
            check(bad.is_error and "invalid type" in bad.content[0].text, f"bad arguments: {bad.content}")


async def modern_client(command: list[str], db: str) -> None:
    """The SDK's high-level client negotiates the 2026-07-28 protocol (no handshake)."""
    params = StdioServerParameters(command=command[0], args=[*command[1:], "--db", db])
    async with Client(params, mode="auto") as client:
        check(client.protocol_version == "2026-07-28", f"negotiated {client.protocol_version}")
        names = {tool.name for tool in (await client.list_tools()).tools}
        check(names == EXPECTED_TOOLS, f"tools: {sorted(names)}")
        status = await client.call_tool("workflow_status", {"workflow": "py-smoke"})
        check(not status.is_error, f"status: {status.content}")
        check(status.structured_content["workflow"]["done_points"] == 2.0, f"{status.structured_content}")


def main() -> None:
    command = sys.argv[1:]
    check(command, "usage: smoke.py COMMAND [ARG ...]")
    with tempfile.TemporaryDirectory() as directory:
        db = str(Path(directory) / "smoke.db")
        asyncio.run(legacy_session(command, db))
        # The same database, seen by a second process through the newer protocol.
        asyncio.run(modern_client(command, db))
    print("python sdk: all checks passed")


if __name__ == "__main__":
    main()
