"""Checks run before a command does its work, so a mistake is reported in one line with the command that fixes it."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from server.cli.failures import CliFailure

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine


def ensure_port_free(host: str, port: int) -> None:
    """Fails when another process listens on host:port (checked before migrating, so nothing else is printed)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliFailure(f"cannot bind to {host!r}: {exc.strerror} — check --host/CAPGATE_HOST") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliFailure(
                    f"port {port} is in use — stop the other server or run with --port/CAPGATE_PORT"
                ) from None
            if exc.errno == errno.EACCES:
                raise CliFailure(f"no permission to bind {host}:{port} — use a port above 1023") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise CliFailure(f"{host} is not an address of this machine — check --host/CAPGATE_HOST") from None
            raise


def ensure_database_exists(database_url: str) -> None:
    """A SQLite file that is not there is a wrong folder or a missing `capgate init`, never a new empty database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(database_url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    if not Path(parsed.database).exists():
        raise CliFailure(
            f"no database at {parsed.database} — run `capgate init` (or point CAPGATE_DATA_DIR at the folder"
            " that holds capgate.db)"
        )


async def ensure_database_migrated(engine: AsyncEngine) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from server.migrate import alembic_config

    def current_and_expected(connection: Connection) -> tuple[set[str], set[str]]:
        current = set(MigrationContext.configure(connection).get_current_heads())
        expected = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        return current, expected

    async with engine.connect() as connection:
        current, expected = await connection.run_sync(current_and_expected)
    if not current:
        raise CliFailure("the database is empty (no capgate tables) — run `capgate init`")
    if current != expected:
        raise CliFailure("the database schema is older than this capgate — run `capgate db upgrade`")
