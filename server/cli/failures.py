"""Startup and CLI failures as one line that says what is wrong and what to do (the traceback only with --debug)."""

from __future__ import annotations

import errno
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

DEBUG_HINT = "run with --debug (or CAPGATE_DEBUG=1) for the traceback"


class CliFailure(Exception):
    """A failure whose message is already the one line to print."""


def describe_failure(exc: BaseException, *, database_url: str | None = None) -> str:
    """One line for the user: what went wrong, and what to do about it."""
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    if isinstance(exc, CliFailure):
        return str(exc)
    if isinstance(exc, ValidationError):
        return _settings_problem(exc)
    where = _database_label(database_url)
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        return (
            f"CAPGATE_DATABASE_URL is not a database URL capgate can use ({exc}); "
            "use sqlite:///path/to/capgate.db or postgresql://user@host:5432/dbname"
        )
    text = str(cause)
    postgres = _postgres_problem(cause, text, where)
    if postgres:
        return postgres
    if isinstance(cause, sqlite3.Error) or "sqlite" in type(cause).__module__:
        return _sqlite_problem(text, where)
    if isinstance(cause, PermissionError):
        return f"permission denied: {cause.filename or text} — make the data directory writable or set CAPGATE_DATA_DIR"
    if isinstance(cause, OSError) and cause.errno == errno.EROFS:
        return f"{cause.filename or where} is on a read-only file system — set CAPGATE_DATA_DIR to a writable folder"
    if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
        place = cause.filename or where
        return f"no space left on the device holding {place} — free some space or move CAPGATE_DATA_DIR"
    if isinstance(cause, (ConnectionRefusedError, ConnectionError)) or (
        isinstance(cause, OSError) and cause.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ETIMEDOUT)
    ):
        return f"cannot reach the database at {where}: {text} — is it running? check CAPGATE_DATABASE_URL"
    return f"{type(cause).__name__}: {text.splitlines()[0] if text else 'unexpected failure'} ({DEBUG_HINT})"


def _postgres_problem(cause: BaseException, text: str, where: str) -> str | None:
    name = type(cause).__name__
    if name == "InvalidCatalogNameError" or ("does not exist" in text and "database" in text):
        return f"{text} on {where} — create it (createdb) or fix CAPGATE_DATABASE_URL"
    if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return f"the database at {where} refused the login: {text} — fix the user/password in CAPGATE_DATABASE_URL"
    if name == "CannotConnectNowError":
        return f"the database at {where} is starting up or shutting down: {text} — try again in a moment"
    if "Connect call failed" in text or "connection refused" in text.lower():
        return f"cannot reach the database at {where} (connection refused) — is it running? check CAPGATE_DATABASE_URL"
    return None


def _sqlite_problem(text: str, where: str) -> str:
    lowered = text.lower()
    if "unable to open database file" in lowered:
        return f"cannot open the SQLite database {where} — its folder must exist and be writable (CAPGATE_DATA_DIR)"
    if "readonly" in lowered or "read-only" in lowered:
        return f"the SQLite database {where} is read-only — make it writable or set CAPGATE_DATA_DIR to another folder"
    if "disk is full" in lowered or "disk i/o" in lowered:
        return f"cannot write the SQLite database {where}: {text} — free some disk space or move CAPGATE_DATA_DIR"
    if "no such table" in lowered:
        return f"the database {where} is not set up — run `capgate init`"
    return f"SQLite error on {where}: {text} ({DEBUG_HINT})"


def _settings_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "settings"
    return f"setting {field} (CAPGATE_{field.upper()}): {first['msg']} — fix the environment variable or capgate.toml"


def _database_label(url: str | None) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url:
        return "the configured database"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "the configured database"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
