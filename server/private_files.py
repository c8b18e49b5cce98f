"""The data directory and the SQLite files hold key hashes and every tenant's data: owner-only."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Creates ``path`` (and parents) as 0700; a directory capgate creates is never readable by others."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):
        path.chmod(0o700)  # mkdir's mode passes through the umask; this one does not


def private_sqlite_file(path: Path) -> None:
    """Creates the database file 0600 before SQLite does; SQLite gives its WAL and SHM files the same mode."""
    private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if candidate.stat().st_mode & 0o077:
                candidate.chmod(0o600)
