"""Authentication failures, aggregated per key id, reason and minute before they reach the audit log.

Only the public key id is kept (and only for a well-formed key); the presented secret is
never looked at. Buckets are written once their minute is over, so each (key id, reason,
minute) becomes exactly one ``auth.failed`` audit row carrying a count. Per minute at most
``MAX_KEY_BUCKETS_PER_MINUTE`` key ids and ``MAX_ANONYMOUS_SOURCES_PER_MINUTE`` source addresses of
anonymous failures (no well-formed key) get rows of their own; the excess is counted under key id
and source None, one row per reason. Anonymous traffic once could write 1,000 rows a minute (1.4 M a
day); now at most about 70 rows a minute are written whatever arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.audit import record_audit
from auth.dbtypes import iso
from auth.keys import parse_key
from auth.models import ApiKey
from auth.usage import from_timestamp

MAX_KEY_BUCKETS_PER_MINUTE = 50
MAX_ANONYMOUS_SOURCES_PER_MINUTE = 10


@dataclass(frozen=True, slots=True)
class FailureBucket:
    minute: int
    key_id: str | None
    reason: str
    source: str | None


class AuthFailureAggregator:
    def __init__(self) -> None:
        self._counts: dict[FailureBucket, int] = {}
        self._distinct: dict[tuple[int, bool], int] = {}  # (minute, has key id) → buckets of their own

    def record(self, *, now: float, presented: str | None, reason: str, source: str | None) -> None:
        parsed = parse_key(presented) if presented else None
        key_id = parsed.key_id if parsed else None
        minute = int(now // 60)
        bucket = FailureBucket(minute=minute, key_id=key_id, reason=reason, source=source)
        if bucket not in self._counts:
            kind = (minute, key_id is not None)
            cap = MAX_KEY_BUCKETS_PER_MINUTE if key_id is not None else MAX_ANONYMOUS_SOURCES_PER_MINUTE
            if self._distinct.get(kind, 0) >= cap:
                bucket = FailureBucket(minute=minute, key_id=None, reason=reason, source=None)
            else:
                self._distinct[kind] = self._distinct.get(kind, 0) + 1
        self._counts[bucket] = self._counts.get(bucket, 0) + 1

    def take_finished(self, now: float | None) -> dict[FailureBucket, int]:
        """Buckets whose minute is over (all of them when ``now`` is None, at shutdown)."""
        current = None if now is None else int(now // 60)
        done = {b: n for b, n in self._counts.items() if current is None or b.minute < current}
        for bucket in done:
            del self._counts[bucket]
        for kind in [kind for kind in self._distinct if current is None or kind[0] < current]:
            del self._distinct[kind]
        return done


async def organizations_of(session: AsyncSession, key_ids: set[str]) -> dict[str, str]:
    if not key_ids:
        return {}
    rows = await session.execute(select(col(ApiKey.id), col(ApiKey.organization_id)).where(col(ApiKey.id).in_(key_ids)))
    return {row[0]: row[1] for row in rows}


async def write_failures(session: AsyncSession, buckets: dict[FailureBucket, int]) -> None:
    if not buckets:
        return
    owners = await organizations_of(session, {b.key_id for b in buckets if b.key_id})
    for bucket, count in sorted(buckets.items(), key=lambda item: item[0].minute):
        event = record_audit(
            session,
            action="auth.failed",
            actor="anonymous",
            organization_id=owners.get(bucket.key_id) if bucket.key_id else None,
            key_id=bucket.key_id,
            source=bucket.source,
            details={"reason": bucket.reason, "count": count, "minute": iso(from_timestamp(bucket.minute * 60))},
        )
        event.created_at = from_timestamp(bucket.minute * 60)
