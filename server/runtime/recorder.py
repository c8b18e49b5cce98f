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
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.changes import publish_change
from auth.dbtypes import table_of, utcnow
from server.runtime import store as runtime_store
from server.runtime.group_commit import GroupCommitter, Row, write
from server.runtime.live import EventRecord, LiveExecution, LiveExecutions
from server.runtime.models import Execution, RuntimeSession
from server.runtime.storable import for_storage, text_for_storage, without_nul

logger = logging.getLogger(__name__)
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
        now: Callable[[], datetime] = utcnow,
        record_max_bytes: int = 16_384,
    ) -> None:
        self._now = now
        self.record_max_bytes = record_max_bytes
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
        event = EventRecord(self._seq, kind, data, self._now())
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
            # Stamped when written, not when the call began: sessions page newest first, and a row that
            # appeared later under an earlier time would land behind pages a client has already read.
            written_at = self._now()
            session_table = table_of(RuntimeSession)
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
                        "created_at": written_at,
                        "updated_at": written_at,
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
            "input": for_storage(self.arguments, self.record_max_bytes),
            "output": None,
            "error": None,
            "worker_id": self.worker_id,
            "started_at": started_at,
            "finished_at": None,
        }
        rows.append((table_of(Execution), {**execution, **(final or {})}))
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
            count = await self._write_pending(session)
        self._written(count)
        return None

    async def _write_pending(self, session: AsyncSession, final: dict[str, Any] | None = None) -> int:
        """Writes the buffered events (and the final outcome); returns how many, to drop once committed.

        When another process judged this execution's process dead and marked it `interrupted`,
        the row no longer says `running`: the events are numbered after its `interrupted` event
        and the final outcome, what really happened, replaces the verdict.
        """
        pending = list(self._pending)
        # Followers on other replicas read the new events when this commits (a long call only: the
        # hot path's short calls are written by the group committer, with nobody following yet).
        await publish_change(session, "execution", id=self.execution_id, organization_id=self.organization_id)
        if not self.persisted:
            await write(session, [*self._start_rows(final), *self._event_rows(pending)])
            return len(pending)
        values = final or {"worker_id": self.worker_id}
        if not await runtime_store.update_if_running(session, execution_id=self.execution_id, values=values):
            first = await runtime_store.next_event_seq(session, execution_id=self.execution_id)
            pending = [replace(event, seq=first + index) for index, event in enumerate(pending)]
            if final is not None:
                await runtime_store.update_execution(session, execution_id=self.execution_id, values=final)
        await write(session, self._event_rows(pending))
        return len(pending)

    def _event_rows(self, events: list[EventRecord]) -> list[Row]:
        return runtime_store.event_rows(self.organization_id, self.execution_id, events, self.record_max_bytes)

    def _written(self, count: int) -> None:
        """Called after the commit: only then are the events gone from the buffer."""
        self._pending = self._pending[count:]
        self.persisted = True

    async def flush(self) -> None:
        async with self._lock:
            if self.persisted and not self._pending:
                return
            async with self._sessions.begin() as session:
                count = await self._write_pending(session)
            self._written(count)

    async def flush_every(self, interval: float) -> None:
        """Flushes until cancelled; a failed flush is logged and retried, never an error of the tool."""
        while True:
            await anyio.sleep(interval)
            with anyio.CancelScope(shield=True):
                try:
                    await self.flush()
                except Exception:
                    logger.warning("flushing execution %s failed; retrying", self.execution_id, exc_info=True)

    async def finish(self, status: str, output: Any, error: str | None) -> None:
        finished_at = self._now()
        error = text_for_storage(without_nul(error), self.record_max_bytes) if error is not None else None
        stored_output = for_storage(output, self.record_max_bytes)
        final = {"status": status, "output": stored_output, "error": error, "finished_at": finished_at}
        if status == "succeeded":
            self._event("completed", {"status": status, "result": output})
        else:
            self._event(status if status == "interrupted" else "failed", {"status": status, "error": error})
        try:
            async with self._lock:
                if self.persisted:  # a long call: its own transaction, to notice an interruption verdict
                    async with self._sessions.begin() as session:
                        count = await self._write_pending(session, final)
                    self._written(count)
                    return
                # The hot path. The session was checked before the tool ran (invoke_tool); sessions are never deleted.
                rows = [*self._start_rows(final), *self._event_rows(self._pending)]
                await self._committer.submit(self._sessions, rows)
                self._written(len(self._pending))
        finally:
            self.close()

    def close(self) -> None:
        self._live_registry.close(self.execution_id)
