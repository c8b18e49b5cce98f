"""Usage of an organization's keys, from the execution records and the audit log's refusal tallies.

Counts are tool calls (one per ``tools/call`` or REST invoke, whatever its outcome), bucketed
in UTC by the database; refusals are the authentication failures the usage flusher writes
to the audit log once a minute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.models import ApiKey, AuditEvent
from server.runtime.models import Execution

DAYS = 30
MAX_REFUSAL_ROWS = 10_000


def _bucket(session: AsyncSession, column: Any, unit: str) -> ColumnElement[str]:
    """A UTC day (YYYY-MM-DD) or hour (HH) as text, on SQLite (naive UTC) and PostgreSQL alike."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD" if unit == "day" else "HH24")
    return func.strftime("%Y-%m-%d" if unit == "day" else "%H", column)


@dataclass(frozen=True, slots=True)
class Usage:
    per_day: list[tuple[str, int]]
    per_hour: list[tuple[str, int]]
    top_tools: list[tuple[str, int, int]]
    top_keys: list[tuple[str, str, int]]
    refusals: list[tuple[str, int]]


def _calls(organization_id: str, key_ids: Collection[str] | None, since: datetime, *columns: Any) -> Select[Any]:
    query = select(*columns).where(
        col(Execution.organization_id) == organization_id, col(Execution.started_at) >= since
    )
    if key_ids is not None:
        query = query.where(col(Execution.key_id).in_(list(key_ids)))
    return query


async def read_usage(
    session: AsyncSession, *, organization_id: str, key_ids: Collection[str] | None, now: datetime
) -> Usage:
    """``key_ids`` None: the whole organization."""
    today = now.date()
    first_day = today - timedelta(days=DAYS - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=now.tzinfo)
    midnight = datetime(today.year, today.month, today.day, tzinfo=now.tzinfo)

    day = _bucket(session, Execution.started_at, "day")
    daily = dict(
        (await session.execute(_calls(organization_id, key_ids, since, day, func.count()).group_by(day))).all()
    )
    hour = _bucket(session, Execution.started_at, "hour")
    hourly = dict(
        (await session.execute(_calls(organization_id, key_ids, midnight, hour, func.count()).group_by(hour))).all()
    )
    failed = func.sum(case((col(Execution.status) == "failed", 1), else_=0))
    tools_query = (
        _calls(organization_id, key_ids, since, col(Execution.tool_name), func.count(), failed)
        .group_by(col(Execution.tool_name))
        .order_by(func.count().desc(), col(Execution.tool_name))
        .limit(10)
    )
    tools = [(name, int(count), int(failures or 0)) for name, count, failures in await session.execute(tools_query)]
    days = [first_day + timedelta(days=offset) for offset in range(DAYS)]
    keys_query = (
        _calls(organization_id, key_ids, since, col(Execution.key_id), func.count())
        .where(col(Execution.key_id).is_not(None))
        .group_by(col(Execution.key_id))
        .order_by(func.count().desc(), col(Execution.key_id))
        .limit(10)
    )
    busiest = [(str(key_id), int(count)) for key_id, count in await session.execute(keys_query)]
    names_query = select(col(ApiKey.id), col(ApiKey.name)).where(col(ApiKey.id).in_([k for k, _ in busiest]))
    names: dict[str, str] = dict((await session.execute(names_query)).all())
    return Usage(
        per_day=[(_short(d), int(daily.get(d.isoformat(), 0))) for d in days],
        per_hour=[(f"{h:02d}", int(hourly.get(f"{h:02d}", 0))) for h in range(24)],
        top_tools=tools,
        top_keys=[(key_id, names.get(key_id, key_id), count) for key_id, count in busiest],
        refusals=await _refusals(session, organization_id=organization_id, key_ids=key_ids, since=since),
    )


def _short(day: date) -> str:
    return day.strftime("%b %d").replace(" 0", " ")


async def _refusals(
    session: AsyncSession, *, organization_id: str, key_ids: Collection[str] | None, since: datetime
) -> list[tuple[str, int]]:
    query = (
        select(col(AuditEvent.details))
        .where(
            col(AuditEvent.organization_id) == organization_id,
            col(AuditEvent.action) == "auth.failed",
            col(AuditEvent.created_at) >= since,
        )
        .order_by(col(AuditEvent.id).desc())
        .limit(MAX_REFUSAL_ROWS)
    )
    if key_ids is not None:
        query = query.where(col(AuditEvent.key_id).in_(list(key_ids)))
    reasons: Counter[str] = Counter()
    for details in (await session.execute(query)).scalars():
        if isinstance(details, dict):
            reasons[str(details.get("reason", "unknown"))] += int(details.get("count", 1))
    return reasons.most_common()
