"""Prompts and completion through the official Python MCP SDK, as a person's slash commands
reach the server: list the prompts, get each with its arguments, complete argument values from
the names in the store, and get a specific error for a wrong call.

Usage: python prompts.py PATH_TO_orchestration-mcp

Prints "prompts: all checks passed".
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def main(binary):
    with tempfile.TemporaryDirectory() as tmp:
        params = StdioServerParameters(command=binary, args=["--db", str(Path(tmp) / "p.db")])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                check(init.capabilities.prompts is not None, "prompts are announced")
                check(init.capabilities.completions is not None, "completions are announced")
                for name in ["ana", "anton", "bo"]:
                    await s.call_tool("agent_profile", {"action": "upsert", "name": name})
                await s.call_tool("workflow_create", {"name": "web", "tasks": [
                    {"key": "login", "title": "Login form"},
                    {"key": "home", "title": "Home page", "depends_on": ["login"]}]})
                claim = (await s.call_tool("task_claim", {"agent": "ana"})).structured_content
                await s.call_tool("task_update", {"task": "web/login", "agent": "ana",
                    "token": claim["token"], "action": "complete", "result": "done"})
                claim = (await s.call_tool("task_claim", {"agent": "bo"})).structured_content
                await s.call_tool("agent_collaboration", {"action": "message", "agent": "ana",
                    "to": "bo", "note": "home needs the new logo"})

                listed = await s.list_prompts()
                names = [p.name for p in listed.prompts]
                check(names == ["work", "standup", "plan-sprint", "retro", "handoff"], names)
                work = next(p for p in listed.prompts if p.name == "work")
                check([(a.name, a.required) for a in work.arguments]
                      == [("agent", True), ("workflow", False)], work.arguments)

                standup = await s.get_prompt("standup", {})
                text = standup.messages[0].content.text
                check(standup.messages[0].role == "user", standup)
                check("## ana (active)\n- done: `web/login`" in text, text)
                check("## bo (active)\n- done: nothing\n- holding: `web/home` (Home page, lease ends"
                      in text, text)
                check("- unread messages: 1" in text, text)

                work = (await s.get_prompt("work", {"agent": "bo"})).messages[0].content.text
                check(f"- `web/home` (Home page), token {claim['token']}" in work, work)
                check('task_claim {"agent": "bo", "wait_seconds": 60}' in work, work)
                new = (await s.get_prompt("work", {"agent": "cy"})).messages[0].content.text
                check("`cy` is not registered yet" in new, new)

                handoff = (await s.get_prompt("handoff", {"agent": "bo", "to": "ana"}))
                text = handoff.messages[0].content.text
                check(f'"task": "web/home", "token": {claim["token"]}, "to": "ana"' in text, text)

                plan = (await s.get_prompt("plan-sprint", {"name": "s1", "start": "2026-12-07"}))
                text = plan.messages[0].content.text
                check('"action": "plan", "name": "s1", "start": "2026-12-07"' in text, text)

                for name, args, expected in [
                    ("nope", {}, "no prompt `nope`; the prompts are work, standup"),
                    ("work", {}, "`work` needs `agent`"),
                    ("work", {"agent": "bo", "colour": "red"}, "has no argument `colour`"),
                    ("standup", {"hours": "yesterday"}, "`hours` is a whole number"),
                    ("handoff", {"agent": "bo", "to": "zed"}, "zed"),
                    ("retro", {"sprint": "s9"}, "s9"),
                    ("plan-sprint", {"name": "s2", "end": "soon"}, "`end` is a date"),
                ]:
                    try:
                        await s.get_prompt(name, args)
                    except MCPError as e:
                        check(expected in e.error.message, f"{name} {args}: {e.error.message}")
                    else:
                        raise AssertionError(f"{name} {args} should fail")

                done = await s.complete(PromptReference(type="ref/prompt", name="handoff"),
                                        {"name": "to", "value": "an"})
                check(done.completion.values == ["ana", "anton"], done.completion)
                done = await s.complete(PromptReference(type="ref/prompt", name="work"),
                                        {"name": "workflow", "value": ""})
                check(done.completion.values == ["web"], done.completion)
                done = await s.complete(PromptReference(type="ref/prompt", name="standup"),
                                        {"name": "hours", "value": "2"})
                check(done.completion.values == [], done.completion)
    print("prompts: all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
