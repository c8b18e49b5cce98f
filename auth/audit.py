"""The audit log: who did what to which key, from where."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.models import AuditEvent


def record_audit(
    session: AsyncSession,
    *,
    action: str,
    actor: str,
    organization_id: str | None,
    key_id: str | None = None,
    source: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Adds the event to the caller's transaction, so it commits or rolls back with the change it describes."""
    event = AuditEvent(
        action=action, actor=actor, organization_id=organization_id, key_id=key_id, source=source, details=details
    )
    session.add(event)
    return event


async def list_audit_events(
    session: AsyncSession,
    *,
    organization_id: str | None = None,
    limit: int = 100,
    action: str | None = None,
    key_id: str | None = None,
    key_ids: Collection[str] | None = None,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """Newest first; ``before_id`` pages back through older events; ``key_ids`` keeps events of those keys only."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if organization_id is not None:
        query = query.where(col(AuditEvent.organization_id) == organization_id)
    if action is not None:
        query = query.where(col(AuditEvent.action) == action)
    if key_id is not None:
        query = query.where(col(AuditEvent.key_id) == key_id)
    if key_ids is not None:
        query = query.where(col(AuditEvent.key_id).in_(list(key_ids)))
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    return list((await session.execute(query)).scalars())
