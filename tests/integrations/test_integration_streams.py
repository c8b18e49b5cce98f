"""Upstream progress reaches the caller, a caller's cancel reaches the upstream."""

from __future__ import annotations

import secrets

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from server.state import AppState
from tests.helpers import KeyFactory
from tests.integrations.helpers import connect
from tests.integrations.upstreams import TOKENS, Upstream
from tests.mcp_helpers import mcp_client
from tests.runtime_helpers import headers, invoke, parse_sse


async def test_upstream_progress_reaches_the_mcp_client_and_the_execution_events(
    app: Starlette, client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url)
    key = await keys.key(org)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with mcp_client("http://capgate.test/mcp", key, app=app) as mcp:
        result = await mcp.call_tool("crm_slow_progress", {"steps": 3}, progress_callback=on_progress)
    assert not result.is_error
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]

    events_url = f"/api/runtime/executions/{result.meta['executionId']}/events"
    events = parse_sse((await client.get(events_url, headers=headers(key))).text)
    assert [event["event"] for event in events] == ["started", "log", "progress", "progress", "progress", "completed"]
    assert events[1]["data"]["data"] == {"level": "info", "message": "starting the steps"}
    assert events[3]["data"]["data"] == {"progress": 2, "total": 3, "message": "step 2"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_client_cancel_cancels_the_upstream_call(
    app: Starlette, state: AppState, keys: KeyFactory, http_upstream: Upstream, mode: str
) -> None:
    org = await keys.organization()
    await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url)
    key = await keys.key(org)
    marker = secrets.token_hex(6)

    async with mcp_client("http://capgate.test/mcp", key, app=app, mode=mode) as mcp:  # type: ignore[arg-type]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(mcp.call_tool, "crm_wait_for_cancel", {"marker": marker})
            await anyio.to_thread.run_sync(http_upstream.wait_for, "started", marker)
            tasks.cancel_scope.cancel()
    await anyio.to_thread.run_sync(http_upstream.wait_for, "cancelled", marker)


async def test_a_call_over_the_integrations_timeout_fails_clearly_and_is_cancelled_upstream(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, http_upstream: Upstream
) -> None:
    org = await keys.organization()
    await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=http_upstream.url, timeout_seconds=1)
    key = await keys.key(org)
    marker = secrets.token_hex(6)
    response = await invoke(client, key, "crm_wait_for_cancel", {"marker": marker})
    assert response.status_code == 200
    assert response.json()["isError"] is True and "did not answer within 1 s" in response.json()["error"]
    await anyio.to_thread.run_sync(http_upstream.wait_for, "cancelled", marker)
    assert (await invoke(client, key, "crm_whoami")).json()["isError"] is False  # the session still serves
