"""Data functions for organizations, users and API keys. Each takes an explicit session."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import anyio.to_thread
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.audit import record_audit
from auth.changes import publish_change
from auth.dbtypes import database_now, utcnow
from auth.errors import Conflict, InvalidRequest, NotFound
from auth.hashing import SecretHasher
from auth.key_cap import check_active_key_cap
from auth.key_fields import clean_allowed_tools, clean_name, flush_named
from auth.keys import Mode, generate_key, random_base62
from auth.models import ApiKey, Organization, User
from auth.scopes import clean_scopes

ROLES = ("owner", "admin", "member")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


async def create_organization(session: AsyncSession, *, name: str, mode: Mode = "live") -> Organization:
    name = clean_name(name, "Organization")
    existing = await session.scalar(select(col(Organization.id)).where(col(Organization.name) == name))
    if existing:
        raise Conflict(f"Organization {name!r} already exists", code="duplicate_name")
    organization = Organization(id=f"org_{random_base62(16)}", name=name, mode=mode)
    session.add(organization)
    await session.flush()
    return organization


async def list_organizations(session: AsyncSession) -> list[Organization]:
    return list((await session.execute(select(Organization).order_by(col(Organization.created_at)))).scalars())


async def get_organization(session: AsyncSession, *, ref: str) -> Organization:
    """An organization by id or, failing that, by name (an id always wins, so a name can't shadow one)."""
    organization = await session.get(Organization, ref)
    if organization is None:
        organization = await session.scalar(select(Organization).where(col(Organization.name) == ref))
    if organization is None:
        raise NotFound(f"Unknown organization: {ref}")
    return organization


async def update_organization_limits(
    session: AsyncSession,
    *,
    organization: Organization,
    rate_limit_per_second: int | None = None,
    daily_quota: int | None = None,
    clear: bool = False,
    actor: str,
    source: str | None,
) -> list[str]:
    """Sets the organization's rate limits (the default for its keys); ``clear`` first drops both overrides.
    Records ``organization.updated`` when something changed; returns the changed fields."""
    wanted: dict[str, int | None] = {"rate_limit_per_second": None, "daily_quota": None} if clear else {}
    for field, value in (("rate_limit_per_second", rate_limit_per_second), ("daily_quota", daily_quota)):
        if value is not None:
            if value < 1:
                raise InvalidRequest(f"{field} must be at least 1", details={field: "must be at least 1"})
            wanted[field] = value
    changed = sorted(field for field, value in wanted.items() if getattr(organization, field) != value)
    for field in changed:
        setattr(organization, field, wanted[field])
    if changed:
        record_audit(
            session,
            action="organization.updated",
            actor=actor,
            organization_id=organization.id,
            source=source,
            details={"fields": changed},
        )
        await session.flush()
    return changed


async def create_user(
    session: AsyncSession, *, organization: Organization, email: str, password: str, role: str, hasher: SecretHasher
) -> User:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidRequest(f"Invalid email address: {email!r}")
    if role not in ROLES:
        raise InvalidRequest(f"Unknown role: {role!r} (known: {', '.join(ROLES)})")
    if len(password) < 12:
        raise InvalidRequest("Password must be at least 12 characters")
    if await session.scalar(select(col(User.id)).where(col(User.email) == email)):
        raise Conflict(f"A user with email {email!r} already exists", code="duplicate_email")
    password_hash = await anyio.to_thread.run_sync(hasher.hash, password)
    user = User(
        id=f"usr_{random_base62(16)}",
        organization_id=organization.id,
        email=email,
        password_hash=password_hash,
        role=role,
    )
    session.add(user)
    await session.flush()
    return user


async def list_users(session: AsyncSession, *, organization_id: str) -> list[User]:
    query = select(User).where(col(User.organization_id) == organization_id).order_by(col(User.created_at))
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key's record and its full secret, which exists only here and is shown once."""

    record: ApiKey
    secret: str

    def __repr__(self) -> str:
        return f"CreatedKey(key_id={self.record.id!r})"


async def create_api_key(
    session: AsyncSession,
    *,
    organization: Organization,
    name: str,
    scopes: Sequence[str],
    hasher: SecretHasher,
    allowed_tools: Sequence[str] | None = None,
    expires_at: datetime | None = None,
    created_by: str,
    source: str | None = None,
    max_active_keys: int | None = None,
) -> CreatedKey:
    name = clean_name(name, "Key")
    key_scopes = clean_scopes(scopes)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("Expiry must be in the future")
    duplicate = select(col(ApiKey.id)).where(
        col(ApiKey.organization_id) == organization.id, col(ApiKey.name) == name, col(ApiKey.revoked_at).is_(None)
    )
    if await session.scalar(duplicate):
        raise Conflict(f"An active key named {name!r} already exists in {organization.name}", code="duplicate_name")
    generated = generate_key("test" if organization.mode == "test" else "live")
    key_hash = await anyio.to_thread.run_sync(hasher.hash, generated.raw)
    if max_active_keys is not None:
        await check_active_key_cap(session, organization, max_active_keys)
    record = ApiKey(
        id=generated.key_id,
        organization_id=organization.id,
        name=name,
        scopes=key_scopes,
        allowed_tools=clean_allowed_tools(allowed_tools),
        created_by=created_by,
        expires_at=expires_at,
        display_prefix=generated.display_prefix,
        key_hash=key_hash,
    )
    session.add(record)
    record_audit(
        session,
        action="key.created",
        actor=created_by,
        organization_id=organization.id,
        key_id=record.id,
        source=source,
        details={"name": name, "scopes": key_scopes},
    )
    await flush_named(session, name)
    return CreatedKey(record=record, secret=generated.raw)


async def get_api_key(session: AsyncSession, *, key_id: str, organization_id: str | None = None) -> ApiKey:
    query = select(ApiKey).where(col(ApiKey.id) == key_id)
    if organization_id is not None:
        query = query.where(col(ApiKey.organization_id) == organization_id)
    record = await session.scalar(query)
    if record is None:
        raise NotFound(f"Unknown API key: {key_id}")
    return record


async def list_api_keys(
    session: AsyncSession, *, organization_id: str | None = None, include_revoked: bool = True
) -> list[ApiKey]:
    query = select(ApiKey).order_by(col(ApiKey.created_at))
    if organization_id is not None:
        query = query.where(col(ApiKey.organization_id) == organization_id)
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    return list((await session.execute(query)).scalars())


async def page_api_keys(
    session: AsyncSession,
    *,
    organization_id: str,
    created_by: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[ApiKey], int]:
    """One page of an organization's keys, newest first, and how many match in all.

    ``search`` matches the name or the displayed prefix, case-insensitively.
    """
    conditions: list[ColumnElement[bool]] = [col(ApiKey.organization_id) == organization_id]
    if created_by is not None:
        conditions.append(col(ApiKey.created_by) == created_by)
    if search:
        pattern = "%" + search.lower().replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
        conditions.append(
            func.lower(col(ApiKey.name)).like(pattern, escape="\\")
            | func.lower(col(ApiKey.display_prefix)).like(pattern, escape="\\")
        )
    total: int | None = await session.scalar(select(func.count()).select_from(ApiKey).where(*conditions))
    query = (
        select(ApiKey)
        .where(*conditions)
        .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))
        .offset(offset)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars()), int(total or 0)


