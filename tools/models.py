"""Per-organization tool switches: a row exists only for a tool an organization has switched."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class ToolSetting(SQLModel, table=True):
    __tablename__ = "tool_settings"

    organization_id: str = Field(foreign_key="organizations.id", primary_key=True, max_length=32)
    tool_name: str = Field(primary_key=True, max_length=200)
    enabled: bool = Field(default=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
