"""Drives one MCP session over streamable HTTP with the official Python SDK, as an agent does.

Usage: python http_session.py URL TOKEN

Sends the token with the scheme in lower case (`bearer TOKEN`), makes a call, and leaves the
session, which makes the SDK DELETE it. Fails when the DELETE was not answered with 200 or
204, or when the SDK logged "Session termination failed" (what it does for any other
status). Prints the session's id, so that the caller can check that the server refuses it
afterwards. Exits non-zero on the first failed check.
"""

import asyncio
import logging
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Records(logging.Handler):
    """Keeps every record the SDK logs, at every level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def session(url: str, token: str) -> list[tuple[str, int]]:
    """Runs the session; returns the method and status of every HTTP exchange."""
    exchanges: list[tuple[str, int]] = []

    async def note(response: httpx2.Response) -> None:
        exchanges.append((response.request.method, response.status_code))

    http = httpx2.AsyncClient(
        headers={"Authorization": f"bearer {token}"},
        event_hooks={"response": [note]},
        timeout=httpx2.Timeout(30.0, read=300.0),
    )
    async with http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as client:
                init = await client.initialize()
                check(init.server_info.name == "orchestration", f"server {init.server_info}")
                status = await client.call_tool("workflow_status", {})
                check(not status.is_error, f"workflow_status: {status.content}")
    return exchanges


def main() -> None:
    url, token = sys.argv[1], sys.argv[2]
    records = Records()
    sdk_logger = logging.getLogger("mcp")
    sdk_logger.setLevel(logging.DEBUG)
    sdk_logger.addHandler(records)

    exchanges = asyncio.run(session(url, token))

    messages = [record.getMessage() for record in records.records]
    failed = [m for m in messages if "Session termination failed" in m]
    check(not failed, f"the SDK logged {failed}")
    deletes = [status for method, status in exchanges if method == "DELETE"]
    check(deletes == [204], f"one DELETE, answered 204: {exchanges}")
    ids = [m.split(": ", 1)[1] for m in messages if m.startswith("Received session ID: ")]
    check(len(ids) == 1, f"one session id in the log: {messages}")
    print(f"session: {ids[0]}")
    print("python sdk over http: all checks passed")


if __name__ == "__main__":
    main()
