"""The async database engine: SQLite (WAL) by default, PostgreSQL for scale-out."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from server.private_files import private_sqlite_file


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _roll_back_before_terminate(_connection: Any, record: ConnectionPoolEntry, _error: BaseException | None) -> None:
    """Releases SQLite's write lock held by a connection SQLAlchemy is about to throw away.

    A task cancelled in the middle of a statement (a client's cancel, a session ended mid-call, shutdown)
    makes SQLAlchemy invalidate its aiosqlite connection. aiosqlite then closes the sqlite3 connection while
    a cursor of the cancelled statement still holds a prepared statement, so SQLite keeps the connection as a
    "zombie" with its transaction, and its write lock, open for as long as that cursor lives: every other
    writer waited out ``busy_timeout`` and failed with "database is locked". Queued on the connection's own
    thread ahead of the close, a rollback ends the transaction first.
    """
    driver = record.driver_connection
    tasks = getattr(driver, "_tx", None)  # aiosqlite's queue of calls for the connection's thread
    if tasks is not None:
        tasks.put_nowait((None, lambda: _rollback_quietly(driver)))


def _rollback_quietly(driver: Any) -> None:
    raw = getattr(driver, "_connection", None)
    if isinstance(raw, sqlite3.Connection):
        try:
            raw.rollback()
        except sqlite3.Error:  # already closed, or nothing to end: the lock is free either way
            pass


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_sqlite_file(Path(parsed.database))
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "invalidate", _roll_back_before_terminate)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
