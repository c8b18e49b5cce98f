"""Group commit: the final writes of many concurrent tool calls share one transaction.

Each call hands over a function that adds its rows to a session and waits until the
transaction holding them has committed; while one transaction commits, the next batch
gathers. On SQLite this also replaces many writers queueing in the busy handler (which
sleeps in steps of up to 100 ms) by one writer. A batch that fails is retried one job at a
time, so one bad job fails only its own caller. Without a running loop (no lifespan),
``submit`` writes directly.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)
Apply = Callable[[AsyncSession], Awaitable[None]]


@dataclass(slots=True)
class _Job:
    apply: Apply
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, *, max_batch: int = 256) -> None:
        self._max_batch = max_batch
        self._queue: deque[_Job] = deque()
        self._wakeup = anyio.Event()
        self.running = False

    async def submit(self, sessions: async_sessionmaker[AsyncSession], apply: Apply) -> None:
        if not self.running:
            async with sessions.begin() as session:
                await apply(session)
            return
        job = _Job(apply)
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
            self._fail_queued()

    async def _commit(self, sessions: async_sessionmaker[AsyncSession], batch: list[_Job]) -> None:
        try:
            async with sessions.begin() as session:
                for job in batch:
                    await job.apply(session)
        except Exception as exc:  # handed to the waiting caller, whose request maps it like any other error
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done.set()
                return
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
