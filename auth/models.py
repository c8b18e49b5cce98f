"""Tables owned by auth: organizations, users, API keys and the audit log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, text
from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    mode: str = Field(default="live", max_length=8)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    rate_limit_per_second: int | None = None
    daily_quota: int | None = None


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    email: str = Field(max_length=320, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


ACTIVE_NAME_INDEX = "ux_api_keys_active_name"
_ACTIVE = "revoked_at IS NULL AND replaced_by IS NULL"


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_organization_id_name", "organization_id", "name"),
        # One active key per name; the key a rotation replaced keeps its name through the overlap.
        Index(
            ACTIVE_NAME_INDEX,
            "organization_id",
            "name",
            unique=True,
            sqlite_where=text(_ACTIVE),
            postgresql_where=text(_ACTIVE),
        ),
    )

    id: str = Field(primary_key=True, max_length=12, description="public key id, part of the key itself")
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    allowed_tools: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    streams_terminated_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, nullable=True, description="kill switch: open streams were closed then"
    )
    replaced_by: str | None = Field(
        default=None, max_length=12, description="set by rotation: the successor; a replaced key manages nothing"
    )
    rate_limit_per_second: int | None = None
    daily_quota: int | None = None
    # A server default only, no client-side one: inserts that name no revision (older schema steps) still work.
    policy_revision: int = Field(
        default=1,
        sa_column=Column(Integer, nullable=False, server_default="1"),
        description="bumped on every change of what the key may do",
    )
    display_prefix: str = Field(max_length=12)
    key_hash: str = Field(max_length=255)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    organization_id: str | None = Field(default=None, foreign_key="organizations.id", index=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    key_id: str | None = Field(default=None, max_length=12, index=True)
    source: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class KeyDailyUsage(SQLModel, table=True):
    """Requests a key made on one UTC day: the in-process rate limiter's daily quota, kept across restarts."""

    __tablename__ = "key_daily_usage"

    key_id: str = Field(primary_key=True, max_length=12)
    day: date = Field(primary_key=True)
    count: int = Field(default=0, nullable=False)
