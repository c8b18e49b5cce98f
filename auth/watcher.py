"""Change feeds: bring rows changed by other processes (CLI, other replicas) into this one.

Every ``interval`` seconds one indexed query reads the rows whose ``updated_at`` lies
within ``lookback`` of the previous poll's time; the lookback absorbs transactions that
commit a little after their timestamp. Writers stamp ``updated_at`` with the database's
clock (``database_now``) and the poll's time is read from the same clock, never from a
row: a row stamped in the future by a skewed writer cannot move the watermark past the
database's "now" and hide later changes. Each row that differs from what the feed saw
last is handed to its listeners.
This works the same on SQLite and PostgreSQL, so a change made anywhere reaches this
process within about ``interval`` seconds; on PostgreSQL a change notification
(``auth/changes.py``, ``server/notifications.py``) calls ``wake`` so it arrives at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import anyio
from sqlalchemy import Select, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.dbtypes import database_now
from auth.models import ApiKey
from auth.records import KeyRecord

logger = logging.getLogger(__name__)

R = TypeVar("R")
LOAD_CHUNK = 500  # ids per IN (...) when loading changed rows
ChangeListener = Callable[[R, R | None], Awaitable[None]]
"""Called with the new row and the one the feed saw before (None on first sight)."""


class ChangeFeed(Generic[R]):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        query: Callable[[datetime], Select[Any]],
        convert: Callable[[Any], R],
        identity: Callable[[R], Hashable],
        updated_at: Callable[[R], datetime],
        listeners: Sequence[ChangeListener[R]],
        interval: float = 0.25,
        lookback: timedelta = timedelta(seconds=10),
        stamps: Callable[[datetime], Select[Hashable, datetime]] | None = None,
        rows_of: Callable[[Sequence[Hashable]], Select[Any]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._query = query
        self._stamps = stamps
        self._rows_of = rows_of
        self._convert = convert
        self._identity = identity
        self._updated_at = updated_at
        self._listeners = list(listeners)
        self._interval = interval
        self._lookback = lookback
        self._polled_at: datetime | None = None
        self._seen: dict[Hashable, R] = {}
        self._woken = anyio.Event()

    def wake(self) -> None:
        """Poll now instead of at the next tick (a change notification arrived); wakes coalesce."""
        self._woken.set()

    async def _changed_rows(self, session: AsyncSession, since: datetime) -> Sequence[Any]:
        """Rows changed since ``since``; with ``stamps``, only the rows whose stamp the feed has not seen are loaded.

        Each poll re-reads the lookback window: an organization-wide change stamps every key of the
        organization, and reloading all of them in full on every poll of the window (40 polls) held the
        event loop for seconds at 100k keys. Ids and stamps are cheap; only what differs is loaded.
        """
        if self._stamps is None or self._rows_of is None:
            everything: Sequence[Any] = (await session.execute(self._query(since))).scalars().all()
            return everything
        stamped = (await session.execute(self._stamps(since))).all()
        changed = [
            identity
            for identity, updated_at in stamped
            if (seen := self._seen.get(identity)) is None or self._updated_at(seen) != updated_at
        ]
        rows: list[Any] = []
        for start in range(0, len(changed), LOAD_CHUNK):
            chunk = changed[start : start + LOAD_CHUNK]
            rows.extend((await session.execute(self._rows_of(chunk))).scalars().all())
        return rows

    async def poll_once(self) -> int:
        """Hands the changes since the last poll to the listeners; returns how many rows changed."""
        async with self._sessions() as session:
            polled_at = await database_now(session)
            since = (self._polled_at or polled_at) - self._lookback
            rows = await self._changed_rows(session, since)
        self._polled_at = polled_at
        changed = 0
        for row in rows:
            item = self._convert(row)
            identity, updated_at = self._identity(item), self._updated_at(item)
            previous = self._seen.get(identity)
            if previous is not None and self._updated_at(previous) == updated_at:
                continue
            self._seen[identity] = item
            changed += 1
            for listener in self._listeners:
                await listener(item, previous)
        horizon = polled_at - self._lookback
        self._seen = {key: item for key, item in self._seen.items() if self._updated_at(item) >= horizon}
        return changed

    async def run(self) -> None:
        while True:
            # A fresh event before each poll: a wake that arrives while polling triggers one more poll.
            self._woken = anyio.Event()
            try:
                # Cancelling an aiosqlite query half-way can hang the connection's close: let a poll finish.
                with anyio.CancelScope(shield=True):
                    await self.poll_once()
            except SQLAlchemyError:
                logger.warning("change poll failed; retrying", exc_info=True)
            with anyio.move_on_after(self._interval):
                await self._woken.wait()


KeyChangeListener = ChangeListener[KeyRecord]


def key_change_feed(
    sessions: async_sessionmaker[AsyncSession], listeners: Sequence[KeyChangeListener], *, interval: float = 0.25
) -> ChangeFeed[KeyRecord]:
    """API keys: revocation, expiry, scopes, allowed tools and the stream kill switch."""
    return ChangeFeed(
        sessions,
        query=lambda since: select(ApiKey).where(col(ApiKey.updated_at) >= since),
        convert=KeyRecord.from_row,
        identity=lambda record: record.key_id,
        updated_at=lambda record: record.updated_at,
        listeners=listeners,
        interval=interval,
        stamps=lambda since: select(col(ApiKey.id), col(ApiKey.updated_at)).where(col(ApiKey.updated_at) >= since),
        rows_of=lambda ids: select(ApiKey).where(col(ApiKey.id).in_(ids)),
    )
