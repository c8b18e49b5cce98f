"""Tables owned by integrations: an organization's upstream MCP servers and the accounts connected to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class Integration(SQLModel, table=True):
    """An upstream MCP server an organization uses; its id is the prefix of its tools' names."""

    __tablename__ = "integrations"

    organization_id: str = Field(foreign_key="organizations.id", primary_key=True, max_length=32)
    id: str = Field(primary_key=True, max_length=32)
    title: str = Field(max_length=200)
    transport: str = Field(max_length=8, description="http or stdio")
    url: str | None = Field(default=None, max_length=2000)
    command: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    credential_header: str | None = Field(default=None, max_length=200, description="header the credential goes in")
    credential_template: str = Field(default="Bearer {secret}", max_length=200)
    credential_env: str | None = Field(default=None, max_length=200, description="env var of a stdio upstream")
    timeout_seconds: float = Field(default=60.0)
    url_from_operator: bool = Field(
        default=False, description="the URL was set by the operator (CLI), so the destination rules do not apply"
    )
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)


class ConnectedAccount(SQLModel, table=True):
    """One credential for an integration. The credential is only ever stored sealed (see vault.py)."""

    __tablename__ = "connected_accounts"
    __table_args__ = (
        Index("ix_connected_accounts_org_integration", "organization_id", "integration_id"),
        UniqueConstraint("organization_id", "integration_id", "label", name="uq_connected_accounts_label"),
    )

    id: str = Field(primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    integration_id: str = Field(max_length=32)
    label: str = Field(max_length=200)
    status: str = Field(default="ok", max_length=16, description="ok, error or disabled")
    last_error: str | None = Field(default=None, max_length=2000)
    key_id: str = Field(max_length=32, description="which data key sealed the credential")
    sealed_credential: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    tools: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True), description="the upstream's last tool listing"
    )
    tools_refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    created_by: str | None = Field(default=None, max_length=200)
    updated_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
