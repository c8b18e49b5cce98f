"""Brings key changes made by other processes (CLI, other replicas) into this one's cache.

Every ``interval`` seconds one indexed query reads the keys whose ``updated_at`` lies
within ``lookback`` of the newest change seen so far; the lookback absorbs transactions
that commit a little after their timestamp and small clock differences between
writers. Cached records with a different ``updated_at`` are replaced. This works the
same on SQLite and PostgreSQL, and revocation from any process reaches this one within
about ``interval`` seconds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import anyio
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.dbtypes import utcnow
from auth.models import ApiKey
from auth.records import KeyRecord
from auth.verifier import KeyVerifier

logger = logging.getLogger(__name__)


class KeyChangeWatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        verifier: KeyVerifier,
        *,
        interval: float = 0.25,
        lookback: timedelta = timedelta(seconds=10),
    ) -> None:
        self._sessions = sessions
        self._verifier = verifier
        self._interval = interval
        self._lookback = lookback
        self._newest_seen: datetime = utcnow()

    async def poll_once(self) -> int:
        """Applies the changes since the last poll; returns how many rows it read."""
        since = self._newest_seen - self._lookback
        async with self._sessions() as session:
            rows = (await session.execute(select(ApiKey).where(ApiKey.updated_at >= since))).scalars().all()
        for row in rows:
            self._verifier.refresh(KeyRecord.from_row(row))
            self._newest_seen = max(self._newest_seen, row.updated_at)
        return len(rows)

    async def run(self) -> None:
        while True:
            try:
                # Cancelling an aiosqlite query half-way can hang the connection's close: let a poll finish.
                with anyio.CancelScope(shield=True):
                    await self.poll_once()
            except SQLAlchemyError:
                logger.warning("key change poll failed; retrying", exc_info=True)
            await anyio.sleep(self._interval)
