"""Group commit: the final records of concurrent tool calls, written in one transaction.

Every tool call ends with one write (its execution row, its events and, when it opened
one, its session). One transaction per call means a commit per call and, on SQLite,
calls queueing on each other's write lock through busy_timeout back-off (hundreds of
milliseconds at the tail). Instead a call hands its write to ``GroupCommit.write`` and
waits: whoever finds the writer free takes every write queued so far and commits them
together. If that transaction fails, each write of the batch is retried in its own, so
one bad write (a session archived meanwhile) fails only its own call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from server.runtime_store import insert_rows

# Runs its reads and updates in the session and returns the new rows to insert: the rows of a
# whole batch are inserted together, one statement per table.
Write = Callable[[AsyncSession], Awaitable[list[SQLModel]]]


@dataclass(eq=False, slots=True)
class _Queued:
    write: Write
    done: bool = False
    error: Exception | None = None


class GroupCommit:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._queue: list[_Queued] = []
        self._lock = anyio.Lock()

    async def write(self, write: Write) -> None:
        """Runs ``write`` and inserts its rows in a committed transaction, possibly shared with other calls.

        ``write`` may run twice (a failed batch is retried one by one): it must build its rows
        fresh on each run.
        """
        queued = _Queued(write)
        self._queue.append(queued)
        # A queued write is committed even when its caller is cancelled: the record must not get lost.
        with anyio.CancelScope(shield=True):
            async with self._lock:
                if not queued.done:
                    batch, self._queue = self._queue, []
                    await self._commit(batch)
        if queued.error is not None:
            raise queued.error

    async def _commit(self, batch: list[_Queued]) -> None:
        try:
            try:
                async with self._sessions.begin() as session:
                    rows: list[SQLModel] = []
                    for queued in batch:
                        rows.extend(await queued.write(session))
                    await insert_rows(session, rows)
                return
            except Exception as error:
                if len(batch) == 1:
                    batch[0].error = error
                    return
            for queued in batch:
                try:
                    async with self._sessions.begin() as session:
                        await insert_rows(session, await queued.write(session))
                except Exception as error:
                    queued.error = error
        finally:
            for queued in batch:
                queued.done = True
