"""Change notifications: every write that affects authorization announces itself at commit.

On PostgreSQL ``publish_change`` issues ``pg_notify`` on the one channel ``capgate_changes``
inside the writer's transaction: PostgreSQL delivers it to every listening replica when (and
only if) that transaction commits, so a notification never runs ahead of the data it names
and a rolled-back change announces nothing. Replicas then re-read the changed rows through
their change feeds at once instead of at the next poll (the poll stays as the backstop for
notifications lost while a listener reconnects). SQLite is one host's file: nothing to publish,
the poll is the mechanism there.

Payload (JSON, well under PostgreSQL's 8000-byte limit): ``kind`` (one of ``KINDS``), ``id``
(what changed: a key id, a tool name, an integration id …), ``org`` (its organization) and
``at`` (the database's clock, seconds since the epoch, when the change was published — a
listener can measure propagation as its own receipt time minus ``at``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "capgate_changes"
ChangeKind = Literal["key", "tool_setting", "integration", "organization", "execution"]
KINDS: frozenset[str] = frozenset({"key", "tool_setting", "integration", "organization", "execution"})
_NOTIFY = text(
    "SELECT pg_notify(:channel, json_build_object("
    "'kind', CAST(:kind AS text), 'id', CAST(:id AS text), 'org', CAST(:org AS text),"
    " 'at', extract(epoch from clock_timestamp()))::text)"
)


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    id: str | None
    organization_id: str | None
    published_at: float | None

    @classmethod
    def parse(cls, payload: str) -> Change | None:
        """None for a payload this version does not understand (a listener then re-reads everything)."""
        try:
            data: Any = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("kind") not in KINDS:
            return None
        at = data.get("at")
        return cls(
            kind=str(data["kind"]),
            id=_optional_str(data.get("id")),
            organization_id=_optional_str(data.get("org")),
            published_at=float(at) if isinstance(at, int | float) else None,
        )


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def publish_change(
    session: AsyncSession, kind: ChangeKind, *, id: str | None = None, organization_id: str | None = None
) -> None:
    """Announces a change to every replica when ``session``'s transaction commits.

    Call it in the same transaction as the write (keys, grants, tool switches, integrations,
    organizations); the row must also carry a fresh ``updated_at`` so the poll backstop sees it.
    ``execution``: new events of a running execution were written (followers on other replicas read them).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    with session.no_autoflush:  # the caller decides when its pending rows are flushed (and handles conflicts)
        await session.execute(_NOTIFY, {"channel": CHANNEL, "kind": kind, "id": id, "org": organization_id})
