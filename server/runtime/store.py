"""Data functions for sessions, executions, events, idempotency keys and workers.

Each takes an explicit session and, where data belongs to an organization, the
organization id from the authenticated principal: another organization's rows answer
exactly like missing ones.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.dbtypes import database_now, dialect_insert, table_of
from auth.errors import Conflict, InvalidRequest, NotFound
from auth.keys import random_base62
from server.runtime.group_commit import Row, write
from server.runtime.live import EventRecord
from server.runtime.models import Execution, ExecutionEvent, IdempotencyRecord, RuntimeSession, RuntimeWorker
from server.runtime.storable import for_storage

DEFAULT_SESSION_TITLE = "Agent Runtime Session"
# What an `interrupted` execution says, also to a retry with its Idempotency-Key (README, "Runtime API").
INTERRUPTED_BY_CRASH = (
    "Execution was interrupted: its server process stopped. The tool may have done some or all of its work"
    " before that; check its effects before running it again under a new Idempotency-Key"
)
INTERRUPTED_BY_CANCEL = (
    "Execution was cancelled: its caller went away or the server shut down. The tool may have done some of"
    " its work before that"
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_base62(20)}"


async def get_session(session: AsyncSession, *, organization_id: str, session_id: str) -> RuntimeSession:
    row = await session.get(RuntimeSession, session_id)
    if row is None or row.organization_id != organization_id:
        raise NotFound("Unknown session")
    return row


def new_session(
    *,
    organization_id: str,
    title: str | None,
    source: str,
    key_id: str | None,
    now: datetime,
    session_id: str | None = None,
) -> RuntimeSession:
    return RuntimeSession(
        id=session_id or new_id("ses"),
        organization_id=organization_id,
        title=title or DEFAULT_SESSION_TITLE,
        source=source,
        created_by_key_id=key_id,
        created_at=now,
        updated_at=now,
    )


def _encode_cursor(row: RuntimeSession) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, session_id = raw.partition("|")
        parsed = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("Invalid cursor", details={"cursor": "not a cursor this API returned"}) from exc
    if parsed.tzinfo is None or not session_id:
        raise InvalidRequest("Invalid cursor", details={"cursor": "not a cursor this API returned"})
    return parsed, session_id


async def list_sessions(
    session: AsyncSession, *, organization_id: str, limit: int, cursor: str | None, status: str | None = None
) -> tuple[list[RuntimeSession], str | None]:
    """Newest first; the cursor is opaque (created_at and id of the last row of the previous page)."""
    query = select(RuntimeSession).where(col(RuntimeSession.organization_id) == organization_id)
    if status is not None:
        query = query.where(col(RuntimeSession.status) == status)
    if cursor:
        created, last_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                col(RuntimeSession.created_at) < created,
                and_(col(RuntimeSession.created_at) == created, col(RuntimeSession.id) < last_id),
            )
        )
    query = query.order_by(col(RuntimeSession.created_at).desc(), col(RuntimeSession.id).desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def archive_session(
    session: AsyncSession, *, organization_id: str, session_id: str, now: datetime
) -> RuntimeSession:
    row = await get_session(session, organization_id=organization_id, session_id=session_id)
    if row.status != "archived":
        row.status, row.archived_at, row.updated_at = "archived", now, now
        await session.flush()
    return row


def ensure_active(row: RuntimeSession) -> None:
    if row.status == "archived":
        raise Conflict(f"Session {row.id} is archived; create a new session", code="session_archived")


async def get_execution(session: AsyncSession, *, organization_id: str, execution_id: str) -> Execution:
    row = await session.get(Execution, execution_id)
    if row is None or row.organization_id != organization_id:
        raise NotFound("Unknown execution")
    return row


def event_rows(
    organization_id: str, execution_id: str, events: Iterable[EventRecord], max_bytes: int | None = None
) -> list[Row]:
    """Rows for ``events``; with ``max_bytes``, each event's data as stored (``storable.for_storage``)."""
    table = table_of(ExecutionEvent)
    return [
        (
            table,
            {
                "execution_id": execution_id,
                "seq": event.seq,
                "organization_id": organization_id,
                "type": event.type,
                "data": event.data if max_bytes is None else for_storage(event.data, max_bytes),
                "created_at": event.created_at,
            },
        )
        for event in events
    ]


async def load_events(session: AsyncSession, *, execution_id: str, after: int) -> list[EventRecord]:
    query = (
        select(ExecutionEvent)
        .where(col(ExecutionEvent.execution_id) == execution_id, col(ExecutionEvent.seq) > after)
        .order_by(col(ExecutionEvent.seq))
    )
    rows = (await session.execute(query)).scalars()
    return [EventRecord(row.seq, row.type, row.data, row.created_at) for row in rows]


