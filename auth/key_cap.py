"""The per-organization cap on active keys (CAPGATE_MAX_ACTIVE_KEYS_PER_ORGANIZATION)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.dbtypes import utcnow
from auth.errors import Conflict
from auth.models import ApiKey, Organization


def active_keys(organization_id: str, now: datetime) -> Select[int]:
    return select(func.count()).where(
        col(ApiKey.organization_id) == organization_id,
        col(ApiKey.revoked_at).is_(None),
        col(ApiKey.replaced_by).is_(None),
        or_(col(ApiKey.expires_at).is_(None), col(ApiKey.expires_at) > now),
    )


async def check_active_key_cap(session: AsyncSession, organization: Organization, cap: int) -> None:
    """Locks the organization's row (one creation at a time, on both databases) and refuses past the cap."""
    await session.execute(
        update(Organization)
        .where(col(Organization.id) == organization.id)
        .values(mode=col(Organization.mode))
        .execution_options(synchronize_session=False)
    )
    if int(await session.scalar(active_keys(organization.id, utcnow())) or 0) >= cap:
        message = f"{organization.name} already has {cap} active keys; revoke one first"
        raise Conflict(message, code="too_many_keys")
