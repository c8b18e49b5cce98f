"""Decision records: every authorization decision, kept in memory and written in batches.

``record`` only appends to a list (or bumps a counter); ``flush`` hands the rows to the
runtime's group-commit writer, the one that writes execution records. Refusals are always
kept: each one is its own row until a key has ``refusals_per_minute`` refusals of one
reason in a minute, after which the rest of that minute becomes one row with a count (as
the auth-failure audit does). Allowed decisions follow ``allowed_mode``: ``all`` (one row
each), ``sample`` (a ``sample_rate`` share of them, each row counting for 1/rate) or
``aggregate`` (one row per key, route, tool, rule and minute, with a count).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.failures import organizations_of
from auth.usage import from_timestamp
from server.observability.models import AuthzDecision

logger = logging.getLogger(__name__)
MAX_BUCKETS_PER_MINUTE = 10_000
MAX_PENDING_ROWS = 50_000

Submit = Callable[[async_sessionmaker[AsyncSession], list[Any]], Any]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    rule: str
    route: str
    tool: str | None = None
    key_id: str | None = None
    organization_id: str | None = None
    policy_revision: int | None = None
    request_id: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Bucket:
    minute: int
    key_id: str | None
    organization_id: str | None
    route: str
    tool: str | None
    allowed: bool
    reason: str
    rule: str
    policy_revision: int | None


class DecisionLog:
    def __init__(
        self,
        *,
        enabled: bool = True,
        allowed_mode: str = "all",
        sample_rate: float = 1.0,
        refusals_per_minute: int = 100,
        clock: Callable[[], float],
    ) -> None:
        self.enabled = enabled
        self.allowed_mode = allowed_mode
        self.sample_rate = sample_rate
        self.refusals_per_minute = refusals_per_minute
        self._clock = clock
        self._rows: list[dict[str, Any]] = []
        self._refusals: dict[tuple[int, str | None, str], int] = {}
        self._buckets: dict[_Bucket, int] = {}

    def record(self, decision: Decision) -> None:
        if not self.enabled:
            return
        now = self._clock()
        minute = int(now // 60)
        if decision.allowed:
            if self.allowed_mode == "aggregate":
                self._count(minute, decision)
            elif self.allowed_mode == "sample":
                if random.random() < self.sample_rate:
                    self._append(now, decision, count=max(1, round(1 / self.sample_rate)))
            else:
                self._append(now, decision)
            return
        seen = (minute, decision.key_id, decision.reason)
        n = self._refusals.get(seen, 0) + 1
        self._refusals[seen] = n
        if n <= self.refusals_per_minute and len(self._rows) < MAX_PENDING_ROWS:
            self._append(now, decision)
        else:
            self._count(minute, decision)

    def _append(self, now: float, decision: Decision, *, count: int = 1) -> None:
        self._rows.append(
            {
                "created_at": from_timestamp(now),
                "organization_id": decision.organization_id,
                "key_id": decision.key_id,
                "request_id": decision.request_id,
                "trace_id": decision.trace_id,
                "route": decision.route[:200],
                "tool": decision.tool[:200] if decision.tool else None,
                "outcome": "allowed" if decision.allowed else "refused",
                "reason": decision.reason,
                "rule": decision.rule,
                "policy_revision": decision.policy_revision,
                "count": count,
            }
        )

    def _count(self, minute: int, decision: Decision) -> None:
        bucket = _Bucket(
            minute,
            decision.key_id,
            decision.organization_id,
            decision.route[:200],
            decision.tool[:200] if decision.tool else None,
            decision.allowed,
            decision.reason,
            decision.rule,
            decision.policy_revision,
        )
        if bucket not in self._buckets and len(self._buckets) >= MAX_BUCKETS_PER_MINUTE:
            bucket = _Bucket(minute, None, None, "*", None, decision.allowed, decision.reason, "many keys", None)
        self._buckets[bucket] = self._buckets.get(bucket, 0) + 1

    def take_rows(self, *, final: bool = False) -> list[dict[str, Any]]:
        """Rows to write now: every single decision, and the aggregates of minutes that are over."""
        current = int(self._clock() // 60)
        rows, self._rows = self._rows, []
        done = [b for b in self._buckets if final or b.minute < current]
        for bucket in done:
            count = self._buckets.pop(bucket)
            rows.append(
                {
                    "created_at": from_timestamp(bucket.minute * 60),
                    "organization_id": bucket.organization_id,
                    "key_id": bucket.key_id,
                    "request_id": None,
                    "trace_id": None,
                    "route": bucket.route,
                    "tool": bucket.tool,
                    "outcome": "allowed" if bucket.allowed else "refused",
                    "reason": bucket.reason,
                    "rule": f"{bucket.rule} (aggregated: {count} in this minute)",
                    "policy_revision": bucket.policy_revision,
                    "count": count,
                }
            )
        self._refusals = {k: v for k, v in self._refusals.items() if k[0] >= current}
        return rows

    async def flush(self, sessions: async_sessionmaker[AsyncSession], submit: Submit, *, final: bool = False) -> int:
        rows = self.take_rows(final=final)
        if not rows:
            return 0
        unowned = {row["key_id"] for row in rows if row["key_id"] and not row["organization_id"]}
        if unowned:
            # Refused before the key was known to be real (a wrong secret): name its owner, or no key at all.
            async with sessions() as session:
                owners = await organizations_of(session, unowned)
            for row in rows:
                if row["key_id"] in unowned:
                    row["organization_id"] = owners.get(row["key_id"])
                    row["key_id"] = row["key_id"] if row["organization_id"] else None
        table = AuthzDecision.__table__  # type: ignore[attr-defined]
        await submit(sessions, [(table, row) for row in rows])
        return len(rows)

    async def run(self, sessions: async_sessionmaker[AsyncSession], submit: Submit, *, interval: float) -> None:
        """Flushes every ``interval``; the lifespan makes the final flush after the writer has stopped."""
        while True:
            await anyio.sleep(interval)
            try:
                with anyio.CancelScope(shield=True):
                    await self.flush(sessions, submit)
            except SQLAlchemyError:
                logger.warning("writing decision records failed; this batch is lost", exc_info=True)
