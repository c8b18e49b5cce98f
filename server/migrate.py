"""Apply Alembic migrations to the configured database, one process at a time.

Replicas started together on an empty database would otherwise all run the first migration and all but one
crash on `alembic_version`. PostgreSQL: a transaction-scoped advisory lock, taken in the very transaction
Alembic migrates in (so it is released exactly when the migration commits or rolls back). SQLite: an exclusive
`flock` on a lock file beside the database.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.private_files import private_dir

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant shared by every capgate process; "capgate" as ASCII bytes, so it is recognisable in pg_locks.
MIGRATION_LOCK_ID = 0x63617067617465


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade_database(engine: AsyncEngine, revision: str = "heads") -> None:
    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        command.upgrade(alembic_config(connection), revision)

    async with _sqlite_file_lock(engine), engine.begin() as conn:
        await conn.run_sync(run)


@asynccontextmanager
async def _sqlite_file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(f"{database}.migrate-lock")
    private_dir(lock_path.parent)
    with open(os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as lock:  # owner-only
        await anyio.to_thread.run_sync(fcntl.flock, lock, fcntl.LOCK_EX)  # waits while another process migrates
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
