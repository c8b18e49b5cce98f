"""The server pepper: given in settings, or generated once and kept in the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from server.private_files import private_dir

PEPPER_FILE = "pepper"


def load_or_create_pepper(data_dir: Path, configured: str | None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / PEPPER_FILE
    if path.exists():
        return path.read_bytes().strip()
    private_dir(data_dir)
    value = secrets.token_hex(32).encode()
    # Written aside, then linked into place: a concurrent starter sees either no file or the whole pepper.
    tmp = data_dir / f".{PEPPER_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    try:
        os.link(tmp, path)
    except FileExistsError:
        value = path.read_bytes().strip()
    finally:
        tmp.unlink()
    return value
