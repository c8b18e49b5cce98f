"""Last-used times and daily request counts: kept in memory, written to the database in batches.

A request only sets a dictionary entry; the usage flusher writes what changed every
``usage_flush_seconds`` (well under a minute), so ``lastUsedAt`` is accurate to a minute
while a busy key costs one UPDATE per flush, not one per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.dbtypes import dialect_insert, table_of
from auth.models import ApiKey, KeyDailyUsage

EPOCH = date(1970, 1, 1)


class LastUsedTracker:
    def __init__(self) -> None:
        self._latest: dict[str, datetime] = {}
        self._dirty: dict[str, datetime] = {}

    def touch(self, key_id: str, at: datetime) -> None:
        self._latest[key_id] = at
        self._dirty[key_id] = at

    def latest(self, key_id: str, stored: datetime | None) -> datetime | None:
        """The newer of the stored value and what this process saw since."""
        seen = self._latest.get(key_id)
        if seen is None or (stored is not None and stored >= seen):
            return stored
        return seen

    def take_dirty(self) -> dict[str, datetime]:
        dirty, self._dirty = self._dirty, {}
        if len(self._latest) > 100_000:
            self._latest.clear()
        return dirty


async def write_last_used(session: AsyncSession, changes: dict[str, datetime]) -> None:
    """One executemany; ``updated_at`` stays untouched so the key-change watcher ignores it."""
    if not changes:
        return
    statement = (
        update(ApiKey)
        .where(col(ApiKey.id) == bindparam("key_id"))
        .where((col(ApiKey.last_used_at).is_(None)) | (col(ApiKey.last_used_at) < bindparam("at")))
        .values(last_used_at=bindparam("at"))
        .execution_options(synchronize_session=False)
    )
    rows = [{"key_id": key_id, "at": at} for key_id, at in changes.items()]
    connection = await session.connection()
    await connection.execute(statement, rows)


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_of(number: int) -> date:
    return EPOCH + timedelta(days=number)


async def write_daily_usage(session: AsyncSession, rows: Iterable[tuple[str, int, int]]) -> None:
    """Adds (key id, day, requests) to the stored counts: increments, never overwrites (issue 18 item 12)."""
    values = [{"key_id": key_id, "day": day_of(day), "count": count} for key_id, day, count in rows]
    if not values:
        return
    table = table_of(KeyDailyUsage)
    statement = dialect_insert(session, table).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["key_id", "day"], set_={"count": table.c["count"] + statement.excluded["count"]}
    )
    await session.execute(statement)


async def read_daily_usage(session: AsyncSession, *, today: int) -> list[tuple[str, int, int]]:
    query = select(KeyDailyUsage).where(col(KeyDailyUsage.day) == day_of(today))
    return [(row.key_id, day_number(row.day), row.count) for row in (await session.execute(query)).scalars()]


def from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
