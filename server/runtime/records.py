"""What the Runtime keeps: its sessions and executions, read and changed only through here.

``Runtime`` (server/runtime/invocation.py) builds on this, so routes and the MCP endpoint call the
Runtime and never the runtime store directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.principal import Principal
from server.runtime import store as runtime_store
from server.runtime.clock import DatabaseClock
from server.runtime.live import EventRecord, LiveExecutions
from server.runtime.models import Execution, RuntimeSession


class RuntimeRecords:
    def __init__(
        self, *, db: async_sessionmaker[AsyncSession], poll_seconds: float, clock: DatabaseClock | None = None
    ) -> None:
        self.db = db
        self.live = LiveExecutions()
        self.clock = clock or DatabaseClock()  # runtime rows are stamped with the database's time
        self._poll_seconds = poll_seconds

    async def create_session(
        self, principal: Principal, *, title: str | None, interaction_mode: str | None = None, source: str = "api"
    ) -> RuntimeSession:
        row = runtime_store.new_session(
            organization_id=principal.organization_id,
            title=title,
            source=source,
            key_id=principal.key_id,
            now=self.clock.now(),
        )
        if interaction_mode:
            row.interaction_mode = interaction_mode
        async with self.db.begin() as session:
            session.add(row)
        return row

    async def list_sessions(
        self, principal: Principal, *, limit: int, cursor: str | None, status: str | None
    ) -> tuple[list[RuntimeSession], str | None]:
        async with self.db() as session:
            return await runtime_store.list_sessions(
                session, organization_id=principal.organization_id, limit=limit, cursor=cursor, status=status
            )

    async def get_session(self, principal: Principal, session_id: str) -> RuntimeSession:
        async with self.db() as session:
            return await runtime_store.get_session(
                session, organization_id=principal.organization_id, session_id=session_id
            )

    async def archive_session(self, principal: Principal, session_id: str) -> RuntimeSession:
        async with self.db.begin() as session:
            return await runtime_store.archive_session(
                session, organization_id=principal.organization_id, session_id=session_id, now=self.clock.now()
            )

    async def get_execution(self, principal: Principal, execution_id: str) -> Execution:
        async with self.db() as session:
            return await runtime_store.get_execution(
                session, organization_id=principal.organization_id, execution_id=execution_id
            )

    async def check_execution(self, principal: Principal, execution_id: str) -> None:
        """NotFound unless the execution is the principal's organization's (a running one may not be written yet)."""
        live = self.live.get(execution_id)
        if live is None or live.organization_id != principal.organization_id:
            await self.get_execution(principal, execution_id)

    async def follow(self, execution_id: str, after: int, *, heartbeat: float) -> AsyncIterator[EventRecord]:
        """Every event after ``after``, up to and including the terminal one: from memory while the execution
        runs in this process, else from the database each time its process announces new events (and at
        least every poll interval). Call ``check_execution`` first."""
        while True:
            live = self.live.get(execution_id)
            if live is None:
                stored = await self._stored_events(execution_id, after)
                if stored is None:  # resumed at or after the final event
                    return
                events = stored
            else:
                events = live.after(after)
            for event in events:
                yield event
                after = event.seq
                if event.terminal:
                    return
            if live is not None:
                await live.wait_for_events_after(after, heartbeat)
            else:  # running elsewhere: woken by its change notification, the poll catches a lost one
                await self.live.wait_elsewhere(execution_id, self._poll_seconds)

    async def _stored_events(self, execution_id: str, after: int) -> list[EventRecord] | None:
        """The stored events after ``after``; None when there are none and none will come (it finished)."""
        async with self.db() as session:
            events = await runtime_store.load_events(session, execution_id=execution_id, after=after)
            if not events and await runtime_store.execution_finished(session, execution_id=execution_id):
                return None
        return events
