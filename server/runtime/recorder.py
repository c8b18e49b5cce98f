"""Records one execution: its row, its events, and the live copy streams follow.

The hot path stays at one write transaction per call: nothing is written while the tool
runs for less than ``flush_interval``; the session (when created), the execution and all
its events are then written together with the final status. A longer call is written as
`running` after ``flush_interval`` and its buffered events are flushed at that rate, so a
crash leaves a `running` row to interrupt and other processes can follow its events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.changes import publish_change
from auth.dbtypes import utcnow
from server.runtime import store as runtime_store
from server.runtime.group_commit import GroupCommitter, Row, write
from server.runtime.live import EventRecord, LiveExecution, LiveExecutions
from server.runtime.models import Execution, RuntimeSession

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    key: str
    request_hash: str
    ttl: timedelta


def request_hash(tool_name: str, arguments: dict[str, Any], session_id: str | None, account: str | None) -> str:
    body = {"tool": tool_name, "input": arguments, "sessionId": session_id, "connectedAccountId": account}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ExecutionRecorder:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        live: LiveExecutions,
        organization_id: str,
        key_id: str | None,
        execution_id: str,
        session_id: str | None,
        tool_name: str,
        arguments: dict[str, Any],
        connected_account_id: str | None,
        source: str,
        worker_id: str,
        on_progress: ProgressCallback | None,
        committer: GroupCommitter,
    ) -> None:
        self._sessions = sessions
        self._committer = committer
        self._live_registry = live
        self.organization_id = organization_id
        self.key_id = key_id
        self.execution_id = execution_id
        self.creates_session = session_id is None
        self.session_id = session_id or runtime_store.new_id("ses")
        self.tool_name = tool_name
        self.arguments = arguments
        self.connected_account_id = connected_account_id
        self.source = source
        self.worker_id = worker_id
        self.on_progress = on_progress
        self.persisted = False
        self._pending: list[EventRecord] = []
        self._seq = 0
        self._lock = anyio.Lock()
        self.live: LiveExecution = live.open(execution_id, organization_id)
        self._event("started", {"executionId": execution_id, "sessionId": self.session_id, "toolName": tool_name})

    def _event(self, kind: str, data: dict[str, Any]) -> EventRecord:
        self._seq += 1
        event = EventRecord(self._seq, kind, data, utcnow())
        self._pending.append(event)
        self.live.add(event)
        return event

    async def emit(self, kind: str, data: dict[str, Any]) -> None:
        """What ``ctx.progress`` and ``ctx.log`` call: buffered, flushed in batches."""
        self._event(kind, data)
        if kind == "progress" and self.on_progress is not None:
            await self.on_progress(data["progress"], data["total"], data["message"])

    def _start_rows(self, final: dict[str, Any] | None = None) -> list[Row]:
        started_at = self.live.events[0].created_at
        rows: list[Row] = []
        if self.creates_session:
            session_table = RuntimeSession.__table__  # type: ignore[attr-defined]
            rows.append(
                (
                    session_table,
                    {
                        "id": self.session_id,
                        "organization_id": self.organization_id,
                        "title": runtime_store.DEFAULT_SESSION_TITLE,
                        "source": self.source,
                        "interaction_mode": "autonomous",
                        "status": "active",
                        "created_by_key_id": self.key_id,
                        "created_at": started_at,
                        "updated_at": started_at,
                        "archived_at": None,
                    },
                )
            )
        execution: dict[str, Any] = {
            "id": self.execution_id,
            "organization_id": self.organization_id,
            "session_id": self.session_id,
            "tool_name": self.tool_name,
            "key_id": self.key_id,
            "source": self.source,
            "connected_account_id": self.connected_account_id,
            "status": "running",
            "input": self.arguments,
            "output": None,
            "error": None,
            "worker_id": self.worker_id,
            "started_at": started_at,
            "finished_at": None,
        }
        rows.append((Execution.__table__, {**execution, **(final or {})}))  # type: ignore[attr-defined]
        return rows

    async def _check_session(self, session: AsyncSession) -> None:
        if not self.creates_session:
            row = await runtime_store.get_session(
                session, organization_id=self.organization_id, session_id=self.session_id
            )
            runtime_store.ensure_active(row)

    async def start(self, claim: IdempotencyClaim | None = None) -> str | None:
        """Writes the `running` execution now; with a claim, returns the earlier execution's id on a replay."""
        async with self._lock, self._sessions.begin() as session:
            if claim is not None:
                earlier = await runtime_store.claim_idempotency_key(
                    session,
                    organization_id=self.organization_id,
                    key=claim.key,
                    request_hash=claim.request_hash,
                    execution_id=self.execution_id,
                    ttl=claim.ttl,
                )
                if earlier is not None:
                    return earlier
            await self._check_session(session)
            await self._write_pending(session)
        return None

    async def _write_pending(self, session: AsyncSession) -> None:
        rows: list[Row] = []
        if not self.persisted:
            rows += self._start_rows()
        rows += runtime_store.event_rows(self.organization_id, self.execution_id, self._pending)
        await write(session, rows)
        await publish_change(session, "execution", id=self.execution_id, organization_id=self.organization_id)
        self._pending = []
        self.persisted = True

    async def flush(self) -> None:
        async with self._lock:
            if self.persisted and not self._pending:
                return
            async with self._sessions.begin() as session:
                await self._write_pending(session)

    async def flush_every(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            with anyio.CancelScope(shield=True):
                await self.flush()

    async def finish(self, status: str, output: Any, error: str | None) -> None:
        finished_at = utcnow()
        final = {"status": status, "output": output, "error": error, "finished_at": finished_at}
        if status == "succeeded":
            self._event("completed", {"status": status, "result": output})
        else:
            self._event(status if status == "interrupted" else "failed", {"status": status, "error": error})
        async with self._lock:
            events = runtime_store.event_rows(self.organization_id, self.execution_id, self._pending)
            self._pending = []
            if self.persisted:
                rows: list[Row] = list(events)
                update_row = update(Execution).where(Execution.id == self.execution_id).values(**final)  # type: ignore[arg-type]
                statements = [update_row]
            else:
                # The session was checked before the tool ran (invoke_tool); sessions are never deleted.
                rows, statements = [*self._start_rows(final), *events], []
            try:
                await self._committer.submit(self._sessions, rows, statements)
                if self.persisted:  # followers elsewhere are waiting for the terminal event
                    async with self._sessions.begin() as session:
                        await publish_change(session, "execution", id=self.execution_id)
                self.persisted = True
            finally:
                self.close()

    def close(self) -> None:
        self._live_registry.close(self.execution_id)
