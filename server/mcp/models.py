"""The shared directory of legacy MCP sessions: which replica owns each one, for which key."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class McpSessionOwner(SQLModel, table=True):
    __tablename__ = "mcp_session_owners"

    session_id: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(max_length=12)
    owner_url: str = Field(max_length=300, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
