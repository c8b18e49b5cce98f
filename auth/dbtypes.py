"""Column types shared by every table: timestamps that are always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


async def database_now(session: AsyncSession) -> datetime:
    """The database's clock: what every ``updated_at`` the change feeds read is stamped with.

    Writers on other hosts (the CLI, other replicas) may have skewed clocks; the feed's
    watermark must come from one clock. A SQLite file is only ever written on this host,
    so there the host's clock is the database's clock. The runtime's heartbeats, idempotency
    expiry and (through server/runtime/clock.py) its row timestamps use it too.
    """
    if session.get_bind().dialect.name == "postgresql":
        value = await session.scalar(text("SELECT clock_timestamp()"))
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return utcnow()


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite forgets time zones; this type stores UTC and always hands back aware datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
