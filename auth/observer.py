"""What auth reports about its own work (argon2, key cache, rate limits, Redis, streams).

``auth`` imports nothing of ``server``: the server hands in an object with these methods
(``server/observability/metrics.py``); by default nothing is reported. Every method is
called on the request path and must only count in memory.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from starlette.types import Scope

from auth.errors import CapgateError


class AuthObserver:
    """Does nothing; the metrics implementation overrides every method."""

    def argon2_verified(self, ok: bool) -> None:
        pass

    def argon2_waiting(self, delta: int) -> None:
        pass

    def key_cache(self, cache: str, hit: bool) -> None:
        pass

    def rate_limit(self, decision: str, window: str) -> None:
        pass

    def redis_error(self, op: str) -> None:
        pass

    def stream_opened(self, kind: str) -> None:
        pass

    def stream_closed(self, kind: str, reason: str) -> None:
        pass

    def refused(self, scope: Scope, error: CapgateError) -> None:
        """An authorization refusal (bad credential, rate limit): recorded as a decision."""

    def span(self, name: str) -> AbstractContextManager[Any]:
        """A child span of the request's trace around one step (auth, rate limit)."""
        return nullcontext()


NULL_OBSERVER = AuthObserver()
