"""Changing and rotating keys. Each function takes an explicit session and writes its audit event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.audit import record_audit
from auth.changes import publish_change
from auth.dbtypes import database_now, iso
from auth.errors import Conflict, InvalidRequest
from auth.hashing import SecretHasher
from auth.key_fields import clean_allowed_tools, clean_name, flush_named
from auth.keys import generate_key
from auth.models import ApiKey, Organization
from auth.scopes import clean_scopes
from auth.store import CreatedKey

MAX_KEY_LIFETIME = timedelta(days=365)
UNSET: Any = object()
# What the key may do; a change of any of them is a new policy revision (the name is not).
POLICY_FIELDS = frozenset({"scopes", "allowed_tools", "rate_limit_per_second", "daily_quota"})


@dataclass(slots=True)
class KeyChanges:
    """Fields to change; UNSET leaves one alone, None clears an optional one."""

    name: Any = UNSET
    scopes: Any = UNSET
    allowed_tools: Any = UNSET
    rate_limit_per_second: Any = UNSET
    daily_quota: Any = UNSET
    changed: list[str] = field(default_factory=list)


async def update_api_key(
    session: AsyncSession, *, record: ApiKey, changes: KeyChanges, actor: str, now: datetime, source: str | None
) -> ApiKey:
    if record.revoked_at is not None:
        raise Conflict("A revoked key cannot be changed", code="key_revoked")
    if record.expires_at is not None and record.expires_at <= now:
        raise Conflict("An expired key cannot be changed", code="key_expired")
    changed: dict[str, Any] = {}
    if changes.name is not UNSET:
        name = clean_name(changes.name, "Key")
        if name != record.name:
            duplicate = select(col(ApiKey.id)).where(
                col(ApiKey.organization_id) == record.organization_id,
                col(ApiKey.name) == name,
                col(ApiKey.revoked_at).is_(None),
                col(ApiKey.id) != record.id,
            )
            if await session.scalar(duplicate):
                raise Conflict(f"An active key named {name!r} already exists", code="duplicate_name")
            changed["name"] = name
    if changes.scopes is not UNSET:
        scopes = clean_scopes(changes.scopes)
        if scopes != list(record.scopes):
            changed["scopes"] = scopes
    if changes.allowed_tools is not UNSET:
        tools = clean_allowed_tools(changes.allowed_tools)
        if tools != record.allowed_tools:
            changed["allowed_tools"] = tools
    for limit in ("rate_limit_per_second", "daily_quota"):
        value = getattr(changes, limit)
        if value is not UNSET and value != getattr(record, limit):
            changed[limit] = value
    if changed:
        changed_at = await database_now(session)  # before the changes: its query would autoflush them
        for name, value in changed.items():
            setattr(record, name, value)
        if POLICY_FIELDS.intersection(changed):
            record.policy_revision += 1
        record.updated_at = changed_at
        record_audit(
            session,
            action="key.updated",
            actor=actor,
            organization_id=record.organization_id,
            key_id=record.id,
            source=source,
            details={"fields": sorted(changed)},
        )
        await flush_named(session, record.name)
        await publish_change(session, "key", id=record.id, organization_id=record.organization_id)
    changes.changed = sorted(changed)
    return record


async def rotate_api_key(
    session: AsyncSession,
    *,
    record: ApiKey,
    organization: Organization,
    overlap: timedelta,
    hasher: SecretHasher,
    actor: str,
    now: datetime,
    source: str | None,
) -> CreatedKey:
    """A new key with the old one's settings; the old one expires after ``overlap`` (or sooner, if it already did).

    Rotation replaces the secret, never the lifetime: the successor expires when the old key would
    have (never, if it would not), so rotating cannot keep a leaked key's line alive longer. A
    replaced key cannot be rotated again (one successor per key, no forks)."""
    if record.revoked_at is not None:
        raise Conflict("A revoked key cannot be rotated", code="key_revoked")
    if record.expires_at is not None and record.expires_at <= now:
        raise Conflict("An expired key cannot be rotated", code="key_expired")
    if record.replaced_by is not None:
        raise Conflict("This key was already replaced by rotation", code="key_replaced")
    if overlap < timedelta(0):
        raise InvalidRequest("overlapSeconds must not be negative")
    expires_at = record.expires_at
    generated = generate_key("test" if organization.mode == "test" else "live")
    key_hash = await anyio.to_thread.run_sync(hasher.hash, generated.raw)
    new = ApiKey(
        id=generated.key_id,
        organization_id=record.organization_id,
        name=record.name,
        scopes=list(record.scopes),
        allowed_tools=list(record.allowed_tools) if record.allowed_tools is not None else None,
        created_by=actor,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
        rate_limit_per_second=record.rate_limit_per_second,
        daily_quota=record.daily_quota,
        display_prefix=generated.display_prefix,
        key_hash=key_hash,
    )
    changed_at = await database_now(session)
    old_ends = now + overlap
    if record.expires_at is None or record.expires_at > old_ends:
        record.expires_at = old_ends
    record.replaced_by = new.id
    record.policy_revision += 1  # shorter life, and a replaced key manages no more keys
    record.updated_at = changed_at
    await publish_change(session, "key", id=record.id, organization_id=record.organization_id)
    await session.flush()  # the old key leaves the one-active-name index before its successor enters it
    session.add(new)
    record_audit(
        session,
        action="key.rotated",
        actor=actor,
        organization_id=record.organization_id,
        key_id=record.id,
        source=source,
        details={"replacedBy": new.id, "oldKeyExpiresAt": iso(record.expires_at)},
    )
    record_audit(
        session,
        action="key.created",
        actor=actor,
        organization_id=record.organization_id,
        key_id=new.id,
        source=source,
        details={"name": new.name, "scopes": new.scopes, "rotatedFrom": record.id},
    )
    await session.flush()
    return CreatedKey(record=new, secret=generated.raw)