async def revoke_api_key(
    session: AsyncSession,
    *,
    key_id: str,
    actor: str,
    organization_id: str | None = None,
    source: str | None = None,
    terminate_streams: bool = False,
) -> ApiKey:
    """Revokes the key (idempotent: a revoked key keeps its first revocation time).

    With ``terminate_streams`` the key's open streams are closed too, in every replica
    (they see ``streams_terminated_at`` move); by default they run to their end.
    """
    record = await get_api_key(session, key_id=key_id, organization_id=organization_id)
    now, changed_at = utcnow(), await database_now(session)
    if terminate_streams:
        record.policy_revision += 1
        record.streams_terminated_at = now
        record.updated_at = changed_at
        record_audit(
            session,
            action="key.streams_terminated",
            actor=actor,
            organization_id=record.organization_id,
            key_id=key_id,
            source=source,
        )
    if record.revoked_at is None:
        record.policy_revision += 1
        record.revoked_at = now
        record.updated_at = changed_at
        record_audit(
            session,
            action="key.revoked",
            actor=actor,
            organization_id=record.organization_id,
            key_id=key_id,
            source=source,
        )
    if record.updated_at == changed_at:
        await publish_change(session, "key", id=key_id, organization_id=record.organization_id)
    await session.flush()
    return record


async def count_organizations(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Organization)) or 0)


async def bump_policy_revisions(session: AsyncSession, *, organization_id: str, now: datetime) -> None:
    """An organization-wide switch changed (a tool enabled or disabled): every key of it has a new policy."""
    await session.execute(
        update(ApiKey)
        .where(col(ApiKey.organization_id) == organization_id)
        .values(policy_revision=col(ApiKey.policy_revision) + 1, updated_at=now)
    )
