"""Column types shared by every table: timestamps that are always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import DateTime, Table, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: datetime | None) -> str | None: ...
def iso(value: datetime | None) -> str | None:
    """The one timestamp format on the wire: RFC 3339 in UTC with ``Z`` (``2026-12-01T13:45:00.123456Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


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
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def dialect_insert(database: AsyncSession | str, target: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT for the database (a session, or its dialect's name), so ``on_conflict_do_update``/``do_nothing``
    work on SQLite and PostgreSQL alike."""
    dialect = database if isinstance(database, str) else database.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)


def table_of(model: type[Any]) -> Table:
    """The table of a SQLModel table class (SQLModel does not declare ``__table__`` to type checkers)."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    return table
