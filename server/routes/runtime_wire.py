"""Wire shapes of the Runtime API (camelCase), and its request bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from auth.dbtypes import iso
from server.runtime.calls import InvocationResult
from server.runtime.live import EventRecord
from server.runtime.models import Execution, RuntimeSession
from server.runtime.storable import StoredText


class InvokeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: dict[str, Any] = Field(default_factory=dict)
    sessionId: str | None = Field(default=None, max_length=64)
    connectedAccountId: str | None = Field(default=None, max_length=64)


class SessionCreateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: StoredText | None = Field(default=None, min_length=1, max_length=200)
    interactionMode: str | None = Field(default=None, pattern="^(autonomous|interactive)$")


def session_public(row: RuntimeSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "source": row.source,
        "interactionMode": row.interaction_mode,
        "status": row.status,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
        "archivedAt": iso(row.archived_at),
    }


def execution_public(row: Execution) -> dict[str, Any]:
    duration = (row.finished_at - row.started_at).total_seconds() * 1000 if row.finished_at else None
    return {
        "id": row.id,
        "sessionId": row.session_id,
        "toolName": row.tool_name,
        "status": row.status,
        "source": row.source,
        "connectedAccountId": row.connected_account_id,
        "startedAt": iso(row.started_at),
        "finishedAt": iso(row.finished_at),
        "durationMs": round(duration, 3) if duration is not None else None,
        "isError": row.status in ("failed", "interrupted"),
        "result": row.output if row.status == "succeeded" else None,
        "error": row.error,
    }


def invocation_public(result: InvocationResult) -> dict[str, Any]:
    """The invoke response. A tool that failed is still HTTP 200, with isError true and the message in error."""
    return {
        "executionId": result.execution_id,
        "sessionId": result.session_id,
        "status": result.status,
        "isError": result.is_error,
        "result": result.output,
        "error": result.error,
    }


def event_public(execution_id: str, event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.seq,
        "executionId": execution_id,
        "type": event.type,
        "createdAt": iso(event.created_at),
        "data": event.data,
    }
