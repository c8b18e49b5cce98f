"""The shared event store of legacy SSE streams (``mcp_session_events``): what a dropped stream resumes from.

Every SSE event a legacy session's transport sends (``resumable.SessionEvents``, the SDK's
``EventStore``) is stored here, in the database every replica shares. Writes are batched by one
writer per process: storing returns at once (no event waits for the database before it goes out)
and the writer inserts whatever gathered in ``BATCH_SECONDS`` in one transaction. A replay first waits until
everything this process stored before it is written, then reads the table. Event ids are random
128-bit tokens looked up together with the session id, so another session's id (another key's, or a
guess) replays nothing. Bounded: ``per_stream`` events per stream and ``streams`` streams per
session (what falls out is deleted with the next batch), events older than
``mcp_event_retention_seconds`` are deleted by the retention purger, and a session's events go when
it is deleted or found dead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.streamable_http import EventMessage
from mcp_types import jsonrpc_message_adapter
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.dbtypes import table_of
from server.mcp.models import McpSessionEvent

logger = logging.getLogger(__name__)
TABLE = table_of(McpSessionEvent)
BATCH_SECONDS = 0.05


class EventLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, per_stream: int = 256, streams: int = 64) -> None:
        self._sessions = sessions
        self.per_stream = per_stream
        self.streams = streams
        self._rows: list[dict[str, Any]] = []
        self._trims: dict[tuple[str, str], int] = {}
        """(session, stream) → its events up to this sequence number are deleted."""
        self._forgotten: set[str] = set()
        self._queued = 0
        self._written = 0
        self._wakeup = anyio.Event()
        self._progress = anyio.Event()
        self.running = False

    def append(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self._queue()

    def trim(self, session_id: str, stream_id: str, through: int) -> None:
        key = (session_id, stream_id)
        self._trims[key] = max(self._trims.get(key, 0), through)
        self._queue()

    def forget(self, session_id: str) -> None:
        self._forgotten.add(session_id)
        self._queue()

    def _queue(self) -> None:
        self._queued += 1
        self._wakeup.set()

    async def run(self) -> None:
        self.running = True
        try:
            while True:
                await self._wakeup.wait()
                # Gather a little first: one transaction per event (a legacy tools/call answer is one) cost
                # more than the call itself. Nobody waits on this write but a replay, which flushes first.
                await anyio.sleep(BATCH_SECONDS)
                self._wakeup = anyio.Event()
                with anyio.CancelScope(shield=True):  # like the other writers: never cancel a write half-way
                    await self._write_pending()
        finally:
            self.running = False
            with anyio.CancelScope(shield=True):
                await self._write_pending()

    async def _write_pending(self) -> None:
        rows, trims, forgotten, through = self._rows, self._trims, self._forgotten, self._queued
        self._rows, self._trims, self._forgotten = [], {}, set()
        if rows or trims or forgotten:
            try:
                async with self._sessions.begin() as session:
                    if rows:
                        await session.execute(insert(TABLE), rows)
                    for (session_id, stream_id), sequence in trims.items():
                        await session.execute(
                            delete(TABLE).where(
                                TABLE.c.session_id == session_id,
                                TABLE.c.stream_id == stream_id,
                                TABLE.c.sequence <= sequence,
                            )
                        )
                    if forgotten:
                        await session.execute(delete(TABLE).where(TABLE.c.session_id.in_(forgotten)))
            except SQLAlchemyError:  # a resume aid: losing a batch costs replays, never a live event
                logger.warning("could not store %d MCP stream events", len(rows), exc_info=True)
        self._written = max(self._written, through)
        self._progress.set()
        self._progress = anyio.Event()

    async def flush(self) -> None:
        """Returns once everything queued before the call is written."""
        target = self._queued
        if not self.running:
            await self._write_pending()
            return
        while self._written < target:
            await self._progress.wait()

    async def replay(
        self, session_id: str, last_event_id: str, send: Callable[[EventMessage], Awaitable[None]]
    ) -> str | None:
        """Sends the events of ``last_event_id``'s stream after it, in order; None when this session has no such id."""
        await self.flush()
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(TABLE.c.stream_id, TABLE.c.sequence).where(
                        TABLE.c.event_id == last_event_id[:40], TABLE.c.session_id == session_id
                    )
                )
            ).first()
            if found is None:
                return None
            stream_id, after = found
            missed = (
                await session.execute(
                    select(TABLE.c.event_id, TABLE.c.message)
                    .where(
                        TABLE.c.session_id == session_id,
                        TABLE.c.stream_id == stream_id,
                        TABLE.c.sequence > after,
                        TABLE.c.message.is_not(None),
                    )
                    .order_by(TABLE.c.sequence)
                )
            ).all()
        for event_id, message in missed:
            await send(EventMessage(jsonrpc_message_adapter.validate_json(message), event_id))
        return str(stream_id)


async def delete_old_events(session: AsyncSession, before: Any) -> int:
    """Retention: events stored before ``before`` (their sessions are long idle or gone)."""
    result: Any = await session.execute(delete(McpSessionEvent).where(col(McpSessionEvent.created_at) < before))
    return int(result.rowcount or 0)
