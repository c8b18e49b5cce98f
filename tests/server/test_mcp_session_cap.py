"""Issue 14 item 9: legacy MCP sessions per key are capped (429 like streams); at the process's cap the
least recently used session is closed to make room."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import migrate
from tests.helpers import factory_for, make_settings, running_app

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


async def initialize(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.post("/mcp", json=INITIALIZE, headers={**HEADERS, "x-api-key": key})


async def ping(http: httpx.AsyncClient, key: str, session_id: str) -> int:
    headers = {**HEADERS, "x-api-key": key, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}
    return (await http.post("/mcp", json=PING, headers=headers)).status_code


async def test_legacy_session_flood_per_key_is_capped(tmp_path: Path, sqlite_url: str) -> None:
    """Attack: one key opened 1,160 legacy sessions in 15 s (+35 MB)."""
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, max_mcp_sessions_per_key=5)
    async with running_app(settings) as (application, http):
        keys = factory_for(application)
        organization = await keys.organization()
        key, other = await keys.key(organization), await keys.key(organization)
        opened = [await initialize(http, key) for _ in range(30)]
        assert [r.status_code for r in opened] == [200] * 5 + [429] * 25
        refused: dict[str, Any] = opened[-1].json()
        assert refused["error"]["data"]["code"] == "too_many_sessions"
        assert opened[-1].headers["retry-after"] == "1"
        assert (await initialize(http, other)).status_code == 200  # another key is not affected
        first = opened[0].headers["mcp-session-id"]
        delete = {**HEADERS, "x-api-key": key, "mcp-session-id": first, "mcp-protocol-version": "2025-06-18"}
        assert (await http.delete("/mcp", headers=delete)).status_code == 200
        assert (await initialize(http, key)).status_code == 200  # a closed session frees its place


async def test_at_the_process_cap_the_idlest_session_is_evicted(tmp_path: Path, sqlite_url: str) -> None:
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, max_mcp_sessions_per_key=10, max_mcp_sessions=3)
    async with running_app(settings) as (application, http):
        keys = factory_for(application)
        organization = await keys.organization()
        key_ids = [await keys.key(organization) for _ in range(4)]
        sessions = [(await initialize(http, key)).headers["mcp-session-id"] for key in key_ids[:3]]
        assert await ping(http, key_ids[0], sessions[0]) == 200  # the first is used again: the second is idlest
        assert (await initialize(http, key_ids[3])).status_code == 200
        assert await ping(http, key_ids[1], sessions[1]) == 404
        assert await ping(http, key_ids[0], sessions[0]) == 200
        assert await ping(http, key_ids[2], sessions[2]) == 200
