"""A tool call over a legacy MCP session is bounded like the HTTP request that carried it."""

import functools
from pathlib import Path

import anyio
import httpx

from tests.deadlines import EVENTUALLY
from tests.runtime_helpers import HeldTool, app_client

JSON_AND_SSE = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
CALL_HOLD = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "hold", "arguments": {}}}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


async def open_legacy_session(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    """The headers of a handshake-era session the key opened."""
    headers = {**JSON_AND_SSE, "x-api-key": key}
    opened = await client.post("/mcp", json=INITIALIZE, headers=headers)
    session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    await client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    return session


async def test_the_kill_switch_also_stops_a_tool_running_for_a_legacy_session(tmp_path: Path, sqlite_url: str) -> None:
    held = HeldTool()
    async with app_client(tmp_path, sqlite_url, [held.tool()]) as (client, keys, state):
        key = await keys.key(await keys.organization())
        session = await open_legacy_session(client, key)
        responses: list[httpx.Response] = []

        async def post_call() -> None:
            responses.append(await client.post("/mcp", json=CALL_HOLD, headers=session))

        with anyio.fail_after(
            EVENTUALLY
        ):  # before the fix the response ended but the tool kept running: this timed out
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(post_call)
                await held.started.wait()
                assert state.streams.terminate(key[8:20]) >= 1
                await held.cancelled.wait()
        assert "API key has been revoked" in responses[0].text
        held.release.set()


async def test_max_stream_seconds_also_bounds_a_tool_running_for_a_legacy_session(
    tmp_path: Path, sqlite_url: str
) -> None:
    held = HeldTool()
    async with app_client(tmp_path, sqlite_url, [held.tool()], max_stream_seconds=1) as (client, keys, _state):
        key = await keys.key(await keys.organization())
        session = await open_legacy_session(client, key)
        with anyio.fail_after(EVENTUALLY):  # the tool is never released: only the time bound can end it
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(functools.partial(client.post, "/mcp", json=CALL_HOLD, headers=session))
                await held.cancelled.wait()
