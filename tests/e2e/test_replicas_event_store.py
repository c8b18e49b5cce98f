"""The shared event store of legacy SSE streams across replicas: a resume is served from the database,
and another key's event id replays nothing."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from mcp.server.streamable_http import GET_STREAM_KEY
from sqlalchemy import select, update

from server.db import create_engine, session_factory
from server.mcp.models import McpSessionEvent
from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CapgateProcess
from tests.e2e.test_deploy import replicas  # noqa: F401  (fixture)
from tests.e2e.test_replicas_lb import legacy_headers, open_session, replica_env  # noqa: F401  (fixture)
from tests.e2e.test_replicas_streams import get_stream

pytestmark = pytest.mark.e2e
FROM_THE_STORE = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "stored"}}


async def stored_events(database_url: str, session_id: str, count: int) -> list[McpSessionEvent]:
    """The session's standalone-stream events with a message, once ``count`` are stored (writes are batched)."""
    engine = create_engine(database_url)
    try:
        with anyio.fail_after(EVENTUALLY):
            while True:
                async with session_factory(engine)() as session:
                    query = select(McpSessionEvent).where(
                        McpSessionEvent.session_id == session_id,
                        McpSessionEvent.stream_id == GET_STREAM_KEY,  # not the answers to its POSTs
                        McpSessionEvent.message.is_not(None),  # type: ignore[union-attr]
                    )
                    rows = list((await session.execute(query.order_by(McpSessionEvent.sequence))).scalars())
                if len(rows) >= count:
                    return rows
                await anyio.sleep(0.05)
    finally:
        await engine.dispose()


async def rewrite_event(database_url: str, event_id: str, message: dict[str, object]) -> None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine).begin() as session:
            await session.execute(
                update(McpSessionEvent).where(McpSessionEvent.event_id == event_id).values(message=json.dumps(message))  # type: ignore[arg-type]
            )
    finally:
        await engine.dispose()


async def test_a_resume_through_another_replica_is_served_from_the_shared_store(
    replicas: list[CapgateProcess],  # noqa: F811
    replica_env: dict[str, str],  # noqa: F811
) -> None:
    database = replica_env["CAPGATE_DATABASE_URL"]
    manager = replicas[0].create_key("demo", "--scope", "*")["key"]
    agent = replicas[0].create_key("demo")
    session_id = open_session(replicas[0].url, agent["key"])  # owned by replica 1
    admin = httpx.AsyncClient(base_url=replicas[0].url, headers={"x-api-key": manager}, timeout=EVENTUALLY)
    async with admin:
        async with get_stream(replicas[0].url, agent["key"], session_id) as stream:
            primer = await stream.next()
            changed = await admin.patch(f"/api/keys/{agent['id']}", json={"allowedTools": ["example_*"]})
            assert changed.status_code == 200, changed.text
            seen = await stream.next_message()
        for tools in (["memory_*"], ["example_*"]):  # missed while no stream is open
            changed = await admin.patch(f"/api/keys/{agent['id']}", json={"allowedTools": tools})
            assert changed.status_code == 200, changed.text
        stored = await stored_events(database, session_id, 3)
    assert [row.event_id for row in stored][0] == seen["id"]
    assert all(json.loads(row.message or "")["method"] == "notifications/tools/list_changed" for row in stored)
    assert primer["id"] not in {row.event_id for row in stored}  # the priming event is stored without a message

    # Change what the store holds for the first missed event: the resume must show the stored version.
    await rewrite_event(database, stored[1].event_id, FROM_THE_STORE)
    async with get_stream(replicas[2].url, agent["key"], session_id, last_event_id=seen["id"]) as resumed:
        first, second = await resumed.next_message(), await resumed.next_message()
    assert (first["id"], json.loads(first["data"])) == (stored[1].event_id, FROM_THE_STORE)
    assert second["id"] == stored[2].event_id


async def test_another_keys_event_id_replays_nothing(
    replicas: list[CapgateProcess],  # noqa: F811
) -> None:
    manager = replicas[0].create_key("demo", "--scope", "*")["key"]
    victim, attacker = replicas[0].create_key("demo"), replicas[0].create_key("demo")
    victim_session = open_session(replicas[0].url, victim["key"])
    attacker_session = open_session(replicas[0].url, attacker["key"])
    async with httpx.AsyncClient(base_url=replicas[0].url, headers={"x-api-key": manager}, timeout=EVENTUALLY) as admin:
        async with get_stream(replicas[0].url, victim["key"], victim_session) as stream:
            primer = await stream.next()
            changed = await admin.patch(f"/api/keys/{victim['id']}", json={"allowedTools": ["example_*"]})
            assert changed.status_code == 200, changed.text
            await stream.next_message()
        changed = await admin.patch(f"/api/keys/{victim['id']}", json={"allowedTools": ["memory_*"]})
        assert changed.status_code == 200, changed.text  # an event the attacker would like to replay

    for server in (replicas[0], replicas[2]):  # at the owner, and relayed from another replica
        headers = {**legacy_headers(attacker["key"], attacker_session), "Last-Event-ID": primer["id"]}
        async with (
            httpx.AsyncClient(timeout=EVENTUALLY) as http,
            http.stream("GET", f"{server.url}/mcp", headers={**headers, "Accept": "text/event-stream"}) as response,
        ):
            body = (await response.aread()).decode()
        assert "data:" not in body.replace("data: \n", ""), body  # nothing of the victim's stream
        assert "list_changed" not in body
