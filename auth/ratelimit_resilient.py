"""Rate limits that survive a Redis outage: a circuit breaker around the Redis backend and an
in-process fallback while it is open.

Redis is asked with short connect/read timeouts (``redis_timeout_seconds``, tens of ms), so a
Redis that accepts connections but never answers costs each request at most that long, and
only until the breaker opens: after ``FAILURES_TO_OPEN`` consecutive failures Redis is left
alone for ``retry_seconds``; then one request probes it while the rest keep using the fallback.

While the breaker is open the ``mode`` decides:

- ``fallback`` (default): in-process limits at ``ceil(limit / replicas)`` per second, and each
  replica admits its ``1/replicas`` share of what was left of the key's daily quota when Redis
  was last seen. Never silently unlimited.
- ``closed``: every counted request is refused (503 ``rate_limiter_unavailable``).
- ``open``: every request is admitted (still counted for the daily quota).

Requests admitted during the outage are added to the key's Redis day counter when Redis
answers again, so the daily quota keeps counting across the outage. One warning is logged
when an outage starts and one line when it ends.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from auth.errors import CapgateError
from auth.ratelimit import BackendUnavailable, Decision, Limits, utc_day
from auth.ratelimit_memory import InProcessBackend

logger = logging.getLogger(__name__)

FallbackMode = Literal["fallback", "closed", "open"]
FAILURES_TO_OPEN = 3


class RateLimiterUnavailable(CapgateError):
    status = 503
    code = "rate_limiter_unavailable"
    message = "Rate limiting is unavailable; try again shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class SharedBackend(Protocol):
    async def hit(self, key_id: str, limits: Limits, now: float) -> Decision: ...

    async def add_daily(self, counts: dict[tuple[str, int], int]) -> None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class CircuitBreaker:
    retry_seconds: float
    monotonic: Callable[[], float] = time.monotonic
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False

    @property
    def is_open(self) -> bool:
        return self.failures >= FAILURES_TO_OPEN

    def may_try(self) -> bool:
        """Closed: always. Open: one probe at a time once ``retry_seconds`` have passed."""
        if not self.is_open:
            return True
        if self.probing or self.monotonic() < self.open_until:
            return False
        self.probing = True
        return True

    def failed(self) -> bool:
        """Records a failure; True when this one opened the breaker (an outage starts)."""
        self.probing = False
        self.failures += 1
        if self.failures >= FAILURES_TO_OPEN:
            self.open_until = self.monotonic() + self.retry_seconds
        return self.failures == FAILURES_TO_OPEN

    def succeeded(self) -> bool:
        """Records a success; True when it closed an open breaker (an outage ends)."""
        was_open = self.is_open
        self.failures = 0
        self.probing = False
        return was_open


@dataclass
class ResilientBackend:
    shared: SharedBackend
    mode: FallbackMode = "fallback"
    replicas: int = 1
    breaker: CircuitBreaker = field(default_factory=lambda: CircuitBreaker(retry_seconds=1.0))
    local: InProcessBackend = field(default_factory=InProcessBackend)
    _last_used: dict[str, tuple[int, int]] = field(default_factory=dict)  # key → (day, Redis count last seen)
    _unsynced: dict[tuple[str, int], int] = field(default_factory=dict)  # (key, day) → admitted while down

    @property
    def available(self) -> bool:
        return not self.breaker.is_open

    async def hit(self, key_id: str, limits: Limits, now: float) -> Decision:
        if self.breaker.may_try():
            try:
                decision = await self.shared.hit(key_id, limits, now)
            except BackendUnavailable as exc:
                if self.breaker.failed():
                    logger.warning("Redis unavailable; rate limits in %s mode until it answers: %s", self.mode, exc)
            else:
                if self.breaker.succeeded():
                    logger.warning("Redis answers again; shared rate limits restored")
                await self._reconcile()
                self._last_used[key_id] = (utc_day(now), limits.daily - decision.daily_remaining)
                return decision
        return await self._degraded(key_id, limits, now)

    async def _degraded(self, key_id: str, limits: Limits, now: float) -> Decision:
        if self.mode == "closed":
            raise RateLimiterUnavailable()
        day = utc_day(now)
        seen_day, seen = self._last_used.get(key_id, (day, 0))
        already = seen if seen_day == day else 0
        if self.mode == "open":
            share = Limits(per_second=2**31, daily=2**31)
        else:
            share = Limits(
                per_second=max(1, math.ceil(limits.per_second / self.replicas)),
                daily=max(0, math.ceil((limits.daily - already) / self.replicas)),
            )
        decision = await self.local.hit(key_id, share, now)
        if decision.allowed:
            self._unsynced[(key_id, day)] = self._unsynced.get((key_id, day), 0) + 1
        return decision

    async def _reconcile(self) -> None:
        if not self._unsynced:
            return
        counts, self._unsynced = self._unsynced, {}
        self.local.sweep(time.time())
        try:
            await self.shared.add_daily(counts)
        except BackendUnavailable:
            for key, count in counts.items():
                self._unsynced[key] = self._unsynced.get(key, 0) + count

    async def check(self) -> bool:
        """For /readyz: asks Redis directly (same short timeouts) and feeds the answer to the breaker."""
        try:
            await self.shared.ping()
        except BackendUnavailable:
            if self.breaker.failed():
                logger.warning("Redis unavailable; rate limits in %s mode until it answers", self.mode)
            return False
        if self.breaker.succeeded():
            logger.warning("Redis answers again; shared rate limits restored")
        await self._reconcile()
        return True

    async def aclose(self) -> None:
        await self.shared.aclose()
