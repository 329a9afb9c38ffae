"""Resources and subscriptions through the official Python MCP SDK: list the resources (paged)
and the templates, read workflows, tasks, sprints and inboxes as Markdown and as JSON, get a
specific error for a URI that names nothing, and subscribe in one server process while another
process on the same database makes the change: the update arrives within a second, and none
after unsubscribing.

Usage: python resources.py PATH_TO_orchestration-mcp

Prints the notification latencies, then "resources: all checks passed".
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def server(stack, binary, db, handler=None):
    params = StdioServerParameters(command=binary, args=["--db", str(db)])
    read, write = await stack.enter_async_context(stdio_client(params))
    session = await stack.enter_async_context(ClientSession(read, write, message_handler=handler))
    init = await session.initialize()
    return session, init


async def call(session, tool, arguments):
    result = await session.call_tool(tool, arguments)
    check(not result.is_error, f"{tool} {arguments}: {result.content}")
    return result.structured_content


async def main(binary):
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "r.db"
        updates = []

        async def handler(message):
            if isinstance(message, types.ResourceUpdatedNotification):
                updates.append((time.monotonic(), str(message.params.uri)))

        async with AsyncExitStack() as stack:
            reader, init = await server(stack, binary, db, handler)
            check(init.capabilities.resources is not None, "resources are announced")
            check(init.capabilities.resources.subscribe, "subscriptions are announced")
            writer, _ = await server(stack, binary, db)
            for name in ["ana", "bo"]:
                await call(writer, "agent_profile", {"action": "upsert", "name": name})
            for i in range(60):
                await call(writer, "workflow_create", {"name": f"w{i:02}", "tasks": [
                    {"key": "a", "title": "first", "description": "line one\nline two"},
                    {"key": "b", "title": "second", "depends_on": ["a"]}]})

            # 60 workflows and 2 inboxes: two pages of at most 100.
            first = await reader.list_resources()
            check(len(first.resources) == 62 and first.next_cursor is None, len(first.resources))
            uris = [str(r.uri) for r in first.resources]
            check("orchestration://workflow/w00" in uris, uris[:5])
            check("orchestration://agent/ana/inbox" in uris, uris)
            for i in range(60, 120):
                await call(writer, "workflow_create", {"name": f"w{i:03}", "tasks": [
                    {"key": "a", "title": "first"}]})
            first = await reader.list_resources()
            check(len(first.resources) == 100 and first.next_cursor, first.next_cursor)
            second = await reader.list_resources(
                params=types.PaginatedRequestParams(cursor=first.next_cursor))
            check(len(second.resources) == 22 and second.next_cursor is None, len(second.resources))
            check(not set(map(str, (r.uri for r in first.resources)))
                  & set(map(str, (r.uri for r in second.resources))), "pages do not overlap")

            templates = await reader.list_resource_templates()
            check([t.uri_template for t in templates.resource_templates] == [
                "orchestration://workflow/{name}", "orchestration://task/{workflow}/{key}",
                "orchestration://sprint/{name}", "orchestration://agent/{name}/inbox"],
                templates)

            md = (await reader.read_resource("orchestration://workflow/w00")).contents[0]
            check(md.mime_type == "text/markdown", md)
            check(md.text.startswith("# orchestration://workflow/w00\n\n"), md.text[:80])
            check("w00/a" in md.text, md.text)
            js = (await reader.read_resource("orchestration://workflow/w00?format=json")).contents[0]
            check(js.mime_type == "application/json", js)
            status = json.loads(js.text)
            check(status["workflows"][0]["name"] == "w00" if "workflows" in status
                  else "w00/a" in js.text, status)

            task = (await reader.read_resource("orchestration://task/w00/a")).contents[0]
            check("line one line two" in task.text, task.text)
            inbox = (await reader.read_resource("orchestration://agent/ana/inbox")).contents[0]
            check("0 messages" in inbox.text, inbox.text)

            for uri, expected in [
                ("orchestration://workflow/nope", "unknown workflow `nope`"),
                ("orchestration://task/w00/zz", "zz"),
                ("orchestration://agent/zed/inbox", "unknown agent `zed`"),
                ("orchestration://planet/mars", "no resource `orchestration://planet/mars`"),
                ("orchestration://workflow/w00?format=xml", "the only query is"),
            ]:
                try:
                    await reader.read_resource(uri)
                except MCPError as e:
                    check(expected in e.error.message, f"{uri}: {e.error.message}")
                else:
                    raise AssertionError(f"{uri} should fail")

            # Subscribe here; the other process changes things.
            await reader.subscribe_resource("orchestration://workflow/w01")
            await reader.subscribe_resource("orchestration://agent/ana/inbox")
            latencies = []
            claimed = await call(writer, "task_claim", {"agent": "bo", "workflow": "w01"})
            for step in range(3):
                await anyio.sleep(0.5)
                updates.clear()
                # Timed from before the call: the update may come before its answer.
                changed = time.monotonic()
                if step == 0:
                    await call(writer, "task_update", {"task": "w01/a", "agent": "bo",
                        "token": claimed["token"], "action": "progress", "note": "half"})
                elif step == 1:
                    await call(writer, "task_update", {"task": "w01/a", "agent": "bo",
                        "token": claimed["token"], "action": "complete"})
                else:
                    await call(writer, "agent_collaboration", {"action": "message",
                        "agent": "bo", "to": "ana", "note": "w01 done"})
                with anyio.fail_after(3):
                    while not updates:
                        await anyio.sleep(0.01)
                latencies.append(updates[0][0] - changed)
                want = "orchestration://agent/ana/inbox" if step == 2 else "orchestration://workflow/w01"
                check(updates[0][1] == want, updates)
            check(max(latencies) < 1.0, f"updates within a second: {latencies}")
            print(f"resource updated after a change in another process: median "
                  f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")

            # A change to a resource nobody subscribed to says nothing; after unsubscribing,
            # nothing either.
            updates.clear()
            await call(writer, "workflow_execute", {"workflow": "w02", "action": "pause"})
            await reader.unsubscribe_resource("orchestration://workflow/w01")
            await reader.unsubscribe_resource("orchestration://agent/ana/inbox")
            await call(writer, "workflow_execute", {"workflow": "w01", "action": "cancel"})
            await anyio.sleep(0.8)
            check(updates == [], f"no update after unsubscribing: {updates}")
    print("resources: all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
