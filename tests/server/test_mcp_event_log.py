"""The shared event store of legacy SSE streams, on a real database: bounded per stream and per session,
replays only within its own session, purged by age."""

from __future__ import annotations

from datetime import timedelta

from mcp.server.streamable_http import EventMessage
from mcp_types import JSONRPCNotification
from sqlalchemy import func, select

from auth.dbtypes import utcnow
from server.db import create_engine, session_factory
from server.mcp.event_log import EventLog, delete_old_events
from server.mcp.models import McpSessionEvent
from server.mcp.resumable import SessionEvents
from tests.conftest import migrate


def note(number: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"level": "info", "data": number})


async def replayed(store: SessionEvents, last_event_id: str) -> tuple[str | None, list[int]]:
    seen: list[EventMessage] = []

    async def collect(event: EventMessage) -> None:
        seen.append(event)

    stream = await store.replay_events_after(last_event_id, collect)
    return stream, [event.message.params["data"] for event in seen]  # type: ignore[union-attr,index]


async def test_streams_keep_their_newest_events_and_replay_only_their_own_session(database_url: str) -> None:
    await migrate(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        log = EventLog(sessions, per_stream=5, streams=2)
        mine, theirs = SessionEvents(log, "a" * 32), SessionEvents(log, "b" * 32)
        ids = [await mine.store_event("_GET_stream", note(number)) for number in range(20)]
        their_id = await theirs.store_event("_GET_stream", note(99))
        assert len(set(ids)) == 20 and all(len(event_id) >= 22 for event_id in ids)  # 128 random bits each

        assert await replayed(mine, ids[16]) == ("_GET_stream", [17, 18, 19])
        assert await replayed(mine, ids[3]) == (None, [])  # fell out of the stream's last 5: deleted
        assert await replayed(mine, their_id) == (None, [])  # another session's id replays nothing
        assert await replayed(theirs, ids[16]) == (None, [])

        await mine.store_event("1", note(100))
        await mine.store_event("2", note(101))  # a third stream: the oldest one (_GET_stream) goes
        await log.flush()
        async with sessions() as session:
            query = select(McpSessionEvent.stream_id).where(McpSessionEvent.session_id == "a" * 32)
            assert sorted((await session.execute(query)).scalars()) == ["1", "2"]

        log.forget("b" * 32)  # deleted session
        await log.flush()
        async with sessions.begin() as session:
            assert await delete_old_events(session, utcnow() + timedelta(seconds=1)) == 2
            assert (await session.execute(select(func.count()).select_from(McpSessionEvent))).scalar() == 0
    finally:
        await engine.dispose()
