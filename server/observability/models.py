"""The decision log: one row per authorization decision (or per aggregated minute of them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class AuthzDecision(SQLModel, table=True):
    __tablename__ = "authz_decisions"
    __table_args__ = (
        Index("ix_authz_decisions_org_id", "organization_id", "id"),
        Index("ix_authz_decisions_key_id", "key_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    organization_id: str | None = Field(default=None, max_length=32)
    key_id: str | None = Field(default=None, max_length=12)
    request_id: str | None = Field(default=None, max_length=128)
    trace_id: str | None = Field(default=None, max_length=32)
    route: str = Field(max_length=200, description="HTTP route template, or the MCP method")
    tool: str | None = Field(default=None, max_length=200)
    outcome: str = Field(max_length=8, description="allowed or refused")
    reason: str = Field(max_length=64, description="reason code: allowed, revoked_api_key, tool_not_granted, ...")
    rule: str = Field(sa_type=Text, description="the rule that decided, in words")
    policy_revision: int | None = Field(default=None, description="the key's policy revision in force")
    count: int = Field(default=1, description="decisions this row stands for (more than 1 when aggregated)")
