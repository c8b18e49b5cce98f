"""Tables owned by the Runtime API: sessions, executions, their events, idempotency keys, workers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class RuntimeSession(SQLModel, table=True):
    __tablename__ = "runtime_sessions"
    __table_args__ = (Index("ix_runtime_sessions_org_created", "organization_id", "created_at", "id"),)

    id: str = Field(primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    title: str = Field(max_length=200)
    source: str = Field(default="api", max_length=16)
    interaction_mode: str = Field(default="autonomous", max_length=16)
    status: str = Field(default="active", max_length=16)
    created_by_key_id: str | None = Field(default=None, max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Execution(SQLModel, table=True):
    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_status_worker", "status", "worker_id"),
        # The console's usage charts: key and tool are in the index (they never change), so counting reads only it.
        Index("ix_executions_org_started", "organization_id", "started_at", "key_id", "tool_name"),
    )

    id: str = Field(primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    session_id: str = Field(foreign_key="runtime_sessions.id", index=True, max_length=32)
    tool_name: str = Field(max_length=200)
    key_id: str | None = Field(default=None, max_length=12)
    source: str = Field(default="api", max_length=16)
    connected_account_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default="running", max_length=16)
    input: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    output: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    worker_id: str | None = Field(default=None, max_length=32)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class ExecutionEvent(SQLModel, table=True):
    __tablename__ = "execution_events"

    execution_id: str = Field(foreign_key="executions.id", primary_key=True, max_length=32)
    seq: int = Field(primary_key=True, description="1, 2, 3… within the execution; the SSE event id")
    organization_id: str = Field(max_length=32)
    type: str = Field(max_length=16)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    organization_id: str = Field(foreign_key="organizations.id", primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    execution_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)


class RuntimeWorker(SQLModel, table=True):
    """One row per running server process; a stale heartbeat means its running executions died with it."""

    __tablename__ = "runtime_workers"

    id: str = Field(primary_key=True, max_length=32)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
