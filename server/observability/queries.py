"""Reading the decision log: newest first, filtered, paged by a cursor (the last row's id)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from server.observability.models import AuthzDecision


def aware_time(text: str) -> datetime:
    """An ISO 8601 time of a filter; one without a zone is UTC. Raises ValueError."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def list_decisions(
    session: AsyncSession,
    *,
    organization_id: str | None,
    limit: int,
    key_id: str | None = None,
    tool: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
) -> list[AuthzDecision]:
    """``organization_id`` None reads every organization's decisions (the operator's CLI only)."""
    query = select(AuthzDecision).order_by(col(AuthzDecision.id).desc()).limit(limit)
    if organization_id is not None:
        query = query.where(col(AuthzDecision.organization_id) == organization_id)
    if key_id is not None:
        query = query.where(col(AuthzDecision.key_id) == key_id)
    if tool is not None:
        query = query.where(col(AuthzDecision.tool) == tool)
    if outcome is not None:
        query = query.where(col(AuthzDecision.outcome) == outcome)
    if since is not None:
        query = query.where(col(AuthzDecision.created_at) >= since)
    if until is not None:
        query = query.where(col(AuthzDecision.created_at) < until)
    if before_id is not None:
        query = query.where(col(AuthzDecision.id) < before_id)
    return list((await session.execute(query)).scalars())
