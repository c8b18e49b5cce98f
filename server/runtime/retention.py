"""Retention: executions, their events, idempotency records and audit rows are deleted once old, and
what each organization stores is counted.

``purge`` runs from ``capgate db purge`` and every ``purge_interval_seconds`` in each server process
(idempotent, so replicas may overlap). It deletes in batches of ``BATCH`` rows per transaction so a
large backlog never holds a long lock. Running executions are never deleted.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import Text, cast, delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.dbtypes import utcnow
from auth.models import AuditEvent
from server.runtime.models import Execution, ExecutionEvent, IdempotencyRecord
from tools.memory.models import MemoryDocument

logger = logging.getLogger(__name__)
BATCH = 1000


OldRowsDeleter = Callable[[AsyncSession, datetime], Awaitable[int]]
"""Deletes rows stored before the given time, returns how many (for tables kept outside the runtime)."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    executions: timedelta
    idempotency: timedelta
    audit: timedelta
    stream_events: timedelta = timedelta(hours=1)
    delete_stream_events: OldRowsDeleter | None = None
    """Legacy MCP stream events (``server.mcp.event_log``), handed in: the runtime does not import server.mcp."""


@dataclass(slots=True)
class Purged:
    executions: int = 0
    events: int = 0
    idempotency_records: int = 0
    audit_events: int = 0
    stream_events: int = 0


async def _purge_executions(session: AsyncSession, before: datetime) -> tuple[int, int]:
    old = (
        select(col(Execution.id))
        .where(col(Execution.status) != "running", col(Execution.finished_at) < before)
        .limit(BATCH)
    )
    ids = list((await session.execute(old)).scalars())
    if not ids:
        return 0, 0
    events = await session.execute(delete(ExecutionEvent).where(col(ExecutionEvent.execution_id).in_(ids)))
    await session.execute(delete(Execution).where(col(Execution.id).in_(ids)))
    return len(ids), int(typing.cast(CursorResult[Any], events).rowcount or 0)


async def _purge_audit(session: AsyncSession, before: datetime) -> int:
    old = select(col(AuditEvent.id)).where(col(AuditEvent.created_at) < before).limit(BATCH)
    ids = list((await session.execute(old)).scalars())
    if ids:
        await session.execute(delete(AuditEvent).where(col(AuditEvent.id).in_(ids)))
    return len(ids)


async def purge(sessions: async_sessionmaker[AsyncSession], policy: RetentionPolicy, now: datetime) -> Purged:
    purged = Purged()
    while True:
        async with sessions.begin() as session:
            executions, events = await _purge_executions(session, now - policy.executions)
        purged.executions += executions
        purged.events += events
        if executions < BATCH:
            break
    async with sessions.begin() as session:  # one indexed range delete: these rows are small
        result = await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - policy.idempotency)  # type: ignore[arg-type]
        )
    purged.idempotency_records = int(result.rowcount or 0)  # type: ignore[attr-defined]
    while True:
        async with sessions.begin() as session:
            deleted = await _purge_audit(session, now - policy.audit)
        purged.audit_events += deleted
        if deleted < BATCH:
            break
    if policy.delete_stream_events is not None:
        async with sessions.begin() as session:  # one indexed range delete, like idempotency records
            purged.stream_events = await policy.delete_stream_events(session, now - policy.stream_events)
    return purged


async def run_purger(sessions: async_sessionmaker[AsyncSession], policy: RetentionPolicy, *, interval: float) -> None:
    while True:
        try:
            with anyio.CancelScope(shield=True):
                purged = await purge(sessions, policy, utcnow())
            if purged.executions or purged.audit_events or purged.idempotency_records or purged.stream_events:
                logger.info("retention purge: %s", purged)
        except SQLAlchemyError:
            logger.warning("retention purge failed; next attempt in %s s", interval, exc_info=True)
        await anyio.sleep(interval)


def _text_bytes(column: Any) -> Any:
    return func.coalesce(func.sum(func.length(cast(column, Text))), 0)


async def stored_bytes(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Per organization: bytes of stored execution inputs/results/errors, event data, memory and audit details
    (characters of their JSON text; a close measure of what they take on disk)."""
    usage: dict[str, dict[str, int]] = {}

    def add(rows: Any, kind: str) -> None:
        for organization_id, size in rows:
            if organization_id is not None:
                usage.setdefault(organization_id, {})[kind] = int(size or 0)

    executions = select(
        col(Execution.organization_id),
        _text_bytes(Execution.input) + _text_bytes(Execution.output) + _text_bytes(Execution.error),
    ).group_by(col(Execution.organization_id))
    add(await session.execute(executions), "executions")
    events = select(col(ExecutionEvent.organization_id), _text_bytes(ExecutionEvent.data)).group_by(
        col(ExecutionEvent.organization_id)
    )
    add(await session.execute(events), "events")
    memory = select(col(MemoryDocument.organization_id), func.coalesce(func.sum(col(MemoryDocument.size)), 0)).group_by(
        col(MemoryDocument.organization_id)
    )
    add(await session.execute(memory), "memory")
    audit = select(col(AuditEvent.organization_id), _text_bytes(AuditEvent.details)).group_by(
        col(AuditEvent.organization_id)
    )
    add(await session.execute(audit), "audit")
    for kinds in usage.values():
        kinds["total"] = sum(kinds.values())
    return usage
