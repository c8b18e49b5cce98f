"""The runtime's background work: the loop that keeps this worker alive and interrupts executions of dead ones."""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.runtime import store as runtime_store
from server.runtime.clock import DatabaseClock
from server.runtime.group_commit import GroupCommitter

logger = logging.getLogger(__name__)


async def beat_once(
    sessions: async_sessionmaker[AsyncSession], *, worker_id: str, interval: float, clock: DatabaseClock | None = None
) -> int:
    """Marks this worker alive, measures the database's clock and interrupts executions of workers silent for three
    beats."""
    async with sessions.begin() as session:
        if clock is not None:
            await clock.measure(session)
        await runtime_store.heartbeat(session, worker_id=worker_id)
        return await runtime_store.interrupt_orphaned_executions(
            session, stale_after=timedelta(seconds=3 * interval), own_worker_id=worker_id
        )


async def run_worker(
    sessions: async_sessionmaker[AsyncSession],
    *,
    worker_id: str,
    interval: float,
    committer: GroupCommitter | None = None,
    clock: DatabaseClock | None = None,
) -> None:
    """The runtime's background work: the heartbeat loop and, when given, the group-commit loop."""
    async with anyio.create_task_group() as tasks:
        if committer is not None:
            tasks.start_soon(committer.run, sessions)
        await _beat_forever(sessions, worker_id=worker_id, interval=interval, clock=clock)


async def _beat_forever(
    sessions: async_sessionmaker[AsyncSession], *, worker_id: str, interval: float, clock: DatabaseClock | None
) -> None:
    try:
        while True:
            try:
                with anyio.CancelScope(shield=True):
                    interrupted = await beat_once(sessions, worker_id=worker_id, interval=interval, clock=clock)
                if interrupted:
                    logger.warning("marked %d executions of stopped processes as interrupted", interrupted)
            except SQLAlchemyError:
                logger.warning("worker heartbeat failed; retrying", exc_info=True)
            await anyio.sleep(interval)
    finally:
        with anyio.CancelScope(shield=True):
            try:
                async with sessions.begin() as session:
                    await runtime_store.remove_worker(session, worker_id=worker_id)
            except SQLAlchemyError:
                logger.warning("could not remove worker row on shutdown", exc_info=True)
