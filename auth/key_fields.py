"""Checks of what a key (or organization) is called and which tools it is limited to, shared by create and update."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.errors import Conflict, InvalidRequest
from auth.models import ACTIVE_NAME_INDEX

MAX_NAME_LENGTH = 200
MAX_ALLOWED_TOOL_PATTERNS = 100


def clean_name(name: str, what: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidRequest(f"{what} name must not be empty")
    if len(cleaned) > MAX_NAME_LENGTH or any(ord(ch) < 32 for ch in cleaned):
        raise InvalidRequest(f"{what} name must be at most {MAX_NAME_LENGTH} printable characters")
    return cleaned


def clean_allowed_tools(patterns: Sequence[str] | None) -> list[str] | None:
    if patterns is None:
        return None
    cleaned = [pattern.strip() for pattern in patterns]
    if len(cleaned) > MAX_ALLOWED_TOOL_PATTERNS:
        raise InvalidRequest(f"At most {MAX_ALLOWED_TOOL_PATTERNS} allowed tool patterns")
    for pattern in cleaned:
        if not pattern or len(pattern) > 200 or not re.fullmatch(r"[A-Za-z0-9_.*?\-\[\]!]+", pattern):
            raise InvalidRequest(f"Invalid allowed tool pattern: {pattern!r}")
    return cleaned


async def flush_named(session: AsyncSession, name: str) -> None:
    """Flushes a key's name; the database's one-active-key-per-name index turns a duplicate that
    slipped past the check (two requests at once) into the same 409."""
    try:
        await session.flush()
    except IntegrityError as exc:
        message = str(exc.orig)
        if ACTIVE_NAME_INDEX in message or "api_keys.organization_id, api_keys.name" in message:
            raise Conflict(f"An active key named {name!r} already exists", code="duplicate_name") from None
        raise
