"""Checks run before a command does its work, so a mistake is reported in one line with the command that fixes it."""

from __future__ import annotations

import errno
import re
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


VERSIONS_DIR = Path(__file__).resolve().parents[1] / "migrations" / "versions"
_REVISION = re.compile(r'^(down_revision|revision)(?:\s*:[^=]+)?\s*=\s*(None|"[^"]*"|\'[^\']*\')', re.M)


def migration_heads() -> set[str]:
    """The newest revision(s), read from the migration files' text: importing Alembic costs a CLI start 0.2 s."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in VERSIONS_DIR.glob("*.py"):
        found = dict(_REVISION.findall(script.read_text()))
        if "revision" in found:
            revisions.add(found["revision"].strip("'\""))
        if found.get("down_revision", "None") != "None":
            parents.add(found["down_revision"].strip("'\""))
    return revisions - parents


async def ensure_database_migrated(engine: AsyncEngine) -> None:
    from sqlalchemy import inspect, text

    def current(connection: Connection) -> set[str]:
        if not inspect(connection).has_table("alembic_version"):
            return set()
        return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())

    async with engine.connect() as connection:
        applied = await connection.run_sync(current)
    if not applied:
        raise CliFailure("the database is empty (no capgate tables) — run `capgate init`")
    if applied != migration_heads():
        raise CliFailure("the database schema is older than this capgate — run `capgate db upgrade`")
