"""Listens for change notifications (``auth/changes.py``) and applies them in this replica at once.

One dedicated asyncpg connection per process runs ``LISTEN capgate_changes``; each notification
is handed to the handlers registered for its kind (they wake a change feed, drop a cache). The
change feeds' poll remains the backstop: whenever the listener (re)connects it calls every
handler with ``None`` — "anything may have changed" — so the feeds re-read everything changed
since their last mark, covering notifications sent while no connection was listening.

PostgreSQL rather than Redis pub/sub because NOTIFY is transactional (sent at commit, never for
a rolled-back write) and every writer — replicas and the CLI — already holds the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from auth.changes import CHANNEL, Change

logger = logging.getLogger(__name__)
ChangeHandler = Callable[[Change | None], None]
"""Called with the change, or None when changes may have been missed (after a (re)connect)."""
ChangeObserver = Callable[[Change, float], None]
"""Called with each change and the wall-clock time it was received (e.g. to measure propagation)."""


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeNotifications:
    def __init__(self, database_url: str, *, keepalive_seconds: float = 5.0, reconnect_seconds: float = 1.0) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._keepalive = keepalive_seconds
        self._reconnect = reconnect_seconds
        self._handlers: dict[str, list[ChangeHandler]] = {}
        self._observers: list[ChangeObserver] = []
        self.listening = False
        self.received = 0

    def on(self, kind: str, handler: ChangeHandler) -> None:
        """Registers a handler for one kind of change (``auth.changes.KINDS``)."""
        self._handlers.setdefault(kind, []).append(handler)

    def observe(self, observer: ChangeObserver) -> None:
        self._observers.append(observer)

    def apply(self, change: Change | None) -> None:
        if change is None:
            handlers = [handler for kind_handlers in self._handlers.values() for handler in kind_handlers]
        else:
            handlers = self._handlers.get(change.kind, [])
        for handler in handlers:
            try:
                handler(change)
            except Exception:  # one broken handler must not stop the others or the listener
                logger.exception("change handler failed for %s", change)

    def _received(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        change = Change.parse(payload)
        if change is not None:
            received_at = time.time()
            for observer in self._observers:
                observer(change, received_at)
        self.apply(change)

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                logger.warning("change listener lost its connection; reconnecting", exc_info=True)
            self.listening = False
            await anyio.sleep(self._reconnect)

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=10)
        try:
            lost = anyio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CHANNEL, self._received)
            self.listening = True
            self.apply(None)  # whatever changed while nobody listened: the feeds re-read since their mark
            while not lost.is_set():
                with anyio.move_on_after(self._keepalive):
                    await lost.wait()
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=self._keepalive)
        finally:
            with anyio.CancelScope(shield=True):
                await connection.close(timeout=2)