async def update_if_running(session: AsyncSession, *, execution_id: str, values: dict[str, Any]) -> bool:
    """Updates the execution while it is `running`; False when another process has marked it interrupted."""
    result = await session.execute(
        update(Execution).where(col(Execution.id) == execution_id, col(Execution.status) == "running").values(**values)
    )
    return bool(cast(CursorResult[Any], result).rowcount)


async def update_execution(session: AsyncSession, *, execution_id: str, values: dict[str, Any]) -> None:
    await session.execute(update(Execution).where(col(Execution.id) == execution_id).values(**values))


async def next_event_seq(session: AsyncSession, *, execution_id: str) -> int:
    last = await session.scalar(
        select(func.coalesce(func.max(col(ExecutionEvent.seq)), 0)).where(
            col(ExecutionEvent.execution_id) == execution_id
        )
    )
    return int(last or 0) + 1


async def execution_finished(session: AsyncSession, *, execution_id: str) -> bool:
    status = await session.scalar(select(col(Execution.status)).where(col(Execution.id) == execution_id))
    return status is not None and status != "running"


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    organization_id: str,
    key: str,
    request_hash: str,
    execution_id: str,
    ttl: timedelta,
) -> str | None:
    """None when this call owns the key now; else the execution id of the earlier call with the same body.

    Taking over an expired record is one conditional UPDATE: of two concurrent retries only the
    one whose UPDATE matched owns the key (PostgreSQL re-checks the condition after the row lock).
    """
    now = await database_now(session)
    values = {"request_hash": request_hash, "execution_id": execution_id, "created_at": now}
    statement = (
        dialect_insert(session, IdempotencyRecord)
        .values(organization_id=organization_id, key=key, **values)
        .on_conflict_do_nothing(index_elements=["organization_id", "key"])
        .returning(col(IdempotencyRecord.key))
    )
    if (await session.execute(statement)).scalar_one_or_none() is not None:
        return None
    record = and_(col(IdempotencyRecord.organization_id) == organization_id, col(IdempotencyRecord.key) == key)
    takeover = (  # one conditional statement: of two concurrent retries of an expired key, only one owns it
        update(IdempotencyRecord)
        .where(record, col(IdempotencyRecord.created_at) < now - ttl)
        .values(**values)
        .returning(col(IdempotencyRecord.key))
    )
    if (await session.execute(takeover)).scalar_one_or_none() is not None:
        return None
    existing = (
        await session.execute(
            select(col(IdempotencyRecord.request_hash), col(IdempotencyRecord.execution_id)).where(record)
        )
    ).one_or_none()
    if existing is None:  # deleted between the statements: the caller may simply retry
        raise Conflict("Idempotency key is being replaced; retry", code="idempotency_key_busy")
    if existing.request_hash != request_hash:
        raise Conflict("Idempotency-Key was already used with a different request body", code="idempotency_key_reused")
    return str(existing.execution_id)


async def heartbeat(session: AsyncSession, *, worker_id: str) -> None:
    """Stamped with the database's clock: the same clock judges staleness, whatever the processes' clocks say."""
    now = await database_now(session)
    statement = (
        dialect_insert(session, RuntimeWorker)
        .values(id=worker_id, started_at=now, heartbeat_at=now)
        .on_conflict_do_update(index_elements=["id"], set_={"heartbeat_at": now})
    )
    await session.execute(statement)


async def remove_worker(session: AsyncSession, *, worker_id: str) -> None:
    await session.execute(delete(RuntimeWorker).where(col(RuntimeWorker.id) == worker_id))


async def interrupt_orphaned_executions(session: AsyncSession, *, stale_after: timedelta, own_worker_id: str) -> int:
    """Running executions whose process has not beaten for ``stale_after`` (database time) become `interrupted`.

    The terminal event takes the next free number; should the process still be alive after all, its own
    later events follow that one (see ExecutionRecorder).
    """
    now = await database_now(session)
    stale_before = now - stale_after
    alive = select(col(RuntimeWorker.id)).where(col(RuntimeWorker.heartbeat_at) >= stale_before)
    query = select(Execution).where(
        col(Execution.status) == "running",
        col(Execution.worker_id) != own_worker_id,
        or_(col(Execution.worker_id).is_(None), col(Execution.worker_id).not_in(alive)),
    )
    orphans = list((await session.execute(query)).scalars())
    message = INTERRUPTED_BY_CRASH
    for execution in orphans:
        seq = await next_event_seq(session, execution_id=execution.id)
        result = await session.execute(
            update(Execution)
            .where(col(Execution.id) == execution.id, col(Execution.status) == "running")
            .values(status="interrupted", error=message, finished_at=now)
        )
        if cast(CursorResult[Any], result).rowcount:  # an UPDATE answers with a cursor result
            event = EventRecord(seq, "interrupted", {"status": "interrupted", "error": message}, now)
            await write(session, event_rows(execution.organization_id, execution.id, [event]))
    await session.execute(delete(RuntimeWorker).where(col(RuntimeWorker.heartbeat_at) < stale_before))
    return len(orphans)
