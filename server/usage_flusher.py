"""Writes what the request path only recorded in memory: last-used times, daily counts, auth failures.

One transaction every ``usage_flush_seconds``, and a final one at shutdown. With the
in-process rate-limit backend, today's counts are read back at startup, so the daily
quota survives a restart; with Redis the counts live in Redis.
"""

from __future__ import annotations

import logging

import anyio
from sqlalchemy.exc import SQLAlchemyError

from auth.failures import write_failures
from auth.ratelimit import utc_day
from auth.ratelimit_memory import InProcessBackend
from auth.usage import read_daily_usage, write_daily_usage, write_last_used
from server.state import AppState

logger = logging.getLogger(__name__)


class UsageFlusher:
    def __init__(self, state: AppState) -> None:
        self._state = state

    @property
    def _memory_backend(self) -> InProcessBackend | None:
        limiter = self._state.rate_limiter
        backend = limiter.backend if limiter is not None else None
        return backend if isinstance(backend, InProcessBackend) else None

    async def load(self) -> None:
        backend = self._memory_backend
        if backend is None:
            return
        async with self._state.sessions() as session:
            backend.load_daily(await read_daily_usage(session, today=utc_day(self._state.clock())))

    async def flush(self, *, final: bool = False) -> None:
        state = self._state
        now = state.clock()
        backend = self._memory_backend
        last_used = state.last_used.take_dirty()
        daily = backend.dirty_daily() if backend is not None else []
        failures = state.failures.take_finished(None if final else now)
        if last_used or daily or failures:
            async with state.sessions.begin() as session:
                await write_last_used(session, last_used)
                await write_daily_usage(session, daily)
                await write_failures(session, failures)
        if backend is not None:
            backend.mark_written(daily)
            backend.sweep(now)

    async def run(self) -> None:
        while True:
            await anyio.sleep(self._state.settings.usage_flush_seconds)
            try:
                # Like the key watcher: never cancel a write half-way.
                with anyio.CancelScope(shield=True):
                    await self.flush()
            except SQLAlchemyError:
                logger.warning("usage flush failed; these counts are lost", exc_info=True)
