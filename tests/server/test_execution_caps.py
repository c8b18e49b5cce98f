"""Issue 14 item 12: concurrent executions are capped per key and per organization (429), and a
background execution (``Prefer: respond-async``) answers 202 at once and runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel
from starlette.applications import Starlette

from tests.conftest import migrate
from tests.helpers import factory_for, key_id_of, make_settings, running_app
from tools.context import ToolContext
from tools.registry import Tool, ToolRegistry


class Empty(BaseModel):
    pass


class Gate:
    def __init__(self) -> None:
        self.open = anyio.Event()

    async def tool(self, _ctx: ToolContext, _args: Empty) -> dict[str, Any]:
        await self.open.wait()
        return {"done": True}


@pytest.fixture
async def gated(tmp_path: Path, sqlite_url: str) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, Gate]]:
    await migrate(sqlite_url)
    gate = Gate()
    settings = make_settings(tmp_path, sqlite_url, max_executions_per_key=2, max_executions_per_organization=3)
    registry = ToolRegistry([Tool("wait_for_gate", "waits until the test opens the gate", Empty, gate.tool)])
    async with running_app(settings, tools=registry) as (application, http):
        yield application, http, gate


async def call(http: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await http.post(
        "/api/runtime/tools/wait_for_gate", json={"input": {}}, headers={"x-api-key": key, **headers}
    )


async def test_unbounded_concurrent_executions_get_429_per_key_and_per_organization(
    gated: tuple[Starlette, httpx.AsyncClient, Gate],
) -> None:
    """Attack: a key started executions without bound (and they kept running after the caller left)."""
    application, http, gate = gated
    keys = factory_for(application)
    organization = await keys.organization()
    first, second = await keys.key(organization), await keys.key(organization)
    slots = application.state.capgate.runtime.slots
    answers: list[int] = []

    async def held(key: str) -> None:
        answers.append((await call(http, key)).status_code)

    async with anyio.create_task_group() as tasks:
        for key in (first, first, second):
            tasks.start_soon(held, key)
        with anyio.fail_after(5):
            while slots.running(organization_id=organization.id) < 3:
                await anyio.sleep(0.01)
        with anyio.fail_after(5):  # before the fix this call just waited at the gate too
            over_key = await call(http, first)
        assert over_key.status_code == 429
        assert over_key.json()["code"] == "too_many_executions"
        assert over_key.headers["retry-after"] == "1"
        with anyio.fail_after(5):
            over_organization = await call(http, second)  # the key has room, its organization does not
        assert over_organization.status_code == 429
        assert "organization" in over_organization.json()["error"]
        gate.open.set()
    assert answers == [200, 200, 200]
    assert slots.running(key_id=key_id_of(first)) == 0
    assert (await call(http, first)).status_code == 200  # places are given back


async def test_prefer_respond_async_runs_in_the_background(gated: tuple[Starlette, httpx.AsyncClient, Gate]) -> None:
    application, http, gate = gated
    keys = factory_for(application)
    key = await keys.key(await keys.organization())
    with anyio.fail_after(5):
        accepted = await call(http, key, prefer="respond-async")
    assert accepted.status_code == 202
    assert accepted.headers["preference-applied"] == "respond-async"
    body = accepted.json()
    assert body["status"] == "running" and body["result"] is None
    assert body["eventsUrl"].endswith(f"/api/runtime/executions/{body['executionId']}/events")
    execution = f"/api/runtime/executions/{body['executionId']}"
    assert (await http.get(execution, headers={"x-api-key": key})).json()["status"] == "running"
    gate.open.set()
    with anyio.fail_after(5):
        while (found := (await http.get(execution, headers={"x-api-key": key})).json())["status"] == "running":
            await anyio.sleep(0.02)
    assert found["status"] == "succeeded" and found["result"] == {"done": True}
