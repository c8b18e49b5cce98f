"""Server-Timing tells a user what capgate's own work cost their request."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings
from tests.runtime_helpers import headers, invoke
from tests.server.mcp_raw import mcp_call

METRIC = re.compile(r"(\w+);dur=(\d+\.\d\d)")


def timings(response: httpx.Response) -> dict[str, float]:
    value = response.headers.get("server-timing")
    assert value is not None, dict(response.headers)
    return {name: float(duration) for name, duration in METRIC.findall(value)}


async def test_capabilities_show_auth_ratelimit_and_total(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await client.get("/api/runtime/capabilities", headers=headers(key))
    assert response.status_code == 200
    split = timings(response)
    assert set(split) == {"auth", "ratelimit", "record", "total"}
    assert split["record"] == 0.0  # nothing was recorded for a read
    assert 0 < split["auth"] <= split["total"] and split["ratelimit"] <= split["total"]


async def test_a_tool_call_shows_its_record_write(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "example_echo", {"text": "hi"})
    assert response.status_code == 200
    split = timings(response)
    assert 0 < split["record"] <= split["total"]


async def test_mcp_tool_calls_carry_it_too(app: Starlette, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await mcp_call(app, key, "tools/call", {"name": "example_echo", "arguments": {"text": "hi"}})
    assert response.status_code == 200 and response.json()["result"]["isError"] is False
    assert timings(response)["record"] > 0


async def test_refused_keys_get_no_timing(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/runtime/capabilities", headers={"x-api-key": "cg_live_nope"})
    assert response.status_code == 401 and "server-timing" not in response.headers


async def test_it_can_be_turned_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", server_timing=False)
    await migrate(settings.resolved_database_url)
    app = create_app(settings)
    async with LifespanManager(app):
        state = app.state.capgate
        keys = KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)
        key = await keys.key(await keys.organization())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
            response = await http.get("/api/runtime/capabilities", headers=headers(key))
    assert response.status_code == 200 and "server-timing" not in response.headers
