"""Brings key changes made by other processes (CLI, other replicas) into this one.

Every ``interval`` seconds one indexed query reads the keys whose ``updated_at`` lies
within ``lookback`` of the newest change seen so far; the lookback absorbs transactions
that commit a little after their timestamp and small clock differences between
writers. Each row that differs from what this watcher saw last is handed to the
listeners (the verifier's record cache, the stream kill switch, MCP list_changed).
This works the same on SQLite and PostgreSQL, so a change made anywhere reaches this
process within about ``interval`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import anyio
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.dbtypes import utcnow
from auth.models import ApiKey
from auth.records import KeyRecord

logger = logging.getLogger(__name__)

KeyChangeListener = Callable[[KeyRecord, KeyRecord | None], Awaitable[None]]
"""Called with the new record and the one this watcher saw before (None on first sight)."""


class KeyChangeWatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        listeners: list[KeyChangeListener],
        *,
        interval: float = 0.25,
        lookback: timedelta = timedelta(seconds=10),
    ) -> None:
        self._sessions = sessions
        self._listeners = listeners
        self._interval = interval
        self._lookback = lookback
        self._newest_seen: datetime = utcnow()
        self._seen: dict[str, KeyRecord] = {}

    async def poll_once(self) -> int:
        """Hands the changes since the last poll to the listeners; returns how many rows changed."""
        since = self._newest_seen - self._lookback
        async with self._sessions() as session:
            rows = (await session.execute(select(ApiKey).where(ApiKey.updated_at >= since))).scalars().all()
        changed = 0
        for row in rows:
            record = KeyRecord.from_row(row)
            previous = self._seen.get(record.key_id)
            self._newest_seen = max(self._newest_seen, record.updated_at)
            if previous is not None and previous.updated_at == record.updated_at:
                continue
            self._seen[record.key_id] = record
            changed += 1
            for listener in self._listeners:
                await listener(record, previous)
        horizon = self._newest_seen - self._lookback
        self._seen = {key_id: seen for key_id, seen in self._seen.items() if seen.updated_at >= horizon}
        return changed

    async def run(self) -> None:
        while True:
            try:
                # Cancelling an aiosqlite query half-way can hang the connection's close: let a poll finish.
                with anyio.CancelScope(shield=True):
                    await self.poll_once()
            except SQLAlchemyError:
                logger.warning("key change poll failed; retrying", exc_info=True)
            await anyio.sleep(self._interval)
