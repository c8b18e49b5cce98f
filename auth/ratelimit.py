"""Per-key rate limits: a per-second sliding window and a daily quota per UTC day (DESIGN §5).

The per-second limit is a sliding-window log: a request is admitted when fewer than
``per_second`` admitted requests of the same key lie within the last second. Unlike a
fixed window there is no 2x burst at window edges, and unlike GCRA with a burst of
``per_second`` no second ever admits more than the limit. A request is admitted only
when both windows have room, and only admitted requests count against either.

``RateLimitMiddleware`` is pure ASGI and sits inside ``AuthMiddleware``: it reads the
principal from ``scope["user"]`` and decides by path (``counts(path)``) which routes count.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.errors import CapgateError, RateLimited, send_error
from auth.observer import NULL_OBSERVER, AuthObserver
from auth.principal import Principal
from auth.server_timing import current_timing

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Limits:
    per_second: int
    daily: int


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limits: Limits
    second_remaining: int
    second_reset: float
    """Seconds until the per-second window has room again (0 when nothing is in it)."""
    daily_remaining: int
    daily_reset: float
    """Seconds until the next UTC midnight."""

    @property
    def window(self) -> str:
        """The window that decided: the one that ran out, else the tighter one."""
        if not self.allowed:
            return "second" if self.second_remaining <= 0 else "daily"
        return "second" if self.second_remaining <= self.daily_remaining else "daily"

    @property
    def retry_after(self) -> int:
        waits = []
        if self.second_remaining <= 0:
            waits.append(self.second_reset)
        if self.daily_remaining <= 0:
            waits.append(self.daily_reset)
        return max(1, math.ceil(max(waits, default=1.0)))

    def headers(self) -> list[tuple[bytes, bytes]]:
        """X-RateLimit-* for the tighter window, and the IETF RateLimit-Policy / RateLimit fields for both."""
        second_tighter = self.second_remaining <= self.daily_remaining
        limit = self.limits.per_second if second_tighter else self.limits.daily
        remaining = self.second_remaining if second_tighter else self.daily_remaining
        # t= is when there is room again: 0 while there is (issue 18 item 20).
        second_t = 0 if self.second_remaining > 0 else math.ceil(self.second_reset)
        daily_t = math.ceil(self.daily_reset)
        policy = f'"per-second";q={self.limits.per_second};w=1, "daily";q={self.limits.daily};w={SECONDS_PER_DAY}'
        current = f'"per-second";r={self.second_remaining};t={second_t}, "daily";r={self.daily_remaining};t={daily_t}'
        headers = [
            (b"x-ratelimit-limit", str(limit).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-policy", policy.encode()),
            (b"ratelimit", current.encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers


def utc_day(now: float) -> int:
    """Days since the epoch, UTC: the daily quota's window."""
    return int(now // SECONDS_PER_DAY)


def seconds_to_midnight(now: float) -> float:
    return (utc_day(now) + 1) * SECONDS_PER_DAY - now


class BackendUnavailable(Exception):
    """The shared store could not be reached."""


class RateLimitBackend(Protocol):
    async def hit(self, key_id: str, limits: Limits, now: float) -> Decision: ...

    async def aclose(self) -> None: ...


# (key per-second, key daily, organization per-second, organization daily); None means "not overridden".
Overrides = tuple[int | None, int | None, int | None, int | None]
OverridesLoader = Callable[[str], Awaitable[Overrides]]


class LimitPolicies:
    """Resolves a key's limits (key override, else organization override, else default), cached briefly."""

    def __init__(
        self, *, load: OverridesLoader, default: Limits, ttl: float, monotonic: Clock = time.monotonic
    ) -> None:
        self._load = load
        self._default = default
        self._ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Limits]] = {}

    async def limits_for(self, key_id: str) -> Limits:
        cached = self._cache.get(key_id)
        if cached is not None and self._monotonic() - cached[0] < self._ttl:
            return cached[1]
        key_second, key_daily, org_second, org_daily = await self._load(key_id)
        limits = Limits(
            per_second=key_second or org_second or self._default.per_second,
            daily=key_daily or org_daily or self._default.daily,
        )
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key_id] = (self._monotonic(), limits)
        return limits

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)


class RateLimiter:
    def __init__(self, *, backend: RateLimitBackend, policies: LimitPolicies, clock: Clock = time.time) -> None:
        self.backend = backend
        self.policies = policies
        self._clock = clock

    async def hit(self, key_id: str) -> Decision:
        limits = await self.policies.limits_for(key_id)
        return await self.backend.hit(key_id, limits, self._clock())


class RateLimitMiddleware:
    """Counts each request of a counted route against its key and adds the rate-limit headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        counts: Callable[[str], bool],
        speaks_jsonrpc: Callable[[str], bool],
        observer: AuthObserver = NULL_OBSERVER,
        uncounted: Callable[[Scope], bool] = lambda _scope: False,
    ) -> None:
        self.app = app
        self.uncounted = uncounted
        self.observer = observer
        self.limiter = limiter
        self.counts = counts
        self.speaks_jsonrpc = speaks_jsonrpc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("user") if scope["type"] == "http" else None
        # A request relayed from another replica (``uncounted``) was counted there already.
        if not isinstance(principal, Principal) or not self.counts(scope["path"]) or self.uncounted(scope):
            await self.app(scope, receive, send)
            return
        timing = current_timing.get()
        started = time.perf_counter()
        try:
            with self.observer.span("capgate.rate_limit"):
                decision = await self.limiter.hit(principal.key_id)
        except CapgateError as refused:  # the shared store is down and the operator chose to refuse meanwhile
            await send_error(send, refused, jsonrpc=self.speaks_jsonrpc(scope["path"]))
            return
        except (BackendUnavailable, SQLAlchemyError, OSError) as exc:
            # Failing open: an outage of the shared store (or of the database holding overrides)
            # must not take the API down with it.
            logger.warning("rate limit backend unavailable; request admitted unlimited: %s", exc)
            if isinstance(exc, BackendUnavailable):
                self.observer.redis_error("rate_limit")
            self.observer.rate_limit("failed_open", "none")
            await self.app(scope, receive, send)
            return
        if timing is not None:
            timing.ratelimit = time.perf_counter() - started
        extra = decision.headers()
        self.observer.rate_limit("allowed" if decision.allowed else "refused", decision.window)
        if not decision.allowed:
            error = RateLimited()
            limit = decision.limits.per_second if decision.window == "second" else decision.limits.daily
            error.rule = f"{'per-second' if decision.window == 'second' else 'daily'} window: {limit} requests"
            self.observer.refused(scope, error)
            await send_error(send, error, jsonrpc=self.speaks_jsonrpc(scope["path"]), extra_headers=extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
