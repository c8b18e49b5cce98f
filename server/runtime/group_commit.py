"""Group commit: the final writes of many concurrent tool calls share one transaction.

Each call hands over the rows it inserts (and any UPDATE statements) and waits until the
transaction holding them has committed; while one transaction commits, the next batch
gathers. A batch is written as one multi-row INSERT per table (in foreign-key order) plus
the updates, so its cost hardly grows with its size. On SQLite this also replaces many
writers queueing in the busy handler (which sleeps in steps of up to 100 ms) by one writer.
A batch that fails is retried one job at a time, so one bad job fails only its own caller.
Without a running loop (no lifespan), ``submit`` writes directly.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import Executable, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

logger = logging.getLogger(__name__)


Row = tuple[Table, dict[str, Any]]
"""A row to insert: its table and every column's value (plain dicts: no ORM instance on the hot path)."""


@dataclass(slots=True)
class _Job:
    rows: Sequence[Row]
    statements: Sequence[Executable]
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


async def write(session: AsyncSession, rows: Sequence[Row], statements: Sequence[Executable] = ()) -> None:
    """Inserts the rows, one statement per table in foreign-key order, then runs the statements."""
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for table, values in rows:
        by_table.setdefault(table, []).append(values)
    order = {table: index for index, table in enumerate(SQLModel.metadata.sorted_tables)}
    for table in sorted(by_table, key=lambda table: order[table]):
        await session.execute(insert(table), by_table[table])
    for statement in statements:
        await session.execute(statement)


SHUTDOWN_COMMIT_SECONDS = 5.0


class GroupCommitter:
    def __init__(self, *, max_batch: int = 256) -> None:
        self._max_batch = max_batch
        self._queue: deque[_Job] = deque()
        self._wakeup = anyio.Event()
        self.running = False

    async def submit(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rows: Sequence[Row],
        statements: Sequence[Executable] = (),
    ) -> None:
        if not self.running:
            async with sessions.begin() as session:
                await write(session, rows, statements)
            return
        job = _Job(rows, statements)
        self._queue.append(job)
        self._wakeup.set()
        await job.done.wait()
        if job.error is not None:
            raise job.error

    async def run(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.running = True
        try:
            while True:
                if not self._queue:
                    await self._wakeup.wait()
                    self._wakeup = anyio.Event()
                    continue
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                with anyio.CancelScope(shield=True):
                    await self._commit(sessions, batch)
        finally:
            self.running = False
            # Jobs already queued were acknowledged to nobody yet but are owed a write: commit them before
            # giving up (bounded, so a database that went away cannot hold shutdown).
            with anyio.move_on_after(SHUTDOWN_COMMIT_SECONDS, shield=True):
                while self._queue:
                    await self._commit(
                        sessions, [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                    )
            self._fail_queued()

    async def _commit(self, sessions: async_sessionmaker[AsyncSession], batch: list[_Job]) -> None:
        try:
            async with sessions.begin() as session:
                await write(
                    session,
                    [row for job in batch for row in job.rows],
                    [statement for job in batch for statement in job.statements],
                )
        except Exception as exc:  # handed to the waiting caller, whose request maps it like any other error
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done.set()
                return
            logger.warning("group commit of %d jobs failed; retrying one by one", len(batch))
            for job in batch:
                await self._commit(sessions, [job])
            return
        for job in batch:
            job.done.set()

    def _fail_queued(self) -> None:
        while self._queue:
            job = self._queue.popleft()
            job.error = RuntimeError("server is shutting down")
            job.done.set()
