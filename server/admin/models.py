"""The console's server-side sessions: one row per signed-in browser."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class AdminSession(SQLModel, table=True):
    __tablename__ = "admin_sessions"

    id: str = Field(
        primary_key=True, max_length=64, description="SHA-256 of the cookie's token; the token itself is never stored"
    )
    user_id: str = Field(foreign_key="users.id", index=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    source: str | None = Field(default=None, max_length=200)
