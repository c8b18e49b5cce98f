"""The group committer's writer on SQLite: one ``sqlite3`` connection, one thread hop per batch.

Through aiosqlite every cursor operation of a batch (begin, each INSERT, each cursor's close, the
commit) is a round trip to aiosqlite's thread, and each one waits for the event loop to run the
answer. Here a whole batch — ``BEGIN IMMEDIATE``, one ``executemany`` per table, ``COMMIT`` — runs
as one function in a worker thread on a connection of its own, with the pragmas of ``server/db.py``.
The rows arrive as the ``InsertPlan`` tuples the PostgreSQL path uses too; errors are raised as the
SQLAlchemy exceptions the rest of capgate maps (``DBAPIError.instance``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

Prepared = Sequence[tuple[str, list[tuple[Any, ...]]]]


class SqliteWriter:
    def __init__(self, path: str, dialect: Dialect, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.dialect = dialect
        self._busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None
        self._guard = threading.Lock()  # one batch at a time on the one connection
        self._limiter = anyio.CapacityLimiter(1)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                connection.execute(f"PRAGMA {pragma}")
            connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            self._connection = connection
        return self._connection

    def _commit(self, prepared: Prepared) -> None:
        with self._guard:
            connection = self._connect()
            statement, parameters = "BEGIN IMMEDIATE", list[tuple[Any, ...]]()
            try:
                connection.execute(statement)
                for statement, parameters in prepared:
                    connection.executemany(statement, parameters)
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise DBAPIError.instance(statement, parameters, error, sqlite3.Error) from error

    async def write(self, prepared: Prepared) -> None:
        # Shielded: a cancelled caller must not leave the batch half-decided; the thread finishes it anyway.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._commit, prepared, limiter=self._limiter)

    def close(self) -> None:
        with self._guard:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
