"""Execution event streams: when they end, and how fast a live event reaches them."""

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth.dbtypes import utcnow
from server.app import create_app
from server.runtime.live import EventRecord
from server.state import AppState
from tests.conftest import migrate
from tests.deadlines import EVENTUALLY
from tests.helpers import KeyFactory, make_settings
from tests.runtime_helpers import headers, invoke, parse_sse


@pytest.fixture
async def slow_heartbeat_state(tmp_path: Path, sqlite_url: str) -> AsyncIterator[AppState]:
    """Heartbeats and polls an hour apart: a stream that waits for either would stall the test."""
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, sse_heartbeat_seconds=3600, execution_poll_seconds=3600)
    app = create_app(settings)
    async with LifespanManager(app):
        yield app.state.capgate


@pytest.mark.parametrize("last_event_id", ["5", "9"])
async def test_a_stream_resumed_at_or_after_the_final_event_closes_at_once(
    client: httpx.AsyncClient, keys: KeyFactory, last_event_id: str
) -> None:
    key = await keys.key(await keys.organization())
    body = (await invoke(client, key, "example_countdown", {"steps": 3, "interval_ms": 0})).json()
    url = f"/api/runtime/executions/{body['executionId']}/events"
    with anyio.fail_after(EVENTUALLY):  # before the fix it polled until max_stream_seconds
        response = await client.get(url, headers=headers(key, **{"Last-Event-ID": last_event_id}))
    assert response.status_code == 200 and parse_sse(response.text) == []


async def test_an_event_added_while_the_previous_one_is_sent_is_not_missed(slow_heartbeat_state: AppState) -> None:
    live = slow_heartbeat_state.runtime.live.open("exe_live", "org")
    live.add(EventRecord(1, "started", {}, utcnow()))
    stream = slow_heartbeat_state.runtime.follow(
        "exe_live", 0, heartbeat=slow_heartbeat_state.settings.sse_heartbeat_seconds
    )
    with anyio.fail_after(EVENTUALLY):  # a missed wake-up waits for the next heartbeat (an hour here)
        assert (await anext(stream)).seq == 1
        live.add(EventRecord(2, "progress", {}, utcnow()))  # arrives while the stream sends event 1
        live.add(EventRecord(3, "completed", {}, utcnow()))
        assert [event.seq async for event in stream] == [2, 3]
    slow_heartbeat_state.runtime.live.close("exe_live")
