"""The shared directory of legacy MCP sessions: which replica owns each one, for which key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class McpSessionOwner(SQLModel, table=True):
    __tablename__ = "mcp_session_owners"

    session_id: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(max_length=12)
    owner_url: str = Field(max_length=300, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class McpSessionEvent(SQLModel, table=True):
    """One SSE event of a legacy session's stream, kept so a dropped stream can resume (``event_log.py``)."""

    __tablename__ = "mcp_session_events"

    session_id: str = Field(primary_key=True, max_length=64)
    sequence: int = Field(primary_key=True)
    stream_id: str = Field(sa_column=Column(Text, nullable=False))
    event_id: str = Field(max_length=40, unique=True)
    message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
